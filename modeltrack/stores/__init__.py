"""Store backends and :func:`open_store`, which picks one from a URI."""

from __future__ import annotations

import os

from ..errors import StoreError
from .base import FORMAT_KEY, FORMAT_VERSION, Store
from .local import LocalStore
from .memory import MemoryStore

__all__ = ["FORMAT_KEY", "FORMAT_VERSION", "LocalStore", "MemoryStore", "Store", "open_store"]


def open_store(uri: str | os.PathLike[str] | Store) -> Store:
    """Open the store named by ``uri``.

    Args:
        uri: a directory path (or ``file://`` URL), ``memory://NAME``, ``s3://bucket/prefix``,
            or a :class:`Store` (returned unchanged).

    Raises:
        StoreError: the scheme is unknown or the backend cannot be opened.
    """
    if isinstance(uri, Store):
        return uri
    text = os.fspath(uri)
    if "://" not in text:
        return LocalStore(text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        return LocalStore(rest)
    if scheme == "memory":
        return MemoryStore.shared(rest)
    if scheme == "s3":
        try:
            from .s3 import S3Store
        except ImportError as exc:
            raise StoreError(f"store {text} needs boto3: pip install 'modeltrack[s3]'", uri=text) from exc
        return S3Store.from_uri(text)
    raise StoreError(
        f"unknown store scheme {scheme!r} in {text!r}; use a directory path, "
        f"file://PATH, memory://NAME or s3://BUCKET/PREFIX",
        uri=text,
    )
