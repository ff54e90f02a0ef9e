"""Work an integration does off the user's thread, waited for where it must be done (core).

An integration hands the slow part of recording a version (metrics computed on the training
data, a model serialized) to :func:`submit` and waits for the returned :class:`Task` at its
sync points (the version's end, the process's exit). One daemon thread per process runs the
tasks in the order submitted. :meth:`Task.wait` runs a task that has not started yet on the
waiting thread itself, so a wait never depends on the worker being alive (after a fork, at
interpreter exit when no thread can start any more).

A task's exception is kept on the task (:attr:`Task.error`), never raised on the worker: the
integration says what it means (a warning, ``info.not_recorded``).

The work must not touch what the user may change meanwhile: :func:`snapshot` takes private
copies of the fitted model and the data (or says they are too big to copy).

Example:
    >>> snap = snapshot(model, X, y)  # doctest: +SKIP
    >>> task = submit("training metrics of m@v3", compute, *snap)  # doctest: +SKIP
    >>> task.wait()  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import copy
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import config
from .failures import report

if TYPE_CHECKING:
    from .tracking import Version

__all__ = ["MAX_COPY_BYTES", "Task", "Work", "on_worker", "pending", "snapshot", "submit", "wait_all"]

#: data larger than this (in all) is not copied by :func:`snapshot`: the work stays on the caller
MAX_COPY_BYTES = 512 * 1024 * 1024

_PENDING, _RUNNING, _DONE = 0, 1, 2
_cond = threading.Condition()
_queue: deque[Task] = deque()
_open: set[Task] = set()
_worker: threading.Thread | None = None
_worker_pid: int | None = None


class Task:
    """One unit of background work (see :func:`submit`)."""

    def __init__(self, what: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.what = what
        self._call: tuple[Callable[..., Any], tuple[Any, ...]] | None = (fn, args)
        self._state = _PENDING
        self._done = threading.Event()
        #: the exception the work raised, if any
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Whether the work has run to its end (or failed)."""
        return self._done.is_set()

    def _claim(self) -> bool:
        with _cond:
            if self._state != _PENDING:
                return False
            self._state = _RUNNING
            return True

    def _run(self) -> None:
        call, self._call = self._call, None  # the snapshot is freed once the work is done
        try:
            if call is not None:
                call[0](*call[1])
        except BaseException as exc:
            self.error = exc
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt on a waiter running the task: the user's, not ours
        finally:
            with _cond:
                self._state = _DONE
                _open.discard(self)
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the work is done; run it here if it has not started. Returns whether
        it is done (False only when ``timeout`` ran out)."""
        if self._claim():
            self._run()
            return True
        return self._done.wait(timeout)


def _loop() -> None:
    while True:
        with _cond:
            while not _queue:
                _cond.wait()
            task = _queue.popleft()
        if task._claim():
            try:
                task._run()
            except BaseException:  # noqa: BLE001 - the worker outlives any task
                pass


def _ensure_worker() -> None:
    global _worker, _worker_pid
    if _worker is not None and _worker.is_alive() and _worker_pid == os.getpid():
        return
    thread = threading.Thread(target=_loop, name="modeltrack-background", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # interpreter shutting down: the waiters run the tasks
        return
    _worker, _worker_pid = thread, os.getpid()


def submit(what: str, fn: Callable[..., Any], *args: Any) -> Task:
    """Run ``fn(*args)`` on the background worker, after the tasks submitted before.

    Args:
        what: what the work does, for messages ("training metrics of m@v3").
    """
    task = Task(what, fn, args)
    with _cond:
        _queue.append(task)
        _open.add(task)
        _ensure_worker()
        _cond.notify()
    return task


def on_worker() -> bool:
    """Whether the calling thread is the background worker (it must never wait for a lock
    that a thread waiting for a task may hold)."""
    return _worker is not None and threading.current_thread() is _worker


def pending() -> list[Task]:
    """The tasks submitted and not done yet."""
    with _cond:
        return list(_open)


def wait_all() -> None:
    """Wait for every task submitted so far."""
    for task in pending():
        task.wait()


def _size(obj: Any) -> int:
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    usage = getattr(obj, "memory_usage", None)  # a pandas DataFrame
    try:
        return int(usage(deep=False).sum()) if callable(usage) else 0
    except Exception:  # noqa: BLE001 - unknown size: counted as small
        return 0


def snapshot(*objects: Any, limit: int = MAX_COPY_BYTES) -> tuple[Any, ...] | None:
    """Private copies of ``objects``, so that work on them is not disturbed when the caller
    changes the originals (refits an estimator, edits an array in place): arrays and frames
    by their own ``copy()``, anything else by ``copy.deepcopy``; None stays None.

    Returns:
        the copies, or None when one cannot be copied or the arrays and frames among them
        hold more than ``limit`` bytes (the caller then does the work itself).
    """
    if sum(_size(o) for o in objects) > limit:
        return None
    out = []
    for obj in objects:
        try:
            if obj is None or isinstance(obj, (str, bytes, int, float)):
                out.append(obj)
            elif hasattr(obj, "shape") and callable(getattr(obj, "copy", None)):
                out.append(obj.copy())
            else:
                out.append(copy.deepcopy(obj))
        except Exception:  # noqa: BLE001 - not copyable: the caller works on the original
            return None
    return tuple(out)


class Work:
    """The after-training work of one version, on the worker or on the caller's thread, with
    one failure policy: what fails is recorded under the version's ``info.not_recorded`` and
    is a warning at once, or, in strict mode, raised by :meth:`surface` at the next sync point.

    Metrics the user logs while the work runs (:meth:`log_metrics`) are held and logged after
    the work's own (:meth:`release`), so that the version's steps stay in order.

    Example:
        >>> work = Work(version)  # doctest: +SKIP
        >>> work.start("recording m@v3", record, *snapshot(model, X, y))  # doctest: +SKIP
        >>> work.wait(); version.finish(); work.surface()  # doctest: +SKIP
    """

    def __init__(self, version: Version) -> None:
        self.version = version
        self.task: Task | None = None
        self.problems: list[tuple[BaseException, str]] = []
        self._held: list[Mapping[str, Any]] | None = None
        self._lock = threading.Lock()

    def start(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on private copies of ``args`` (:func:`snapshot`) on the worker; ``fn``
        calls :meth:`release` once its own metrics are logged. When they cannot be copied (or
        are too big to), ``fn(*args)`` runs here, now, and its failures are surfaced at once."""
        snap = snapshot(*args)
        if snap is None:
            self._run(fn, args)
            self.surface()
            return
        self._held = []
        self.task = submit(what, self._run, fn, snap)

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        finally:
            self.release()

    def attempt(self, what: str, path: str, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, or None when it fails: ``path`` (of ``kind``) is then recorded as
        not recorded, with the reason."""
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - a warning and info.not_recorded, never the user's crash
            reason = f"{type(exc).__name__}: {exc}"[:500]
            self.version.note_not_recorded(path, kind, reason)
            self.problems.append((exc, f"{what} of {self.version.ref} (not recorded)"))
            if not config.strict():
                self.surface()
            return None

    def release(self, metrics: Mapping[str, Any] | None = None, step: int | None = None) -> None:
        """Log ``metrics`` (the work's own), then the metrics held meanwhile; later ones go
        straight to the version."""
        with self._lock:
            held, self._held = self._held, None
            if metrics:
                self.version.log_metrics(metrics, step=step)
            for m in held or ():
                self.version.log_metrics(m)

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """The user's metrics (automatic step): held while the work has not logged its own."""
        with self._lock:
            if self._held is not None:
                self._held.append(metrics)
                return
        self.version.log_metrics(metrics)

    def wait(self) -> None:
        """A sync point: block until the work is done (run it here if it has not started)."""
        task, self.task = self.task, None
        if task is not None:
            task.wait()
            if task.error is not None:
                self.problems.append((task.error, f"recording {self.version.ref}"))

    def surface(self) -> None:
        """Report the failures kept so far (strict mode: raise the first)."""
        problems, self.problems = self.problems, []
        for exc, what in problems:
            report(exc, what)


atexit.register(wait_all)  # registered first, so it runs after the integrations' exit hooks
