"""The S3 store: one object per key in ``s3://BUCKET/PREFIX``, on AWS or any S3-compatible
server (MinIO, Ceph, …), through boto3.

Guarantees, as on the local store:

* ``write`` is one ``PutObject`` and ``put_file`` a (multipart) upload: S3 publishes an
  object only when it is complete, so readers never see part of one.
* ``create`` is ``PutObject`` with ``If-None-Match: *``; the server decides the race, so
  of many writers on many machines exactly one creates a key (412 ``PreconditionFailed``
  and 409 ``ConditionalRequestConflict`` both mean "taken").
* ``put_file`` uploads with ``ChecksumAlgorithm=CRC32`` (the server checks every part),
  records the file's SHA-256 in the object's metadata and compares size and checksum
  afterwards.

Credentials, region and endpoint come from the standard AWS configuration (environment,
``~/.aws/config``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``…); modeltrack never writes them.
Every botocore error is translated into a :class:`~modeltrack.errors.StoreError` in one
place, :meth:`S3Store._translate`.

Example:
    >>> store = open_store("s3://ml-models/team-a")        # doctest: +SKIP
    >>> store.create("models/churn/versions/1/claim.json", b"{}")
    True
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bex
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from .. import config
from ..errors import KeyNotFound, StoreError, StoreNotWritableError, StoreUnavailableError
from .base import CHUNK, Store, check_key, file_sha256

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict"}
_CONDITIONAL_CHECKED: set[tuple[str, str]] = set()
_CONDITIONAL_LOCK = threading.Lock()
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
}
_DENIED = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden"}
_TRANSIENT = {
    "InternalError",
    "ServiceUnavailable",
    "SlowDown",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "500",
    "502",
    "503",
    "504",
    "Throttling",
    "ThrottlingException",
}
_OFFLINE = (
    bex.EndpointConnectionError,
    bex.ConnectTimeoutError,
    bex.ReadTimeoutError,
    bex.ConnectionClosedError,
    bex.ProxyConnectionError,
    bex.ResponseStreamingError,
    bex.IncompleteReadError,
    bex.HTTPClientError,
    bex.ConnectionError,
)
_WRITES = ("write", "create", "delete", "upload")

_CLIENTS: dict[tuple[Any, ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client_key() -> tuple[Any, ...]:
    """What decides which client to use: the process and the AWS settings in the environment."""
    env = os.environ
    names = (
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    )
    # Hash the values so that no secret is kept in a plain dict key.
    digest = hashlib.sha256("\0".join(env.get(n, "") for n in names).encode()).hexdigest()
    return (os.getpid(), digest)


def s3_client() -> Any:
    """A boto3 S3 client for the current AWS configuration (shared within a process).

    Clients are thread-safe and slow to create, so one is kept per set of AWS settings;
    a forked child gets its own (connection pools do not survive ``fork``).
    """
    key = _client_key()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            cfg = Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=max(10, config.s3_concurrency() + 2),
            )
            client = boto3.session.Session().client("s3", config=cfg)
            _CLIENTS[key] = client
        return client


class S3Store(Store):
    """A store under ``s3://bucket/prefix``.

    Args:
        bucket: the bucket (it must exist; modeltrack does not create buckets).
        prefix: the folder inside the bucket that holds the store ("" for the whole bucket).
        client: a boto3 S3 client (default: one built from the standard AWS configuration).

    Raises:
        StoreError: the bucket name or prefix is invalid.
    """

    #: checksum the server verifies on every part of an upload (botocore's default is CRC32)
    CHECKSUM_ALGORITHM = "CRC32"

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        prefix = prefix.strip("/")
        uri = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if not _BUCKET_RE.match(bucket) or ".." in bucket:
            raise StoreError(
                f"{uri}: {bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, '.' or '-'); "
                f"use s3://BUCKET/PREFIX",
                uri=uri,
            )
        if prefix:
            try:
                check_key(prefix)
            except ValueError:
                raise StoreError(
                    f"{uri}: invalid prefix {prefix!r} (no empty, '.' or '..' parts); use s3://BUCKET/PREFIX",
                    uri=uri,
                ) from None
        self.bucket = bucket
        self.prefix = prefix
        self.uri = uri
        self._client = client

    @classmethod
    def from_uri(cls, uri: str) -> S3Store:
        """The store named by ``s3://BUCKET[/PREFIX]``.

        Raises:
            StoreError: the URI is malformed or carries credentials.
        """
        if not uri.lower().startswith("s3://"):
            raise StoreError(f"{uri!r} is not an s3:// URI", uri=uri)
        rest = uri[5:]
        bucket, _, prefix = rest.partition("/")
        if "@" in bucket:
            from ..sync import strip_credentials

            raise StoreError(
                f"{strip_credentials(uri)}: credentials in the store URI are not supported (they would end up "
                f"in logs); use AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                uri=strip_credentials(uri),
            )
        if "?" in rest or "#" in rest:
            raise StoreError(
                f"{uri}: query strings are not supported; set the region and endpoint with AWS_REGION and "
                f"AWS_ENDPOINT_URL",
                uri=uri,
            )
        if not bucket:
            raise StoreError(f"{uri!r} names no bucket; use s3://BUCKET/PREFIX", uri=uri)
        return cls(bucket, prefix)

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def _k(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _dir(self, prefix: str) -> str:
        """The S3 prefix (ending in ``/``) that holds the children of store prefix ``prefix``."""
        if prefix:
            return self._k(prefix) + "/"
        return f"{self.prefix}/" if self.prefix else ""

    def _endpoint(self) -> str:
        try:
            return str(self.client.meta.endpoint_url)
        except Exception:  # noqa: BLE001 - only used in messages
            return "the S3 endpoint"

    @contextmanager
    def _translate(self, op: str, key: str = "") -> Iterator[None]:
        """Turn every boto3/botocore error of ``op`` on ``key`` into a modeltrack error.

        ``op`` is one of read, write, create, delete, list, upload, download, check.
        """
        try:
            yield
        except S3UploadFailedError as exc:
            cause = exc.__context__
            if isinstance(cause, bex.ClientError):
                raise self._client_error(cause, op, key) from exc
            raise StoreError(f"upload of {key} to {self.uri} failed: {exc}", uri=self.uri) from exc
        except bex.ClientError as exc:
            raise self._client_error(exc, op, key) from exc
        except (
            bex.NoCredentialsError,
            bex.PartialCredentialsError,
            bex.CredentialRetrievalError,
            bex.ProfileNotFound,
        ) as exc:
            raise StoreError(
                f"no usable AWS credentials for {self.uri} ({exc}); set AWS_PROFILE or "
                f"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws configure`",
                uri=self.uri,
            ) from exc
        except _OFFLINE as exc:
            raise StoreUnavailableError(
                f"cannot reach {self._endpoint()} for {self.uri} ({type(exc).__name__}); check the network and "
                f"AWS_ENDPOINT_URL — a running training keeps its data in the spool, `modeltrack sync` uploads it",
                uri=self.uri,
            ) from exc
        except bex.BotoCoreError as exc:
            raise StoreError(f"{op} of {key or self.uri} failed: {exc}", uri=self.uri) from exc

    def _client_error(self, exc: bex.ClientError, op: str, key: str) -> StoreError:
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = err.get("Message") or code
        where = f"{self.uri}/{key}" if key else self.uri
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {self.bucket!r} does not exist at {self._endpoint()} (store {self.uri}); create it "
                f"(`aws s3 mb s3://{self.bucket}`) or fix the store URI / AWS_ENDPOINT_URL",
                uri=self.uri,
            )
        if code in _NOT_FOUND and op in ("read", "download", "check"):
            return KeyNotFound(key)
        if code in _BAD_CREDENTIALS:
            return StoreError(
                f"{self._endpoint()} rejected the AWS credentials for {self.uri} ({code}: {message}); check "
                f"AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                uri=self.uri,
            )
        if code in _DENIED:
            if op in _WRITES or op == "check":
                return StoreNotWritableError(
                    f"access denied writing {where} ({code}); the AWS credentials in use may not write under "
                    f"{self.uri}/ — grant s3:PutObject (and s3:DeleteObject) on it or use another prefix",
                    uri=self.uri,
                )
            return StoreError(
                f"access denied reading {where} ({code}); the AWS credentials in use may not read {self.uri} — "
                f"grant s3:GetObject and s3:ListBucket on it",
                uri=self.uri,
            )
        if code in _TRANSIENT or (isinstance(status, int) and status >= 500):
            return StoreUnavailableError(
                f"{self._endpoint()} failed {op} of {where} ({code}: {message}); retry later — "
                f"`modeltrack sync` uploads what a training run spooled",
                uri=self.uri,
            )
        return StoreError(f"S3 {op} of {where} failed ({code}: {message})", uri=self.uri)

    # ------------------------------------------------------------------ the contract
    def read(self, key: str) -> bytes:
        with self._translate("read", key):
            resp = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
            return bytes(resp["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        with self._translate("write", key):
            self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=bytes(data))

    def check_conditional_writes(self) -> None:
        """Make sure the server honours ``If-None-Match: *`` (once per process and bucket).

        A server that ignores it would let two writers claim the same version number, so
        modeltrack refuses to use it rather than numbering unsafely.

        Raises:
            StoreError: the server overwrote an existing key despite ``If-None-Match: *``.
        """
        ident = (str(self.client.meta.endpoint_url), self.bucket)
        with _CONDITIONAL_LOCK:
            if ident in _CONDITIONAL_CHECKED:
                return
        import uuid

        probe = self._k(f"blobs/probe/{uuid.uuid4().hex}")  # gc removes a leftover one
        honoured = False
        with self._translate("create", "blobs/probe"):
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"1", IfNoneMatch="*")
            try:
                self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"2", IfNoneMatch="*")
            except bex.ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code not in _TAKEN and status not in (409, 412):
                    raise
                honoured = True
            finally:
                self.client.delete_object(Bucket=self.bucket, Key=probe)
        if not honoured:
            raise StoreError(
                f"the server behind {self.uri} ignores conditional writes (If-None-Match: *), so two "
                f"writers could claim the same version number; use AWS S3 or a server that supports "
                f"them (e.g. MinIO from 2024 on)",
                uri=self.uri,
            )
        with _CONDITIONAL_LOCK:
            _CONDITIONAL_CHECKED.add(ident)

    def create(self, key: str, data: bytes) -> bool:
        data = bytes(data)
        self.check_conditional_writes()
        with self._translate("create", key):
            try:
                self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, IfNoneMatch="*")
                return True
            except bex.ClientError as exc:
                meta = exc.response.get("ResponseMetadata", {})
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in _TAKEN and meta.get("HTTPStatusCode") not in (409, 412):
                    raise
                retried = bool(meta.get("RetryAttempts"))
        if retried:
            # botocore resent the PUT: the first attempt may have created the key and lost
            # the answer. The value (a claim with pid and microsecond time) tells.
            try:
                return self.read(key) == data
            except KeyNotFound:
                return False
        return False

    def delete(self, key: str) -> None:
        with self._translate("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete several keys with ``DeleteObjects`` (1000 per request)."""
        batch = [self._k(k) for k in keys]
        for i in range(0, len(batch), 1000):
            part = batch[i : i + 1000]
            with self._translate("delete", part[0]):
                resp = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in part], "Quiet": True}
                )
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                raise self._client_error(
                    bex.ClientError(
                        {"Error": {"Code": first.get("Code"), "Message": first.get("Message")}}, "DeleteObjects"
                    ),
                    "delete",
                    first.get("Key", ""),
                )

    def exists(self, key: str) -> bool:
        try:
            with self._translate("check", key):
                self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except KeyNotFound:
            return False

    def head(self, key: str) -> dict[str, Any] | None:
        """``{"size": int, "sha256": str|None}`` of ``key`` (from its metadata), None if absent."""
        try:
            with self._translate("check", key):
                resp = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except KeyNotFound:
            return None
        return {"size": int(resp.get("ContentLength", 0)), "sha256": (resp.get("Metadata") or {}).get("sha256")}

    def list(self, prefix: str) -> list[str]:
        start = self._dir(prefix)
        names: set[str] = set()
        with self._translate("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, Delimiter="/"
            )
            for page in pages:
                for cp in page.get("CommonPrefixes") or []:
                    name = cp["Prefix"][len(start) :].rstrip("/")
                    if name:
                        names.add(name)
                for obj in page.get("Contents") or []:
                    name = obj["Key"][len(start) :]
                    if name:
                        names.add(name)
        return sorted(names)

    def walk(self, prefix: str) -> Iterator[str]:
        start = self._dir(prefix)
        base = self._dir("")
        keys: list[str] = []
        with self._translate("list", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
                keys.extend(obj["Key"][len(base) :] for obj in page.get("Contents") or [])
        yield from sorted(k for k in keys if k and not k.endswith("/"))

    def put_file(
        self,
        key: str,
        src: str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Upload local file ``src`` to ``key``: multipart above ``MODELTRACK_S3_PART_SIZE``,
        every part checked by the server (CRC32), then size and SHA-256 metadata compared.

        Args:
            key: store key.
            src: local file.
            sha256: the file's hex SHA-256 if already known (saves reading it twice).
            progress: called with the number of bytes sent, as they are sent.

        Raises:
            StoreError: the upload failed or the object does not match the file.
        """
        path = Path(src)
        if sha256 is None:
            sha256, size = file_sha256(path)
        else:
            size = path.stat().st_size
        part = config.s3_part_size()
        transfer = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=config.s3_concurrency()
        )
        extra = {"ChecksumAlgorithm": self.CHECKSUM_ALGORITHM, "Metadata": {"sha256": sha256}}
        with self._translate("upload", key):
            self.client.upload_file(
                str(path), self.bucket, self._k(key), ExtraArgs=extra, Config=transfer, Callback=progress
            )
        got = self.head(key)
        if got is None or got["size"] != size or got["sha256"] != sha256:
            raise StoreError(
                f"upload of {key} to {self.uri} did not verify (expected {size} bytes with SHA-256 "
                f"{sha256[:12]}…, found {got}); it will be retried",
                uri=self.uri,
            )

    def get_file(self, key: str, dst: str | os.PathLike[str]) -> None:
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with self._translate("download", key):
                try:
                    self.client.download_file(self.bucket, self._k(key), str(tmp))
                except bex.ClientError as exc:
                    # download_file HEADs first, and a HEAD of an absent key answers a bare 404.
                    if str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND:
                        raise KeyNotFound(key) from None
                    raise
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        got = self.head(key)
        if got is None:
            raise KeyNotFound(key)
        return int(got["size"])

    def sha256(self, key: str) -> str:
        """Hex SHA-256 of the content, computed from the bytes read back (what ``verify`` needs)."""
        h = hashlib.sha256()
        with self._translate("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=self._k(key))["Body"]
            for block in body.iter_chunks(CHUNK):
                h.update(block)
        return h.hexdigest()

    def check_writable(self) -> None:
        """Check the bucket, the credentials and write permission on the prefix, writing nothing.

        A listing proves bucket and credentials; starting a multipart upload (aborted at
        once, it never becomes an object) needs the same ``s3:PutObject`` right as a write.

        Raises:
            StoreError, StoreNotWritableError, StoreUnavailableError: with what to fix.
        """
        with self._translate("list"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._dir(""), MaxKeys=1)
        probe = self._k(f".modeltrack-probe-{os.getpid()}-{threading.get_ident()}")
        with self._translate("check", probe.rsplit("/", 1)[-1]):
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=probe)
        try:
            with self._translate("delete", probe):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=probe, UploadId=upload["UploadId"])
        except StoreError:
            # Writing is allowed, which is what was asked; an upload left open is invisible
            # and bucket lifecycle rules expire it.
            pass

    def writer(self) -> Store:
        """A spooling writer: writes land in a local spool and are uploaded in the background."""
        from ..spool import SpoolingStore

        return SpoolingStore(self)
