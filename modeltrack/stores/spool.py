"""Write-behind spooling for remote stores: training never waits on the network.

A running version on a remote store (``s3://…``) writes through a :class:`SpoolingStore`
(:meth:`Store.writer`). Every write lands first as a file in a local *spool* and is
published by a background thread, in the order it was made, with retries and exponential
backoff while the store is unreachable or failing. Only version numbering (``claim.json``,
create-if-absent) goes to the server directly, as atomicity needs it.

Because operations are published in order, ``final.json`` (written last by
``Version.finish``) reaches the store after ``series.json``, the blobs and the records, so
a reader never sees a finished version with missing parts.

The spool survives the process: what a killed or timed-out process left behind is
published by ``modeltrack sync`` (idempotent and resumable: every operation is removed
from the spool once the store has it, and replaying one is harmless). Layout::

    $MODELTRACK_SPOOL/                           default ~/.cache/modeltrack/spool
        s3-bucket-prefix-1a2b3c4d/store.json     {"uri": "s3://bucket/prefix"} (no credentials)
        s3-bucket-prefix-1a2b3c4d/QUEUE/lock     flock'ed by the process that owns QUEUE
        …/QUEUE/owner.json                        pid, host, start time
        …/QUEUE/000000000042.op                   {"op": "write", "key": …, "size": …, "sha256": …}
        …/QUEUE/000000000042.dat                  its bytes (written before the .op)
        …/QUEUE/state.json                        last upload error, for `modeltrack status`

A queue whose lock is held belongs to a live process that uploads it itself; ``sync``
takes over every other queue.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .. import config
from .._util import now_iso, process_identity
from ..errors import KeyNotFound, ModelTrackError, ModelTrackWarning, StoreError, StoreNotWritableError
from ..files import atomic_write, replacing, sweep_temporaries
from .base import Progress, Store, check_key, copy_hashing, dumps

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no cross-process queue locks
    fcntl = None  # type: ignore[assignment]

OP_WRITE, OP_CREATE, OP_DELETE, OP_PUT = "write", "create", "delete", "put_file"
_VERSION_KEY = re.compile(r"^models/([^/]+)/versions/(\d+)/")


@dataclass
class Op:
    """One spooled operation on the remote store."""

    seq: int
    op: str
    key: str
    size: int = 0
    sha256: str | None = None
    time: str = ""


# ---------------------------------------------------------------------- one queue on disk
class Queue:
    """A directory of ordered operations: one writer's, or one a dead process left."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_file: IO[bytes] | None = None

    @classmethod
    def create(cls, store_dir: Path) -> Queue:
        name = f"{int(time.time() * 1000):013d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        q = cls(store_dir / name)
        q.path.mkdir(parents=True)
        try:
            if not q.try_lock():  # pragma: no cover - a fresh directory cannot be locked by others
                raise StoreError(f"cannot lock new spool queue {q.path}")
            atomic_write(q.path / "owner.json", dumps({**process_identity(), "created_at": now_iso()}))
        except BaseException:
            q.destroy()  # no empty queue left behind (e.g. on a full disk)
            raise
        return q

    @property
    def name(self) -> str:
        return self.path.name

    def try_lock(self) -> bool:
        """Take the queue's lock without waiting; False if a live process holds it."""
        if fcntl is None:
            return True
        f = open(self.path / "lock", "ab")  # held open: the flock lives as long as the file
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._lock_file = f
        return True

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    def locked_by_other(self) -> bool:
        if self._lock_file is not None:
            return False
        if not self.try_lock():
            return True
        self.unlock()
        return False

    def op_path(self, seq: int) -> Path:
        return self.path / f"{seq:012d}.op"

    def data_path(self, seq: int) -> Path:
        return self.path / f"{seq:012d}.dat"

    def ops(self) -> list[Op]:
        """The operations still pending, oldest first."""
        out = []
        for p in sorted(self.path.glob("*.op")):
            try:
                out.append(Op(**json.loads(p.read_bytes())))
            except (OSError, ValueError, TypeError):
                continue  # half-removed or damaged: skipped (and reported by status)
        return out

    def owner(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.path / "owner.json").read_bytes()))
        except (OSError, ValueError):
            return {}

    def state(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.path / "state.json").read_bytes()))
        except (OSError, ValueError):
            return {}

    def set_state(self, **state: Any) -> None:
        with contextlib.suppress(OSError):
            atomic_write(self.path / "state.json", dumps(state))

    def add(self, op: Op, data: bytes | None = None, src: Path | None = None) -> Op:
        """Persist ``op`` (and its payload) so that it survives the process.

        Raises:
            OSError: the spool cannot be written (nothing of ``op`` is left in it then).
        """
        try:
            if data is not None:
                atomic_write(self.data_path(op.seq), data)
                op.size = len(data)
            elif src is not None:
                op.sha256, op.size = _copy_hashing(src, self.data_path(op.seq))
            op.time = op.time or now_iso()
            atomic_write(self.op_path(op.seq), dumps(asdict(op)))
        except BaseException:
            with contextlib.suppress(OSError):
                self.data_path(op.seq).unlink(missing_ok=True)
            raise
        return op

    def remove(self, op: Op) -> None:
        # The .op goes first: a payload without its .op is garbage, never a half operation.
        # A spool that became read-only keeps the files: replaying a published op is harmless.
        for p in (self.op_path(op.seq), self.data_path(op.seq)):
            with contextlib.suppress(OSError):
                p.unlink()

    def destroy(self) -> None:
        self.unlock()
        shutil.rmtree(self.path, ignore_errors=True)


_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}
#: `modeltrack sync` removes temporary files of the spool older than this (seconds): what a
#: killed writer left (a running one holds a file for seconds, not an hour)
STALE_TEMPORARY_SECONDS = 3600.0


def _unreadable_source(exc: OSError, src: Path) -> bool:
    """Whether ``exc`` (from copying ``src`` into the spool) is about ``src`` rather than the
    spool. ``shutil`` names both files on errors of the copy itself, e.g. a full disk."""
    if exc.errno in _NO_ROOM or exc.filename2 is not None or exc.filename is None:
        return False
    return Path(exc.filename) == src


def _copy_hashing(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (published whole), returning the SHA-256 and size of the copy.

    The copy is a reflink where the file system offers it, else made by the kernel
    (``copy_file_range``); a large file is hashed while it is copied, and the hash is always
    of exactly the bytes that will be uploaded (see :func:`.base.copy_hashing`).
    """
    with replacing(dst) as tmp:
        sha, size = copy_hashing(src, tmp)
    return sha, size


# ---------------------------------------------------------------------- applying operations
def apply_op(remote: Store, queue: Queue, op: Op, progress: Callable[[int], None] | None = None) -> None:
    """Publish one spooled operation on ``remote``. Replaying it is harmless.

    Raises:
        StoreError: the store refused it or cannot be reached (the operation stays spooled).
    """
    if op.op == OP_DELETE:
        remote.delete(op.key)
        return
    data_path = queue.data_path(op.seq)
    if not data_path.is_file():
        warnings.warn(
            f"modeltrack: spooled {op.op} of {op.key} lost its data ({data_path} is missing); dropped",
            ModelTrackWarning,
            stacklevel=2,
        )
        return
    if op.op == OP_WRITE:
        remote.write(op.key, data_path.read_bytes())
    elif op.op == OP_CREATE:
        data = data_path.read_bytes()
        if not remote.create(op.key, data):
            try:
                same = remote.read(op.key) == data
            except KeyNotFound:
                same = False
            if not same:
                warnings.warn(
                    f"modeltrack: {remote.uri}/{op.key} already exists with other content; kept the store's "
                    f"copy (the spooled one was dropped)",
                    ModelTrackWarning,
                    stacklevel=2,
                )
    elif op.op == OP_PUT:
        if _has_content(remote, op):
            # Re-used, not re-sent: refresh its age so a concurrent gc keeps it (its
            # reference is published right after, in order).
            remote.touch(op.key)
            return
        remote.put_file(op.key, data_path, sha256=op.sha256, progress=progress)
    else:
        warnings.warn(
            f"modeltrack: unknown spooled operation {op.op!r} on {op.key}; dropped", ModelTrackWarning, stacklevel=2
        )


def _has_content(remote: Store, op: Op) -> bool:
    """Whether ``remote`` already holds exactly the bytes ``op`` would upload."""
    if not remote.supports_head:
        return bool(op.key.rsplit("/", 1)[-1] == op.sha256 and remote.exists(op.key))
    got = remote.head(op.key)
    if got is None or got["size"] != op.size:
        return False
    if got.get("sha256"):
        return bool(got["sha256"] == op.sha256)
    # Content-addressed keys (blobs/sha256/…/HASH) name their content.
    return op.key.rsplit("/", 1)[-1] == op.sha256


def apply_ops(remote: Store, queue: Queue, ops: list[Op], progress: Callable[[int], None] | None = None) -> int:
    """Publish ``ops[0]``, or a run of deletes at the head of ``ops`` in one request when the
    store can; returns how many operations of ``ops`` were published."""
    if ops[0].op == OP_DELETE and remote.supports_batch_delete:
        run: list[Op] = []
        for op in ops:
            if op.op != OP_DELETE or len(run) == 1000:
                break
            run.append(op)
        remote.delete_many([op.key for op in run])
        return len(run)
    apply_op(remote, queue, ops[0], progress)
    return 1


# ---------------------------------------------------------------------- the spool of all stores
def _store_dir_name(uri: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", uri).strip("-")[:60]
    return f"{slug}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


class Spool:
    """The spool directory: pending operations of every remote store, for ``sync`` and ``status``.

    Args:
        root: the spool directory (default ``MODELTRACK_SPOOL``).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root if root is not None else config.spool_dir()).expanduser()

    def store_dir(self, uri: str, *, create: bool = False) -> Path:
        path = self.root / _store_dir_name(uri)
        if create and not (path / "store.json").is_file():
            path.mkdir(parents=True, exist_ok=True)
            atomic_write(path / "store.json", dumps({"uri": uri}))
        return path

    def stores(self) -> list[str]:
        """URIs of the stores that have a spool directory."""
        out: list[str] = []
        if not self.root.is_dir():
            return out
        for d in sorted(self.root.iterdir()):
            try:
                out.append(str(json.loads((d / "store.json").read_bytes())["uri"]))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def queues(self, uri: str) -> list[Queue]:
        d = self.store_dir(uri)
        if not d.is_dir():
            return []
        return [Queue(p) for p in sorted(d.iterdir()) if p.is_dir()]

    def status(self, uri: str | None = None) -> list[dict[str, Any]]:
        """What is pending, one entry per queue: store, owner, operations, bytes, versions."""
        out = []
        for store_uri in [uri] if uri else self.stores():
            for q in self.queues(store_uri):
                ops = q.ops()
                if not ops and not q.locked_by_other():
                    continue
                versions = sorted({f"{m[1]}@v{m[2]}" for op in ops if (m := _VERSION_KEY.match(op.key))})
                owner = q.owner()
                state = q.state()
                out.append(
                    {
                        "store": store_uri,
                        "queue": q.name,
                        "path": str(q.path),
                        "uploading": q.locked_by_other(),
                        "pid": owner.get("pid"),
                        "host": owner.get("host"),
                        "operations": len(ops),
                        "bytes": sum(op.size for op in ops if op.op != OP_DELETE),
                        "versions": versions,
                        "oldest": ops[0].time if ops else None,
                        "last_error": state.get("error"),
                        "last_error_at": state.get("time"),
                    }
                )
        return out

    def sync(self, remote: Store, progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
        """Publish every queue of ``remote`` that no live process owns, oldest first.

        Idempotent and resumable: each operation leaves the spool once the store has it;
        an interrupted sync continues where it stopped.

        Args:
            remote: the store whose spool to publish (its ``uri`` names the spool directory).
            progress: called with ``(key, bytes_done, bytes_total)`` as blobs go up.

        Returns:
            ``{"store", "uploaded", "bytes", "skipped_queues", "pending"}``.

        Raises:
            StoreError: the store failed; what was published so far is done, the rest stays.
        """
        store, uri = remote, remote.uri
        uploaded = 0
        sent = 0
        skipped: list[str] = []
        for q in self.queues(uri):
            if not q.try_lock():
                skipped.append(q.name)
                continue
            try:
                ops = q.ops()
                while ops:
                    head = ops[0]

                    def cb(n: int, key: str = head.key, total: int = head.size) -> None:
                        nonlocal sent
                        sent += n
                        if progress is not None:
                            progress(key, n, total)

                    done = apply_ops(store, q, ops, cb)
                    for op in ops[:done]:
                        q.remove(op)
                    uploaded += done
                    ops = ops[done:]
                q.destroy()
            except ModelTrackError as exc:
                q.set_state(error=str(exc), time=now_iso(), attempts=q.state().get("attempts", 0) + 1)
                q.unlock()
                raise
        pending = sum(len(q.ops()) for q in self.queues(uri))
        # Files a killed writer held for upload (links to logged checkpoints) or was writing.
        swept, _ = sweep_temporaries(self.root, time.time() - STALE_TEMPORARY_SECONDS)
        return {
            "store": uri,
            "uploaded": uploaded,
            "bytes": sent,
            "skipped_queues": skipped,
            "pending": pending,
            "removed_temporaries": swept,
        }


# ---------------------------------------------------------------------- the writer
class SpoolingStore(Store):
    """A write-behind view of a remote store for one running version.

    Writes are persisted in the spool and published by a background thread in order;
    reads of keys written here are answered from the spool, others from the remote.
    ``exists`` answers from what was written here (no network round trip, so training
    never waits): a blob that the remote already holds is found by the uploader, which
    then skips it. ``create`` is deferred too: it returns True once spooled (the store
    decides at upload time; a lost race leaves the store's value and warns).

    Args:
        remote: the store to publish to.
        spool: the spool (default: ``MODELTRACK_SPOOL``).
    """

    supports_staging = True

    def __init__(self, remote: Store, spool: Spool | None = None) -> None:
        self.remote = remote
        self.uri = remote.uri
        self.spool = spool or Spool()
        self._queue: Queue | None = None
        self._enqueue_lock = threading.Lock()
        self._cond = threading.Condition()
        self._pending: list[Op] = []
        self._by_key: dict[str, Op] = {}
        self._published: set[str] = set()
        self._inflight: set[int] = set()
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._done_ops = 0
        self._sent_bytes = 0
        self._head_sent = 0
        self._failures = 0
        self._last_error: str | None = None

    # ------------------------------------------------------------------ spooling
    def _ensure_queue(self) -> Queue:
        if self._queue is None:
            self._queue = Queue.create(self.spool.store_dir(self.uri, create=True))
        return self._queue

    def _not_written(self, exc: OSError, what: str) -> StoreNotWritableError:
        """The error for a spool that cannot be written (full, read-only, gone)."""
        why = exc.strerror or type(exc).__name__
        where = self._queue.path if self._queue is not None else self.spool.root
        return StoreNotWritableError(
            f"cannot write to the spool {where} ({why}), so {what} for {self.uri} was not recorded; free space "
            f"there or set MODELTRACK_SPOOL to a directory on a bigger, writable disk",
            uri=self.uri,
        )

    def _enqueue(self, kind: str, key: str, data: bytes | None = None, src: Path | None = None) -> Op:
        check_key(key)
        with self._enqueue_lock:
            try:
                queue = self._ensure_queue()
                self._seq += 1
                op = queue.add(Op(self._seq, kind, key), data=data, src=src)
            except OSError as exc:
                if src is not None and _unreadable_source(exc, src):
                    raise StoreError(
                        f"cannot read {src} ({exc.strerror or exc}) to upload it as {key}; check that the file "
                        f"exists and is readable",
                        uri=self.uri,
                    ) from exc
                raise self._not_written(exc, f"the {kind} of {key}") from exc
            self._register(queue, op)
        return op

    def stage_file(self, src: str | os.PathLike[str]) -> tuple[str, int, Callable[[str | None], None]]:
        """Copy ``src`` into the spool, hashing the copy (one pass over the file), before
        its key is known; a content-addressed caller then names the key (or drops it).

        Returns:
            the SHA-256 and size of the copy, and ``commit(key)``: queue the upload of the
            copy under ``key``, or with ``None`` discard the copy.
        """
        source = Path(src)
        with self._enqueue_lock:
            try:
                queue = self._ensure_queue()
            except OSError as exc:
                raise self._not_written(exc, f"the upload of {source}") from exc
            self._seq += 1
            seq = self._seq
        data = queue.data_path(seq)
        try:
            sha, size = _copy_hashing(source, data)  # removes its partial copy on failure
        except OSError as exc:
            if _unreadable_source(exc, source):
                raise StoreError(
                    f"cannot read {source} ({exc.strerror or exc}) to upload it; check that the file exists and "
                    f"is readable",
                    uri=self.uri,
                ) from exc
            raise self._not_written(exc, f"the upload of {source}") from exc

        def commit(key: str | None) -> None:
            if key is None:
                with contextlib.suppress(OSError):
                    data.unlink()
                return
            check_key(key)
            with self._enqueue_lock:
                try:
                    op = queue.add(Op(seq, OP_PUT, key, size=size, sha256=sha))  # drops the copy on failure
                except OSError as exc:
                    raise self._not_written(exc, f"the upload of {source} as {key}") from exc
                self._register(queue, op)

        return sha, size, commit

    def staging_dir(self) -> Path | None:
        try:
            self.spool.root.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return self.spool.root

    def _register(self, queue: Queue, op: Op) -> None:
        """Make a persisted operation pending for the uploader (caller holds the enqueue lock)."""
        key, kind = op.key, op.op
        with self._cond:
            old = self._by_key.get(key)
            if (
                old is not None
                and old.seq not in self._inflight
                and (kind == OP_DELETE or (kind == OP_WRITE and old.op == OP_WRITE))
            ):
                # A newer value (or a delete) makes an unpublished write pointless.
                self._pending.remove(old)
                queue.remove(old)
            self._pending.append(op)
            self._by_key[key] = op
            self._published.discard(key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._upload_loop, name="modeltrack-upload", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _upload_loop(self) -> None:
        while True:
            with self._cond:
                queue = self._queue
                if not self._pending or queue is None:
                    self._thread = None
                    self._cond.notify_all()
                    return
                batch = list(self._pending[:1000])
                # Only the head can be replaced by a newer write meanwhile; keep it.
                self._inflight = {batch[0].seq}
                self._head_sent = 0
            try:
                done = apply_ops(self.remote, queue, batch, self._on_bytes)
            except Exception as exc:  # noqa: BLE001 - the uploader must survive anything
                self._on_failure(queue, exc)
                continue
            with self._cond:
                for op in batch[:done]:
                    self._pending.remove(op)
                    if self._by_key.get(op.key) is op:
                        del self._by_key[op.key]
                        if op.op != OP_DELETE:
                            self._published.add(op.key)
                    queue.remove(op)
                self._inflight = set()
                self._done_ops += done
                self._cond.notify_all()
            if self._failures:
                self._failures = 0
                self._last_error = None
                with contextlib.suppress(OSError):
                    (queue.path / "state.json").unlink()

    def _on_bytes(self, n: int) -> None:
        self._sent_bytes += n
        self._head_sent += n

    def _left_bytes(self) -> int:
        """Bytes still to send (call with ``_cond`` held)."""
        pending = sum(op.size for op in self._pending if op.op != OP_DELETE)
        return max(0, pending - self._head_sent)

    def _on_failure(self, queue: Queue, exc: BaseException) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ModelTrackError) else str(exc)
        queue.set_state(error=self._last_error, time=now_iso(), attempts=self._failures)
        if self._failures == 1:
            warnings.warn(
                f"modeltrack: upload to {self.uri} failed, training continues and the data stays in the spool "
                f"({queue.path}); retrying with backoff: {self._last_error}",
                ModelTrackWarning,
                stacklevel=2,
            )
        pause = min(config.upload_backoff_max(), 0.5 * 2 ** min(self._failures - 1, 16))
        with self._cond:
            self._inflight = set()
        time.sleep(pause)

    # ------------------------------------------------------------------ waiting for uploads
    def pending(self) -> tuple[int, int]:
        """``(operations, bytes)`` not yet published."""
        with self._cond:
            return len(self._pending), sum(op.size for op in self._pending if op.op != OP_DELETE)

    def drain(self, timeout: float | None = None, progress: Progress | None = None) -> bool:
        """Wait for the uploads.

        Args:
            timeout: give up after this many seconds without progress (None: no limit).
            progress: told ``(sent, total, None)`` while waiting and ``(sent, total, done)``
                at the end, in bytes (see :class:`~modeltrack.stores.base.Progress`).

        Returns:
            True if everything is published (the queue is then removed from the spool);
            False if some is left, which ``modeltrack sync`` will publish.
        """
        with self._cond:
            total = self._left_bytes()
        bar = progress if total and (timeout is None or timeout > 0) else None
        if bar is not None:
            bar(0, total, None)
        last = (self._done_ops, self._sent_bytes)
        since = time.monotonic()
        with self._cond:
            while self._pending:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._upload_loop, name="modeltrack-upload", daemon=True)
                    self._thread.start()
                if timeout is not None and time.monotonic() - since >= timeout:
                    break
                self._cond.wait(0.2)
                now = (self._done_ops, self._sent_bytes)
                if now != last:
                    last, since = now, time.monotonic()
                if bar is not None:
                    bar(total - self._left_bytes(), total, None)
            left = len(self._pending)
            left_bytes = self._left_bytes()
        if bar is not None:
            bar(total - left_bytes, total, not left)
        if left:
            where = self._queue.path if self._queue is not None else self.spool.root
            why = f" ({self._last_error})" if self._last_error else ""
            warnings.warn(
                f"modeltrack: {left} uploads ({_mb(left_bytes)}) to {self.uri} still pending after waiting "
                f"{timeout:g} s without progress{why}; they stay in the spool ({where}) and upload in the "
                f"background while this process runs — afterwards run `modeltrack sync`",
                ModelTrackWarning,
                stacklevel=3,
            )
            return False
        with self._enqueue_lock, self._cond:
            if not self._pending and self._queue is not None:
                self._queue.destroy()
                self._queue = None
        return True

    # ------------------------------------------------------------------ the Store contract
    def write(self, key: str, data: bytes) -> None:
        self._enqueue(OP_WRITE, key, data=bytes(data))

    def create(self, key: str, data: bytes) -> bool:
        self._enqueue(OP_CREATE, key, data=bytes(data))
        return True

    def delete(self, key: str) -> None:
        self._enqueue(OP_DELETE, key)

    def put_file(
        self,
        key: str,
        src: str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        # Copied into the spool: the caller may overwrite its file (last.ckpt) right away.
        self._enqueue(OP_PUT, key, src=Path(src))

    def _spooled(self, key: str) -> Op | None:
        with self._cond:
            return self._by_key.get(key)

    def read(self, key: str) -> bytes:
        op = self._spooled(key)
        if op is not None and self._queue is not None:
            if op.op == OP_DELETE:
                raise KeyNotFound(key)
            try:
                return self._queue.data_path(op.seq).read_bytes()
            except FileNotFoundError:
                pass  # published meanwhile
        return self.remote.read(key)

    def exists(self, key: str) -> bool:
        op = self._spooled(key)
        if op is not None:
            return op.op != OP_DELETE
        return key in self._published

    def list(self, prefix: str) -> list[str]:
        start = f"{prefix}/" if prefix else ""
        try:
            names = set(self.remote.list(prefix))
        except StoreError:
            names = set()
        with self._cond:
            for key, op in self._by_key.items():
                if key.startswith(start):
                    name = key[len(start) :].split("/", 1)[0]
                    if op.op == OP_DELETE and "/" not in key[len(start) :]:
                        names.discard(name)
                    elif op.op != OP_DELETE:
                        names.add(name)
        return sorted(names)

    def size(self, key: str) -> int:
        op = self._spooled(key)
        if op is not None and op.op != OP_DELETE:
            return op.size
        return self.remote.size(key)

    def sha256(self, key: str) -> str:
        op = self._spooled(key)
        if op is not None and op.op == OP_PUT and op.sha256:
            return op.sha256
        if op is not None and op.op != OP_DELETE and self._queue is not None:
            with contextlib.suppress(FileNotFoundError):
                return hashlib.sha256(self._queue.data_path(op.seq).read_bytes()).hexdigest()
        return self.remote.sha256(key)

    def check_writable(self) -> None:
        self.remote.check_writable()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
