"""The local store: a directory tree, one file per key.

Whole-file publication is a write to a temporary file in the same directory followed by
``os.replace``; create-if-absent is the same followed by ``os.link``, which fails when the
target exists, so of racing creators exactly one wins and nobody sees a half-written file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import CorruptRecordError, KeyNotFound, StoreError, StoreNotWritableError
from ..files import copy_file, is_temp_name, sweep_temporaries, temp_name, temp_path, unlink_quietly
from .base import Store, check_key

_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


class LocalStore(Store):
    """A store in a local directory (created on first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uri = str(self.root)
        self._root = str(self.root).rstrip("/") or ""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(
                f"store path {self.root} is a file, not a directory; point MODELTRACK_STORE "
                f"(or store=) at a directory, or remove the file",
                uri=self.uri,
            )

    def _path(self, key: str) -> Path:
        return Path(self._str(key))

    def _str(self, key: str) -> str:
        # String joins: pathlib costs ~20 us a call, which shows when listing 10,000 versions.
        return self._root + "/" + check_key(key)

    def _oserror(self, exc: OSError, key: str) -> StoreError:
        if exc.errno in _NOT_WRITABLE:
            why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "it is read-only or not yours"
            return StoreNotWritableError(
                f"cannot write {key} to store {self.root}: {why} ({exc.strerror}); "
                f"free space or fix permissions, or set MODELTRACK_STORE to a writable directory",
                uri=self.uri,
            )
        return StoreError(f"store {self.root}: {exc.strerror or exc} on {key}", uri=self.uri)

    def _write_tmp(self, path: str, data: bytes) -> str:
        """``data`` in a new temporary sibling of ``path`` (its folders made when missing:
        tried first, as they usually exist); returns the temporary file's path."""
        tmp = temp_name(path)
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        except FileNotFoundError:
            parent = os.path.dirname(path)
            try:
                os.mkdir(parent)  # usually only the last folder is missing (a new version's)
            except FileNotFoundError:
                os.makedirs(parent, exist_ok=True)
            except FileExistsError:
                pass  # made meanwhile by another writer
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            unlink_quietly(tmp)
            raise
        os.close(fd)
        return tmp

    def read(self, key: str) -> bytes:
        try:
            fd = os.open(self._str(key), _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyNotFound(key) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise CorruptRecordError(
                    f"{self.root}/{key} is a symbolic link; a store holds only regular files, so it was not "
                    f"followed: remove it and run `modeltrack verify`",
                    key=key,
                ) from None
            raise self._oserror(exc, key) from exc
        try:
            with os.fdopen(fd, "rb") as f:
                return f.read()
        except IsADirectoryError:
            raise KeyNotFound(key) from None

    def write(self, key: str, data: bytes) -> None:
        path = self._str(key)
        try:
            tmp = self._write_tmp(path, data)
            try:
                os.replace(tmp, path)
            except BaseException:
                unlink_quietly(tmp)
                raise
        except OSError as exc:
            raise self._oserror(exc, key) from exc

    def create(self, key: str, data: bytes) -> bool:
        path = self._str(key)
        try:
            tmp = self._write_tmp(path, data)
        except OSError as exc:
            raise self._oserror(exc, key) from exc
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP) and not os.path.lexists(path):
                # File systems without hard links: O_EXCL still decides the race.
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                return True
            raise self._oserror(exc, key) from exc
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except IsADirectoryError:
            shutil.rmtree(path, ignore_errors=True)
            return
        except OSError as exc:
            raise self._oserror(exc, key) from exc
        self._prune(path.parent)

    def _prune(self, parent: Path) -> None:
        """Drop directories left empty, up to the store root."""
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._str(key))

    def occupied(self, prefix: str) -> bool:
        return os.path.lexists(self._str(prefix))  # temporary files count: listings skip them

    def list(self, prefix: str) -> list[str]:
        path = self._path(prefix) if prefix else self.root
        try:
            with os.scandir(path) as it:
                return sorted(e.name for e in it if not is_temp_name(e.name))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in sorted(filenames):
                if is_temp_name(name):
                    continue
                yield name if rel == "." else f"{rel}/{name}"

    def put_file(
        self,
        key: str,
        src: str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path(path)
            try:
                copy_file(src, tmp)
                os.replace(tmp, path)
            except BaseException:
                unlink_quietly(tmp)
                raise
        except OSError as exc:
            raise self._oserror(exc, key) from exc

    supports_staging = True

    def staging_dir(self) -> Path | None:
        path = self.root / "blobs"
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._oserror(exc, "blobs/") from exc  # not writable: a writer stores files itself
        return path

    def stage_file(self, src: str | os.PathLike[str]) -> tuple[str, int, Callable[[str | None], None]]:
        """Copy ``src`` into the store under a temporary name (a reflink or a kernel-side copy
        where the file system offers it), hashing the copy; ``commit(key)`` renames it into
        place (``None``: drops it). One read of ``src`` instead of a hash pass and a copy pass."""
        from .base import copy_hashing

        tmp = temp_path(self.root / "blobs" / "stage")
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            sha, size = copy_hashing(src, tmp)
        except OSError as exc:
            unlink_quietly(tmp)
            if exc.filename is not None and os.fspath(exc.filename) == os.fspath(src):
                raise StoreError(
                    f"cannot read {src} ({exc.strerror or exc}) to store it; check that the file exists and is "
                    f"readable",
                    uri=self.uri,
                ) from exc
            raise self._oserror(exc, "a blob") from exc
        except BaseException:
            unlink_quietly(tmp)
            raise

        def commit(key: str | None) -> None:
            if key is None:
                unlink_quietly(tmp)
                return
            path = self._path(key)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, path)
            except OSError as exc:
                unlink_quietly(tmp)
                raise self._oserror(exc, key) from exc

        return sha, size, commit

    def get_file(self, key: str, dst: str | os.PathLike[str]) -> None:
        src = self._inside(key)
        if not src.is_file():
            raise KeyNotFound(key)
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(dst)
        try:
            shutil.copyfile(src, tmp, follow_symlinks=False)
            os.replace(tmp, dst)
        except BaseException:
            unlink_quietly(tmp)
            raise

    def local_path(self, key: str) -> Path | None:
        return self._inside(key)

    def _inside(self, key: str) -> Path:
        """The path of ``key``, refusing links: a store holds no links, and one planted in it
        (a blob replaced by a link to ``~/.aws/credentials``) must not be followed."""
        path = self._path(key)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return path
        except NotADirectoryError:
            return path
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise CorruptRecordError(
                f"{self.root}/{key} is {'a symbolic link' if stat.S_ISLNK(st.st_mode) else 'not a regular file'}; "
                f"a store holds only regular files, so it was not read: remove it and run `modeltrack verify`",
                key=key,
            )
        real = os.path.realpath(path.parent)
        if not (real + "/").startswith(self._real_root() + "/"):
            raise CorruptRecordError(
                f"{self.root}/{key} lies under a symbolic link to {real}, outside the store; it was not read: "
                f"replace the link with a directory and run `modeltrack verify`",
                key=key,
            )
        return path

    def _real_root(self) -> str:
        real = getattr(self, "_real", None)
        if real is None:
            real = self._real = os.path.realpath(self.root)
        return real

    def touch(self, key: str) -> bool:
        try:
            os.utime(self._str(key), follow_symlinks=False)
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError as exc:
            raise self._oserror(exc, key) from exc

    has_stamps = True

    def stamp(self, key: str) -> str | None:
        try:
            st = os.stat(self._str(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"

    def modified(self, key: str) -> float | None:
        try:
            return os.lstat(self._str(key)).st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None

    def sweep_temporaries(self, cutoff: float, *, dry_run: bool = False) -> tuple[int, int]:
        return sweep_temporaries(self.root, cutoff, dry_run=dry_run)

    def delete_if_older(self, key: str, cutoff: float) -> bool:
        # Rename first, then look at the age of what was renamed: a writer that touched the
        # blob before the rename left a fresh mtime on it (so it comes back), and one that
        # touches it after finds it gone and uploads it again. No moment loses a blob in use.
        path = self._path(key)
        aside = temp_path(path, "gc")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._oserror(exc, key) from exc
        try:
            fresh = os.lstat(aside).st_mtime >= cutoff
        except OSError:
            fresh = True
        if fresh:
            try:
                os.link(aside, path)  # fails if a writer re-uploaded it meanwhile: same bytes
            except FileExistsError:
                pass
            unlink_quietly(aside)
            return False
        unlink_quietly(aside)
        self._prune(path.parent)
        return True

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise KeyNotFound(key) from None

    def sha256(self, key: str) -> str:
        from .base import file_sha256

        path = self._inside(key)
        if not path.is_file():
            raise KeyNotFound(key)
        return file_sha256(path)[0]

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = temp_path(self.root / "probe")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise self._oserror(exc, "a new file") from exc
