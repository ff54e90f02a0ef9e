"""An in-memory store, for tests and examples. ``memory://NAME`` is shared within a process."""

from __future__ import annotations

import threading
import time

from ..errors import KeyNotFound
from .base import Store, check_key

_SHARED: dict[str, MemoryStore] = {}
_SHARED_LOCK = threading.Lock()


class MemoryStore(Store):
    """Keeps every key in a dict; atomic because every operation holds one lock."""

    def __init__(self, name: str = "") -> None:
        self.uri = f"memory://{name}"
        self._data: dict[str, bytes] = {}
        self._mtime: dict[str, float] = {}
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, name: str) -> MemoryStore:
        """The process-wide store named ``name`` (created on first use)."""
        with _SHARED_LOCK:
            if name not in _SHARED:
                _SHARED[name] = cls(name)
            return _SHARED[name]

    def read(self, key: str) -> bytes:
        with self._lock:
            try:
                return self._data[check_key(key)]
            except KeyError:
                raise KeyNotFound(key) from None

    def write(self, key: str, data: bytes) -> None:
        with self._lock:
            self._data[check_key(key)] = bytes(data)
            self._mtime[key] = time.time()

    def create(self, key: str, data: bytes) -> bool:
        with self._lock:
            if check_key(key) in self._data:
                return False
            self._data[key] = bytes(data)
            self._mtime[key] = time.time()
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)
            self._mtime.pop(key, None)

    def touch(self, key: str) -> bool:
        with self._lock:
            if key not in self._data:
                return False
            self._mtime[key] = time.time()
            return True

    def modified(self, key: str) -> float | None:
        with self._lock:
            return self._mtime.get(key)

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        with self._lock:
            when = self._mtime.get(key)
            if key not in self._data or when is None or when >= cutoff:
                return False
            del self._data[key]
            self._mtime.pop(key, None)
            return True

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._data

    def list(self, prefix: str) -> list[str]:
        start = f"{prefix}/" if prefix else ""
        names: set[str] = set()
        with self._lock:
            for key in self._data:
                if key.startswith(start):
                    names.add(key[len(start) :].split("/", 1)[0])
        return sorted(names)

    def walk(self, prefix: str):  # type: ignore[no-untyped-def]
        start = f"{prefix}/" if prefix else ""
        with self._lock:
            keys = sorted(k for k in self._data if k.startswith(start))
        yield from keys
