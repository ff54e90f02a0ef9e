"""A local SQLite cache of version summaries, for fast listing.

Only versions that have ended are cached: their ``final.json`` never changes, so a cached
row can only go stale if the store's files are damaged or replaced by hand (tags, notes and
aliases are read live). The cache lives under ``MODELTRACK_CACHE`` (default
``~/.cache/modeltrack/index.sqlite``), can be deleted at any time, and is refilled from the
store's files on the next listing.

It is never trusted blindly:

* a row that does not decode to a well-formed summary (see :func:`valid_summary`) is
  deleted and not returned, so the caller recomputes it from the files;
* a caller that can fingerprint the file a summary came from cheaply (say the size of
  ``final.json``, or its hash) passes it as the row's *stamp* to :meth:`Index.put_many`,
  and the same fingerprints to :meth:`Index.get_model`, which then returns only rows whose
  stamp still matches (and deletes the mismatched ones);
* a database that cannot be used (garbage bytes, a directory in its place, a read-only
  file system, a lock held too long) means "no index": listings read the files. That
  costs at most one :class:`~modeltrack.errors.ModelTrackWarning` per database file and
  process, never an exception. A file that is not a database, or a damaged one, is
  deleted and rebuilt empty.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from .errors import ModelTrackWarning

TABLE = "summary2"  # schema 2 (with stamps); schema 1 was "summary", dropped when found
STATUSES = ("finished", "failed", "crashed", "running")
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_LOCK = threading.Lock()
_OPEN: dict[str, Index | None] = {}
_DBS: dict[str, list[Any]] = {}  # database file -> [connection, its lock, indexes using it]
_WARNED: set[str] = set()  # database files this process has warned about

Stamp: TypeAlias = "str | int"


def valid_summary(row: object) -> bool:
    """Whether ``row`` has the shape of a listing summary (what ``Repo.summary`` returns):
    ``{"status", "created_at", "finished_at", "metrics": {name: number | None}, "label"}``."""
    if type(row) is not dict:
        return False
    status, metrics = row.get("status"), row.get("metrics")
    if type(status) is not str or status not in STATUSES or type(metrics) is not dict:
        return False
    for name in ("created_at", "finished_at", "label"):
        if name not in row or (row[name] is not None and type(row[name]) is not str):
            return False
    return all(v is None or type(v) in (int, float) for v in metrics.values())


def _decode(version: object, data: object) -> dict[str, Any] | None:
    if type(version) is not int or type(data) is not str:
        return None
    # A summary nests two deep (brackets in metric names aside): a deeply nested text is not one.
    if data.count("{") + data.count("[") > 256:
        return None
    try:
        row = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return row if valid_summary(row) else None


def _stamp_text(stamp: Stamp | None) -> str | None:
    return None if stamp is None else str(stamp)


def _warn_once(path: str, message: str) -> None:
    with _LOCK:
        if path in _WARNED:
            return
        _WARNED.add(path)
    warnings.warn(f"modeltrack: {message}", ModelTrackWarning, stacklevel=4)


def _is_damage(exc: BaseException) -> bool:
    import sqlite3

    code = getattr(exc, "sqlite_errorcode", None)
    return code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or type(exc) is sqlite3.DatabaseError


class Index:
    """Summaries keyed by (store URI, model, version).

    Raises (from the constructor only; :func:`open_index` turns that into ``None``):
        sqlite3.Error, OSError: the database cannot be opened or set up.
    """

    def __init__(self, path: str, store_uri: str) -> None:
        self.path = path
        self.store_uri = store_uri
        self._lock = threading.Lock()
        self.db: Any = None
        # Rows of versions this process just ended, written in batches (see put_later).
        self._pending: list[tuple[str, int, dict[str, Any], Stamp | None]] = []  # model, version, row, stamp
        self._pending_since = 0.0
        try:
            self._connect()
        except Exception as exc:
            if not (_is_damage(exc) and self._delete_files()):
                raise
            self._connect()  # damaged: rebuilt empty (the caller refills it)
            _warn_once(path, f"the summary index {path} was damaged ({exc}); it was deleted and is rebuilt")

    def _connect(self) -> None:
        """Use this process's connection to the database file, opening it if need be: every
        store's index shares one (a process that lists many stores holds one file open)."""
        with _LOCK:
            shared = _DBS.get(self.path)
            if shared is not None:
                shared[2] += 1
                self.db, self._lock = shared[0], shared[1]
                return
        db = self._open()
        with _LOCK:
            shared = _DBS.get(self.path)
            if shared is not None:  # another thread opened it meanwhile
                db.close()
                shared[2] += 1
                self.db, self._lock = shared[0], shared[1]
                return
            _DBS[self.path] = [db, self._lock, 1]
            self.db = db

    def _release(self, db: Any, *, drop: bool = False) -> None:
        """Stop using ``db``; close it when no index uses it any more (``drop``: now, for all)."""
        with _LOCK:
            shared = _DBS.get(self.path)
            if shared is None or shared[0] is not db:
                return
            shared[2] -= 1
            if not drop and shared[2] > 0:
                return
            del _DBS[self.path]
        try:
            db.close()
        except Exception:  # noqa: BLE001
            pass

    def usable(self) -> bool:
        """Whether this index still has an open connection (another index sharing it may
        have found the database damaged and closed it)."""
        db = self.db
        shared = _DBS.get(self.path)  # a single look-up: callers may hold _LOCK
        return db is not None and shared is not None and shared[0] is db

    def _open(self) -> Any:
        import sqlite3

        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=5, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (store TEXT, model TEXT, version INTEGER, data TEXT, "
                "stamp TEXT, PRIMARY KEY (store, model, version))"
            )
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'summary'").fetchone():
                db.execute("DROP TABLE IF EXISTS summary")
        except BaseException:
            db.close()
            raise
        return db

    def _delete_files(self) -> bool:
        """Remove a damaged database file (only a plain file) and its journals."""
        if os.path.islink(self.path) or not os.path.isfile(self.path):
            return False
        try:
            for suffix in ("", "-wal", "-shm", "-journal"):
                if os.path.lexists(self.path + suffix):
                    os.remove(self.path + suffix)
        except OSError:
            return False
        return True

    def _failed(self, exc: BaseException, what: str) -> None:
        """A query failed: warn (once); stop using a damaged database (rebuilt next time)."""
        if _is_damage(exc):
            with self._lock:
                db, self.db = self.db, None
            if db is not None:
                self._release(db, drop=True)
                self._delete_files()
            _warn_once(self.path, f"the summary index {self.path} is damaged ({exc}); listings read the store's files")
        else:
            _warn_once(
                self.path,
                f"could not {what} the summary index {self.path} ({exc.__class__.__name__}: {exc}); "
                "listings read the store's files (slower); set MODELTRACK_INDEX=0 to stop using it",
            )

    def get_model(self, model: str, stamps: Mapping[int, Stamp] | None = None) -> dict[int, dict[str, Any]]:
        """Cached summaries of ``model``'s versions, by number.

        Rows that do not decode to a valid summary are deleted and left out. With
        ``stamps`` (version → fingerprint of its ``final.json``), only rows stored with the
        same stamp are returned; rows with another stamp are deleted, rows without one (or
        for versions ``stamps`` does not name) are left out.
        """
        self.flush()
        db = self.db
        if db is None:
            return {}
        try:
            with self._lock:
                rows = db.execute(
                    f"SELECT rowid, version, data, stamp FROM {TABLE} WHERE store = ? AND model = ?",
                    (self.store_uri, model),
                ).fetchall()
        except Exception as exc:  # noqa: BLE001 - a cache must never fail a listing
            self._failed(exc, "read")
            return {}
        out: dict[int, dict[str, Any]] = {}
        drop: list[int] = []
        for rowid, version, data, stamp in rows:
            row = _decode(version, data)
            if row is None:
                drop.append(rowid)
                continue
            if stamps is not None:
                want = _stamp_text(stamps.get(version))
                if want is None or stamp is None:
                    continue
                if stamp != want:
                    drop.append(rowid)
                    continue
            out[version] = row
        if drop:
            self._delete_rows(drop)
        return out

    def _delete_rows(self, rowids: list[int]) -> None:
        db = self.db
        if db is None:
            return
        try:
            with self._lock:
                db.executemany(f"DELETE FROM {TABLE} WHERE rowid = ?", [(r,) for r in rowids])
        except Exception as exc:  # noqa: BLE001
            self._failed(exc, "clean")

    def put_many(
        self,
        model: str,
        rows: Iterable[tuple[int, dict[str, Any]]],
        stamps: Mapping[int, Stamp] | None = None,
    ) -> None:
        """Cache summaries of ended versions of ``model`` (replacing older rows), each with
        the stamp ``stamps`` gives its version, if any. Rows that are not valid summaries
        are not written."""
        db = self.db
        if db is None:
            return
        try:
            values = [
                (self.store_uri, model, n, json.dumps(r), _stamp_text((stamps or {}).get(n)))
                for n, r in rows
                if type(n) is int and valid_summary(r)
            ]
            if not values:
                return
            with self._lock:
                db.executemany(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?, ?)", values)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc, "write")

    def put_later(self, model: str, number: int, row: dict[str, Any], stamp: Stamp | None = None) -> None:
        """:meth:`put_many` of one row, in a batch with others: written once
        :data:`BATCH_ROWS` rows wait or the oldest has waited :data:`BATCH_SECONDS`, before
        this process reads the index, and at exit. A row lost with its process (a kill) only
        means that listing reads that version's files once more."""
        import time

        now = time.monotonic()
        with self._lock:
            if not self._pending:
                self._pending_since = now
                _BATCHING.add(self)
            self._pending.append((model, number, row, stamp))
            due = len(self._pending) >= BATCH_ROWS or now - self._pending_since >= BATCH_SECONDS
        if due:
            self.flush()

    def flush(self) -> None:
        """Write the rows :meth:`put_later` holds."""
        if not self._pending:
            return
        with self._lock:
            pending, self._pending = self._pending, []
        by_model: dict[str, tuple[list[tuple[int, dict[str, Any]]], dict[int, Stamp]]] = {}
        for model, number, row, stamp in pending:
            rows, stamps = by_model.setdefault(model, ([], {}))
            rows.append((number, row))
            if stamp is not None:
                stamps[number] = stamp
        for model, (rows, stamps) in by_model.items():
            self.put_many(model, rows, stamps=stamps)

    def close(self) -> None:
        self.flush()
        with self._lock:
            db, self.db = self.db, None
        if db is not None:
            self._release(db)


#: rows :meth:`Index.put_later` holds are written once this many wait, or the oldest this old (s)
BATCH_ROWS = 64
BATCH_SECONDS = 1.0
_BATCHING: set[Index] = set()  # indexes that held rows back at some point: flushed at exit


def flush_all() -> None:
    """Write the rows every index of this process holds back (see :meth:`Index.put_later`);
    run at exit, after the versions left running are finished."""
    for idx in list(_BATCHING):
        try:
            idx.flush()
        except Exception:  # noqa: BLE001 - a cache must never fail interpreter exit
            pass


import atexit  # noqa: E402 - next to what it registers

atexit.register(flush_all)


def open_index(store_uri: str) -> Index | None:
    """The index for ``store_uri`` (None when disabled with ``MODELTRACK_INDEX=0`` or unusable,
    after one :class:`~modeltrack.errors.ModelTrackWarning` saying why)."""
    if store_uri.startswith("memory://") or os.environ.get("MODELTRACK_INDEX", "1") == "0":
        return None
    from . import config

    path = os.path.join(config.cache_dir(), "index.sqlite")
    key = f"{path}|{store_uri}"
    with _LOCK:
        if key in _OPEN:
            found = _OPEN[key]
            if found is None or found.usable():
                return found
    try:
        index: Index | None = Index(path, store_uri)
    except Exception as exc:  # noqa: BLE001 - no index is a slower listing, not an error
        index = None
        _warn_once(
            path,
            f"cannot use the summary index {path} ({exc.__class__.__name__}: {exc}); listings read the store's "
            "files (slower); remove or fix it, point MODELTRACK_CACHE at a writable directory, or set "
            "MODELTRACK_INDEX=0",
        )
    with _LOCK:
        _OPEN[key] = index
    return index
