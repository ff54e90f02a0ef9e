"""The web UI server: a static single-page app and a JSON API, standard library only.

Routes (all JSON unless noted; ``MODEL`` is a model name, ``N`` a version number)::

    GET  /                                         the app (index.html); /static/* its assets
    GET  /api/info                                 store URI, whether writes need a token, the palette
    GET  /api/models                               ``models --json``
    GET  /api/models/MODEL/versions                ``versions --json`` plus ``duration_s``
    GET  /api/models/MODEL/aliases                 alias history, oldest first
    GET  /api/versions/MODEL/N                     ``show --json`` (series replaced by counts),
                                                   plus ``actor``, ``changes``, ``code_diff``,
                                                   ``alias_history``, ``rollbacks`` (alias -> the
                                                   version a rollback goes to), ``tag_history``,
                                                   ``notes_time``, ``notes_actor``
    GET  /api/versions/MODEL/N/series?points=2000  downsampled metric series (see series.py)
    GET  /api/versions/MODEL/N/artifacts/PATH      download one artifact (octet-stream)
    GET  /api/compare?ref=A&ref=B…                 2–10 records (with ``actor``) and their diffs to the first
    POST /api/models/MODEL/aliases                 {"alias", "version", "reason"?}: promote
    POST /api/models/MODEL/aliases/ALIAS/rollback  point ALIAS back at its previous holder
    POST /api/models/MODEL/aliases/ALIAS/remove    remove ALIAS
    POST /api/versions/MODEL/N/tags                {"set": {key: value|null}, "remove": [key]}
    POST /api/versions/MODEL/N/notes               {"text": str|null}

Safety:

* Tokens. With a token set, writes need ``Authorization: Bearer TOKEN``. Off loopback (e.g.
  ``--host 0.0.0.0``) *every* ``/api/…`` request needs it too, reads and artifact downloads
  included; a browser gets it by opening ``/?token=TOKEN`` once, which sets an HttpOnly,
  SameSite=Strict cookie (a keyed hash of the token, not the token) that grants reads, and
  hands the token to the page (``#token=``) for writes. The app's own files (``/``,
  ``/static/*``) stay public; they hold no data. On loopback, reads are open. Tokens are
  compared with :func:`hmac.compare_digest`.
* Writes also need a JSON body (so a cross-site form cannot forge one) and a same-origin
  ``Origin``.
* Host header (DNS rebinding): on loopback it must name loopback; off loopback it must be a
  loopback name, the address the client connected to, or one of the ``allow_hosts``
  (``--allow-host``); anything else gets 403.
* Resources: each request must arrive whole within ``timeout`` seconds (REQUEST_TIMEOUT; a
  reaper closes sockets that trickle) and every socket operation has that timeout; at most
  ``max_threads`` (MAX_THREADS) connections are handled at once, further ones wait briefly and
  then get 503. Bodies over MAX_BODY get 413; a body shorter than its Content-Length gets
  400/408 and the connection is closed.
* Input: numbers in paths and bodies must be ASCII digits (at most 18); malformed, too deeply
  nested or wrongly shaped JSON gets 400 with a message naming the problem; any unexpected
  error gets a one-line JSON 500 (the traceback goes to the server's stderr only).
* Downloads serve only blobs that the version's artifact records reference, so no request path
  can reach another file; a blob that is a symlink, resolves outside the store, is not a
  regular file, or whose size or SHA-256 differs from the record is refused (500, naming the
  blob; run ``modeltrack verify``). Content is hashed before it is sent (verified files are
  remembered by inode, size and times) and again while it is sent; if it changes in between,
  the response is cut short rather than completed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .._util import parse_iso
from .._version import __version__
from ..blobs import blob_key
from ..changelog import diff_records
from ..errors import (
    AliasNotFoundError,
    ArtifactPathError,
    CorruptRecordError,
    InvalidNameError,
    InvalidValueError,
    KeyNotFound,
    ModelNotFoundError,
    ModelTrackError,
    PromotionRefusedError,
    StoreError,
    VersionNotFoundError,
)
from ..layout import CRASHED, RUNNING
from ..records import check_sha256
from ..refs import check_alias_name, check_model_name
from ..repo import Repo, holder_stack
from ..reproduce import reproductions
from .palette import PALETTE
from .series import DEFAULT_MAX_POINTS, version_series

#: largest dirty diff shipped to the browser inline
MAX_DIFF_CHARS = 256 * 1024
#: most versions one compare page shows
MAX_COMPARE = 10
#: largest request body accepted (tags and notes are small)
MAX_BODY = 1024 * 1024
#: seconds one request (line, headers, body) may take to arrive, and any one socket operation
REQUEST_TIMEOUT = 30.0
#: most connections handled at once (one thread each)
MAX_THREADS = 32
#: seconds a new connection waits for a free handler thread before it gets 503
BUSY_WAIT = 1.0
#: bytes read and sent at a time when serving an artifact
CHUNK = 1024 * 1024
#: a whole number: ASCII digits only (``str.isdigit`` also accepts "²" and other scripts)
_NUMBER = re.compile(r"[vV]?([0-9]{1,18})")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
_TOKEN_IN_URL = re.compile(r"(token=)[^&#\s]*", re.IGNORECASE)
_COOKIE_SALT = b"modeltrack-ui read cookie v1"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    "": "text/plain; charset=utf-8",  # LICENSE files of bundled libraries
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class HTTPError(Exception):
    """An API error with its HTTP status; the message goes to the client as ``{"error": …}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name) only accepts connections from this machine.

    Example:
        >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
        (True, True, False)
    """
    name = host.strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token.

    Raises:
        ModelTrackError: ``host`` is not loopback and ``token`` is empty.
    """
    if not is_loopback(host) and not token:
        raise ModelTrackError(
            f"refusing to serve the UI on {host}, which other machines can reach, without a token: "
            f"pass --token SECRET or set MODELTRACK_UI_TOKEN (or keep the default --host 127.0.0.1)"
        )


def _clean_json(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    return obj


def dumps(obj: Any) -> bytes:
    """Strict JSON (NaN and infinities become ``null``, which browsers can parse)."""
    try:
        text = json.dumps(obj, allow_nan=False, default=str, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_clean_json(obj), allow_nan=False, default=str, separators=(",", ":"))
    return text.encode()


def _duration(created: str | None, finished: str | None, status: str) -> float | None:
    start = parse_iso(created)
    if start is None:
        return None
    end = parse_iso(finished)
    if end is None:
        if status != RUNNING:
            return None
        end = datetime.now(timezone.utc)
    return round((end - start).total_seconds(), 3)


class UIApp:
    """The API behind the server: turns requests into :class:`~modeltrack.repo.Repo` calls.

    Args:
        repo: the store to show.
        token: required (as ``Authorization: Bearer TOKEN``) for every write when set.
        poll_interval: seconds between refreshes of a running version in the browser.
    """

    def __init__(self, repo: Repo, token: str | None = None, *, poll_interval: float = 2.0) -> None:
        self.repo = repo
        self.token = token or None
        self.poll_interval = poll_interval
        self._static = _load_static()
        # blob key -> (dev, inode, size, mtime_ns, ctime_ns) of a local file whose SHA-256 matched
        self._verified: dict[str, tuple[int, int, int, int, int]] = {}
        self._verified_lock = threading.Lock()

    # ------------------------------------------------------------------ reads
    def info(self) -> dict[str, Any]:
        return {
            "store": self.repo.store.uri,
            "version": __version__,
            "token_required": self.token is not None,
            "poll_ms": int(self.poll_interval * 1000),
            "max_compare": MAX_COMPARE,
            "palette": PALETTE,
        }

    def models(self) -> list[dict[str, Any]]:
        return self.repo.models_summary()

    def versions(self, model: str) -> list[dict[str, Any]]:
        rows = self.repo.versions(model)
        for r in rows:
            r["duration_s"] = _duration(r.get("created_at"), r.get("finished_at"), r.get("status", ""))
        return rows

    def alias_history(self, model: str) -> list[dict[str, Any]]:
        return self.repo.alias_history(model)

    def _record(self, model: str, number: int) -> dict[str, Any]:
        rec = self.repo.version((model, number), series=False)
        if rec["status"] in (RUNNING, CRASHED):
            # no final record yet: the metric summary comes from the flushed points
            rec = self.repo.version((model, number), series=True)
        for m in rec["metrics"].values():
            m["count"] = len(m.pop("series", []) or []) or m.get("count", 0)
        rec["duration_s"] = _duration(rec.get("created_at"), rec.get("finished_at"), rec.get("status", ""))
        # who started the version (recorded in its claim; older stores have no actor)
        rec["actor"] = self.repo.claim(model, number).get("actor")
        return rec

    def version(self, model: str, number: int) -> dict[str, Any]:
        rec = self._record(model, number)
        final = self.repo.final(model, number)
        rec["changes"] = (final or {}).get("changes")
        diff = self.repo.code_diff(model, number)
        rec["code_diff_truncated"] = diff is not None and len(diff) > MAX_DIFF_CHARS
        rec["code_diff"] = diff[:MAX_DIFF_CHARS] if diff is not None else None
        history = self.repo.alias_history(model)
        aliases = self.repo.aliases(model)
        rec["alias_history"] = history
        rec["model_aliases"] = aliases
        # where a rollback of each alias would go (it walks back through the holders)
        rollbacks: dict[str, int] = {}
        for alias in aliases:
            stack = holder_stack([e for e in history if e.get("alias") == alias])
            if len(stack) >= 2:
                rollbacks[alias] = stack[-2]
        rec["rollbacks"] = rollbacks
        rec["tag_history"] = self.repo.tag_history(model, number)
        notes = self.repo.notes_record(model, number)
        rec["notes_time"] = notes.get("time") if notes else None
        rec["notes_actor"] = notes.get("actor") if notes else None
        # `modeltrack reproduce`: which version this one reproduces, and its re-runs
        rec["reproduction"] = reproductions(self.repo, model, number)
        return rec

    def series(self, model: str, number: int, points: int) -> dict[str, Any]:
        self.repo.claim(model, number)
        return version_series(self.repo, model, number, max_points=points)

    def compare(self, refs: list[str]) -> dict[str, Any]:
        if not 2 <= len(refs) <= MAX_COMPARE:
            raise HTTPError(400, f"compare takes 2 to {MAX_COMPARE} versions, got {len(refs)}")
        records = []
        for ref in refs:
            model, number = self.repo.resolve(ref)
            records.append(self._record(model, number))
        base = records[0]
        diffs = [diff_records(base, r) for r in records[1:]]
        return {"versions": records, "diffs": diffs}

    @contextmanager
    def open_artifact(self, model: str, number: int, path: str) -> Iterator[tuple[dict[str, Any], IO[bytes], int]]:
        """The artifact record, its content as an open file (checked against the record's
        size and SHA-256), and its size.

        Raises:
            HTTPError: 404 for an unknown artifact or missing content; 500 for a blob that is
                a symlink, leaves the store, is not a regular file or does not match its record.
        """
        rec = self.repo.version((model, number), series=False, environment=False)
        art = next((a for a in rec.get("artifacts", []) if a.get("path") == path), None)
        if art is None:
            raise HTTPError(404, f"{model}@v{number} has no artifact {path!r}")
        sha = str(art.get("sha256", ""))
        if not check_sha256(sha):
            raise HTTPError(500, f"the record of {path!r} holds an invalid checksum")
        key = blob_key(sha)
        missing = f"the content of {path!r} (blob {key}) is missing from the store; run `modeltrack verify`"
        try:
            local = self.repo.store.local_path(key)
        except CorruptRecordError as exc:
            # the store refused the path itself (a symlink, or one out of the store)
            sys.stderr.write(f"modeltrack ui: {exc}\n")
            raise HTTPError(
                500,
                f"refusing to serve blob {key}: it is a symbolic link, not a regular file, or it leaves the "
                f"store; run `modeltrack verify`",
            ) from None
        tmpdir: str | None = None
        if local is not None:
            f = self._open_local(key, Path(local), missing)
        else:
            # No local file (S3): download to a private temporary file, verify, then send.
            tmpdir = tempfile.mkdtemp(prefix="modeltrack-ui-")
            dst = os.path.join(tmpdir, "blob")
            try:
                self.repo.store.get_file(key, dst)
                f = open(dst, "rb")  # closed below
            except KeyNotFound:
                shutil.rmtree(tmpdir, ignore_errors=True)
                raise HTTPError(404, missing) from None
            except BaseException:
                shutil.rmtree(tmpdir, ignore_errors=True)
                raise
        try:
            st = os.fstat(f.fileno())
            size = st.st_size
            recorded = art.get("size")
            if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded != size:
                raise HTTPError(
                    500,
                    f"blob {key} holds {size} bytes but {path!r} was recorded with {recorded}; "
                    f"the store is damaged, run `modeltrack verify`",
                )
            ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            with self._verified_lock:
                known = tmpdir is None and self._verified.get(key) == ident
            if not known:
                h = hashlib.sha256()
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                if h.hexdigest() != sha:
                    self.forget_verified(key)
                    raise HTTPError(
                        500,
                        f"blob {key} does not match its SHA-256 (it was changed or damaged); refusing to "
                        f"serve {path!r}, run `modeltrack verify`",
                    )
                if tmpdir is None:
                    with self._verified_lock:
                        if len(self._verified) > 100_000:
                            self._verified.clear()
                        self._verified[key] = ident
                f.seek(0)
            yield art, f, size
        finally:
            f.close()
            if tmpdir is not None:
                shutil.rmtree(tmpdir, ignore_errors=True)

    def forget_verified(self, key: str) -> None:
        """Drop ``key`` from the verified-blob cache (its file changed)."""
        with self._verified_lock:
            self._verified.pop(key, None)

    def _open_local(self, key: str, local: Path, missing: str) -> IO[bytes]:
        """Open the store's file for ``key`` without following a symlink out of the store."""
        damaged = f"refusing to serve blob {key}: it is {{what}}, not a file the store wrote; run `modeltrack verify`"
        try:
            st = os.lstat(local)
        except (FileNotFoundError, NotADirectoryError):
            raise HTTPError(404, missing) from None
        if stat.S_ISLNK(st.st_mode):
            raise HTTPError(500, damaged.format(what="a symbolic link"))
        if not stat.S_ISREG(st.st_mode):
            raise HTTPError(500, damaged.format(what="not a regular file"))
        root = getattr(self.repo.store, "root", None)
        if root is None:
            root = local
            for _ in key.split("/"):
                root = root.parent
        real, real_root = os.path.realpath(local), os.path.realpath(root)
        if os.path.commonpath([real, real_root]) != real_root:
            sys.stderr.write(f"modeltrack ui: blob {key} resolves to {real}, outside the store {real_root}\n")
            raise HTTPError(500, damaged.format(what="reached through a symbolic link that leaves the store"))
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(local, flags)
        except FileNotFoundError:
            raise HTTPError(404, missing) from None
        except OSError as exc:
            raise HTTPError(500, damaged.format(what=f"unreadable ({exc.strerror or exc})")) from None
        try:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
                raise HTTPError(500, damaged.format(what="replaced while it was being opened"))
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    # ------------------------------------------------------------------ writes
    def set_alias(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        alias = check_alias_name(body.get("alias"))
        number = _int(body.get("version"), "version")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise HTTPError(400, f'"reason" must be a string or null, got {_kind(reason)}')
        ev = self.repo.set_alias(
            f"{model}@v{number}", alias, action="promote", reason=str(reason) if reason else "promoted in the web UI"
        )
        return {"event": ev, "aliases": self.repo.aliases(model)}

    def rollback(self, model: str, alias: str) -> dict[str, Any]:
        ev = self.repo.rollback(model, check_alias_name(alias))
        return {"event": ev, "aliases": self.repo.aliases(model)}

    def remove_alias(self, model: str, alias: str) -> dict[str, Any]:
        ev = self.repo.remove_alias(model, check_alias_name(alias))
        return {"event": ev, "aliases": self.repo.aliases(model)}

    def set_tags(self, model: str, number: int, body: dict[str, Any]) -> dict[str, Any]:
        usage = 'tags take {"set": {key: value or null}, "remove": [key, …]}'
        tags = body.get("set")
        remove = body.get("remove")
        tags = {} if tags is None else tags
        remove = [] if remove is None else remove
        if not isinstance(tags, dict):
            raise HTTPError(400, f'"set" must be an object, got {_kind(tags)}; {usage}')
        if not isinstance(remove, list):
            raise HTTPError(400, f'"remove" must be a list of keys, got {_kind(remove)}; {usage}')
        clean: dict[str, str | None] = {}
        for k, v in tags.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise HTTPError(400, f"tag {k!r}: the value must be finite")
            if v is not None and not isinstance(v, (str, int, float)):
                raise HTTPError(400, f"tag {k!r}: values must be strings, numbers or null, got {_kind(v)}")
            clean[k] = None if v is None else str(v)
        for k in remove:
            if not isinstance(k, str):
                raise HTTPError(400, f'"remove" must list tag keys as strings, got {_kind(k)}')
        now = self.repo.set_tags((model, number), clean, list(remove))
        return {"tags": now}

    def set_notes(self, model: str, number: int, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise HTTPError(400, f'notes take {{"text": "…"}} (or null to clear); "text" is {_kind(text)}')
        self.repo.set_notes((model, number), text or None)
        return {"notes": self.repo.notes(model, number)}

    # ------------------------------------------------------------------ routing
    def route(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: Callable[[], dict[str, Any]]
    ) -> Any:
        """Dispatch an ``/api/…`` request (``parts`` are the decoded path segments after ``api``)."""
        n = len(parts)
        if method == "GET":
            if parts == ["info"]:
                return self.info()
            if parts == ["models"]:
                return self.models()
            if parts == ["compare"]:
                return self.compare(query.get("ref", []))
            if n == 3 and parts[0] == "models" and parts[2] == "versions":
                return self.versions(_model(parts[1]))
            if n == 3 and parts[0] == "models" and parts[2] == "aliases":
                return self.alias_history(_model(parts[1]))
            if n == 3 and parts[0] == "versions":
                return self.version(_model(parts[1]), _int(parts[2], "version"))
            if n == 4 and parts[0] == "versions" and parts[3] == "series":
                points = _int((query.get("points") or [str(DEFAULT_MAX_POINTS)])[0], "points", prefix=False)
                return self.series(_model(parts[1]), _int(parts[2], "version"), min(max(points, 0), 100_000))
        elif method == "POST":
            if n == 3 and parts[0] == "models" and parts[2] == "aliases":
                return self.set_alias(_model(parts[1]), body())
            if n == 5 and parts[0] == "models" and parts[2] == "aliases" and parts[4] == "rollback":
                return self.rollback(_model(parts[1]), parts[3])
            if n == 5 and parts[0] == "models" and parts[2] == "aliases" and parts[4] == "remove":
                return self.remove_alias(_model(parts[1]), parts[3])
            if n == 4 and parts[0] == "versions" and parts[3] == "tags":
                model, number = _model(parts[1]), _int(parts[2], "version")
                self.repo.claim(model, number)
                return self.set_tags(model, number, body())
            if n == 4 and parts[0] == "versions" and parts[3] == "notes":
                model, number = _model(parts[1]), _int(parts[2], "version")
                self.repo.claim(model, number)
                return self.set_notes(model, number, body())
        raise HTTPError(404, f"no API route {method} /api/{'/'.join(parts)}")

    def check_token(self, header: str | None) -> None:
        """Raise 401 without a token and 403 with a wrong one (when a token is set)."""
        if self.token is None:
            return
        if not header:
            raise HTTPError(
                401, "this UI needs its token for changes; enter it when asked (or send Authorization: Bearer TOKEN)"
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not self.token_matches(given.strip()):
            raise HTTPError(403, "wrong token")

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the token (compared in constant time)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def cookie_value(self) -> str:
        """The value of the read cookie: a keyed hash of the token, so the cookie is not the token."""
        assert self.token is not None
        return hmac.new(self.token.encode(), _COOKIE_SALT, hashlib.sha256).hexdigest()

    def cookie_matches(self, given: str) -> bool:
        return self.token is not None and hmac.compare_digest(given.encode(), self.cookie_value().encode())


def _model(name: str) -> str:
    return check_model_name(name)


def _kind(value: Any) -> str:
    """How JSON would call ``value``'s type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _int(value: Any, what: str, *, prefix: bool = True) -> int:
    """A whole number from a path segment, query or JSON value: ASCII digits only, at most 18
    (``"v3"`` too when ``prefix``); anything else is a 400."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < 10**18:
            return value
    elif isinstance(value, str):
        m = _NUMBER.fullmatch(value)
        if m and (prefix or value[:1].isdigit()):
            return int(m.group(1))
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
    raise HTTPError(400, f"{what} must be a whole number (ASCII digits, at most 18), got {shown}")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}", parse_constant=_no_constants)
    except RecursionError:
        raise HTTPError(400, "the body is nested too deeply to be a request") from None
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"the body is not valid JSON: {exc}") from None
    except ValueError as exc:  # bad UTF-8, NaN, an integer too long to convert
        raise HTTPError(400, f"the body is not valid JSON: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(data, dict):
        raise HTTPError(400, f"the body must be a JSON object, got {_kind(data)}")
    return data


def _load_static() -> dict[str, bytes]:
    """Every file shipped under ``ui/static`` (bundled libraries in ``vendor/`` included), by
    its path below that folder: only these names are ever served."""
    out: dict[str, bytes] = {}

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.is_file():
                out[prefix + entry.name] = entry.read_bytes()

    walk(resources.files("modeltrack.ui") / "static", "")
    return out


def _status_for(exc: ModelTrackError) -> int:
    if isinstance(exc, (ModelNotFoundError, VersionNotFoundError, AliasNotFoundError)):
        return 404
    if isinstance(exc, PromotionRefusedError):
        return 409
    if isinstance(exc, (InvalidNameError, InvalidValueError, ArtifactPathError)):
        return 400
    if isinstance(exc, CorruptRecordError):
        return 500
    if isinstance(exc, StoreError):
        # rollback without an earlier holder and similar refusals are StoreErrors too
        return 409
    return 400


def _host_name(host: str) -> str:
    """The name part of a ``Host`` header (no port, no brackets), lowercased."""
    host = host.strip()
    name = host[1 : host.find("]")] if host.startswith("[") else host.split(":")[0]
    return name.lower()


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _same_address(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are the same (specified) IP address, e.g. ``::ffff:10.0.0.2`` and ``10.0.0.2``."""
    x, y = _address(a), _address(b)
    return x is not None and x == y and not x.is_unspecified


def normalize_allowed_host(host: str) -> str:
    """The name compared with ``Host`` headers for an ``--allow-host`` value (port dropped).

    Raises:
        ModelTrackError: an empty name or one with characters no host name has.

    Example:
        >>> normalize_allowed_host("MLBox.internal:8765"), normalize_allowed_host("[fd00::1]")
        ('mlbox.internal', 'fd00::1')
    """
    name = _host_name(str(host))
    if not name or not re.fullmatch(r"[a-z0-9._:%-]+", name):
        raise ModelTrackError(f"--allow-host {host!r} is not a host name or address (e.g. mlbox.internal)")
    return name


class _Abort(Exception):
    """Drop the connection without a response (the client is gone or the response is cut)."""


class Handler(BaseHTTPRequestHandler):
    """One request: static files, API reads and token-checked writes."""

    server: UIServer
    protocol_version = "HTTP/1.1"
    server_version = "modeltrack-ui"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)  # every socket operation

    def handle_one_request(self) -> None:
        # The whole request must arrive before the deadline; the server's reaper closes
        # sockets that trickle (one byte at a time would defeat a per-recv timeout).
        self.server.watch(self.connection)
        try:
            super().handle_one_request()
        finally:
            self.server.unwatch(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            line = _TOKEN_IN_URL.sub(r"\1…", format % args)
            sys.stderr.write(f"{self.address_string()} - {line}\n")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("GET", head=True)

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._send_json(405, {"error": "method not allowed"})

    do_DELETE = do_PATCH = do_PUT

    # ------------------------------------------------------------------ plumbing
    def _handle(self, method: str, head: bool = False) -> None:
        app = self.server.app
        self._sent_headers = False
        if self.server.reaped(self.connection):
            self.close_connection = True  # the request was cut off at its deadline
            return
        try:
            self._check_host()
            url = urlsplit(self.path)
            raw_parts = url.path.split("/")[1:]
            if raw_parts and raw_parts[0] == "api":
                self._check_read()
                parts = [unquote(p) for p in raw_parts[1:]]
                if parts and parts[-1] == "":
                    parts = parts[:-1]
                query = parse_qs(url.query)
                if method == "GET" and len(parts) >= 5 and parts[0] == "versions" and parts[3] == "artifacts":
                    self.server.unwatch(self.connection)
                    self._download(_model(parts[1]), _int(parts[2], "version"), "/".join(parts[4:]), head)
                    return
                body: Callable[[], dict[str, Any]] = dict
                if method == "POST":
                    # Read the whole body first: bytes left unread would be taken for the
                    # next request on this keep-alive connection.
                    raw = self._read_body()
                    self.server.unwatch(self.connection)
                    self._check_write()
                    body = lambda: _parse_body(raw)  # noqa: E731
                else:
                    self.server.unwatch(self.connection)
                result = app.route(method, parts, query, body)
                self._send_json(200, result, head=head)
                return
            self.server.unwatch(self.connection)
            if method != "GET":
                raise HTTPError(405, "method not allowed")
            self._static(url.path, parse_qs(url.query), head)
        except HTTPError as exc:
            self._error(exc.status, {"error": str(exc)}, head)
        except ModelTrackError as exc:
            self._error(_status_for(exc), {"error": str(exc), "type": type(exc).__name__}, head)
        except (_Abort, TimeoutError, BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            shown = _TOKEN_IN_URL.sub(r"\1…", self.path)
            sys.stderr.write(f"modeltrack ui: error on {method} {shown}:\n{traceback.format_exc()}")
            first = (str(exc).splitlines() or [""])[0][:200]
            self._error(500, {"error": f"internal error: {type(exc).__name__}: {first}".rstrip(": ")}, head)

    def _error(self, status: int, obj: dict[str, Any], head: bool) -> None:
        self.server.unwatch(self.connection)
        if self._sent_headers:
            # too late for an error response: cut the connection so the client sees a short body
            self.close_connection = True
            return
        try:
            self._send_json(status, obj, head=head)
        except OSError:
            self.close_connection = True

    def _check_host(self) -> None:
        # A page on another site can make its name resolve to this server (DNS rebinding); the
        # browser then sends that name as Host, so only known names are answered. An address
        # or a loopback name cannot be rebound, since the page's origin is then that address.
        host = (self.headers.get("Host") or "").strip()
        name = _host_name(host)
        srv = self.server
        if name and (is_loopback(name) or name in srv.allow_hosts):
            return
        if srv.loopback:
            raise HTTPError(403, f"refusing Host {host!r}: this server answers on loopback names only")
        if name and (
            name == srv.bound.lower()  # --host NAME: the name it was started on
            or _same_address(name, srv.bound)
            or _same_address(name, str(self.connection.getsockname()[0]))  # the address reached
        ):
            return
        raise HTTPError(
            403,
            f"refusing Host {host!r}: this server answers on the address it was reached at, loopback, "
            f"and the names given with --allow-host",
        )

    def _check_read(self) -> None:
        """Off loopback with a token, every API request needs it (header or the cookie)."""
        srv = self.server
        app = srv.app
        if srv.loopback or app.token is None:
            return
        header = self.headers.get("Authorization")
        if header:
            app.check_token(header)  # 403 when wrong
            return
        for value in self._cookies(srv.cookie_name):
            if app.cookie_matches(value):
                return
        raise HTTPError(
            401,
            "this server needs its token for every request: open /?token=TOKEN once in this browser, "
            "or send Authorization: Bearer TOKEN",
        )

    def _cookies(self, name: str) -> list[str]:
        out = []
        for header in self.headers.get_all("Cookie") or []:
            for part in header.split(";"):
                k, sep, v = part.strip().partition("=")
                if sep and k == name:
                    out.append(v.strip().strip('"'))
        return out

    def _check_write(self) -> None:
        origin = self.headers.get("Origin")
        if origin and origin != "null":
            expected = {f"http://{self.headers.get('Host', '')}"}
            if origin not in expected:
                raise HTTPError(403, f"refusing a change requested by another site ({origin})")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(415, "changes must be sent as application/json")
        self.server.app.check_token(self.headers.get("Authorization"))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(411, "chunked or other Transfer-Encoding bodies are not accepted; send Content-Length")
        values = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if len(values) > 1:
            raise HTTPError(400, "conflicting Content-Length headers")
        text = values.pop() if values else "0"
        if not _CONTENT_LENGTH.fullmatch(text):
            raise HTTPError(400, f"bad Content-Length {text[:40]!r}: it must be ASCII digits")
        length = int(text)
        if length > MAX_BODY:
            raise HTTPError(413, f"request body too large ({length} bytes; at most {MAX_BODY})")
        if length == 0:
            return b""
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            raise HTTPError(408, f"the request body did not arrive within {self.server.request_timeout:g} s") from None
        if len(data) < length:
            if self.server.reaped(self.connection):
                raise _Abort()
            raise HTTPError(400, f"the request body ended after {len(data)} of its {length} bytes (Content-Length)")
        return data

    def _headers(self, status: int, ctype: str, length: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in {**_SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self._sent_headers = True

    def _send_json(self, status: int, obj: Any, head: bool = False) -> None:
        data = dumps(obj)
        if status >= 400 and self.command == "POST":
            # Unread request bodies would be parsed as the next request on this connection.
            self.close_connection = True
        if status in (408, 411):
            self.close_connection = True
        self._headers(status, "application/json; charset=utf-8", len(data))
        if not head:
            self.wfile.write(data)

    def _static(self, path: str, query: dict[str, list[str]], head: bool) -> None:
        files = self.server.app._static
        if path == "/" and "token" in query:
            self._token_login(query["token"][0])
            return
        name = "index.html" if path in ("/", "/index.html") else None
        if name is None and path.startswith("/static/"):
            name = path[len("/static/") :]
        if name is None or name not in files:  # only files shipped in the package
            raise HTTPError(404, f"not found: {path}")
        data = files[name]
        suffix = name[name.rfind(".") :] if "." in name else ""
        self._headers(200, _CONTENT_TYPES.get(suffix, "application/octet-stream"), len(data))
        if not head:
            self.wfile.write(data)

    def _token_login(self, given: str) -> None:
        """``/?token=TOKEN``: set the read cookie and hand the token to the page for writes."""
        app = self.server.app
        extra: dict[str, str] = {"Location": "/"}
        if app.token is not None:
            if not app.token_matches(given):
                raise HTTPError(403, "wrong token")
            extra = {
                "Location": "/#token=" + quote(given, safe=""),
                "Set-Cookie": f"{self.server.cookie_name}={app.cookie_value()}; Path=/; HttpOnly; SameSite=Strict",
            }
        self._headers(303, "text/plain; charset=utf-8", 0, extra)

    def _download(self, model: str, number: int, path: str, head: bool) -> None:
        app = self.server.app
        with app.open_artifact(model, number, path) as (art, f, size):
            filename = path.rsplit("/", 1)[-1]
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "artifact"
            sha = str(art["sha256"])
            extra = {"Content-Disposition": f'attachment; filename="{safe}"', "X-Checksum-SHA256": sha}
            self._headers(200, "application/octet-stream", size, extra)
            if head:
                return
            # Hash again while sending and hold back the last chunk until the hash is known:
            # a file changed after it was verified is cut short, never sent whole.
            h = hashlib.sha256()
            total = 0
            pending = b""
            while chunk := f.read(CHUNK):
                total += len(chunk)
                if total > size:
                    break
                h.update(chunk)
                if pending:
                    self.wfile.write(pending)
                pending = chunk
            if total != size or h.hexdigest() != sha:
                key = blob_key(sha)
                app.forget_verified(key)
                sys.stderr.write(
                    f"modeltrack ui: blob {key} changed while {model}@v{number}/{path} was sent; "
                    f"the download was cut short (run `modeltrack verify`)\n"
                )
                raise _Abort()
            if pending:
                self.wfile.write(pending)


class UIServer(ThreadingHTTPServer):
    """A threading HTTP server holding the :class:`UIApp`, with at most ``max_threads``
    handler threads and a deadline for each request to arrive."""

    daemon_threads = True
    allow_reuse_address = True
    #: listen backlog: connections waiting to be accepted (socketserver's 5 drops a burst)
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: UIApp,
        *,
        verbose: bool = False,
        allow_hosts: Iterable[str] = (),
        timeout: float = REQUEST_TIMEOUT,
        max_threads: int = MAX_THREADS,
    ) -> None:
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        if not timeout > 0:
            raise ModelTrackError(f"the request timeout must be positive, got {timeout}")
        if max_threads < 1:
            raise ModelTrackError(f"max_threads must be at least 1, got {max_threads}")
        self.app = app
        self.verbose = verbose
        self.loopback = is_loopback(host)
        self.bound = host.strip("[]")
        self.allow_hosts = frozenset(normalize_allowed_host(h) for h in allow_hosts)
        self.request_timeout = float(timeout)
        self.max_threads = max_threads
        self.busy_wait = BUSY_WAIT
        self._slots = threading.BoundedSemaphore(max_threads)
        self._deadlines: dict[socket.socket, float] = {}
        self._reaped: set[socket.socket] = set()
        self._watch_lock = threading.Lock()
        self._closing = threading.Event()
        super().__init__(address, Handler)
        self.cookie_name = f"modeltrack_ui_{self.server_address[1]}"
        self._reaper = threading.Thread(target=self._reap, name="modeltrack-ui-reaper", daemon=True)
        self._reaper.start()

    @property
    def url(self) -> str:
        """The address to open, e.g. ``http://127.0.0.1:8765/``."""
        host, port = self.server_address[:2]
        host = str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    # ------------------------------------------------------------------ bounded threads
    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a new thread when one of ``max_threads`` slots is free;
        after ``busy_wait`` seconds without one, answer 503 and close."""
        if not self._slots.acquire(timeout=self.busy_wait):
            self._refuse_busy(request)
            self.shutdown_request(request)
            return
        t = threading.Thread(target=self._run, args=(request, client_address), daemon=True)
        try:
            t.start()
        except BaseException:
            self._slots.release()
            self.shutdown_request(request)
            raise

    def _run(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._watch_lock:
                self._reaped.discard(request)
                self._deadlines.pop(request, None)
            self._slots.release()

    def _refuse_busy(self, request: socket.socket) -> None:
        body = dumps({"error": f"the server is busy ({self.max_threads} connections open); try again shortly"})
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nRetry-After: 2\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            request.settimeout(0.5)
            request.sendall(head + body)
            request.shutdown(socket.SHUT_WR)
            # read a little of what the client sent, so closing does not reset the connection
            # before it has read the answer
            request.settimeout(0.05)
            request.recv(65536)
        except OSError:
            pass

    # ------------------------------------------------------------------ request deadlines
    def watch(self, sock: socket.socket) -> None:
        """Start the deadline for the next request on ``sock`` to arrive."""
        with self._watch_lock:
            self._deadlines[sock] = time.monotonic() + self.request_timeout

    def unwatch(self, sock: socket.socket) -> None:
        with self._watch_lock:
            self._deadlines.pop(sock, None)

    def reaped(self, sock: socket.socket) -> bool:
        """Whether the reaper cut ``sock`` off at its deadline."""
        with self._watch_lock:
            return sock in self._reaped

    def _reap(self) -> None:
        tick = min(0.25, self.request_timeout / 4)
        while not self._closing.wait(tick):
            now = time.monotonic()
            with self._watch_lock:
                late = [s for s, due in self._deadlines.items() if due <= now]
                for s in late:
                    del self._deadlines[s]
                    self._reaped.add(s)
            for s in late:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


def make_server(
    repo: Repo | str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    poll_interval: float = 2.0,
    verbose: bool = False,
    allow_hosts: Iterable[str] = (),
    timeout: float = REQUEST_TIMEOUT,
    max_threads: int = MAX_THREADS,
) -> UIServer:
    """Create (but do not start) the UI server.

    Args:
        repo: the store (a :class:`Repo`, a URI, or ``None`` for ``MODELTRACK_STORE``).
        host: address to listen on; anything but loopback needs ``token``, which every API
            request (reads and downloads too) must then carry.
        port: TCP port (``0``: a free one; read it from ``server.url``).
        token: required for every write when set (and for every API request off loopback).
        poll_interval: seconds between refreshes of a running version's charts.
        verbose: log every request to stderr.
        allow_hosts: further names (or addresses) the ``Host`` header may carry, e.g. the
            name other machines use to reach this one; others are refused (DNS rebinding).
        timeout: seconds one request may take to arrive, and any socket operation.
        max_threads: most connections handled at once; further ones wait, then get 503.

    Returns:
        the server; call ``serve_forever()`` (in a thread, if you need to go on).

    Raises:
        ModelTrackError: a non-loopback ``host`` without a token, or a bad ``allow_hosts`` name.
        OSError: the port is taken.

    Example:
        >>> srv = make_server("./.modeltrack", port=0)  # doctest: +SKIP
        >>> threading.Thread(target=srv.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    check_bind(host, token)
    hosts = [normalize_allowed_host(h) for h in allow_hosts]
    if not isinstance(repo, Repo):
        repo = Repo(repo)
    repo.check_format()
    app = UIApp(repo, token, poll_interval=poll_interval)
    return UIServer((host, port), app, verbose=verbose, allow_hosts=hosts, timeout=timeout, max_threads=max_threads)
