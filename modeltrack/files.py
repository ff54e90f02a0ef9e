"""Writing local files whole: one temporary-name scheme and one atomic write (foundation).

Every file modeltrack writes on local disk (store files, spool operations, verified blob
copies, caches) is written to a temporary sibling first and then renamed over the target,
so a reader sees the old file or the new one, never a prefix. Temporary names start with
``.`` and end with ``.tmp`` (listings skip them) and name the process and thread, so
concurrent writers never pick the same one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path(path: str | os.PathLike[str], tag: str = "") -> Path:
    """A hidden sibling of ``path`` that no other process or thread can pick.

    Args:
        path: the file that will be written.
        tag: a word saying what the temporary file is for (``"gc"``), for whoever finds one.
    """
    import uuid

    p = Path(path)
    mark = f".{tag}" if tag else ""
    return p.with_name(f".{p.name}{mark}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`temp_path`'s (or an older ``.….tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def unlink_quietly(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` if it is there; errors are ignored (clean-up of a temporary file)."""
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a temporary sibling of ``path`` in the block, then rename it over ``path``; if
    the block fails, the temporary file is removed and ``path`` is left as it was.

    Example:
        >>> with replacing("cache.json") as tmp:  # doctest: +SKIP
        ...     tmp.write_text("{}")
    """
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Publish ``data`` as the whole content of ``path`` (temporary file, then rename)."""
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


__all__ = ["atomic_write", "is_temp_name", "replacing", "temp_path", "unlink_quietly"]
