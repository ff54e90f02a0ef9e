"""The S3 store: one object per key in ``s3://BUCKET/PREFIX``, on AWS or any S3-compatible
server (MinIO, Ceph, …), through boto3.

Guarantees, as on the local store:

* ``write`` is one ``PutObject`` and ``put_file`` a (multipart) upload: S3 publishes an
  object only when it is complete, so readers never see part of one.
* ``create`` is ``PutObject`` with ``If-None-Match: *``; the server decides the race, so
  of many writers on many machines exactly one creates a key (412 ``PreconditionFailed``
  and 409 ``ConditionalRequestConflict`` both mean "taken").
* ``put_file`` reads the file once: parallel multipart parts, each sent with a CRC32 the
  server checks (``ChecksumAlgorithm=CRC32``), the file's SHA-256 recorded in the object's
  metadata (hashed on the way when not given, through a staging key and a server-side
  copy); nothing is read back to verify. A failed upload is aborted.

Credentials, region and endpoint come from the standard AWS configuration (environment,
``~/.aws/config``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``…); modeltrack never writes them.
Every boto3/botocore/urllib3 error is translated into a :class:`~modeltrack.errors.StoreError`
in one place, :meth:`S3Store._translate`.

Nothing waits on the endpoint without bound: each request has a connect timeout
(``MODELTRACK_S3_CONNECT_TIMEOUT``, 5 s), a read timeout (``MODELTRACK_S3_READ_TIMEOUT``,
10 s; ``MODELTRACK_S3_TRANSFER_TIMEOUT``, 60 s, per part of a file transfer) and
``MODELTRACK_S3_RETRIES`` (2) retries, so an endpoint that accepts connections and never
answers costs a small request about 30 s; after that the store answers
:class:`~modeltrack.errors.StoreUnavailableError` at once, letting one probe at a time
through, until the endpoint answers again. File transfers run on daemon threads, so a
transfer hung at exit does not keep a finished process alive.

Example:
    >>> store = open_store("s3://ml-models/team-a")        # doctest: +SKIP
    >>> store.create("models/churn/versions/1/claim.json", b"{}")
    True
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bex
import urllib3.exceptions as u3exc
from boto3.exceptions import Boto3Error, S3UploadFailedError
from boto3.s3.transfer import S3Transfer, TransferConfig
from botocore.config import Config
from s3transfer.futures import BaseExecutor
from s3transfer.manager import TransferManager

from .. import config
from ..errors import KeyNotFound, StoreError, StoreNotWritableError, StoreUnavailableError
from ..files import temp_path
from ..secrets import strip_credentials
from .base import CHUNK, Store, check_key

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
    u3exc.HTTPError,
)
_TIMEOUTS = (bex.ConnectTimeoutError, bex.ReadTimeoutError, u3exc.TimeoutError, TimeoutError)
_WRITES = ("write", "create", "delete", "upload")

#: where uploads whose SHA-256 is not known in advance go before their server-side copy
#: (under ``blobs/`` so that gc removes one a killed process left, never named like a blob)
STAGING = "blobs/staging"
_COPY_MAX = 5 * 1024**3  # the largest object one CopyObject copies
#: most bytes of one upload held in memory at once (parts read, not yet sent)
_IN_FLIGHT = 256 * 1024 * 1024
_MAX_PARTS = 10000
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

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


def _part_size(size: int) -> int:
    """The part size for a file of ``size`` bytes: ``MODELTRACK_S3_PART_SIZE`` (8 MiB),
    grown when S3's 10,000-part limit needs it."""
    part = config.s3_part_size()
    return max(part, -(-size // _MAX_PARTS))


def _answered(exc: BaseException) -> bool:
    """Whether the endpoint can be asked to clean up after ``exc`` at once (it answered, or
    the failure was local); after a timeout or a broken connection it is not asked again
    (an unfinished upload is invisible; a staging object is left to gc)."""
    return not isinstance(exc, (*_OFFLINE, *_TIMEOUTS, KeyboardInterrupt))


def _timeouts() -> tuple[float, float, float, int]:
    """The connect, small-request read and transfer read timeouts, and the retries."""
    return (config.s3_connect_timeout(), config.s3_read_timeout(), config.s3_transfer_timeout(), config.s3_retries())


def s3_client(*, transfer: bool = False) -> Any:
    """A boto3 S3 client for the current AWS configuration (shared within a process).

    Every request is bounded: ``MODELTRACK_S3_CONNECT_TIMEOUT`` to connect,
    ``MODELTRACK_S3_READ_TIMEOUT`` for an answer (``MODELTRACK_S3_TRANSFER_TIMEOUT`` per part
    on the ``transfer`` client, used for file uploads and downloads), and
    ``MODELTRACK_S3_RETRIES`` retries in botocore's standard mode. Clients are thread-safe
    and slow to create, so one is kept per set of settings; a forked child gets its own
    (connection pools do not survive ``fork``).
    """
    connect, read, transfer_read, retries = _timeouts()
    key = (*_client_key(), connect, read, transfer_read, retries, transfer)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            cfg = Config(
                retries={"max_attempts": retries, "mode": "standard"},
                connect_timeout=connect,
                read_timeout=transfer_read if transfer else read,
                max_pool_connections=max(10, config.s3_concurrency() + 2, config.list_concurrency() + 2),
            )
            client = boto3.session.Session().client("s3", config=cfg)
            # No "Expect: 100-continue": botocore reads the interim answer's headers in a loop
            # that spins for ever when the connection is cut right after "100 Continue" (seen
            # behind a cutting proxy). The body then simply follows the headers.
            client.meta.events.register_last("before-send.s3", _drop_expect_header)
            _CLIENTS[key] = client
        return client


def _drop_expect_header(request: Any, **_kwargs: Any) -> None:
    # "Expect" is never signed (SigV4 leaves it out), so removing it keeps the signature valid.
    request.headers.pop("Expect", None)


class _DaemonExecutor(BaseExecutor):
    """The thread pool of s3transfer, with daemon threads.

    ``concurrent.futures.ThreadPoolExecutor`` (boto3's default) makes the interpreter wait at
    exit for the request each worker is running: a part upload hung on an endpoint that
    stopped answering kept a finished training process alive for minutes. Daemon threads
    end with the process; what they were uploading stays in the spool for ``sync``.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self._max = max(1, max_workers or 1)
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._tasks.put((future, fn, args, kwargs))
        with self._lock:
            if len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name="modeltrack-s3-transfer", daemon=True)
                self._threads.append(t)
                t.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._tasks.put(None)
        if wait:
            for t in threads:
                t.join()


def _transfer(client: Any, cfg: TransferConfig) -> S3Transfer:
    """boto3's ``S3Transfer`` (what ``client.upload_file`` uses), on daemon threads."""
    return S3Transfer(manager=TransferManager(client, cfg, executor_cls=_DaemonExecutor))


class _Health:
    """Whether the endpoint answers, so that a store that stopped answering is not waited
    on again and again (one per :class:`S3Store`).

    A small request that times out (after botocore's retries), or one still unanswered
    after a full attempt, marks the endpoint *down*. While it is down, one request at a
    time (the *probe*, at most every ``cooldown`` seconds) goes to the network and every
    other fails at once with :class:`StoreUnavailableError`; any answer of the server
    marks it up again.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.reason = ""
        self.probe_at = 0.0
        self.probing: int | None = None
        self.inflight: dict[int, float] = {}  # token -> start of small requests in flight
        self._tokens = 0

    def enter(self, small: bool, patience: float) -> tuple[int, str | None]:
        """Register a request; returns its token and, if it must not be sent, why."""
        now = time.monotonic()
        with self.lock:
            self._tokens += 1
            token = self._tokens
            if self.down_since is None:
                stuck = [t for t in self.inflight.values() if now - t > patience]
                if stuck:
                    self.down_since = min(stuck)
                    self.reason = f"a request has waited {now - min(stuck):.0f} s for an answer"
                    self.probe_at = now + patience
            if self.down_since is not None:
                if self.probing is not None or now < self.probe_at:
                    return token, f"it has not answered for {now - self.down_since:.0f} s ({self.reason})"
                self.probing = token
            if small:
                self.inflight[token] = now
            return token, None

    def leave(self, token: int, outcome: str | None, cooldown: float) -> None:
        """``outcome``: None (the server answered), "timeout", or "other" (nothing learnt)."""
        now = time.monotonic()
        with self.lock:
            self.inflight.pop(token, None)
            probe = self.probing == token
            if probe:
                self.probing = None
            if outcome is None:
                self.down_since = None
            elif outcome == "timeout":
                if self.down_since is None:
                    self.down_since = now
                    self.reason = "a request timed out"
                self.probe_at = now + cooldown


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
    #: declared capability for the spool: :meth:`head` answers size and SHA-256 in one request,
    #: and :meth:`put_file` takes ``sha256=`` and ``progress=``
    is_remote = True
    supports_head = True
    supports_batch_delete = True

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
        self._health = _Health()

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
        """The client for small requests (``MODELTRACK_S3_READ_TIMEOUT``)."""
        return self._client if self._client is not None else s3_client()

    @property
    def transfer_client(self) -> Any:
        """The client for file transfers (``MODELTRACK_S3_TRANSFER_TIMEOUT`` per part)."""
        return self._client if self._client is not None else s3_client(transfer=True)

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
        """Run the boto3 calls of ``op`` on ``key``, turning every boto3, botocore, s3transfer,
        urllib3 and socket error into a modeltrack error (``raise … from exc``).

        ``op`` is one of read, write, create, delete, list, upload, download, check. While
        the endpoint does not answer (see :class:`_Health`) the call fails at once.
        """
        connect, read, _, retries = _timeouts()
        where = f"{self.uri}/{key}" if key else self.uri
        token, refused = self._health.enter(op not in ("upload", "download", "list"), connect + read)
        if refused is not None:
            raise StoreUnavailableError(
                f"{self._endpoint()} is not answering, so {op} of {where} was not tried: {refused}; check the "
                f"network and AWS_ENDPOINT_URL — a running training keeps its data in the spool, "
                f"`modeltrack sync` uploads it",
                uri=self.uri,
            )
        outcome: str | None = "other"
        try:
            yield
            outcome = None
        except S3UploadFailedError as exc:
            cause = exc.__context__
            if isinstance(cause, bex.ClientError):
                outcome = None
                raise self._client_error(cause, op, key) from exc
            if isinstance(cause, _TIMEOUTS):
                outcome = "timeout"
                raise self._timeout_error(cause, op, where, connect, read, retries) from exc
            raise StoreUnavailableError(
                f"upload of {key} to {self.uri} failed: {exc}; it stays spooled and is retried", uri=self.uri
            ) from exc
        except bex.ClientError as exc:
            outcome = None  # the server answered
            raise self._client_error(exc, op, key) from exc
        except KeyNotFound:
            outcome = None
            raise
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
        except _TIMEOUTS as exc:
            outcome = "timeout"
            raise self._timeout_error(exc, op, where, connect, read, retries) from exc
        except _OFFLINE as exc:
            raise StoreUnavailableError(
                f"cannot reach {self._endpoint()} for {self.uri} ({type(exc).__name__}); check the network and "
                f"AWS_ENDPOINT_URL — a running training keeps its data in the spool, `modeltrack sync` uploads it",
                uri=self.uri,
            ) from exc
        except bex.BotoCoreError as exc:
            raise StoreError(f"{op} of {where} failed: {exc}", uri=self.uri) from exc
        except Boto3Error as exc:
            raise StoreUnavailableError(
                f"{op} of {where} failed ({type(exc).__name__}: {exc}); retry later — `modeltrack sync` uploads "
                f"what a training run spooled",
                uri=self.uri,
            ) from exc
        except OSError as exc:
            if op in ("upload", "download") and getattr(exc, "filename", None):
                raise StoreError(
                    f"{op} of {where} failed on the local file {exc.filename} ({exc.strerror or exc}); check "
                    f"that it exists and the disk has room",
                    uri=self.uri,
                ) from exc
            raise StoreUnavailableError(
                f"connection to {self._endpoint()} for {self.uri} failed ({type(exc).__name__}: {exc}); check the "
                f"network and AWS_ENDPOINT_URL — a running training keeps its data in the spool, "
                f"`modeltrack sync` uploads it",
                uri=self.uri,
            ) from exc
        finally:
            self._health.leave(token, outcome, read)

    def _incomplete(self, op: str, key: str) -> StoreUnavailableError:
        """A 200 answer that lost its headers or body on the way (a connection cut in the
        middle of the headers reads as a bare, empty success)."""
        where = f"{self.uri}/{key}" if key else self.uri
        return StoreUnavailableError(
            f"{self._endpoint()} sent an incomplete answer to {op} of {where} (the connection broke off); "
            f"retry later, and check the network or proxy in between",
            uri=self.uri,
        )

    def _check_page(self, page: dict[str, Any], prefix: str) -> None:
        # Every ListObjectsV2 answer says IsTruncated: a page without it was cut short, and
        # taking it for an empty listing could make gc believe that nothing is referenced.
        if "IsTruncated" not in page:
            raise self._incomplete("list", prefix)

    def _timeout_error(
        self, exc: BaseException, op: str, where: str, connect: float, read: float, retries: int
    ) -> StoreUnavailableError:
        transfer = op in ("upload", "download")
        if isinstance(exc, (bex.ConnectTimeoutError, u3exc.ConnectTimeoutError)):
            what, limit, setting = "accept a connection", connect, "MODELTRACK_S3_CONNECT_TIMEOUT"
        elif transfer:
            what, limit, setting = "answer", config.s3_transfer_timeout(), "MODELTRACK_S3_TRANSFER_TIMEOUT"
        else:
            what, limit, setting = "answer", read, "MODELTRACK_S3_READ_TIMEOUT"
        tries = f"{retries + 1} attempts" if retries else "1 attempt"
        return StoreUnavailableError(
            f"{self._endpoint()} did not {what} within {limit:g} s ({tries}) for {op} of {where}; check the "
            f"network and AWS_ENDPOINT_URL, or raise {setting} / MODELTRACK_S3_RETRIES — a running training "
            f"keeps its data in the spool, `modeltrack sync` uploads it",
            uri=self.uri,
        )

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
            data = bytes(resp["Body"].read())
            if not data and "ContentLength" not in resp:
                raise self._incomplete("read", key)
            return data

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
                if "ContentLength" not in resp:
                    raise self._incomplete("check", key)
        except KeyNotFound:
            return None
        return {"size": int(resp["ContentLength"]), "sha256": (resp.get("Metadata") or {}).get("sha256")}

    def modified(self, key: str) -> float | None:
        """The object's ``LastModified`` (epoch seconds), None if absent."""
        try:
            with self._translate("check", key):
                resp = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except KeyNotFound:
            return None
        when = resp.get("LastModified")
        return when.timestamp() if when is not None else None

    def touch(self, key: str) -> bool:
        """Refresh ``LastModified`` by copying the object onto itself (a server-side copy,
        metadata kept), so that gc's grace period protects a blob being re-used."""
        try:
            with self._translate("check", key):
                head = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except KeyNotFound:
            return False
        if int(head.get("ContentLength") or 0) > 5 * 1024**3:
            return True  # too large for one copy request; its age is left as it is
        with self._translate("write", key):
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self._k(key),
                CopySource={"Bucket": self.bucket, "Key": self._k(key)},
                Metadata=head.get("Metadata") or {},
                MetadataDirective="REPLACE",
            )
        return True

    def list(self, prefix: str) -> list[str]:
        start = self._dir(prefix)
        names: set[str] = set()
        with self._translate("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, Delimiter="/"
            )
            for page in pages:
                self._check_page(page, prefix)
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
                self._check_page(page, prefix)
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
        """Upload local file ``src`` to ``key`` in one pass over its bytes.

        A file up to one part is one ``PutObject``; a larger one a multipart upload whose
        parts (``MODELTRACK_S3_PART_SIZE``, default sized for throughput) go up
        ``MODELTRACK_S3_CONCURRENCY`` at a time. Each part is read once: the same bytes are
        hashed (SHA-256, when the caller did not give it) and sent with their CRC32, which
        the server checks, so nothing is read again to verify. The SHA-256 is stored as the
        object's ``sha256`` metadata, which S3 only takes when an upload starts: when it is
        known in advance (the spool hashed its copy) the upload completes straight to
        ``key``, and so it does for a content-addressed key (named by its SHA-256, as blobs
        are), whose upload is completed only if the bytes hash to the name; otherwise it
        goes to a staging key (``blobs/staging/…``, never named like a blob) and is copied
        server-side to ``key`` with the hash, then the staging object is deleted. A failed upload is aborted (its parts are dropped) and its staging
        object deleted; what a killed process left is invisible (an unfinished multipart
        upload) or an unreferenced staging object that ``gc`` removes after its grace period.

        Args:
            key: store key.
            src: local file.
            sha256: the file's hex SHA-256 if already known (it is then not recomputed).
            progress: called with the number of bytes sent, as they are sent.

        Raises:
            StoreError: the upload failed (nothing is published under ``key`` then).
        """
        path = Path(src)
        with self._translate("upload", key):
            size = path.stat().st_size
            part = _part_size(size)
            if size <= part:
                data = path.read_bytes()
                digest = sha256 or hashlib.sha256(data).hexdigest()
                resp = self.transfer_client.put_object(
                    Bucket=self.bucket,
                    Key=self._k(key),
                    Body=data,
                    ChecksumAlgorithm=self.CHECKSUM_ALGORITHM,
                    Metadata={"sha256": digest},
                )
                if "ETag" not in resp:  # a 200 whose headers were cut off: not proof of the upload
                    raise self._incomplete("upload", key)
                if progress is not None:
                    progress(len(data))
                return
            if sha256 is not None:
                self._multipart(self._k(key), path, size, part, sha256, progress)
                return
            named = key.rsplit("/", 1)[-1]
            if _SHA256_HEX.fullmatch(named):
                # A content-addressed key names its hash: upload straight to it, hashing on
                # the way, and complete the upload only if the bytes match the name.
                self._multipart(self._k(key), path, size, part, None, progress, expect=named)
                return
            staging = self._k(f"{STAGING}/{uuid.uuid4().hex}")
            digest = self._multipart(staging, path, size, part, None, progress)
            try:
                self._copy(staging, self._k(key), size, {"sha256": digest})
            except BaseException as exc:
                if _answered(exc):
                    with suppress(Exception):
                        self.client.delete_object(Bucket=self.bucket, Key=staging)
                raise  # else left for gc: a request now would wait out the timeouts again
            with suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=staging)

    def _multipart(
        self,
        s3key: str,
        path: Path,
        size: int,
        part: int,
        sha256: str | None,
        progress: Callable[[int], None] | None,
        *,
        expect: str | None = None,
    ) -> str:
        """Upload ``path`` to ``s3key`` in parts of ``part`` bytes, several at once; returns
        the SHA-256 (``sha256`` if given, else computed from the bytes as they are sent).

        The file is read in order by the calling thread (hashing releases the GIL); each
        part is handed to a daemon worker, with at most ``MODELTRACK_S3_CONCURRENCY`` parts
        (and 256 MiB) in memory. Any failure stops reading, aborts the upload and is raised here.
        """
        client = self.transfer_client
        workers = max(1, min(config.s3_concurrency(), -(-size // part), _IN_FLIGHT // part))
        claimed = sha256 or expect
        meta = {"Metadata": {"sha256": claimed}} if claimed is not None else {}
        upload_id = client.create_multipart_upload(
            Bucket=self.bucket, Key=s3key, ChecksumAlgorithm=self.CHECKSUM_ALGORITHM, **meta
        )["UploadId"]
        hasher = hashlib.sha256() if sha256 is None else None
        slots = threading.BoundedSemaphore(workers)
        failed = threading.Event()
        pool = _DaemonExecutor(workers)
        futures: list[Future[dict[str, Any]]] = []

        def done(fut: Future[dict[str, Any]]) -> None:
            if fut.exception() is not None:
                failed.set()
            slots.release()

        try:
            sent = 0
            with open(path, "rb") as f:
                while not failed.is_set():
                    slots.acquire()
                    data = f.read(part)
                    if not data or failed.is_set():
                        slots.release()
                        break
                    sent += len(data)
                    if hasher is not None:
                        hasher.update(data)
                    fut = pool.submit(self._send_part, client, s3key, upload_id, len(futures) + 1, data, progress)
                    fut.add_done_callback(done)
                    futures.append(fut)
            parts = [fut.result() for fut in futures]  # the first failure is raised here
            if expect is not None and hasher is not None and hasher.hexdigest() != expect:
                raise StoreError(
                    f"{path} does not hash to the name of {self.uri}/{s3key.rsplit('/', 1)[-1]} (SHA-256 "
                    f"{hasher.hexdigest()[:12]}…); nothing was published",
                    uri=self.uri,
                )
            if sent != size:
                raise StoreError(
                    f"{path} changed size while it was uploaded to {self.uri} ({size} bytes, then {sent}); "
                    f"nothing was published, it will be retried",
                    uri=self.uri,
                )
            resp = client.complete_multipart_upload(
                Bucket=self.bucket, Key=s3key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            if "ETag" not in resp:
                raise self._incomplete("upload", s3key)
        except BaseException as exc:
            failed.set()
            if _answered(exc):
                with suppress(Exception):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3key, UploadId=upload_id)
            raise
        finally:
            pool.shutdown(wait=False)
        return hasher.hexdigest() if hasher is not None else str(sha256)

    def _send_part(
        self,
        client: Any,
        s3key: str,
        upload_id: str,
        number: int,
        data: bytes,
        progress: Callable[[int], None] | None,
    ) -> dict[str, Any]:
        resp = client.upload_part(
            Bucket=self.bucket,
            Key=s3key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm=self.CHECKSUM_ALGORITHM,
        )
        if "ETag" not in resp:
            raise self._incomplete("upload", s3key)
        if progress is not None:
            progress(len(data))
        out = {"PartNumber": number, "ETag": resp["ETag"]}
        crc = resp.get(f"Checksum{self.CHECKSUM_ALGORITHM}")
        if crc:
            out[f"Checksum{self.CHECKSUM_ALGORITHM}"] = crc
        return out

    def _copy(self, src: str, dst: str, size: int, metadata: dict[str, str]) -> None:
        """Server-side copy of S3 key ``src`` to ``dst`` with new ``metadata`` (one
        ``CopyObject`` up to 5 GiB, ``UploadPartCopy`` parts beyond)."""
        client = self.transfer_client
        source = {"Bucket": self.bucket, "Key": src}
        if size <= _COPY_MAX:
            client.copy_object(
                Bucket=self.bucket,
                Key=dst,
                CopySource=source,
                Metadata=metadata,
                MetadataDirective="REPLACE",
                ChecksumAlgorithm=self.CHECKSUM_ALGORITHM,
            )
            return
        upload_id = client.create_multipart_upload(
            Bucket=self.bucket, Key=dst, Metadata=metadata, ChecksumAlgorithm=self.CHECKSUM_ALGORITHM
        )["UploadId"]
        try:
            parts = []
            step = 1024**3
            for i, start in enumerate(range(0, size, step), 1):
                resp = client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=dst,
                    UploadId=upload_id,
                    PartNumber=i,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{min(size, start + step) - 1}",
                )
                res = resp.get("CopyPartResult") or {}
                entry = {"PartNumber": i, "ETag": res["ETag"]}
                if res.get(f"Checksum{self.CHECKSUM_ALGORITHM}"):
                    entry[f"Checksum{self.CHECKSUM_ALGORITHM}"] = res[f"Checksum{self.CHECKSUM_ALGORITHM}"]
                parts.append(entry)
            client.complete_multipart_upload(
                Bucket=self.bucket, Key=dst, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as exc:
            if _answered(exc):
                with suppress(Exception):
                    client.abort_multipart_upload(Bucket=self.bucket, Key=dst, UploadId=upload_id)
            raise

    def abort_stale_uploads(self, older_than: float = 86400.0) -> int:
        """Abort the multipart uploads under the store's prefix started more than
        ``older_than`` seconds ago (what killed processes left: invisible, but billed);
        returns how many. Bucket lifecycle rules (``AbortIncompleteMultipartUpload``) do the
        same on AWS."""
        cutoff = time.time() - older_than
        aborted = 0
        with self._translate("list"):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._dir("")
            )
            stale = [
                (u["Key"], u["UploadId"])
                for page in pages
                for u in page.get("Uploads") or []
                if u.get("Initiated") is not None and u["Initiated"].timestamp() < cutoff
            ]
        for s3key, upload_id in stale:
            with self._translate("delete", s3key), suppress(bex.ClientError):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3key, UploadId=upload_id)
                aborted += 1
        return aborted

    def get_file(self, key: str, dst: str | os.PathLike[str]) -> None:
        dst = Path(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path(dst)
        try:
            with self._translate("download", key):
                try:
                    cfg = TransferConfig(num_download_attempts=config.s3_retries() + 1)
                    with _transfer(self.transfer_client, cfg) as t:
                        t.download_file(self.bucket, self._k(key), str(tmp))
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
            resp = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
            size = 0
            for block in resp["Body"].iter_chunks(CHUNK):
                h.update(block)
                size += len(block)
            if not size and "ContentLength" not in resp:
                raise self._incomplete("read", key)
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
