"""Writing local files whole: one temporary-name scheme and one atomic write (foundation).

Every file modeltrack writes on local disk (store files, spool operations, verified blob
copies, caches) is written to a temporary sibling first and then renamed over the target,
so a reader sees the old file or the new one, never a prefix. Temporary names start with
``.`` and end with ``.tmp`` (listings skip them) and name the process and thread, so
concurrent writers never pick the same one.
"""

from __future__ import annotations

import itertools
import os
import sys
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
    return Path(temp_name(os.fspath(path), tag))


def temp_name(path: str, tag: str = "") -> str:
    """:func:`temp_path` as a string, for hot paths: the process id, a random token drawn
    once per process (and again after a fork: stores shared between machines see equal
    process ids), the thread and a counter make it unique without a call to ``uuid``."""
    head, name = os.path.split(path)
    mark = f".{tag}" if tag else ""
    return os.path.join(head, f".{name}{mark}.{os.getpid()}.{_TOKEN[0]}.{threading.get_ident()}.{next(_COUNTER)}.tmp")


def _new_token() -> None:
    _TOKEN[0] = os.urandom(4).hex()


_TOKEN = [""]
_COUNTER = itertools.count()
_new_token()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_token)


#: nanoseconds within which a file written again keeps its stat: timestamps come from a
#: coarse clock, so a stat is trusted to tell two versions apart only once it is this old
RACY_NS = 20_000_000


def stat_signature(st: os.stat_result) -> tuple[int, ...]:
    """What tells one content of a file from the next without reading it: device, inode,
    size, modification and change times (see :data:`RACY_NS` for when it can be trusted)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of :func:`temp_path`'s (or an older ``.….tmp``)."""
    return name.startswith(".") and name.endswith(".tmp")


def sweep_temporaries(root: str | os.PathLike[str], cutoff: float, *, dry_run: bool = False) -> tuple[int, int]:
    """Remove the :func:`temp_path` files under ``root`` that a killed writer left behind:
    regular files whose content and inode last changed before ``cutoff`` (epoch seconds).
    The inode's change time counts as well as the modification time: a hard link made to
    hold a logged file keeps that file's old mtime but moves its ctime. Returns how many
    files and bytes (``dry_run``: would be) removed."""
    import stat

    count = size = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not is_temp_name(name):
                continue
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
                if max(st.st_mtime, st.st_ctime) >= cutoff or not stat.S_ISREG(st.st_mode):
                    continue
                if not dry_run:
                    os.unlink(path)
            except OSError:
                continue
            count, size = count + 1, size + st.st_size
    return count, size


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


_FICLONE = 0x40049409  # Linux ioctl: make a file a copy-on-write clone of another (btrfs, XFS, bcachefs)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_no_reflink: set[int] = set()  # st_dev of file systems that refused a clone: not asked again


def reflink(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> bool:
    """Make new file ``dst`` a copy-on-write clone of ``src`` (O(1): no data is copied)
    where the file system offers it; False (and no ``dst``) where it does not."""
    if not sys.platform.startswith("linux"):
        return False
    import fcntl

    try:
        sfd = os.open(src, os.O_RDONLY | _O_CLOEXEC)
    except OSError:
        return False
    try:
        dev = os.fstat(sfd).st_dev
        if dev in _no_reflink:
            return False
        try:
            dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, 0o600)
        except OSError:
            return False
        ok = False
        try:
            fcntl.ioctl(dfd, _FICLONE, sfd)
            ok = True
        except OSError:
            _no_reflink.add(dev)
        finally:
            os.close(dfd)
            if not ok:
                unlink_quietly(dst)
        return ok
    finally:
        os.close(sfd)


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> int:
    """Copy the bytes of ``src`` into new file ``dst`` by the cheapest means the file system
    offers: a reflink (copy-on-write clone), else ``os.copy_file_range`` (a kernel-side copy,
    itself a reflink or server-side copy on some file systems), else a plain copy. Returns
    the number of bytes copied (the size of ``dst``).

    Raises:
        OSError: ``src`` cannot be read or ``dst`` written (a partial ``dst`` is left for the
            caller to remove: callers write to a temporary name).
    """
    if reflink(src, dst):
        return os.stat(dst).st_size
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        copied = 0
        ranged = hasattr(os, "copy_file_range")
        while ranged:
            try:
                n = os.copy_file_range(fin.fileno(), fout.fileno(), 1 << 30)
            except OSError as exc:
                import errno

                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                    raise
                ranged = False  # not on this pair of file systems: copy through user space
                fin.seek(copied)
                fout.seek(copied)
                break
            if n == 0:
                return copied
            copied += n
        while True:
            block = fin.read(1 << 20)
            if not block:
                return copied
            fout.write(block)
            copied += len(block)


__all__ = ["atomic_write", "copy_file", "is_temp_name", "reflink", "replacing", "temp_path", "unlink_quietly"]
