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
        try:
            self._connect()
        except Exception as exc:
            if not (_is_damage(exc) and self._delete_files()):
                raise
            self._connect()  # damaged: rebuilt empty (the caller refills it)
            _warn_once(path, f"the summary index {path} was damaged ({exc}); it was deleted and is rebuilt")

    def _connect(self) -> None:
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
        self.db = db

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
                try:
                    db.close()
                except Exception:  # noqa: BLE001
                    pass
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

    def close(self) -> None:
        with self._lock:
            db, self.db = self.db, None
        if db is not None:
            db.close()


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
            if found is None or found.db is not None:
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
