"""A local SQLite cache of version summaries, for fast listing.

Only versions that have ended are cached: their ``final.json`` never changes, so a cached
row can never go stale (tags, notes and aliases are read live). The cache lives under
``MODELTRACK_CACHE`` (default ``~/.cache/modeltrack/index.sqlite``), can be deleted at any
time, and is refilled from the store's files on the next listing. Any failure to use it
(read-only home, locked database) silently falls back to reading the files.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

_LOCK = threading.Lock()
_OPEN: dict[str, Index | None] = {}


class Index:
    """Summaries keyed by (store URI, model, version)."""

    def __init__(self, path: str, store_uri: str) -> None:
        import sqlite3

        self.store_uri = store_uri
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.db = sqlite3.connect(path, timeout=5, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS summary (store TEXT, model TEXT, version INTEGER, data TEXT, "
            "PRIMARY KEY (store, model, version))"
        )
        self._lock = threading.Lock()

    def get_model(self, model: str) -> dict[int, dict[str, Any]]:
        try:
            with self._lock:
                rows = self.db.execute(
                    "SELECT version, data FROM summary WHERE store = ? AND model = ?", (self.store_uri, model)
                ).fetchall()
        except Exception:  # noqa: BLE001 - a cache must never fail a listing
            return {}
        return {v: json.loads(d) for v, d in rows}

    def put_many(self, model: str, rows: list[tuple[int, dict[str, Any]]]) -> None:
        try:
            with self._lock:
                self.db.executemany(
                    "INSERT OR REPLACE INTO summary VALUES (?, ?, ?, ?)",
                    [(self.store_uri, model, n, json.dumps(r)) for n, r in rows],
                )
        except Exception:  # noqa: BLE001
            pass


def open_index(store_uri: str) -> Index | None:
    """The index for ``store_uri`` (None when disabled with ``MODELTRACK_INDEX=0`` or unusable)."""
    if store_uri.startswith("memory://") or os.environ.get("MODELTRACK_INDEX", "1") == "0":
        return None
    from . import config

    path = os.path.join(config.cache_dir(), "index.sqlite")
    key = f"{path}|{store_uri}"
    with _LOCK:
        if key not in _OPEN:
            try:
                _OPEN[key] = Index(path, store_uri)
            except Exception:  # noqa: BLE001
                _OPEN[key] = None
        return _OPEN[key]
