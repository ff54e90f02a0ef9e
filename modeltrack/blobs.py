"""Reading blobs out of a store, checked: a blob is handed out only if it hashes to its name."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import CorruptRecordError, KeyNotFound, ModelTrackError
from .files import replacing
from .stores import Store
from .stores.base import CHUNK, file_sha256


def blob_key(sha256: str) -> str:
    """The store key of the blob whose content hashes to ``sha256``."""
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def fetch_verified(store: Store, sha: str, target: Path, *, what: str = "") -> None:
    """Copy blob ``sha`` into ``target`` (published whole), hashing the bytes as they are copied.

    Raises:
        CorruptRecordError: the content does not hash to ``sha`` (nothing is left at ``target``).
        ModelTrackError: the blob is missing from the store.
    """
    key = blob_key(sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    with replacing(target) as tmp:
        try:
            local = store.local_path(key)
            if local is not None:
                got = _copy_hashing(local, tmp)
            else:
                store.get_file(key, tmp)
                got = file_sha256(tmp)[0]
        except KeyNotFound:
            raise ModelTrackError(
                f"the content of {what or key} ({key}) is missing from store {store.uri}; run `modeltrack verify`"
            ) from None
        if got != sha:
            raise CorruptRecordError(
                f"{store.uri}/{key} ({what or 'a blob'}) is damaged: its content hashes to {got[:12]}…, not the "
                f"recorded {sha[:12]}…; run `modeltrack verify` and restore it from a copy",
                key=key,
            )


def _copy_hashing(src: Path, dst: Path) -> str:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(src, flags)
    except FileNotFoundError:
        raise KeyNotFound(str(src)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptRecordError(
                f"{src} is a symbolic link; a store never holds links, so it was not followed: remove it and "
                f"run `modeltrack verify`",
                key=str(src),
            ) from exc
        raise
    import hashlib  # imported when a blob is read, not with modeltrack

    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as f, open(dst, "wb") as out:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise CorruptRecordError(f"{src} is not a regular file; run `modeltrack verify`", key=str(src))
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
            out.write(block)
    return h.hexdigest()


__all__ = ["blob_key", "fetch_verified"]
