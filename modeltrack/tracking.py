"""Recording a training run as a numbered version: :func:`start` and :class:`Version`.

Writes never block training for long: metric points go to an in-memory buffer (a list
append), and a background thread publishes them as chunks at epoch boundaries, every
``MODELTRACK_FLUSH_INTERVAL`` seconds, at :meth:`Version.finish` and at interpreter exit.
Every chunk is a whole file, so a process killed at any instant leaves everything up to
the last flush readable, and the version reads as ``crashed``.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import stat
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, overload

from . import config
from ._util import best_of, metric_goal, now_iso, process_identity
from .capture.params import flatten, to_json_value
from .changelog import changelog_entry
from .errors import (
    ArtifactPathError,
    InvalidMetricError,
    InvalidValueError,
    ModelTrackError,
    ModelTrackWarning,
    ParamConflictError,
    StoreError,
    StoreNotWritableError,
    VersionStateError,
)
from .failures import report
from .files import RACY_NS, copy_file, reflink, stat_signature, temp_path, unlink_quietly
from .layout import CRASHED, FAILED, FINISHED, RUNNING, blob_key, consolidate, vkey
from .progress import UploadProgress
from .refs import check_model_name, safe_artifact_path
from .repo import Repo
from .secrets import scrub_value
from .stores import Store, writer_for
from .stores.base import file_sha256

_ACTIVE: set[Version] = set()  # kept alive until finished, so exit can finish them
_ACTIVE_LOCK = threading.Lock()
#: a version's background writer starts this long after start() (a short version never needs one)
WRITER_DELAY = 0.2
_DEFERRED: list[Version] = []  # versions whose writer has not started yet
_DEFERRED_COND = threading.Condition()
_STARTER: threading.Thread | None = None
_ENV_MODULES = -1  # len(sys.modules) at the last environment capture of this process (-1: none yet)
_FLOATS = frozenset({float})
_STRS = frozenset({str})
_hooks_installed = False
#: A write within this long after the logged mtime may not move it (coarse file system
#: clocks tick every 1-10 ms): the writer waits this long past it before checking a file.
_RACY_NS = RACY_NS


class _ArtifactFile:
    """One file of a :meth:`Version.log_artifact` call, until the writer has stored it."""

    __slots__ = ("held", "private", "rec", "src", "st", "stored")

    def __init__(self, src: Path, rec: dict[str, Any], st: os.stat_result) -> None:
        self.src, self.rec, self.st = src, rec, st
        self.held: Path | None = None  # our reflink, hard link or copy of it
        self.private = False  # nobody else can change the held content (reflink, copy, our own file)
        self.stored = False


class _ArtifactJob:
    """The files of one log_artifact call and the number of the record they go into."""

    __slots__ = ("files", "kind", "seq")

    def __init__(self, seq: int, kind: str) -> None:
        self.seq, self.kind = seq, kind
        self.files: list[_ArtifactFile] = []


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    """What tells one version of a file from the next: size, mtime, inode, device."""
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


def _private_staging() -> Path | None:
    """For a store without a local directory (memory): a private one in the temporary directory."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"modeltrack-staging-{os.getuid() if hasattr(os, 'getuid') else 0}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        if os.stat(path).st_uid != (os.getuid() if hasattr(os, "getuid") else 0):
            return None  # someone else's: not ours to write in
    except OSError:
        return None
    return path


def _link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
        return True
    except OSError:  # another file system, no hard links there, protected_hardlinks
        return False


_last_uncaught: BaseException | None = None


class Version:
    """One training run being recorded as version ``number`` of ``model``.

    Use :func:`start` to create one. As a context manager, leaving the block finishes the
    version, and an exception inside it marks the version failed and propagates unchanged.

    Example:
        >>> with mt.start("churn", params={"lr": 0.01}) as v:
        ...     v.log_metrics({"loss": 0.31}, step=120, epoch=0)
    """

    def __init__(self, repo: Repo, model: str, number: int) -> None:
        self.repo = repo
        # Remote stores hand out a spooling writer: training never waits on the network.
        self.store: Store = writer_for(repo.store)
        self.model = model
        self.number = number
        self.status = RUNNING
        self._lock = threading.Lock()
        self._buf: list[tuple[int, int | None, float, dict[str, float]]] = []
        self._series: dict[str, dict[str, list[Any]]] = {}
        self._chunk_seq = 0
        self._record_seq = 0
        self._event_log: dict[int, list[dict[str, Any]]] = {}  # record number -> its events
        self._params: dict[str, Any] = {}
        self._goals: dict[str, str] = {}
        self._step = -1
        self._last_step: int | None = None
        self._epoch: int | None = None
        self._warned: set[str] = set()
        self._not_recorded: list[dict[str, Any]] = []
        self._scratch: Path | None = None
        self._exit_reason: str | None = None
        self._closed = False
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_due = False  # an epoch ended: the writer publishes the metrics
        # Artifacts logged but not yet stored, in the order logged (see log_artifact).
        self._jobs: deque[_ArtifactJob] = deque()
        self._jobs_cond = threading.Condition()
        self._job_lock = threading.Lock()  # held while one job is stored: one at a time, in order
        self._jobs_bytes = [0, 0]  # bytes logged, bytes stored (progress of a long wait)
        self._hot: set[str] = set()  # files rewritten before they could be stored: copied when logged
        self._staging: Path | bool | None = False  # False: not looked up yet
        self._staging_dev: int | None = None
        self._env_record: dict[str, Any] | None = None
        self._seeds: dict[str, Any] | None = None  # read on the starting thread (see start)
        self._last_beat = time.monotonic()  # the claim counts as the first beat
        self._claim: dict[str, Any] | None = None
        #: (thread id, events) while start() runs on that thread: its records go out as one
        self._batch: tuple[int, list[dict[str, Any]]] | None = None
        self._born = time.monotonic()
        # The writer and the environment capture threads, made when started (most short versions need neither).
        self._thread: threading.Thread | None = None
        self._env_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ identity
    @property
    def ref(self) -> str:
        """``MODEL@vN``."""
        return f"{self.model}@v{self.number}"

    def __repr__(self) -> str:
        return f"<Version {self.ref} {self.status}>"

    # ------------------------------------------------------------------ logging
    def log_params(self, params: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Record hyperparameters. Nested mappings are flattened with ``.``; values that are
        not JSON are recorded as a readable stand-in (see :mod:`modeltrack.capture.params`).

        Raises:
            ParamConflictError: a key was already logged with a different value.
        """
        self._check_open("log_params")
        flat = scrub_value(flatten({**(params or {}), **kwargs}))  # URL credentials never reach the store
        for key, value in flat.items():
            if key in self._params and self._params[key] != value:
                raise ParamConflictError(
                    f"param {key!r} of {self.ref} was logged as {self._params[key]!r} and cannot change "
                    f"to {value!r}; log the new value under another name or start a new version",
                    value=key,
                )
        new = {k: v for k, v in flat.items() if k not in self._params}
        if new:
            self._params.update(new)
            self._record({"type": "params", "params": new})

    def log_param(self, key: str, value: Any) -> None:
        """Record one hyperparameter (see :meth:`log_params`)."""
        self.log_params({key: value})

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, epoch: int | None = None) -> None:
        """Record metric values at ``step`` (default: one more than the last automatic step)
        and ``epoch``. Cheap: an append to a buffer. Numpy scalars and 0-d tensors are
        accepted; NaN and infinities are kept; ``None``, strings and other non-numbers are
        skipped with a warning (an error in strict mode)."""
        if self._closed:
            self._check_open("log_metrics")
        if step is None:
            self._step += 1
            step = self._step
        elif type(step) is not int:
            step = self._index("step", step)
            if step is None:
                return
        if epoch is not None and type(epoch) is not int:
            epoch = self._index("epoch", epoch)
            if epoch is None:
                return
        last = self._last_step
        if last is not None and step < last:
            self._backwards(step, last)
        self._last_step = step
        if epoch != self._epoch and epoch is not None:
            epoch = int(epoch)
            if self._epoch is not None:
                self._flush_due = True
                self._wake.set()  # epoch boundary: publish what the last epoch logged
            self._epoch = epoch
        # Hot path: C-level type scans and a dict copy; anything but str names and float
        # values takes the slow path.
        if _FLOATS.issuperset(map(type, metrics.values())) and _STRS.issuperset(map(type, metrics)):
            values = dict(metrics)
        else:
            values = self._coerce_all(metrics)
        with self._lock:
            self._buf.append((step, epoch, time.time(), values))

    def _backwards(self, step: int, last: int) -> None:
        if "step" not in self._warned:
            self._warned.add("step")
            warnings.warn(
                f"modeltrack: {self.ref} step went backwards ({step} after {last}); points are kept in the order logged",
                ModelTrackWarning,
                stacklevel=3,
            )

    def _coerce_all(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        if not isinstance(metrics, Mapping):
            self._invalid(
                "metrics", f"log_metrics of {self.ref} got {type(metrics).__name__}, not a mapping of name to number"
            )
            return {}
        out = {}
        for name, value in metrics.items():
            if not isinstance(name, str):
                self._invalid(
                    f"name:{name!r}"[:80],
                    f"metric name {name!r} ({type(name).__name__}) of {self.ref} is not a string; name metrics "
                    f"with strings — the value was skipped",
                    name,
                )
                continue
            value = value if type(value) is float else self._coerce(name, value)
            if value is not None:
                out[name] = value
        return out

    def _index(self, what: str, value: Any) -> int | None:
        """``step``/``epoch`` as an int: ints, integral floats and numpy/torch integers pass;
        anything else skips the point with a warning (an error in strict mode)."""
        try:
            if isinstance(value, bool) or isinstance(value, (str, bytes)):
                raise TypeError
            number = float(value) if not isinstance(value, int) else value
            if isinstance(number, float):
                if not math.isfinite(number) or number != int(number):
                    raise ValueError
                number = int(number)
            if not -(2**63) <= number < 2**63:
                raise OverflowError
            return int(number)
        except (TypeError, ValueError, OverflowError, RuntimeError):
            self._invalid(
                what,
                f"{what} {value!r} ({type(value).__name__}) of {self.ref} is not a whole number; pass an int — "
                f"the points of this call were skipped",
                value,
            )
            return None

    def _invalid(self, what: str, message: str, value: Any = None) -> None:
        """Bad metric input: an error in strict mode, else one warning per kind of problem."""
        err = InvalidMetricError(message, value=value)
        if config.strict():
            raise err
        if what not in self._warned:
            self._warned.add(what)
            warnings.warn(f"modeltrack: {message}", ModelTrackWarning, stacklevel=4)

    def log_metric(self, name: str, value: Any, step: int | None = None, epoch: int | None = None) -> None:
        """Record one metric value (see :meth:`log_metrics`)."""
        self.log_metrics({name: value}, step=step, epoch=epoch)

    def _coerce(self, name: str, value: Any) -> float | None:
        try:
            if isinstance(value, (bool, int, float)):
                return float(value)
            if value is not None and not isinstance(value, (str, bytes)):
                return float(value)  # numpy scalar, 0-d array or tensor
        except (TypeError, ValueError, RuntimeError, OverflowError):
            pass
        shown = (
            repr(value)
            if not isinstance(value, int) or value.bit_length() < 200
            else f"an int of {value.bit_length()} bits"
        )
        self._invalid(
            f"metric:{name}",
            f"metric {name!r} of {self.ref} got {shown[:200]} ({type(value).__name__}), which is not a "
            f"number; log a float (NaN is allowed) — the point was skipped",
            value,
        )
        return None

    def set_metric_goal(self, name: str, goal: str) -> None:
        """Say whether lower (``"min"``) or higher (``"max"``) ``name`` is better."""
        if goal not in ("min", "max"):
            raise ModelTrackError(f"metric goal must be 'min' or 'max', got {goal!r}")
        self._goals[name] = goal
        self._record({"type": "goal", "name": name, "goal": goal})

    def log_data(self, name: str, data: Any) -> dict[str, Any]:
        """Record a fingerprint (exact hash, shape, dtype) of a dataset fed to training.

        Returns:
            the record: ``{"name", "fingerprint", "shape", "dtype", "pytype"}``.
        """
        from .capture.data import fingerprint

        self._check_open("log_data")
        info = {"name": str(name), **fingerprint(data)}
        self._record({"type": "data", **info})
        return info

    def log_data_info(self, name: str, **info: Any) -> None:
        """Record what is known of a dataset that cannot be hashed (sizes only, say why)."""
        self._check_open("log_data_info")
        self._record({"type": "data", "name": str(name), "fingerprint": None, "shape": None, **to_json_value(info)})

    def log_artifact(
        self,
        path: str | os.PathLike[str],
        kind: str = "artifact",
        name: str | None = None,
        *,
        step: int | None = None,
        epoch: int | None = None,
        best: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
        wait: bool = False,
        _owned: bool = False,
    ) -> list[dict[str, Any]]:
        """Store a file or directory in the version, by content hash (stored once however
        often it is logged).

        Returns at once: the file is stat'ed and held (a reflink, else a hard link, else a
        private copy when it lies on another file system than the store) and the version's
        background writer hashes, copies and uploads it, in the order logged, then publishes
        its record. The caller may delete, rename over or rewrite the file right away: a
        file rewritten in place before the writer stored it (same inode: a hard link does
        not protect it) is detected by its size, mtime and inode and is never stored torn:
        it is recorded under ``info.not_recorded`` with the reason (quietly when a later
        log of the same file follows), and later logs of that file are copied when logged.
        :meth:`flush` and :meth:`finish` wait until everything logged before is stored.

        Args:
            path: local file or directory.
            kind: ``"model"``, ``"checkpoint"``, ``"artifact"``, … (free text).
            name: path inside the version (default: the file or directory name). Must be
                relative and stay inside the version.
            best: mark this artifact as the best of its kind.
            wait: store the file before returning (as in strict mode, where a store failure
                raises here).

        Returns:
            one record per file: ``{"path", "sha256", "size", "kind", …}``; ``sha256`` is
            filled in once the file is stored (after :meth:`flush`, or with ``wait=True``).

        Raises:
            ArtifactPathError: ``name`` escapes the version, or a symlink in a logged
                directory points outside it.
            FileNotFoundError: ``path`` does not exist.
        """
        self._check_open("log_artifact")
        try:
            src = Path(path)
            present = src.exists()
        except (TypeError, ValueError, OSError) as exc:
            raise InvalidValueError(
                f"artifact path {path!r:.120} cannot be used ({exc}); pass the path of a file or directory",
                value=path,
            ) from None
        if not present:
            raise FileNotFoundError(f"artifact {str(path)!r} does not exist; log a file or directory that exists")
        base = safe_artifact_path(name if name is not None else src.resolve().name)
        files: list[tuple[Path, str, os.stat_result]] = []
        if src.is_dir():
            root = src.resolve()
            for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
                dirnames.sort()
                for fname in sorted(filenames):
                    f = Path(dirpath) / fname
                    real = f.resolve()
                    if f.is_symlink() and not real.is_relative_to(root):
                        raise ArtifactPathError(
                            f"{f} is a symlink to {real}, outside the directory being logged; "
                            f"copy the file in or remove the link",
                            path=str(f),
                        )
                    st = self._regular(real)
                    if st is None:
                        continue
                    rel = f.relative_to(src).as_posix()
                    files.append((real, f"{base}/{rel}", st))
        else:
            st = self._regular(src)
            if st is None:
                return []
            files.append((src, base, st))
        extra: dict[str, Any] = {}
        if step is not None:
            extra["step"] = int(step)
        if epoch is not None:
            extra["epoch"] = int(epoch)
        if best:
            extra["best"] = True
        if metadata:
            extra["metadata"] = to_json_value(dict(metadata))
        job = _ArtifactJob(self._reserve_record(), kind)
        sync = wait or config.strict()  # strict mode: a store failure raises here, on the caller
        for f, rel, st in files:
            rec: dict[str, Any] = {"path": rel, "size": st.st_size, "kind": kind, "time": now_iso(), **extra}
            item = _ArtifactFile(f, rec, st)
            if not sync and not self._hold(item, owned=_owned):
                sync = True  # nowhere to keep it privately: stored now, as before
            job.files.append(item)
        if sync:
            with self._job_lock:
                self._store_job(job, raising=True)
            return [it.rec for it in job.files if it.stored]
        with self._jobs_cond:
            self._jobs.append(job)
            self._jobs_bytes[0] += sum(it.rec["size"] for it in job.files)
        self._wake.set()
        return [it.rec for it in job.files]

    # ------------------------------------------------------------------ artifacts off the training thread
    def _staging_dir(self) -> Path | None:
        if self._staging is False:
            where = None
            try:
                where = self.store.staging_dir() or _private_staging()
                if where is not None:
                    self._staging_dev = os.stat(where).st_dev
            except (OSError, ModelTrackError):
                return None  # not writable now: stored on the caller's thread; asked again next time
            self._staging = where
        return self._staging if isinstance(self._staging, Path) else None

    def _hold(self, item: _ArtifactFile, *, owned: bool) -> bool:
        """Keep a private handle on ``item``'s content in O(1) when the file system allows,
        so that the caller may delete, rename over or rewrite the file right away:

        - a reflink (copy-on-write clone): a private snapshot, nothing can change it;
        - else a hard link: survives the file being deleted or replaced by a rename; an
          in-place rewrite is caught by the writer's size/mtime/inode check;
        - else (another file system than the store's, or a file rewritten before it could be
          stored before: see ``_hot``) a private copy, taken here on the caller's thread.

        False when the store has no staging directory: the caller stores the file now.
        """
        staging = self._staging_dir()
        if staging is None:
            return False
        src = item.src
        dst = temp_path(staging / src.name, "held")
        key = str(src)
        same_fs = item.st.st_dev == self._staging_dev
        try:
            if same_fs and reflink(src, dst):
                item.held, item.private = dst, True
            elif same_fs and key not in self._hot and _link(src, dst):
                item.held, item.private = dst, owned
            else:
                copied = copy_file(src, dst)
                item.held, item.private = dst, True
                item.rec["size"] = copied
            return True
        except OSError:
            unlink_quietly(dst)
            return False

    def _reserve_record(self) -> int:
        with self._write_lock:
            self._record_seq += 1
            return self._record_seq

    def _pending_same_file(self, item: _ArtifactFile) -> bool:
        """Whether a later log of the same file waits behind ``item`` (it supersedes it)."""
        with self._jobs_cond:
            return any(str(it.src) == str(item.src) for job in self._jobs for it in job.files)

    def _store_job(self, job: _ArtifactJob, *, raising: bool = False) -> None:
        """Store the files of one log_artifact call (caller holds ``_job_lock``), then publish
        its record: a record is written only once every blob it names is stored."""
        stored = []
        for item in job.files:
            try:
                reason = self._store_file(item)
            except (ModelTrackError, OSError) as exc:
                reason = str(exc)[:500]
                err = _as_store_error(exc, item.src)
                if raising:
                    self._not_recorded.append({"path": item.rec["path"], "kind": job.kind, "reason": reason})
                    self._release_held(item)
                    report(err, f"storing artifact {item.rec['path']} of {self.ref} (not recorded)")
                    continue
                self._warn_later(err, f"storing artifact {item.rec['path']} of {self.ref} (not recorded)")
            finally:
                with self._jobs_cond:
                    self._jobs_bytes[1] += item.rec["size"]
            self._release_held(item)
            if reason is None:
                item.stored = True
                stored.append(item.rec)
                continue
            self._not_recorded.append({"path": item.rec["path"], "kind": job.kind, "reason": reason})
            if not self._pending_same_file(item):
                self._warn_later(
                    ModelTrackError(f"{item.src}: {reason}"),
                    f"storing artifact {item.rec['path']} of {self.ref} (not recorded)",
                )
        if stored:
            self._publish_record(job.seq, [{"type": "artifact", **r} for r in stored])

    def _store_file(self, item: _ArtifactFile) -> str | None:
        """Hash and store one file; None when stored, else why it was not (it changed)."""
        path = item.held or item.src
        if item.private:
            item.rec["sha256"], item.rec["size"] = self._put_blob(path)
            return None
        # The file may be rewritten in place meanwhile (Lightning's last.ckpt): store it only
        # if it is exactly what was logged, unchanged from before the copy to after it. Every
        # write moves the mtime, once the clock has ticked past the logged mtime (file
        # systems keep coarse timestamps): wait for that first, as git does for its index.
        logged = _signature(item.st)
        wait = (item.st.st_mtime_ns + _RACY_NS - time.time_ns()) / 1e9
        if wait > 0:
            time.sleep(min(wait, _RACY_NS / 1e9))
        try:
            before = _signature(os.stat(path))
        except FileNotFoundError:
            return "the file was deleted before it could be stored"
        if before != logged:
            self._hot.add(str(item.src))
            return "the file was rewritten before it could be stored (a later version of it is logged separately)"
        sha, size, commit = self._stage(path)
        try:
            after = _signature(os.stat(path))
        except OSError:
            after = None
        if after != logged or size != logged[0]:
            commit(None)
            self._hot.add(str(item.src))
            return "the file was rewritten while it was being stored; no torn copy was kept"
        key = blob_key(sha)
        # Re-using a stored blob touches it first, so a concurrent gc keeps it (or, if gc took
        # it already, the touch fails and the blob is stored again).
        commit(None if self.store.touch(key) else key)
        item.rec["sha256"], item.rec["size"] = sha, size
        return None

    def _stage(self, path: Path) -> tuple[str, int, Callable[[str | None], None]]:
        """Copy ``path`` aside and hash the copy; ``commit(key)`` stores the copy (or drops it)."""
        if self.store.supports_staging:
            return self.store.stage_file(path)
        import tempfile

        fd, name = tempfile.mkstemp(prefix=".modeltrack-", suffix=".tmp", dir=self._staging_dir())
        os.close(fd)
        tmp = Path(name)
        try:
            copy_file(path, tmp)
            sha, size = file_sha256(tmp)
        except BaseException:
            unlink_quietly(tmp)
            raise

        def commit(key: str | None) -> None:
            try:
                if key is not None:
                    self.store.put_file(key, tmp, sha256=sha)
            finally:
                unlink_quietly(tmp)

        return sha, size, commit

    def _release_held(self, item: _ArtifactFile) -> None:
        if item.held is not None:
            unlink_quietly(item.held)
            item.held = None

    def _warn_later(self, exc: BaseException, what: str) -> None:
        """A store failure on the writer thread: a warning (strict mode stores on the caller's thread)."""
        warnings.warn(f"modeltrack: {what} failed, training continues: {exc}", ModelTrackWarning, stacklevel=2)

    def _work_artifacts(self, until: int | None = None) -> None:
        """Store pending artifacts in the order logged (all, or those of records up to ``until``)."""
        while True:
            with self._job_lock:
                with self._jobs_cond:
                    if not self._jobs or (until is not None and self._jobs[0].seq > until):
                        return
                    job = self._jobs.popleft()
                try:
                    self._store_job(job)
                except Exception as exc:  # noqa: BLE001 - the writer must survive anything
                    warnings.warn(f"modeltrack: storing artifacts failed: {exc}", ModelTrackWarning, stacklevel=1)

    def pending_artifacts(self) -> int:
        """How many :meth:`log_artifact` calls are logged but not yet stored."""
        with self._jobs_cond:
            return len(self._jobs)

    def _wait_artifacts(self, progress: UploadProgress | None = None) -> None:
        """Store what is pending on this thread (with the writer, in order), reporting progress
        of long waits."""
        until = self._record_seq
        if progress is None:
            self._work_artifacts(until)
            return
        with self._jobs_cond:
            base, total = self._jobs_bytes[1], self._jobs_bytes[0] - self._jobs_bytes[1]
        if total <= 0:
            self._work_artifacts(until)
            return
        done = threading.Event()

        def work() -> None:
            try:
                self._work_artifacts(until)
            finally:
                done.set()

        threading.Thread(target=work, name=f"modeltrack-store-v{self.number}", daemon=True).start()
        started = time.monotonic()
        while not done.wait(0.2):
            if time.monotonic() - started >= 1.0:
                with self._jobs_cond:
                    progress(self._jobs_bytes[1] - base, total, None)
        if time.monotonic() - started >= 1.0:
            with self._jobs_cond:
                progress(self._jobs_bytes[1] - base, total, True)

    def _regular(self, path: Path) -> os.stat_result | None:
        """Only regular files are stored: reading a FIFO or a device would hang or never end.
        Returns the file's stat (what the writer checks it against), None to skip it."""
        try:
            st = os.stat(path)
        except OSError as exc:
            report(_as_store_error(exc, path), f"reading artifact {path} of {self.ref}")
            return None
        mode = st.st_mode
        if stat.S_ISREG(mode):
            return st
        what = "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device file"
        report(
            InvalidValueError(
                f"artifact {str(path)!r} is {what}, not a regular file; only files and directories are stored "
                f"(copy its content to a file first) — it was skipped",
                value=str(path),
            ),
            f"logging artifact {path} of {self.ref}",
        )
        return None

    def _put_blob(self, path: Path) -> tuple[str, int]:
        if self.store.supports_staging:
            # Copy (a reflink or kernel copy where possible), hash the copy: one pass over the file.
            sha, size, commit = self.store.stage_file(path)
            key = blob_key(sha)
            # Re-use touches the stored blob first, so a concurrent gc keeps it.
            commit(None if self.store.touch(key) else key)
            return sha, size
        sha, size = file_sha256(path)
        key = blob_key(sha)
        # Re-using a stored blob touches it first, so a concurrent gc keeps it (or, if gc took
        # it already, the touch fails and the blob is stored again).
        if not self.store.touch(key):
            self.store.put_file(key, path)
        return sha, size

    def _put_code_file(self, path: Path) -> tuple[str, int]:
        """:meth:`_put_blob` for a file of the code snapshot, which is the same from one version
        of a process to the next: its hash is remembered against its stat (size, times,
        inode) and re-used, once the stored blob is touched, while the file is unchanged."""
        try:
            st = os.stat(path)
        except OSError:
            return self._put_blob(path)
        stamp = stat_signature(st)
        known = _CODE_HASHES.get(str(path))
        if known is not None and known[0] == stamp and self.store.touch(blob_key(known[1])):
            return known[1], known[2]
        started = time.time_ns()
        sha, size = self._put_blob(path)
        # Remembered only when the file was not changed meanwhile nor within the clock's reach
        # of the hashing (an edit in the same tick would keep its stat: git's "racy clean" rule).
        try:
            after = os.stat(path)
        except OSError:
            return sha, size
        same = stat_signature(after) == stamp
        if same and size == st.st_size and max(st.st_mtime_ns, st.st_ctime_ns) < started - _RACY_NS:
            if len(_CODE_HASHES) > 4096:
                _CODE_HASHES.clear()
            _CODE_HASHES[str(path)] = (stamp, sha, size)
        return sha, size

    def release_artifact(self, name: str) -> None:
        """Drop an artifact from the version (e.g. a checkpoint evicted from the top-k);
        ``gc`` frees its content when nothing else references it."""
        self._check_open("release_artifact")
        self._record({"type": "release", "path": safe_artifact_path(name)})

    def mark_best(self, name: str, kind: str | None = None) -> None:
        """Mark an already logged artifact as the best of its kind."""
        self._record({"type": "best", "path": safe_artifact_path(name), **({"kind": kind} if kind else {})})

    def set_tags(self, tags: Mapping[str, Any] | None = None, /, **kwargs: Any) -> None:
        """Set tags: ``set_tags(experimental=None, dataset="v2")``. ``None`` is a bare label.

        Written through the version's writer (spooled on remote stores): a store outage
        never stops training. Bad names or values warn (raise in strict mode)."""
        try:
            self.repo.write_tags(self.model, self.number, {**(tags or {}), **kwargs}, writer=self.store)
        except ModelTrackError as exc:
            report(exc, f"tagging {self.ref}")

    def set_notes(self, text: str | None) -> None:
        """Set the release notes of this version (spooled like every write of a run)."""
        try:
            self.repo.set_notes((self.model, self.number), text, writer=self.store)
        except ModelTrackError as exc:
            report(exc, f"setting the notes of {self.ref}")

    def set_framework(self, name: str, **info: Any) -> None:
        """Record which framework trained the model, and free-form facts about the run
        (``architecture`` is compared by ``diff`` and the semantic label policy)."""
        self._record({"type": "framework", "name": name})
        if info:
            self.log_info(**info)

    def log_info(self, **info: Any) -> None:
        """Record free-form facts (parameter counts, resumed-from, …) shown with the version."""
        self._check_open("log_info")
        self._record({"type": "info", "info": to_json_value(info)})

    def find_stored(self, path: str | os.PathLike[str], *, limit: int = 200) -> str | None:
        """The reference of another version of this model that stored a file with the same
        content as ``path`` (newest first, among the last ``limit``), or None: how an
        integration finds the version a resumed run continues."""
        sha, _ = file_sha256(path)
        repo = self.repo
        for n in sorted(repo.version_numbers(self.model), reverse=True)[:limit]:
            if n == self.number:
                continue
            try:
                rec = repo.version((self.model, n), series=False, environment=False)
            except ModelTrackError:
                continue  # a damaged or vanished version is just not the parent
            if any(a.get("sha256") == sha for a in rec.get("artifacts", [])):
                return f"{self.model}@v{n}"
        return None

    def fail_on_exit(self, reason: str | None) -> None:
        """If the process exits while this version is still open, mark it failed with
        ``reason`` instead of finishing it (an integration whose ``fit`` can end without any
        hook running, e.g. a spawned worker); ``None`` restores the default (finish)."""
        self._exit_reason = reason

    def scratch_dir(self) -> Path:
        """A private temporary directory for files an integration writes before logging them
        (a model saved by the framework, a CSV of search results); removed when the version
        ends. Logged files are stored (copied) by ``log_artifact``, so removing it is safe."""
        if self._scratch is None:
            import tempfile

            self._scratch = Path(tempfile.mkdtemp(prefix=f"modeltrack-{self.model}-v{self.number}-"))
        return self._scratch

    def log_table(
        self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, kind: str = "table"
    ) -> list[dict[str, Any]]:
        """Store a table as the CSV artifact ``name`` (a header row, then one line per row).

        Cells: None and masked values are empty, mappings sorted JSON, numpy scalars their
        Python value, floats ``repr`` (every digit kept), ints/str/bool as they are, anything
        else JSON (readable stand-ins for what JSON cannot hold).

        Args:
            name: the artifact's name (``"cv_results.csv"``).
            columns: the header.
            rows: the rows, each a sequence of cells in ``columns``' order.
            kind: the artifact's kind.

        Returns:
            what :meth:`log_artifact` returns.
        """
        import csv
        import io
        import tempfile

        self._check_open("log_table")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(list(columns))
        writer.writerows([_table_cell(c) for c in row] for row in rows)
        fd, tmp = tempfile.mkstemp(prefix="", suffix="-" + Path(name).name, dir=self.scratch_dir())
        os.close(fd)
        path = Path(tmp)
        try:
            path.write_text(buf.getvalue(), encoding="utf-8")
            return self.log_artifact(path, kind=kind, name=name, _owned=True)
        finally:
            path.unlink(missing_ok=True)

    def set_parent(self, ref: str) -> None:
        """Record that this run resumed from (or fine-tunes) another version."""
        self._record({"type": "parent", "parent": ref})

    # ------------------------------------------------------------------ writing
    def _check_open(self, what: str) -> None:
        if self._closed:
            raise VersionStateError(
                f"cannot {what} on {self.ref}: it is {self.status} and immutable; start a new "
                f"version with modeltrack.start({self.model!r})"
            )

    @property
    def _events(self) -> list[dict[str, Any]]:
        """The events recorded so far, in the order logged (an artifact's record keeps the
        place of its log_artifact call, though it is written once its blobs are stored)."""
        log = self._event_log
        return [ev for seq in sorted(log) for ev in log[seq]]

    def _record(self, *events: dict[str, Any]) -> None:
        batch = self._batch
        if batch is not None and threading.get_ident() == batch[0]:
            batch[1].extend(events)  # inside start(): one record for all it logs
            return
        self._publish_record(self._reserve_record(), list(events))

    def _publish_batch(self) -> None:
        """Publish what :func:`start` recorded (parameters, framework, code snapshot…) as one record."""
        batch, self._batch = self._batch, None
        if batch is not None and batch[1]:
            self._publish_record(self._reserve_record(), batch[1])

    def _publish_record(self, seq: int, events: list[dict[str, Any]]) -> None:
        self._event_log[seq] = events
        key = vkey(self.model, self.number, f"records/{seq:06d}.json")
        try:
            self.store.write_json(key, events)
        except ModelTrackError as exc:
            report(exc, f"recording {events[0].get('type')} of {self.ref}")

    def flush(self, *, publish: bool = True) -> None:
        """The flush point: store every artifact logged before this call and publish buffered
        metric points (as one chunk). When it returns, a process killed at any later instant
        loses nothing logged before it. ``publish=False`` only moves the points into the
        in-memory series (``finish`` writes them all at once)."""
        self._wait_artifacts()
        self._flush_metrics(publish=publish)

    def _flush_metrics(self, *, publish: bool = True) -> None:
        with self._lock:
            buf, self._buf = self._buf, []
        if not buf:
            return
        chunk: dict[str, dict[str, list[Any]]] = {}
        for step, epoch, t, values in buf:
            t = round(t, 3)
            for name, value in values.items():
                cols = chunk.get(name)
                if cols is None:
                    cols = chunk[name] = {"step": [], "epoch": [], "value": [], "time": []}
                cols["step"].append(step)
                cols["epoch"].append(epoch)
                cols["value"].append(value)
                cols["time"].append(t)
        for name, cols in chunk.items():
            dst = self._series.get(name)
            if dst is None:
                self._series[name] = {k: list(v) for k, v in cols.items()}
            else:
                for k in dst:
                    dst[k].extend(cols[k])
        if not publish:
            return
        with self._write_lock:
            self._chunk_seq += 1
            key = vkey(self.model, self.number, f"metrics/{self._chunk_seq:06d}.json")
            try:
                self.store.write_json(key, chunk)
            except ModelTrackError as exc:
                # Keep the points: they are in self._series and go out with series.json.
                report(exc, f"flushing metrics of {self.ref}")

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        try:
            self.store.write_json(vkey(self.model, self.number, "heartbeat.json"), {"time": now_iso()})
        except ModelTrackError as exc:
            report(exc, f"heartbeat of {self.ref}")

    def _capture_in_background(self) -> None:
        global _ENV_MODULES
        try:
            modules = len(sys.modules)
            self._capture_environment()
            _ENV_MODULES = modules
        except Exception as exc:  # noqa: BLE001 - capture must never fail a run
            warnings.warn(f"modeltrack: environment capture failed: {exc}", ModelTrackWarning, stacklevel=1)

    def _start_thread(self) -> None:
        """Start the background writer (once): :func:`_defer_writer`'s starter calls it."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._background, name=f"modeltrack-{self.model}-v{self.number}", daemon=True
            )
            self._thread.start()

    def _background(self) -> None:
        interval = config.flush_interval()
        beat_every = config.heartbeat_interval()
        last = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(max(0.0, interval - (time.monotonic() - last)))
            self._wake.clear()
            self._work_artifacts()
            if self._stop.is_set():
                break
            if not self._flush_due and time.monotonic() - last < interval:
                continue  # woken for an artifact
            self._flush_due = False
            last = time.monotonic()
            try:
                self._flush_metrics()
                if time.monotonic() - self._last_beat >= beat_every:
                    self._beat()
            except Exception as exc:  # noqa: BLE001 - the flusher must survive anything
                warnings.warn(f"modeltrack: background flush failed: {exc}", ModelTrackWarning, stacklevel=1)

    def _capture_environment(self) -> None:
        from .capture.env import collect

        env, diff = collect(randomness=self._seeds)
        if diff:
            import hashlib

            env["diff_sha256"] = hashlib.sha256(diff.encode()).hexdigest()
            env["diff_size"] = len(diff)
            self.store.write(vkey(self.model, self.number, "code.diff"), diff.encode())
        self._env_record = env
        self.store.write_json(vkey(self.model, self.number, "environment.json"), env)
        self._store_code_snapshot(env.get("code"))

    def _store_code_snapshot(self, code: dict[str, Any] | None) -> None:
        """The code snapshot (:func:`modeltrack.capture.code.describe`) as ``code/<path>``
        artifacts of kind ``code``; runs on the capture thread, which ``finish`` waits for."""
        if not code or not code.get("snapshot") or not code.get("root"):
            return
        root = Path(code["root"])
        out = []
        for entry in code["snapshot"]:
            try:
                sha, size = self._put_code_file(root / entry["path"])
            except (ModelTrackError, OSError) as exc:
                report(_as_store_error(exc, entry["path"]), f"storing the code snapshot of {self.ref}")
                continue
            out.append(
                {"path": f"code/{entry['path']}", "sha256": sha, "size": size, "kind": "code", "time": now_iso()}
            )
        if out:
            self._record(*({"type": "artifact", **r} for r in out))

    # ------------------------------------------------------------------ ending
    def finish(self, status: str = FINISHED, error: str | None = None) -> None:
        """End the version: publish everything and make it immutable.

        A second call is a no-op with a warning (the first outcome stands).

        Args:
            status: ``"finished"`` (default), ``"failed"`` or ``"crashed"``.
            error: the reason or traceback of a failure.

        Raises:
            InvalidValueError: ``status`` is not one of those.
        """
        if status not in (FINISHED, FAILED, CRASHED):
            raise InvalidValueError(
                f"finish(status={status!r}) of {self.ref}: status must be 'finished', 'failed' or 'crashed' "
                f"(use fail(exc) for a failure)",
                value=status,
            )
        if self._closed:
            warnings.warn(
                f"modeltrack: {self.ref} is already {self.status}; finish() again does nothing",
                ModelTrackWarning,
                stacklevel=2,
            )
            return
        self._closed = True
        self.status = status
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self)
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._env_thread):
            if thread is not None and thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=60)
        # Artifacts logged but not yet stored are stored first (their records precede final.json).
        self._wait_artifacts(UploadProgress(self.repo.store.uri))
        try:
            self._flush_metrics(publish=False)
            self._write_final(status, error)
        except ModelTrackError as exc:
            report(exc, f"finishing {self.ref}")
        # Bounded wait for spooled uploads (remote stores); what is left goes up with `modeltrack sync`.
        self.store.drain(config.upload_timeout(), UploadProgress(self.repo.store.uri))
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def fail(self, exc: BaseException | str | None = None) -> None:
        """End the version as ``failed``, recording the exception's traceback (or a reason)."""
        if isinstance(exc, BaseException):
            import traceback

            error = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        else:
            error = exc or "failed"
        self.finish(FAILED, error)

    def _write_final(self, status: str, error: str | None) -> None:
        rec = consolidate(self._events)
        if self._not_recorded:
            rec["info"] = {**rec.get("info", {}), "not_recorded": self._not_recorded}
        metrics = {}
        for name, cols in self._series.items():
            goal = self._goals.get(name) or metric_goal(name)
            vals = cols["value"]
            metrics[name] = {
                "last": vals[-1] if vals else None,
                "best": best_of(vals, goal),
                "goal": goal,
                "count": len(vals),
            }
        claim = self._claim if self._claim is not None else self.repo.claim(self.model, self.number)
        final: dict[str, Any] = {
            "status": status,
            "created_at": claim.get("created_at"),
            "finished_at": now_iso(),
            "error": error,
            **rec,
            "metrics": metrics,
        }
        if status == FINISHED:
            final["changes"], final["label"] = self._changelog_within_deadline(final)
        self.store.write_json(vkey(self.model, self.number, "series.json"), self._series)
        self.store.create_json(vkey(self.model, self.number, "final.json"), final)
        self.repo.remember_ended(self.model, self.number, final)
        # The chunks this writer published (no listing: the store may be unreachable now).
        for seq in range(1, self._chunk_seq + 1):
            self.store.delete(vkey(self.model, self.number, f"metrics/{seq:06d}.json"))

    def _changelog_within_deadline(self, final: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The changelog, computed on a helper thread for remote stores: reading the previous
        version must not hold ``finish()`` for long when the network is slow or down."""
        if not self.repo.store.is_remote:
            return self._changelog(final)  # a local store: reads are fast
        result: list[tuple[dict[str, Any] | None, str | None]] = []
        worker = threading.Thread(target=lambda: result.append(self._changelog(final)), daemon=True)
        worker.start()
        worker.join(config.changelog_timeout())
        if result:
            return result[0]
        warnings.warn(
            f"modeltrack: changelog of {self.ref} skipped: reading the previous version from {self.repo.store.uri} "
            f"took longer than {config.changelog_timeout():g} s (MODELTRACK_CHANGELOG_TIMEOUT); its semantic label "
            f"stays unknown",
            ModelTrackWarning,
            stacklevel=3,
        )
        return None, None

    def _changelog(self, final: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        try:
            return changelog_entry(self.repo, self.model, self.number, final, self._env_record or {})
        except Exception as exc:  # noqa: BLE001 - the changelog is a courtesy
            warnings.warn(f"modeltrack: changelog of {self.ref} failed: {exc}", ModelTrackWarning, stacklevel=2)
            return None, None  # unknown, rather than a wrong label

    def __enter__(self) -> Version:
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.end(exc)

    @property
    def closed(self) -> bool:
        """Whether the version has ended (finished or failed): it takes no more records."""
        return self._closed

    def end(self, exc: BaseException | str | None = None) -> None:
        """End the version by how training ended, the one mapping every integration uses:
        no exception → ``finished``; ``KeyboardInterrupt`` → ``failed`` with reason
        ``"interrupted"``; any other exception (or a reason string) → ``failed`` with its
        traceback. A version that has already ended is left as it is.
        """
        if self._closed:
            return
        if exc is None:
            self.finish()
        elif isinstance(exc, KeyboardInterrupt):
            self.fail("interrupted")
        else:
            self.fail(exc)

    def note_not_recorded(self, path: str, kind: str, reason: str) -> None:
        """Say that ``path`` (an artifact of ``kind``, or a group of metrics) could not be
        recorded and why; listed under ``info.not_recorded`` when the version ends."""
        self._not_recorded.append({"path": path, "kind": kind, "reason": reason})

    def evaluate(
        self,
        metrics: Mapping[str, Any],
        *,
        name: str = "eval",
        data: Mapping[str, Any] | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Record metrics computed on this version after it ended (a test set, a holdout) as
        an append-only evaluation beside its immutable record (see :mod:`modeltrack.evaluations`).

        Args:
            metrics: ``{name: number}``.
            name: what was evaluated (``"test"``, ``"holdout"``).
            data: ``{name: array}`` (or fingerprint records) of the data evaluated on.
            source: what computed it (``"lightning trainer.test"``); default ``"api"``.

        Raises:
            ModelTrackError: the version is still running (log the metrics to it instead).
            InvalidValueError: a bad name or value.
        """
        from . import evaluations

        if not self._closed:
            raise ModelTrackError(
                f"{self.ref} is still running; log these metrics with log_metrics, or evaluate it after it ends"
            )
        record = evaluations.make_record(name, metrics, data=data, source=source)
        return evaluations.add(self.repo, self.model, self.number, record, writer=self.store)


#: code snapshot files hashed by this process: path -> (stat stamp, sha256, size)
_CODE_HASHES: dict[str, tuple[tuple[int, ...], str, int]] = {}


def _as_store_error(exc: BaseException, path: object) -> BaseException:
    """A raw ``OSError`` (the file being logged, a full spool) as a modeltrack error."""
    if isinstance(exc, ModelTrackError) or not isinstance(exc, OSError):
        return exc
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        return StoreNotWritableError(f"cannot store {path}: {exc.strerror or exc}; free space or fix permissions")
    return StoreError(f"cannot store {path}: {exc.strerror or exc}")


def _defer_writer(v: Version) -> None:
    """Start ``v``'s background writer :data:`WRITER_DELAY` seconds from now, from one
    process-wide starter thread: creating versions in a loop never waits for a thread to
    start, and one that ends sooner needs none (``finish`` publishes everything itself)."""
    global _STARTER
    with _DEFERRED_COND:
        _DEFERRED.append(v)
        if _STARTER is None or not _STARTER.is_alive():  # also after a fork
            _STARTER = threading.Thread(target=_start_writers, name="modeltrack-writers", daemon=True)
            _STARTER.start()
        if len(_DEFERRED) == 1:
            # Otherwise the starter is waiting for the first one's time, which comes before this one's.
            _DEFERRED_COND.notify()


def _start_writers() -> None:
    while True:
        with _DEFERRED_COND:
            while not _DEFERRED:
                _DEFERRED_COND.wait()
            wait = _DEFERRED[0]._born + WRITER_DELAY - time.monotonic()
            if wait > 0:
                _DEFERRED_COND.wait(wait)
                continue
            v = _DEFERRED.pop(0)
        if not v._stop.is_set():  # finish() ran meanwhile: it published everything itself
            try:
                v._start_thread()
            except RuntimeError:  # interpreter shutting down
                return


def start(
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    store: Store | str | None = None,
    tags: Mapping[str, Any] | None = None,
    framework: str | None = None,
    parent: str | None = None,
) -> Version:
    """Start recording a new version of ``model``.

    Args:
        model: model name; default ``MODELTRACK_MODEL`` or the running script's name.
        params: hyperparameters (see :meth:`Version.log_params`).
        store: store URI or object; default ``MODELTRACK_STORE`` (``./.modeltrack``).
        tags: initial tags.
        framework: which framework trains it.
        parent: reference of a version this run continues.

    Returns:
        the running :class:`Version`; use it as a context manager or call ``finish()``.

    Raises:
        InvalidNameError: bad model name. StoreError: the store cannot be written.

    Example:
        >>> with start("churn", params={"lr": 0.01}) as v:
        ...     v.log_metrics({"loss": 0.3}, epoch=0)
    """
    name = check_model_name(default_model_name() if model is None else model)
    repo = Repo(store)
    ident = process_identity()
    claim = {"created_at": now_iso(), "writer": ident, "model": name, "actor": config.actor()}
    number = repo.allocate(name, claim)
    v = Version(repo, name, number)
    v._claim = {**claim, "version": number}
    _install_hooks()
    with _ACTIVE_LOCK:
        _ACTIVE.add(v)
    _defer_writer(v)
    from .capture.seeds import randomness

    v._seeds = randomness()  # here: Keras keeps its seed per thread
    v._batch = (threading.get_ident(), [])
    try:
        if _ENV_MODULES == len(sys.modules):
            v._capture_in_background()  # nothing new imported: capture.env's caches answer (sub-millisecond)
        else:
            v._env_thread = threading.Thread(
                target=v._capture_in_background, name=f"modeltrack-env-v{number}", daemon=True
            )
            v._env_thread.start()  # the first capture, or new modules to look through: off this thread
        if params:
            v.log_params(params)
        if framework:
            v.set_framework(framework)
        if parent:
            v.set_parent(parent)
        if tags:
            v.set_tags(tags)
        from .capture.code import reproduces

        link = reproduces(name)
        if link:
            v.log_info(reproduces=link)  # a re-run of `modeltrack reproduce`
    finally:
        v._publish_batch()
    return v


@overload
def default_model_name(fallback: str = ..., *, python_scripts: bool = ...) -> str: ...
@overload
def default_model_name(fallback: None, *, python_scripts: bool = ...) -> str | None: ...
def default_model_name(fallback: str | None = "model", *, python_scripts: bool = False) -> str | None:
    """``MODELTRACK_MODEL``, else the running script's file name, else ``fallback``.

    Args:
        fallback: the name when neither gives one (None: let the caller choose, e.g. an
            estimator's class name).
        python_scripts: take the program's name only from a ``.py`` script (not from a
            console command such as ``pytest``).
    """
    import re

    env = config.model_name()
    if env:
        return env
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 in ("", "-c", "-m") or (python_scripts and not argv0.endswith(".py")):
        argv0 = ""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", Path(argv0).stem if argv0 else "").strip("-._")[:128]
    return cleaned or fallback


def _table_cell(value: Any) -> str | int | bool:
    """One cell of :meth:`Version.log_table` (see there)."""
    mask = getattr(value, "mask", None)  # numpy's masked constant has a 0-d mask
    if value is None or (mask is not None and getattr(mask, "ndim", 1) == 0 and bool(mask)):
        return ""
    if isinstance(value, Mapping):
        return json.dumps(to_json_value(dict(value)), sort_keys=True)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return repr(value)
    return value if isinstance(value, (int, str, bool)) else json.dumps(to_json_value(value))


def last_uncaught() -> BaseException | None:
    """The exception that ended the program, once it propagated to the top (else None):
    integrations that outlive ``fit`` use it to say why a version ended."""
    return _last_uncaught


def active_versions() -> list[Version]:
    """Versions of this process that are still running."""
    with _ACTIVE_LOCK:
        return list(_ACTIVE)


def _install_hooks() -> None:
    """At exit, finish versions left running (failed if an exception ended the program)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous: Callable[..., Any] = sys.excepthook

    def hook(et: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        global _last_uncaught
        _last_uncaught = exc
        previous(et, exc, tb)

    sys.excepthook = hook
    atexit.register(_at_exit)


def _at_exit() -> None:
    for v in active_versions():
        try:
            if _last_uncaught is not None:
                v.fail(_last_uncaught)
            elif v._exit_reason is not None:
                v.fail(v._exit_reason)
            else:
                v.finish()
        except Exception as exc:  # noqa: BLE001 - never fail interpreter exit
            sys.stderr.write(f"modeltrack: could not finish {v.ref} at exit: {exc}\n")
    index = sys.modules.get("modeltrack.index")
    if index is not None:  # the rows of the versions just finished (its own exit hook ran before this one)
        index.flush_all()


__all__ = ["Version", "active_versions", "default_model_name", "last_uncaught", "report", "safe_artifact_path", "start"]
