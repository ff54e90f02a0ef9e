"""The web UI server: a static single-page app and a JSON API, standard library only.

Routes (all JSON unless noted; ``MODEL`` is a model name, ``N`` a version number)::

    GET  /                                         the app (index.html); /static/* its assets
    GET  /api/info                                 store URI, whether writes need a token
    GET  /api/models                               ``models --json``
    GET  /api/models/MODEL/versions                ``versions --json`` plus ``duration_s``
    GET  /api/models/MODEL/aliases                 alias history, oldest first
    GET  /api/versions/MODEL/N                     ``show --json`` (series replaced by counts),
                                                   plus ``changes``, ``code_diff``, ``alias_history``
    GET  /api/versions/MODEL/N/series?points=2000  downsampled metric series (see series.py)
    GET  /api/versions/MODEL/N/artifacts/PATH      download one artifact (octet-stream)
    GET  /api/compare?ref=A&ref=B…                 2–10 records and their diffs to the first
    POST /api/models/MODEL/aliases                 {"alias", "version", "reason"?}: promote
    POST /api/models/MODEL/aliases/ALIAS/rollback  point ALIAS back at its previous holder
    POST /api/models/MODEL/aliases/ALIAS/remove    remove ALIAS
    POST /api/versions/MODEL/N/tags                {"set": {key: value|null}, "remove": [key]}
    POST /api/versions/MODEL/N/notes               {"text": str|null}

Safety: writes need ``Authorization: Bearer TOKEN`` when a token is set, a JSON body (so a
cross-site form cannot forge one) and a same-origin ``Origin``; on a loopback address the
``Host`` header must name loopback too (DNS rebinding). Downloads serve only blobs that the
version's artifact records reference, so no request path can reach another file.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
import socket
import sys
import traceback
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .. import __version__
from .._util import parse_iso
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
from ..refs import check_alias_name, check_model_name
from ..repo import CRASHED, RUNNING, Repo, blob_key, diff_records, vkey
from .series import DEFAULT_MAX_POINTS, version_series

#: largest dirty diff shipped to the browser inline
MAX_DIFF_CHARS = 256 * 1024
#: most versions one compare page shows
MAX_COMPARE = 10
#: largest request body accepted (tags and notes are small)
MAX_BODY = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
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

    # ------------------------------------------------------------------ reads
    def info(self) -> dict[str, Any]:
        return {
            "store": self.repo.store.uri,
            "version": __version__,
            "token_required": self.token is not None,
            "poll_ms": int(self.poll_interval * 1000),
            "max_compare": MAX_COMPARE,
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
        return rec

    def version(self, model: str, number: int) -> dict[str, Any]:
        rec = self._record(model, number)
        final = self.repo.final(model, number)
        rec["changes"] = (final or {}).get("changes")
        diff: str | None = None
        try:
            raw = self.repo.store.read(vkey(model, number, "code.diff"))
            diff = raw.decode("utf-8", errors="replace")
        except KeyNotFound:
            pass
        rec["code_diff_truncated"] = diff is not None and len(diff) > MAX_DIFF_CHARS
        rec["code_diff"] = diff[:MAX_DIFF_CHARS] if diff is not None else None
        rec["alias_history"] = self.repo.alias_history(model)
        rec["model_aliases"] = self.repo.aliases(model)
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

    def artifact(self, model: str, number: int, path: str) -> tuple[dict[str, Any], bytes | str]:
        """The artifact record and its content (bytes) or local file path (str)."""
        rec = self.repo.version((model, number), series=False, environment=False)
        art = next((a for a in rec.get("artifacts", []) if a.get("path") == path), None)
        if art is None:
            raise HTTPError(404, f"{model}@v{number} has no artifact {path!r}")
        sha = str(art.get("sha256", ""))
        if not _SHA256.fullmatch(sha):
            raise HTTPError(500, f"the record of {path!r} holds an invalid checksum")
        key = blob_key(sha)
        local = self.repo.store.local_path(key)
        if local is not None:
            if not local.is_file():
                raise HTTPError(404, f"the content of {path!r} is missing from the store; run `modeltrack verify`")
            return art, str(local)
        try:
            return art, self.repo.store.read(key)
        except KeyNotFound:
            raise HTTPError(
                404, f"the content of {path!r} is missing from the store; run `modeltrack verify`"
            ) from None

    # ------------------------------------------------------------------ writes
    def set_alias(self, model: str, body: dict[str, Any]) -> dict[str, Any]:
        alias = check_alias_name(body.get("alias"))
        number = _int(body.get("version"), "version")
        reason = body.get("reason")
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
        tags = body.get("set") or {}
        remove = body.get("remove") or []
        if not isinstance(tags, dict) or not isinstance(remove, list):
            raise HTTPError(400, 'tags take {"set": {key: value or null}, "remove": [key, …]}')
        clean = {str(k): (None if v is None else str(v)) for k, v in tags.items()}
        now = self.repo.set_tags((model, number), clean, [str(k) for k in remove])
        return {"tags": now}

    def set_notes(self, model: str, number: int, body: dict[str, Any]) -> dict[str, Any]:
        text = body.get("text")
        if text is not None and not isinstance(text, str):
            raise HTTPError(400, 'notes take {"text": "…"} (or null to clear)')
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
                points = _int((query.get("points") or [str(DEFAULT_MAX_POINTS)])[0], "points")
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
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            raise HTTPError(403, "wrong token")


def _model(name: str) -> str:
    return check_model_name(name)


def _int(value: Any, what: str) -> int:
    text = str(value)
    if text[:1] in ("v", "V"):
        text = text[1:]
    if not text.isdigit():
        raise HTTPError(400, f"{what} must be a whole number, got {value!r}")
    return int(text)


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise HTTPError(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HTTPError(400, "the body must be a JSON object")
    return data


def _load_static() -> dict[str, bytes]:
    folder = resources.files("modeltrack.ui") / "static"
    out: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            out[entry.name] = entry.read_bytes()
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


class Handler(BaseHTTPRequestHandler):
    """One request: static files, API reads and token-checked writes."""

    server: UIServer
    protocol_version = "HTTP/1.1"
    server_version = "modeltrack-ui"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

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
        try:
            self._check_host()
            url = urlsplit(self.path)
            raw_parts = url.path.split("/")[1:]
            if raw_parts and raw_parts[0] == "api":
                parts = [unquote(p) for p in raw_parts[1:]]
                if parts and parts[-1] == "":
                    parts = parts[:-1]
                query = parse_qs(url.query)
                if method == "GET" and len(parts) >= 5 and parts[0] == "versions" and parts[3] == "artifacts":
                    self._download(_model(parts[1]), _int(parts[2], "version"), "/".join(parts[4:]), head)
                    return
                body: Callable[[], dict[str, Any]] = dict
                if method == "POST":
                    # Read the whole body first: bytes left unread would be taken for the
                    # next request on this keep-alive connection.
                    raw = self._read_body()
                    self._check_write()
                    body = lambda: _parse_body(raw)  # noqa: E731
                result = app.route(method, parts, query, body)
                self._send_json(200, result, head=head)
                return
            if method != "GET":
                raise HTTPError(405, "method not allowed")
            self._static(url.path, head)
        except HTTPError as exc:
            self._send_json(exc.status, {"error": str(exc)}, head=head)
        except ModelTrackError as exc:
            self._send_json(_status_for(exc), {"error": str(exc), "type": type(exc).__name__}, head=head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the server
            sys.stderr.write(f"modeltrack ui: error on {method} {self.path}:\n{traceback.format_exc()}")
            self._send_json(500, {"error": f"internal error: {type(exc).__name__}: {exc}"}, head=head)

    def _check_host(self) -> None:
        # A page on another site can make a name resolve to 127.0.0.1 (DNS rebinding); the
        # browser then sends that name as Host, so a loopback server refuses other names.
        if not self.server.loopback:
            return
        host = (self.headers.get("Host") or "").strip()
        name = host[1 : host.find("]")] if host.startswith("[") else host.split(":")[0]
        if not is_loopback(name):
            raise HTTPError(403, f"refusing Host {host!r}: this server answers on loopback names only")

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
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise HTTPError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            raise HTTPError(413, "request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _headers(self, status: int, ctype: str, length: int, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in {**_SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()

    def _send_json(self, status: int, obj: Any, head: bool = False) -> None:
        data = dumps(obj)
        if status >= 400 and self.command == "POST":
            # Unread request bodies would be parsed as the next request on this connection.
            self.close_connection = True
        self._headers(status, "application/json; charset=utf-8", len(data))
        if not head:
            self.wfile.write(data)

    def _static(self, path: str, head: bool) -> None:
        files = self.server.app._static
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

    def _download(self, model: str, number: int, path: str, head: bool) -> None:
        art, content = self.server.app.artifact(model, number, path)
        filename = path.rsplit("/", 1)[-1]
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "artifact"
        extra = {
            "Content-Disposition": f'attachment; filename="{safe}"',
            "X-Checksum-SHA256": str(art["sha256"]),
        }
        if isinstance(content, bytes):
            self._headers(200, "application/octet-stream", len(content), extra)
            if not head:
                self.wfile.write(content)
            return
        with open(content, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            self._headers(200, "application/octet-stream", size, extra)
            if head:
                return
            while chunk := f.read(1024 * 1024):
                self.wfile.write(chunk)


class UIServer(ThreadingHTTPServer):
    """A threading HTTP server holding the :class:`UIApp`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: UIApp, *, verbose: bool = False) -> None:
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.app = app
        self.verbose = verbose
        self.loopback = is_loopback(host)
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        """The address to open, e.g. ``http://127.0.0.1:8765/``."""
        host, port = self.server_address[:2]
        host = str(host)
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


def make_server(
    repo: Repo | str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    poll_interval: float = 2.0,
    verbose: bool = False,
) -> UIServer:
    """Create (but do not start) the UI server.

    Args:
        repo: the store (a :class:`Repo`, a URI, or ``None`` for ``MODELTRACK_STORE``).
        host: address to listen on; anything but loopback needs ``token``.
        port: TCP port (``0``: a free one; read it from ``server.url``).
        token: required for every write when set.
        poll_interval: seconds between refreshes of a running version's charts.
        verbose: log every request to stderr.

    Returns:
        the server; call ``serve_forever()`` (in a thread, if you need to go on).

    Raises:
        ModelTrackError: a non-loopback ``host`` without a token.
        OSError: the port is taken.

    Example:
        >>> srv = make_server("./.modeltrack", port=0)  # doctest: +SKIP
        >>> threading.Thread(target=srv.serve_forever, daemon=True).start()  # doctest: +SKIP
    """
    check_bind(host, token)
    if not isinstance(repo, Repo):
        repo = Repo(repo)
    repo.check_format()
    app = UIApp(repo, token, poll_interval=poll_interval)
    return UIServer((host, port), app, verbose=verbose)
