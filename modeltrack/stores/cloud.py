"""Google Cloud Storage and Azure Blob stores, through fsspec (``gcsfs``, ``adlfs``).

``gs://BUCKET/PREFIX`` (also ``gcs://``) and ``az://CONTAINER/PREFIX`` (also ``abfs://``)
keep one object per key, as the S3 store does. Guarantees:

* ``write`` and ``put_file`` publish whole objects: GCS makes an object visible when its
  (simple or resumable) upload is finalised, Azure when a block blob's block list is
  committed; readers never see part of one.
* ``create`` is a create-if-absent write decided by the server: on GCS an upload with
  ``ifGenerationMatch=0``, on Azure one with ``If-None-Match: *`` (fsspec's
  ``pipe_file(..., mode="create")``, which raises ``FileExistsError`` when the key is
  taken). Before the first ``create`` on a bucket the store checks that the server honours
  it (a probe under ``blobs/probe/``, created twice): a server that ignores it (the
  ``gcp-storage-emulator`` package, for one) would let two writers claim the same version
  number, so it is refused with :class:`~modeltrack.errors.StoreError`, as on S3.

Credentials come from each SDK's standard configuration, never from the URI: for GCS the
Google application default credentials (``GOOGLE_APPLICATION_CREDENTIALS``, ``gcloud auth
application-default login``) or ``STORAGE_EMULATOR_HOST`` for an emulator; for Azure
``AZURE_STORAGE_CONNECTION_STRING``, or ``AZURE_STORAGE_ACCOUNT_NAME`` with
``AZURE_STORAGE_ACCOUNT_KEY`` / ``AZURE_STORAGE_SAS_TOKEN`` / an Azure AD identity.

Both are remote stores (``is_remote``): a running version writes through the spool. Every
error of the SDKs is turned into a :class:`~modeltrack.errors.StoreError` (a
:class:`~modeltrack.errors.StoreUnavailableError` when it may pass) in :meth:`_translate`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import config
from ..errors import KeyNotFound, StoreError, StoreNotWritableError, StoreUnavailableError
from ..files import temp_path
from ..secrets import strip_credentials
from .base import Store, check_key

_FILE_SYSTEMS: dict[tuple[str | None, ...], Any] = {}
_FS_LOCK = threading.Lock()
_CHECKED: set[tuple[str, str]] = set()
_CHECKED_LOCK = threading.Lock()
_WRITES = ("write", "create", "delete", "upload")
#: seconds to wait for a connection and for an answer (the SDKs retry on their own): per
#: socket read on Azure, per request (a whole upload chunk) on GCS
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
AZURE_READ_TIMEOUT = 20


class FsspecStore(Store):
    """A store under ``ROOT`` (``bucket/prefix``) of an fsspec file system of object storage.

    Subclasses give the file system (:meth:`_make_fs`), the URI schemes and names for
    messages; everything else is shared.
    """

    is_remote = True
    #: what the URI scheme names, for messages
    KIND = "object storage"
    SCHEMES: tuple[str, ...] = ()
    EXTRA = ""

    def __init__(self, bucket: str, prefix: str = "", fs: Any = None) -> None:
        prefix = prefix.strip("/")
        scheme = self.SCHEMES[0] if self.SCHEMES else "fsspec"
        uri = f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"
        if not bucket or "/" in bucket or bucket in (".", ".."):
            raise StoreError(f"{uri}: {bucket!r} is not a valid {self.KIND} bucket name", uri=uri)
        if prefix:
            try:
                check_key(prefix)
            except ValueError:
                raise StoreError(f"{uri}: invalid prefix {prefix!r} (no empty, '.' or '..' parts)", uri=uri) from None
        self.bucket = bucket
        self.prefix = prefix
        self.uri = uri
        self._fs = fs

    @classmethod
    def from_uri(cls, uri: str) -> FsspecStore:
        """The store named by ``SCHEME://BUCKET[/PREFIX]``.

        Raises:
            StoreError: the URI is malformed or carries credentials.
        """
        scheme, _, rest = uri.partition("://")
        if scheme.lower() not in cls.SCHEMES:
            raise StoreError(f"{uri!r} is not a {'/'.join(s + '://' for s in cls.SCHEMES)} URI", uri=uri)
        bucket, _, prefix = rest.partition("/")
        if "@" in bucket or "?" in rest or "#" in rest:
            raise StoreError(
                f"{strip_credentials(uri)}: credentials, accounts and options do not belong in the store URI (they "
                f"would end up in logs); configure them as the {cls.KIND} SDK documents (environment variables)",
                uri=strip_credentials(uri),
            )
        if not bucket:
            raise StoreError(f"{uri!r} names no bucket; use {cls.SCHEMES[0]}://BUCKET/PREFIX", uri=uri)
        return cls(bucket, prefix)

    # ------------------------------------------------------------------ plumbing
    def _make_fs(self) -> Any:
        raise NotImplementedError

    #: environment variables that configure the SDK: one file system per process and setting
    CONFIG_VARS: tuple[str, ...] = ()

    @property
    def fs(self) -> Any:
        if self._fs is None:
            # Shared by every store object of this process with the same configuration: each
            # file system holds an HTTP session, which an unshared one would leave to the
            # garbage collector to close.
            # (and per process: fsspec's event loop does not survive a fork)
            key = (type(self).__name__, str(os.getpid()), *(os.environ.get(name) for name in self.CONFIG_VARS))
            with _FS_LOCK:
                fs = _FILE_SYSTEMS.get(key)
                if fs is None:
                    fs = _FILE_SYSTEMS[key] = self._make_fs()
            self._fs = fs
        return self._fs

    def _endpoint(self) -> str:
        return self.KIND

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``self.fs.NAME(*args, **kwargs)`` of a small request, bounded by
        ``MODELTRACK_CLOUD_TIMEOUT`` seconds, the SDK's own retries included: fsspec runs an
        async file system's call on its event loop and cancels it at the deadline (gcsfs
        retries a dead endpoint six times, about 35 s, and cannot be told fewer)."""
        import inspect

        method = getattr(self.fs, name)
        if getattr(self.fs, "async_impl", False) and inspect.iscoroutinefunction(getattr(method, "__wrapped__", None)):
            kwargs["timeout"] = config.cloud_timeout()
        return method(*args, **kwargs)

    def _p(self, key: str) -> str:
        check_key(key)
        return f"{self._root()}/{key}"

    def _root(self) -> str:
        return f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket

    def _dir(self, prefix: str) -> str:
        return self._p(prefix) if prefix else self._root()

    @contextmanager
    def _translate(self, op: str, key: str = "") -> Iterator[None]:
        """Run the SDK calls of ``op`` on ``key``, turning their errors into modeltrack errors."""
        if op != "list":
            check_key(key)  # a bad key is the caller's ValueError, not a store failure
        where = f"{self.uri}/{key}" if key else self.uri
        try:
            yield
        except (KeyNotFound, StoreError):
            raise
        except FileNotFoundError as exc:
            local = getattr(exc, "filename", None)
            if op in ("upload", "download") and local and os.path.isabs(str(local)):
                raise StoreError(
                    f"{op} of {where} failed on the local file {local} ({exc.strerror or exc}); check that it "
                    f"exists and the disk has room",
                    uri=self.uri,
                ) from exc
            if op in ("read", "download", "check"):
                raise KeyNotFound(key) from exc
            raise StoreError(
                f"{op} of {where} failed: the bucket or container {self.bucket!r} does not exist at "
                f"{self._endpoint()}; create it or fix the store URI",
                uri=self.uri,
            ) from exc
        except OSError as exc:
            # gcsfs answers a 403 with OSError("Forbidden: …"), adlfs with PermissionError.
            if not (isinstance(exc, PermissionError) or str(exc).startswith("Forbidden")):
                raise self._unavailable(exc, op, where) from exc
            if op in _WRITES:
                raise StoreNotWritableError(
                    f"access denied writing {where} ({exc}); the credentials in use may not write under {self.uri}/",
                    uri=self.uri,
                ) from exc
            raise StoreError(f"access denied reading {where} ({exc})", uri=self.uri) from exc
        except (ImportError, NotImplementedError):
            raise
        except Exception as exc:  # every SDK error becomes a StoreError
            if type(exc).__name__ == "FSTimeoutError":
                raise StoreUnavailableError(
                    f"{self._endpoint()} gave no answer to the {op} of {where} within {config.cloud_timeout():g} s "
                    f"(MODELTRACK_CLOUD_TIMEOUT); retry later — a running training keeps its data in the spool, "
                    f"`modeltrack sync` uploads it",
                    uri=self.uri,
                ) from exc
            raise self._unavailable(exc, op, where) from exc

    def _unavailable(self, exc: BaseException, op: str, where: str) -> StoreUnavailableError:
        text = " ".join(str(exc).split())[:300] or type(exc).__name__
        return StoreUnavailableError(
            f"{self._endpoint()} failed {op} of {where} ({type(exc).__name__}: {text}); retry later — a running "
            f"training keeps its data in the spool, `modeltrack sync` uploads it",
            uri=self.uri,
        )

    # ------------------------------------------------------------------ the contract
    def read(self, key: str) -> bytes:
        with self._translate("read", key):
            return bytes(self._call("cat_file", self._p(key)))

    def write(self, key: str, data: bytes) -> None:
        with self._translate("write", key):
            self._call("pipe_file", self._p(key), bytes(data))

    def check_conditional_writes(self) -> None:
        """Make sure the server refuses a create-if-absent write of an existing key (once
        per process, endpoint and bucket).

        Raises:
            StoreError: the server overwrote the probe: numbering would not be safe there.
        """
        ident = (self._endpoint(), self.bucket)
        with _CHECKED_LOCK:
            if ident in _CHECKED:
                return
        probe = f"blobs/probe/{uuid.uuid4().hex}"  # gc removes a leftover one
        honoured = False
        with self._translate("create", probe):
            self._call("pipe_file", self._p(probe), b"1", mode="create")
            try:
                self._call("pipe_file", self._p(probe), b"2", mode="create")
            except FileExistsError:
                honoured = True
            finally:
                self._call("rm_file", self._p(probe))
        if not honoured:
            raise StoreError(
                f"the server behind {self.uri} ({self._endpoint()}) ignores create-if-absent writes, so two writers "
                f"could claim the same version number; use the real service or an emulator that honours them",
                uri=self.uri,
            )
        with _CHECKED_LOCK:
            _CHECKED.add(ident)

    def create(self, key: str, data: bytes) -> bool:
        data = bytes(data)
        self.check_conditional_writes()
        with self._translate("create", key):
            try:
                self._call("pipe_file", self._p(key), data, mode="create")
                return True
            except FileExistsError:
                pass
        # Taken, or an SDK retry after a first attempt that created it and lost the answer
        # (the SDKs do not say which): the value tells. Every value modeltrack creates is
        # unique (a claim carries pid and microsecond time, events a random name), so only
        # this call's own first attempt can have left exactly these bytes.
        try:
            return self.read(key) == data
        except KeyNotFound:
            return False

    def delete(self, key: str) -> None:
        with self._translate("delete", key):
            try:
                self._call("rm_file", self._p(key))
            except FileNotFoundError:
                pass

    def _info(self, key: str) -> dict[str, Any] | None:
        with self._translate("check", key):
            try:
                info = self._call("info", self._p(key))
            except FileNotFoundError:
                return None
        return dict(info) if info.get("type") == "file" else None

    def exists(self, key: str) -> bool:
        return self._info(key) is not None

    def size(self, key: str) -> int:
        info = self._info(key)
        if info is None:
            raise KeyNotFound(key)
        return int(info["size"])

    def modified(self, key: str) -> float | None:
        info = self._info(key)
        if info is None:
            return None
        for name in ("mtime", "last_modified", "updated"):
            when = info.get(name)
            if isinstance(when, datetime):
                return when.timestamp()
            if isinstance(when, str):
                try:
                    return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    continue
        return None

    def touch(self, key: str) -> bool:
        """Refresh the object's modification time server-side (no data goes through this
        process), so that gc's grace period protects a blob being re-used."""
        if self._info(key) is None:
            return False
        with self._translate("write", key):
            try:
                self._refresh(self._p(key))
            except FileNotFoundError:
                return False
        return True

    def _refresh(self, path: str) -> None:
        self._call("setxattrs", path, **self._touch_metadata())

    def _touch_metadata(self) -> dict[str, str]:
        return {"modeltrack_touched": f"{time.time():.6f}"}

    def list(self, prefix: str) -> list[str]:
        base = self._dir(prefix)
        with self._translate("list", prefix):
            try:
                entries = self._call("ls", base, detail=True, refresh=True)
            except FileNotFoundError:
                return []
        names = set()
        for entry in entries:
            name = str(entry["name"]).rstrip("/")
            if name.startswith(base + "/"):
                rest = name[len(base) + 1 :]
                if rest and "/" not in rest:
                    names.add(rest)
        return sorted(names)

    def walk(self, prefix: str) -> Iterator[str]:
        base = self._dir(prefix)
        root = self._root()
        with self._translate("list", prefix):
            try:
                found = self.fs.find(base, withdirs=False)  # a whole tree: as long as it takes
            except FileNotFoundError:
                found = []
        keys = [str(p)[len(root) + 1 :] for p in found if str(p).startswith(base + "/")]
        yield from sorted(k for k in keys if k and not k.endswith("/"))

    def put_file(
        self,
        key: str,
        src: str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Upload local file ``src`` to ``key`` (published whole once the upload completes)."""
        callback = _Progress(progress) if progress is not None else None
        with self._translate("upload", key):
            if callback is not None:
                self.fs.put_file(str(src), self._p(key), callback=callback)
            else:
                self.fs.put_file(str(src), self._p(key))

    def get_file(self, key: str, dst: str | os.PathLike[str]) -> None:
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(dst)
        try:
            with self._translate("download", key):
                self.fs.get_file(self._p(key), str(tmp))
            if not tmp.is_file():
                raise KeyNotFound(key)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)

    def check_writable(self) -> None:
        """Check bucket, credentials and the create-if-absent writes numbering needs (the
        probe is written and removed)."""
        with self._translate("list", ""):
            if not self._call("exists", self.bucket):
                raise FileNotFoundError(self.bucket)
        self.check_conditional_writes()


class _Progress:
    """An fsspec callback that reports byte deltas to a ``progress(n)`` function."""

    def __init__(self, progress: Callable[[int], None]) -> None:
        self.progress = progress
        self.value = 0
        self.size: int | None = None

    def set_size(self, size: int | None) -> None:
        self.size = size

    def relative_update(self, inc: int = 1) -> None:
        self.value += inc
        self.progress(inc)

    def absolute_update(self, value: int) -> None:
        self.relative_update(value - self.value)

    def call(self, *args: Any, **kwargs: Any) -> None:
        pass

    def branched(self, *args: Any, **kwargs: Any) -> None:
        return None

    def branch_coro(self, fn: Any) -> Any:
        return fn


class GCSStore(FsspecStore):
    """A store under ``gs://bucket/prefix`` (gcsfs, the GCS JSON API)."""

    KIND = "Google Cloud Storage"
    SCHEMES = ("gs", "gcs")
    EXTRA = "gcs"
    CONFIG_VARS = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")

    def _make_fs(self) -> Any:
        # gcsfs.core's class, not the package's default: that one first asks a gRPC endpoint
        # whether the bucket is zonal, which costs a minute against anything but Google.
        import logging

        from gcsfs.core import GCSFileSystem

        # gcsfs logs a traceback for every request it gives up on; the error itself reaches
        # the caller as one StoreError line. (Handlers the application configures still get it.)
        logging.getLogger("gcsfs").addHandler(logging.NullHandler())

        kwargs: dict[str, Any] = {}
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            kwargs["token"] = "anon"
        return GCSFileSystem(
            skip_instance_cache=True, use_listings_cache=False, requests_timeout=READ_TIMEOUT, **kwargs
        )

    def _refresh(self, path: str) -> None:
        # A server-side rewrite onto itself (a new generation, same bytes): the object's
        # "updated" time then moves on every server (a metadata patch does not on all emulators).
        self._call("copy", path, path)

    def _endpoint(self) -> str:
        return os.environ.get("STORAGE_EMULATOR_HOST") or "https://storage.googleapis.com"


class AzureStore(FsspecStore):
    """A store under ``az://container/prefix`` (adlfs, Azure Blob Storage)."""

    KIND = "Azure Blob Storage"
    SCHEMES = ("az", "abfs")
    EXTRA = "azure"
    CONFIG_VARS = (
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_STORAGE_ACCOUNT_URL",
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
    )

    def _make_fs(self) -> Any:
        from adlfs import AzureBlobFileSystem

        fs = AzureBlobFileSystem(
            skip_instance_cache=True,
            use_listings_cache=False,
            connection_timeout=CONNECT_TIMEOUT,
            read_timeout=AZURE_READ_TIMEOUT,
        )
        # The Azure SDK's default retries wait 15 s, then 18 s, then 24 s: 80 s before a dead
        # endpoint is an error. adlfs does not pass retry settings on, so the policy object
        # of its client is tuned in place (2 retries, 1 s then 2 s), where it has that shape.
        policy = getattr(getattr(getattr(fs, "service_client", None), "_config", None), "retry_policy", None)
        if policy is not None and hasattr(policy, "initial_backoff") and hasattr(policy, "increment_base"):
            policy.initial_backoff, policy.increment_base = 1, 2
            for name in ("total_retries", "connect_retries", "read_retries", "status_retries"):
                if isinstance(getattr(policy, name, None), int):
                    setattr(policy, name, min(getattr(policy, name), 2))
        return fs

    def _touch_metadata(self) -> dict[str, str]:
        # Azure replaces the whole metadata; adlfs marks its files with is_directory=false.
        return {"is_directory": "false", **super()._touch_metadata()}

    def _endpoint(self) -> str:
        client = getattr(self._fs, "service_client", None)
        url = str(getattr(client, "url", "") or "").split("?", 1)[0]  # never a SAS token
        name = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        return url.rstrip("/") or (f"https://{name}.blob.core.windows.net" if name else "Azure Blob Storage")
