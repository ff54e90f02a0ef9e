"""Store backends and :func:`open_store`, which picks one from a URI."""

from __future__ import annotations

import os

from ..errors import StoreError
from .base import FORMAT_KEY, FORMAT_VERSION, Store
from .local import LocalStore
from .memory import MemoryStore

__all__ = ["FORMAT_KEY", "FORMAT_VERSION", "LocalStore", "MemoryStore", "Store", "open_store", "writer_for"]


def writer_for(store: Store) -> Store:
    """The store a running version writes through: a remote store wrapped in the spool
    (writes land on local disk and are published in the background, in order, so training
    never waits on the network), any other store itself."""
    if not store.is_remote:
        return store
    from .spool import SpoolingStore

    return SpoolingStore(store)


def open_store(uri: str | os.PathLike[str] | Store) -> Store:
    """Open the store named by ``uri``.

    Args:
        uri: a directory path (or ``file://`` URL), ``memory://NAME``, ``s3://bucket/prefix``,
            ``gs://bucket/prefix`` (or ``gcs://``), ``az://container/prefix`` (or ``abfs://``),
            or a :class:`Store` (returned unchanged).

    Raises:
        StoreError: the scheme is unknown or the backend cannot be opened.
    """
    if isinstance(uri, Store):
        return uri
    if not isinstance(uri, (str, os.PathLike)) or isinstance(uri, bytes):
        raise StoreError(
            f"a store must be a path, a URI like s3://bucket/prefix or a Store, got {type(uri).__name__} {uri!r:.60}"
        )
    text = os.fspath(uri)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise StoreError(f"invalid store location {text!r:.80}: use a directory path or a store URI", uri=str(text))
    if "://" not in text:
        return _local(text)
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        return _local(rest)
    if scheme == "memory":
        return MemoryStore.shared(rest)
    if scheme == "s3":
        try:
            from .s3 import S3Store
        except ImportError as exc:
            raise StoreError(f"store {text} needs boto3: pip install 'modeltrack[s3]'", uri=text) from exc
        return S3Store.from_uri(text)
    if scheme in ("gs", "gcs", "az", "abfs"):
        return _cloud(scheme, text)
    raise StoreError(
        f"unknown store scheme {scheme!r} in {text!r}; use a directory path, "
        f"file://PATH, memory://NAME, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX",
        uri=text,
    )


def _cloud(scheme: str, uri: str) -> Store:
    """A GCS or Azure store; their SDKs are optional extras, checked here."""
    from .cloud import AzureStore, FsspecStore, GCSStore

    cls: type[FsspecStore] = GCSStore if scheme in ("gs", "gcs") else AzureStore
    module = "gcsfs" if cls is GCSStore else "adlfs"
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise StoreError(f"store {uri} needs {module}: pip install 'modeltrack[{cls.EXTRA}]'", uri=uri)
    return cls.from_uri(uri)


def _local(path: str) -> LocalStore:
    try:
        return LocalStore(path)
    except OSError as exc:
        raise StoreError(f"cannot use {path!r:.120} as a store directory: {exc.strerror or exc}", uri=path) from exc
