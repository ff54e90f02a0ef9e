"""Every ``MODELTRACK_*`` environment variable, typed and read at call time."""

from __future__ import annotations

import os
from typing import Any

from .errors import ModelTrackError

DEFAULT_STORE = ".modeltrack"


def _flag(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ModelTrackError(f"{name}={raw!r} is not a boolean; set it to 1/true/yes/on or 0/false/no/off")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ModelTrackError(f"{name}={raw!r} is not a number; set it to e.g. {default}") from None
    if value < 0:
        raise ModelTrackError(f"{name}={raw!r} is negative; set it to a value >= 0")
    return value


def store_uri() -> str:
    """``MODELTRACK_STORE``: the store used when none is passed (default ``./.modeltrack``)."""
    return os.environ.get("MODELTRACK_STORE") or DEFAULT_STORE


def strict() -> bool:
    """``MODELTRACK_STRICT``: tracking errors raise instead of warning (for tests and CI)."""
    return _flag("MODELTRACK_STRICT")


def flush_interval() -> float:
    """``MODELTRACK_FLUSH_INTERVAL``: seconds between background metric flushes (default 2)."""
    return _float("MODELTRACK_FLUSH_INTERVAL", 2.0)


def heartbeat_interval() -> float:
    """``MODELTRACK_HEARTBEAT_INTERVAL``: seconds between liveness beats (default 15)."""
    return _float("MODELTRACK_HEARTBEAT_INTERVAL", 15.0)


def crash_timeout() -> float:
    """``MODELTRACK_CRASH_TIMEOUT``: a running version on another host whose last beat is
    older than this many seconds is shown as crashed (default 120)."""
    return _float("MODELTRACK_CRASH_TIMEOUT", 120.0)


def autolog_enabled() -> bool:
    """``MODELTRACK_AUTOLOG``: switch on autologging in every Python process."""
    return _flag("MODELTRACK_AUTOLOG")


def model_name() -> str | None:
    """``MODELTRACK_MODEL``: default model name for autologged runs."""
    return os.environ.get("MODELTRACK_MODEL") or None


def trust_store() -> bool:
    """``MODELTRACK_TRUST``: allow loading pickle/joblib artifacts without ``trust=True``."""
    return _flag("MODELTRACK_TRUST")


#: CI variables naming who started a job, checked in order after ``MODELTRACK_ACTOR``
_CI_ACTORS = ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR", "CIRCLE_USERNAME", "BUILD_REQUESTEDFOR")


def actor() -> str:
    """``MODELTRACK_ACTOR``: who makes a change (recorded on versions, alias, tag and notes
    events); default the CI's actor variable, else ``user@host``."""
    for name in ("MODELTRACK_ACTOR", *_CI_ACTORS):
        value = os.environ.get(name)
        if value:
            return value[:256]
    pid = os.getpid()
    if _DEFAULT_ACTOR[0] != pid:
        import getpass

        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
        _DEFAULT_ACTOR[:] = [pid, f"{user}@{os.uname().nodename}"]
    return str(_DEFAULT_ACTOR[1])


#: [pid, user@host]: the default actor, looked up once per process
_DEFAULT_ACTOR: list[Any] = [None, ""]


def ui_token() -> str | None:
    """``MODELTRACK_UI_TOKEN``: the token ``modeltrack ui`` requires for writes (and to listen
    on a non-loopback address) when ``--token`` is not given."""
    return os.environ.get("MODELTRACK_UI_TOKEN") or None


def diff_limit() -> int:
    """``MODELTRACK_DIFF_LIMIT``: largest git diff captured, in bytes (default 1 MiB)."""
    return int(_float("MODELTRACK_DIFF_LIMIT", 1024 * 1024))


def cache_dir() -> str:
    """``MODELTRACK_CACHE``: local cache of downloaded artifacts (default ``~/.cache/modeltrack``)."""
    return os.environ.get("MODELTRACK_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "modeltrack")


def spool_dir() -> str:
    """``MODELTRACK_SPOOL``: where writes to a remote store wait for upload (default
    ``$MODELTRACK_CACHE/spool``). Must survive the training process: ``modeltrack sync``
    uploads what a dead process left there."""
    return os.environ.get("MODELTRACK_SPOOL") or os.path.join(cache_dir(), "spool")


def upload_timeout() -> float:
    """``MODELTRACK_UPLOAD_TIMEOUT``: seconds ``finish()`` keeps waiting for pending uploads
    to a remote store while they make no progress (default 60; 0: do not wait). What is
    left stays in the spool for ``modeltrack sync``."""
    return _float("MODELTRACK_UPLOAD_TIMEOUT", 60.0)


def changelog_timeout() -> float:
    """``MODELTRACK_CHANGELOG_TIMEOUT``: seconds ``finish()`` waits for the changelog against
    the previous version on a remote store (default 10); past it the label stays unknown."""
    return _float("MODELTRACK_CHANGELOG_TIMEOUT", 10.0)


def upload_backoff_max() -> float:
    """``MODELTRACK_UPLOAD_BACKOFF_MAX``: longest pause, in seconds, between retries of a
    failed upload (default 30; retries start at 0.5 s and double)."""
    return _float("MODELTRACK_UPLOAD_BACKOFF_MAX", 30.0)


def s3_part_size() -> int:
    """``MODELTRACK_S3_PART_SIZE``: multipart threshold and part size in MiB for uploads to S3
    (default 8, as boto3's ``upload_file``: measured side by side, 16 and 32 MiB parts were
    slower against the local test server; S3 needs at least 5)."""
    mib = _float("MODELTRACK_S3_PART_SIZE", 8.0)
    if mib < 5:
        raise ModelTrackError(f"MODELTRACK_S3_PART_SIZE={mib:g} is below the S3 minimum part size; set it to 5 or more")
    return int(mib * 1024 * 1024)


def s3_concurrency() -> int:
    """``MODELTRACK_S3_CONCURRENCY``: parts of one file uploaded at once (default 10, as boto3)."""
    return max(1, int(_float("MODELTRACK_S3_CONCURRENCY", 10.0)))


def _timeout(name: str, default: float) -> float:
    value = _float(name, default)
    if value <= 0:
        raise ModelTrackError(f"{name}={value:g} would never wait for an answer; set it to a number of seconds > 0")
    return value


def s3_connect_timeout() -> float:
    """``MODELTRACK_S3_CONNECT_TIMEOUT``: seconds to wait for a TCP connection to the S3
    endpoint (default 5)."""
    return _timeout("MODELTRACK_S3_CONNECT_TIMEOUT", 5.0)


def s3_read_timeout() -> float:
    """``MODELTRACK_S3_READ_TIMEOUT``: seconds to wait for the answer to a small S3 request
    (read, write, list, version claim; default 10). With the retries, a request to an
    endpoint that never answers fails after about (retries + 1) × this."""
    return _timeout("MODELTRACK_S3_READ_TIMEOUT", 10.0)


def s3_transfer_timeout() -> float:
    """``MODELTRACK_S3_TRANSFER_TIMEOUT``: seconds to wait for the answer to one part of a
    file upload or download (default 60)."""
    return _timeout("MODELTRACK_S3_TRANSFER_TIMEOUT", 60.0)


def cloud_timeout() -> float:
    """``MODELTRACK_CLOUD_TIMEOUT``: seconds a small request to Google Cloud Storage or Azure
    Blob Storage may take, the SDK's retries included (default 20): a dead endpoint is then an
    error within that time (gcsfs alone would retry for about 35 s)."""
    return _timeout("MODELTRACK_CLOUD_TIMEOUT", 20.0)


def s3_retries() -> int:
    """``MODELTRACK_S3_RETRIES``: retries of a failed or unanswered S3 request after the first
    attempt (default 2; 0: no retry)."""
    return int(_float("MODELTRACK_S3_RETRIES", 2.0))


def list_concurrency() -> int:
    """``MODELTRACK_LIST_CONCURRENCY``: version records of a remote store read at once when a
    listing cannot take them from a cache (default 16)."""
    return max(1, int(_float("MODELTRACK_LIST_CONCURRENCY", 16.0)))


def summary_packs() -> bool:
    """``MODELTRACK_SUMMARY_PACKS``: keep listing summaries of ended versions of a remote
    store in the store itself (``summaries/MODEL/BLOCK.json``), so that a listing on a
    machine with an empty cache reads a few objects rather than one per version (default on;
    0: neither read nor written)."""
    return _flag("MODELTRACK_SUMMARY_PACKS", True)
