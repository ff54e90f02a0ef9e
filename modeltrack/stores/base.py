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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import CorruptRecordError, KeyNotFound

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


class Store(ABC):
    """A place that holds bytes under keys, with atomic publish and create-if-absent."""

    uri: str
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

    def put_file(self, key: str, src: str | os.PathLike[str]) -> None:
        """Publish the content of local file ``src`` under ``key`` (whole)."""
        self.write(key, Path(src).read_bytes())

    def get_file(self, key: str, dst: str | os.PathLike[str]) -> None:
        """Copy the value of ``key`` into local file ``dst`` (written whole)."""
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        tmp.write_bytes(self.read(key))
        os.replace(tmp, dst)

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

    def close(self) -> None:
        """Release resources (connections, threads)."""

    def writer(self) -> Store:
        """The store a running version writes through (default: this one).

        A remote backend returns a write-behind wrapper that keeps writes in a local spool
        and publishes them in the background, in order, so training never waits on the
        network (see :mod:`modeltrack.spool`).
        """
        return self

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every write made through this store is published.

        Args:
            timeout: give up after this many seconds without progress (None: no limit).

        Returns:
            True if nothing is left pending.
        """
        return True

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
