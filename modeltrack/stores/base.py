"""The store contract: a tiny key/value interface every backend implements.

Keys are ``/``-separated relative paths (``models/churn/versions/3/meta.json``). A store
only moves bytes; everything modeltrack knows about models and versions lives above it, so
that the layout is the same on every backend and a store can be copied key by key.

Contract (checked by ``tests/test_store_contract.py`` on every backend):

* ``write`` publishes the whole value at once: a reader sees the old value or the new one,
  never a prefix of either.
* ``create`` publishes only if the key is absent and says whether it did; of many racing
  creators exactly one wins. Version numbers and alias history are built on it.
* ``list`` returns the names of the direct children of a prefix, files and "folders" alike.
* ``read`` of an absent key raises :class:`~modeltrack.errors.KeyNotFound`.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from ..errors import CorruptRecordError, KeyNotFound
from ..files import RACY_NS, atomic_write, stat_signature

FORMAT_KEY = "FORMAT"
FORMAT_VERSION = 1
CHUNK = 1024 * 1024


def check_key(key: str) -> str:
    """Refuse keys that could leave the store (``..``, absolute, empty parts)."""
    if not key or key.startswith("/") or "\\" in key:
        raise ValueError(f"invalid store key {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"invalid store key {key!r}")
    return key


class Progress(Protocol):
    """Told how an upload is going: ``(sent, total, None)`` while it runs, then
    ``(sent, total, done)`` once at the end (bytes; ``done`` False if some is left)."""

    def __call__(self, sent: int, total: int, finished: bool | None) -> None: ...


class Store(ABC):
    """A place that holds bytes under keys, with atomic publish and create-if-absent."""

    uri: str
    # Optional capabilities, declared here and by each backend (never sniffed):
    #: reached over the network: a running version writes through the spool (``writer_for``)
    is_remote: bool = False
    #: :meth:`head` returns the checksum stored beside the value
    supports_head: bool = False
    #: :meth:`delete_many` deletes in batches
    supports_batch_delete: bool = False
    #: :meth:`stage_file` is available (the spool: hash the copy it makes anyway)
    supports_staging: bool = False
    #: whether :meth:`stamp` gives cheap fingerprints (the listing index checks its rows with them)
    has_stamps: bool = False

    @abstractmethod
    def read(self, key: str) -> bytes:
        """Return the value of ``key``; raise ``KeyNotFound`` if absent."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Publish ``data`` under ``key`` whole, replacing any old value."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Publish ``data`` under ``key`` only if absent. True if this call created it."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; absent keys are ignored."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Names of the direct children of ``prefix`` (empty if none)."""

    def occupied(self, prefix: str) -> bool:
        """Whether anything is stored under ``prefix``, half-written files of a killed writer
        included (a backend whose listings skip those overrides this)."""
        return bool(self.list(prefix))

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value."""

    def walk(self, prefix: str) -> Iterator[str]:
        """Every key below ``prefix``, recursively."""
        for name in self.list(prefix):
            key = f"{prefix}/{name}" if prefix else name
            if self.exists(key):
                yield key
            else:
                yield from self.walk(key)

    def put_file(
        self,
        key: str,
        src: str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Publish the content of local file ``src`` under ``key`` (whole).

        Args:
            sha256: the file's SHA-256 when the caller knows it (a backend may store it
                beside the value, for :meth:`head`).
            progress: called with each number of bytes sent (large uploads).
        """
        self.write(key, Path(src).read_bytes())

    def get_file(self, key: str, dst: str | os.PathLike[str]) -> None:
        """Copy the value of ``key`` into local file ``dst`` (written whole)."""
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dst, self.read(key))

    def local_path(self, key: str) -> Path | None:
        """A local file path holding ``key``'s value, when the backend has one."""
        return None

    def size(self, key: str) -> int:
        """Size in bytes of ``key``'s value."""
        return len(self.read(key))

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of ``key``'s value."""
        import hashlib

        return hashlib.sha256(self.read(key)).hexdigest()

    def check_writable(self) -> None:
        """Raise ``StoreNotWritableError`` if writes cannot succeed."""

    # Optional capabilities (gc safety). Defaults are correct but weaker; backends that can
    # do better override them.
    def touch(self, key: str) -> bool:
        """Mark ``key``'s value as just used (its :meth:`modified` time becomes now), so that
        ``gc`` keeps it for its grace period. True if the key exists (and was touched).

        A writer that re-uses an existing blob touches it before recording the reference:
        if the touch fails, the blob is gone and the writer uploads it again.
        """
        return self.exists(key)

    def stamp(self, key: str) -> str | None:
        """A cheap fingerprint of ``key``'s current value (size and modification time), or
        None (absent, or the backend has none: see :attr:`has_stamps`)."""
        return None

    def modified(self, key: str) -> float | None:
        """When ``key`` was last written or touched (epoch seconds); None when unknown."""
        return None

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        """Delete ``key`` unless it was written or touched at or after ``cutoff`` (epoch
        seconds). True if deleted. Backends that can make the check and the delete one step
        (see the local store) override this; the default checks, then deletes."""
        when = self.modified(key)
        if when is None or when >= cutoff:
            return False
        self.delete(key)
        return True

    def sweep_temporaries(self, cutoff: float, *, dry_run: bool = False) -> tuple[int, int]:
        """Remove the temporary files writers left behind (a process killed between writing
        a temporary file and publishing it, or holding a logged file for its writer) whose
        content and inode last changed before ``cutoff`` (epoch seconds). Returns how many
        and their bytes. Object stores have none (an unfinished upload is invisible)."""
        return 0, 0

    def close(self) -> None:
        """Release resources (connections, threads)."""

    def drain(self, timeout: float | None = None, progress: Progress | None = None) -> bool:
        """Wait until every write made through this store is published (a write-behind
        store such as the spool; others publish at once).

        Args:
            timeout: give up after this many seconds without progress (None: no limit).
            progress: told how many bytes are sent while waiting (see :class:`Progress`).

        Returns:
            True if nothing is left pending.
        """
        return True

    def head(self, key: str) -> dict[str, Any] | None:
        """``{"size": int, "sha256": str | None}`` of ``key``, None if absent. Backends that
        keep the checksum beside the value (``supports_head``) fill ``sha256``."""
        if not self.exists(key):
            return None
        return {"size": self.size(key), "sha256": None}

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several keys (``supports_batch_delete`` backends do it in few requests)."""
        for key in keys:
            self.delete(key)

    def stage_file(self, src: str | os.PathLike[str]) -> tuple[str, int, Callable[[str | None], None]]:
        """Copy ``src`` aside, hashing the copy, before its key is known (``supports_staging``
        backends only): returns the SHA-256, the size and ``commit(key)``, which publishes
        the copy under ``key`` (or with None discards it)."""
        raise NotImplementedError(f"{type(self).__name__} does not stage files; check supports_staging first")

    def staging_dir(self) -> Path | None:
        """A local directory where a running version may keep private files (hard links or
        clones of artifacts logged but not yet stored) under temporary names (see
        :mod:`modeltrack.files`), or None where the backend has none. Files kept there are
        on the same file system as what the backend stores from them, when it can be.

        Raises:
            StoreNotWritableError: the backend has one but it cannot be written now.
        """
        return None

    # JSON helpers shared by every backend.
    def read_json(self, key: str) -> Any:
        data = self.read(key)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptRecordError(
                f"{self.uri}/{key} is damaged ({exc.__class__.__name__}: {exc}); "
                f"run `modeltrack verify` to list damage and restore it from a copy",
                key=key,
            ) from exc

    def read_json_or(self, key: str, default: Any) -> Any:
        try:
            return self.read_json(key)
        except KeyNotFound:
            return default

    def write_json(self, key: str, obj: Any) -> None:
        self.write(key, dumps(obj))

    def create_json(self, key: str, obj: Any) -> bool:
        return self.create(key, dumps(obj))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def dumps(obj: Any) -> bytes:
    """Compact JSON; NaN and infinities are kept (Python's JSON dialect), read back the same."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def file_sha256(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Hex SHA-256 and size of a local file, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


#: files at least this big are hashed while the kernel copies them (see :func:`copy_hashing`)
PARALLEL_HASH_BYTES = 32 << 20
_RACY_NS = RACY_NS  # read here at call time (tests widen it)


def copy_hashing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> tuple[str, int]:
    """Copy ``src`` into new file ``dst`` (:func:`modeltrack.files.copy_file`: a reflink or
    a kernel-side copy where offered) and return the SHA-256 and size of the copy.

    A large file is hashed from ``src`` on this thread while another thread copies it:
    both read the same cached pages, and hashing and ``copy_file_range`` both run without
    the GIL, so the local pass takes about the time of the hash alone instead of the copy
    plus the hash. That hash is the copy's only if nothing wrote to ``src`` meanwhile: its
    stat (size, modification and change times, inode) must be the same after both as
    before, and older than the clock's reach (a write in the same tick keeps the stat).
    Otherwise the copy itself is hashed, so the result is always of exactly the bytes in
    ``dst``.

    Raises:
        OSError: ``src`` cannot be read or ``dst`` written (a partial ``dst`` is left for the
            caller to remove: callers copy to a temporary name).
    """
    import threading
    import time

    from ..files import copy_file

    try:
        before = os.stat(src)
    except OSError:
        before = None
    settled = before is not None and max(before.st_mtime_ns, before.st_ctime_ns) < time.time_ns() - _RACY_NS
    if before is None or before.st_size < PARALLEL_HASH_BYTES or not settled:
        copy_file(src, dst)
        return file_sha256(dst)
    copied: list[int] = []
    failed: list[BaseException] = []

    def copy() -> None:
        try:
            copied.append(copy_file(src, dst))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            failed.append(exc)

    worker = threading.Thread(target=copy, name="modeltrack-copy", daemon=True)
    worker.start()
    try:
        sha, size = file_sha256(src)
    finally:
        worker.join()
    if failed:
        raise failed[0]
    try:
        after = os.stat(src)
    except OSError:
        after = None
    if after is not None and stat_signature(after) == stat_signature(before) and copied == [size] == [before.st_size]:
        return sha, size
    return file_sha256(dst)  # src changed meanwhile: the copy's own hash
