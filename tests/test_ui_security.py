"""Hardening of the web UI server, each rule checked against a real server over real sockets:
tokens off loopback, the Host allow-list, timeouts and the bounded thread pool, strict number
and JSON parsing, and downloads that never serve a symlink or bytes whose SHA-256 is wrong."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

import modeltrack as mt
from modeltrack.blobs import blob_key
from modeltrack.stores.local import LocalStore
from modeltrack.ui.server import UIServer, make_server

TOKEN = "s3cret-Tok"
CONTENT = b"model weights " * 64
SECRET = b"aws_secret_access_key = DO-NOT-LEAK-0123456789"


def fill(store: str, model: str = "churn", content: bytes = CONTENT) -> str:
    """One finished version with params, a metric and one artifact; returns its SHA-256."""
    with mt.start(model, params={"lr": 0.1}, store=store) as v, tempfile.TemporaryDirectory() as d:
        v.log_metrics({"loss": 0.5}, step=0, epoch=0)
        f = Path(d) / f"{model}-weights.bin"
        f.write_bytes(content)
        v.log_artifact(f, kind="model", name="weights.bin")
    return hashlib.sha256(content).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> str:
    s = str(tmp_path / "store")
    fill(s)
    return s


@contextmanager
def serve(store: str | mt.Repo, host: str = "127.0.0.1", **kw: Any) -> Iterator[UIServer]:
    srv = make_server(store, host, 0, poll_interval=0.3, **kw)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def port_of(srv: UIServer) -> int:
    return int(srv.server_address[1])


def request(
    srv: UIServer,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    connect: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(connect, port_of(srv), timeout=30)
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    skip_host = "Host" in hdrs
    conn.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
    for k, v in hdrs.items():
        conn.putheader(k, v)
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def error_of(body: bytes) -> str:
    data = json.loads(body)
    assert set(data) <= {"error", "type"}, data
    return str(data["error"])


def raw_exchange(port: int, payload: bytes, wait: float = 10.0) -> bytes:
    """Send ``payload`` on a fresh socket and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


class NaiveLocalStore(LocalStore):
    """A local store whose ``local_path`` checks nothing, so the server's own checks are what
    stand between a planted symlink and the client."""

    def local_path(self, key: str) -> Path | None:
        return Path(self.root, *key.split("/"))


def open_repo(store: str, how: str) -> mt.Repo | str:
    return mt.Repo(NaiveLocalStore(store)) if how == "naive" else store


def blob_path(store: str, sha: str) -> Path:
    local = mt.Repo(store).store.local_path(blob_key(sha))
    assert local is not None
    return Path(local)


def replace_file(path: Path, data: bytes) -> None:
    """Overwrite a (possibly read-only) blob in place."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(data)
        f.truncate()


ART = "/api/versions/churn/1/artifacts/weights.bin"
READS = [
    "/api/info",
    "/api/models",
    "/api/models/churn/versions",
    "/api/models/churn/aliases",
    "/api/versions/churn/1",
    "/api/versions/churn/1/series?points=100",
    "/api/compare?ref=churn@v1&ref=churn@v1",
    ART,
    "/api/nothing",
]


# ---------------------------------------------------------------------- 1. tokens
def test_off_loopback_every_api_request_needs_the_token(store: str) -> None:
    with serve(store, "0.0.0.0", token=TOKEN) as srv:
        store_uri = mt.Repo(store).store.uri.encode()
        for path in READS:
            for method in ("GET", "HEAD"):
                status, _, body = request(srv, method, path)
                assert status == 401, (method, path, status)
                if method == "GET":
                    assert "token" in error_of(body)
                    assert store_uri not in body and b"churn" not in body and CONTENT[:20] not in body
            status, _, body = request(srv, "GET", path, headers={"Authorization": "Bearer wrong"})
            assert status == 403 and error_of(body) == "wrong token", path
            status, _, body = request(srv, "GET", path, headers={"Authorization": "Basic " + TOKEN})
            assert status == 403, path
            status, _, _ = request(srv, "GET", path, headers={"Cookie": f"modeltrack_ui_{port_of(srv)}=forged"})
            assert status == 401, path
        ok = {"Authorization": f"Bearer {TOKEN}"}
        status, _, body = request(srv, "GET", "/api/info", headers=ok)
        assert status == 200 and json.loads(body)["token_required"] is True
        status, _, body = request(srv, "GET", ART, headers=ok)
        assert status == 200 and body == CONTENT
        # the app's own files stay public and hold no data
        for path in ("/", "/static/app.js", "/static/style.css"):
            status, _, body = request(srv, "GET", path)
            assert status == 200 and store_uri not in body and b"churn" not in body, path
        # writes: the token is still needed, and a wrong one is refused
        note = {"text": "hi"}
        assert request(srv, "POST", "/api/versions/churn/1/notes", note)[0] == 401
        assert request(srv, "POST", "/api/versions/churn/1/notes", note, {"Authorization": "Bearer x"})[0] == 403
        assert request(srv, "POST", "/api/versions/churn/1/notes", note, ok)[0] == 200
        assert mt.Repo(store).notes("churn", 1) == "hi"


def test_token_link_sets_a_strict_httponly_cookie_for_reads(store: str) -> None:
    with serve(store, "0.0.0.0", token=TOKEN) as srv:
        status, headers, _ = request(srv, "GET", "/?token=" + quote(TOKEN))
        assert status == 303
        assert headers["location"] == "/#token=" + quote(TOKEN, safe="")  # the page keeps it for writes
        cookie = headers["set-cookie"]
        attrs = [a.strip() for a in cookie.split(";")]
        assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
        name, _, value = attrs[0].partition("=")
        assert name == f"modeltrack_ui_{port_of(srv)}" and value and TOKEN not in value
        jar = {"Cookie": f"other=1; {name}={value}"}
        assert request(srv, "GET", "/api/models", headers=jar)[0] == 200
        status, _, body = request(srv, "GET", ART, headers=jar)  # a plain <a href> download
        assert status == 200 and body == CONTENT
        # the cookie grants reads only: a write still needs the Authorization header
        status, _, _ = request(srv, "POST", "/api/versions/churn/1/notes", {"text": "x"}, jar)
        assert status == 401 and mt.Repo(store).notes("churn", 1) is None
        # a wrong token link sets nothing
        status, headers, _ = request(srv, "GET", "/?token=nope")
        assert status == 403 and "set-cookie" not in headers
    # another server (another token) does not take this cookie
    with serve(store, "0.0.0.0", token="other-token") as srv2:
        assert (
            request(srv2, "GET", "/api/models", headers={"Cookie": f"modeltrack_ui_{port_of(srv2)}={value}"})[0] == 401
        )


def test_loopback_reads_stay_open_when_a_token_is_set(store: str) -> None:
    with serve(store, token=TOKEN) as srv:
        for path in READS[:-1]:
            assert request(srv, "GET", path)[0] == 200, path
        assert request(srv, "GET", ART)[2] == CONTENT
        assert request(srv, "POST", "/api/versions/churn/1/notes", {"text": "x"})[0] == 401


# ---------------------------------------------------------------------- 2. Host allow-list
def test_host_allow_list_off_loopback(store: str) -> None:
    ok = {"Authorization": f"Bearer {TOKEN}"}
    with serve(store, "0.0.0.0", token=TOKEN, allow_hosts=["MLBox.internal"]) as srv:
        port = port_of(srv)
        for host, want in [
            ("evil.example", 403),
            (f"evil.example:{port}", 403),
            ("10.9.9.9", 403),  # an address, but not the one this connection reached
            ("mlbox.internal.evil.example", 403),
            (f"mlbox.internal:{port}", 200),
            ("MLBOX.INTERNAL", 200),
            (f"127.0.0.1:{port}", 200),
            (f"localhost:{port}", 200),
        ]:
            status, _, body = request(srv, "GET", "/api/models", headers={**ok, "Host": host})
            assert status == want, (host, status, body)
            if want == 403:
                assert "Host" in error_of(body)
        # the Host rule comes before the token: a rebinding page learns nothing either way
        assert request(srv, "GET", "/", headers={"Host": "evil.example"})[0] == 403
        # no Host header at all (HTTP/1.0)
        reply = raw_exchange(port, b"GET /api/models HTTP/1.0\r\nAuthorization: Bearer " + TOKEN.encode() + b"\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 403"), reply[:80]
        # the machine's own non-loopback address, when it has one
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("192.0.2.1", 9))
            own = probe.getsockname()[0]
        except OSError:
            own = "127.0.0.1"
        finally:
            probe.close()
        if not own.startswith("127."):
            status, _, _ = request(srv, "GET", "/api/models", headers={**ok, "Host": f"{own}:{port}"}, connect=own)
            assert status == 200
    with serve(store, allow_hosts=["ui.example"]) as srv:  # loopback: allowed names are added
        assert request(srv, "GET", "/api/models", headers={"Host": "ui.example:80"})[0] == 200
        assert request(srv, "GET", "/api/models", headers={"Host": "evil.example"})[0] == 403


def test_cli_allow_host(store: str) -> None:
    helptext = subprocess.run(
        [sys.executable, "-m", "modeltrack", "ui", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "--allow-host HOST" in helptext and "Host" in helptext
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "modeltrack", "ui", "--store", store, "--host", "0.0.0.0", "--port", "0"),
            *("--token", TOKEN, "--allow-host", "mlbox.internal", "--allow-host", "ui.example"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving" in line, line
        port = urlsplit(line.split(" at ")[-1].strip()).port
        assert "?token=" in proc.stdout.readline()
        for host, want in [("mlbox.internal", 200), ("ui.example:1", 200), ("evil.example", 403)]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.putrequest("GET", "/api/models", skip_host=True)
            conn.putheader("Host", host)
            conn.putheader("Authorization", f"Bearer {TOKEN}")
            conn.endheaders()
            assert conn.getresponse().status == want, host
            conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


# ---------------------------------------------------------------------- 3. timeouts, pool
def test_short_bodies_time_out_and_the_server_keeps_answering(store: str) -> None:
    timeout = 1.5
    with serve(store, timeout=timeout) as srv:
        port = port_of(srv)
        head = (
            b"POST /api/versions/churn/1/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        slow = []
        for _ in range(6):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(head + b'{"text": "')  # 10 of the 1000 bytes
            slow.append(s)
        t0 = time.monotonic()
        status, _, body = request(srv, "GET", "/api/info")
        assert status == 200 and time.monotonic() - t0 < 1.0, body
        started = time.monotonic()
        for s in slow:
            got = b""
            while chunk := s.recv(65536):  # raises socket.timeout if the server never closes it
                got += chunk
            assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:80]
            s.close()
        assert time.monotonic() - started < timeout + 2.5
        assert mt.Repo(store).notes("churn", 1) is None
        assert request(srv, "GET", "/api/models")[0] == 200


def test_a_trickled_request_is_cut_at_its_deadline(store: str) -> None:
    with serve(store, timeout=1.0) as srv:
        s = socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10)
        t0 = time.monotonic()
        closed_at = None
        for byte in b"GET /api/models HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            try:
                s.sendall(bytes([byte]))  # each byte well inside the per-recv timeout
            except OSError:
                closed_at = time.monotonic()
                break
            s.settimeout(0.2)
            try:
                if s.recv(1) == b"":
                    closed_at = time.monotonic()
                    break
            except TimeoutError:
                pass
        s.close()
        assert closed_at is not None and closed_at - t0 < 3.0
        assert request(srv, "GET", "/api/info")[0] == 200


def test_handler_threads_are_bounded(store: str) -> None:
    with serve(store, timeout=2.0, max_threads=3) as srv:
        srv.busy_wait = 0.2
        time.sleep(0.2)
        baseline = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10) for _ in range(3)]
        time.sleep(0.3)
        busy = []
        for _ in range(5):
            reply = raw_exchange(port_of(srv), b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            busy.append(reply)
            assert threading.active_count() <= baseline + 3
        assert all(r.startswith(b"HTTP/1.1 503") for r in busy), busy[0][:80]
        assert b"busy" in busy[0]
        for s in idle:  # the server times the idle ones out and closes them
            assert s.recv(1) == b""
            s.close()
        time.sleep(0.2)
        assert request(srv, "GET", "/api/info")[0] == 200


# ---------------------------------------------------------------------- 4. numbers
@pytest.mark.parametrize(
    "path",
    [
        "/api/versions/churn/" + quote("²"),
        "/api/versions/churn/" + quote("١"),  # ARABIC-INDIC DIGIT ONE
        "/api/versions/churn/" + quote("v²"),
        "/api/versions/churn/1234567890123456789",
        "/api/versions/churn/" + quote("²") + "/series",
        "/api/versions/churn/1/series?points=" + quote("²"),
        "/api/versions/churn/1/series?points=v3",
        "/api/versions/churn/" + quote("³") + "/artifacts/weights.bin",
    ],
)
def test_non_ascii_digits_are_a_400(store: str, path: str) -> None:
    with serve(store) as srv:
        status, headers, body = request(srv, "GET", path)
        assert status == 400, (path, body)
        assert headers["content-type"].startswith("application/json") and "whole number" in error_of(body)


def test_non_ascii_numbers_in_bodies_and_headers_are_a_400(store: str) -> None:
    with serve(store) as srv:
        for version in ("²", "١", "1" * 19, 1.5, True, [1], None):
            status, _, body = request(srv, "POST", "/api/models/churn/aliases", {"alias": "prod", "version": version})
            assert status == 400 and "version" in error_of(body), (version, body)
        assert mt.Repo(store).aliases("churn") == {}
        port = port_of(srv)
        for length in ("١٠", "²", "-1", "1_0", "0x10"):
            reply = raw_exchange(
                port,
                (
                    "POST /api/versions/churn/1/notes HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
                ).encode()
                + b'{"text": "x"}',
            )
            assert reply.startswith(b"HTTP/1.1 400") and b"Content-Length" in reply, (length, reply[:200])
        assert mt.Repo(store).notes("churn", 1) is None


# ---------------------------------------------------------------------- 5. JSON
@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/versions/churn/1/tags", b"[" * 100_000, "nested too deeply"),
        ("/api/versions/churn/1/tags", b'{"set": ' + b"[" * 100_000, "nested too deeply"),
        ("/api/versions/churn/1/notes", b'{"text": ' + b'{"a":' * 50_000, "nested too deeply"),
        ("/api/versions/churn/1/tags", b"[1, 2]", "JSON object, got a list"),
        ("/api/versions/churn/1/tags", b'"text"', "JSON object, got a string"),
        ("/api/versions/churn/1/tags", b'{"set": ["a"]}', '"set" must be an object'),
        ("/api/versions/churn/1/tags", b'{"set": {"k": {"a": 1}}}', "tag 'k'"),
        ("/api/versions/churn/1/tags", b'{"set": {"k": [1]}}', "got a list"),
        ("/api/versions/churn/1/tags", b'{"set": {"k": NaN}}', "NaN"),
        ("/api/versions/churn/1/tags", b'{"remove": "k"}', '"remove" must be a list'),
        ("/api/versions/churn/1/tags", b'{"remove": [{"k": 1}]}', "as strings"),
        ("/api/versions/churn/1/notes", b'{"text": {"a": 1}}', "an object"),
        ("/api/versions/churn/1/notes", b'{"text": "x"', "not valid JSON"),
        ("/api/versions/churn/1/notes", b'{"text": "\xff\xfe"}', "not valid JSON"),
        ("/api/models/churn/aliases", b'{"alias": ["prod"], "version": 1}', "alias"),
        ("/api/models/churn/aliases", b'{"alias": "prod", "version": 1, "reason": {"a": 1}}', '"reason"'),
    ],
)
def test_bad_json_bodies_are_a_400(store: str, path: str, body: bytes, says: str) -> None:
    with serve(store) as srv:
        status, headers, out = request(srv, "POST", path, body)
        assert status == 400, (status, out[:300])
        assert headers["content-type"].startswith("application/json")
        message = error_of(out)
        assert says in message and "Traceback" not in message and "\n" not in message, message
        repo = mt.Repo(store)
        assert repo.tags("churn", 1) == {} and repo.notes("churn", 1) is None and repo.aliases("churn") == {}


def test_bodies_without_a_usable_length_are_refused(store: str) -> None:
    with serve(store) as srv:
        port = port_of(srv)
        chunked = (
            b"POST /api/versions/churn/1/notes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\nd\r\n{"text": "x"}\r\n0\r\n\r\nGET /api/info HTTP/1.1\r\n\r\n'
        )
        reply = raw_exchange(port, chunked)
        assert reply.startswith(b"HTTP/1.1 411") and reply.count(b"HTTP/1.1") == 1, reply
        twice = (
            b"POST /api/versions/churn/1/notes HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 13\r\nContent-Length: 5\r\n\r\n{"text": "x"}'
        )
        assert raw_exchange(port, twice).startswith(b"HTTP/1.1 400")
        assert mt.Repo(store).notes("churn", 1) is None


# ---------------------------------------------------------------------- 6. downloads
@pytest.mark.parametrize("how", ["store", "naive"])
def test_a_blob_replaced_by_a_symlink_is_not_served(store: str, tmp_path: Path, how: str) -> None:
    sha = hashlib.sha256(CONTENT).hexdigest()
    secret = tmp_path / "credentials"
    secret.write_bytes(SECRET)
    blob = blob_path(store, sha)
    with serve(open_repo(store, how)) as srv:
        assert request(srv, "GET", ART)[2] == CONTENT  # verified once, cached
        blob.unlink()
        blob.symlink_to(secret)
        for method in ("GET", "HEAD"):
            status, headers, body = request(srv, method, ART)
            assert status == 500, (method, status)
            assert SECRET not in body and headers.get("content-type", "").startswith("application/json")
        message = error_of(request(srv, "GET", ART)[2])
        assert blob_key(sha) in message and "symbolic link" in message and "modeltrack verify" in message
        # a symlink to a file with the right content is still not followed
        good = tmp_path / "copy"
        good.write_bytes(CONTENT)
        blob.unlink()
        blob.symlink_to(good)
        assert request(srv, "GET", ART)[0] == 500


@pytest.mark.parametrize("how", ["store", "naive"])
def test_a_blob_directory_symlinked_out_of_the_store_is_not_served(store: str, tmp_path: Path, how: str) -> None:
    sha = hashlib.sha256(CONTENT).hexdigest()
    blob = blob_path(store, sha)
    outside = tmp_path / "elsewhere"
    shutil.move(str(blob.parent), outside)
    blob.parent.symlink_to(outside, target_is_directory=True)
    with serve(open_repo(store, how)) as srv:
        status, _, body = request(srv, "GET", ART)
        assert status == 500 and CONTENT not in body
        message = error_of(body)
        assert blob_key(sha) in message and "leaves the store" in message and str(outside) not in message


@pytest.mark.parametrize("how", ["same-size", "other-size", "hardlink"])
def test_a_blob_whose_content_changed_is_not_served(store: str, tmp_path: Path, how: str) -> None:
    sha = hashlib.sha256(CONTENT).hexdigest()
    blob = blob_path(store, sha)
    with serve(store) as srv:
        status, headers, body = request(srv, "GET", ART)
        assert status == 200 and body == CONTENT and headers["x-checksum-sha256"] == sha
        if how == "same-size":
            forged = SECRET.ljust(len(CONTENT), b"!")
            replace_file(blob, forged)
        elif how == "other-size":
            forged = SECRET
            replace_file(blob, forged)
        else:
            forged = SECRET
            secret = tmp_path / "credentials"
            secret.write_bytes(SECRET)
            blob.unlink()
            try:
                os.link(secret, blob)
            except OSError:
                pytest.skip("no hard links here")
        for method in ("GET", "HEAD"):
            status, _, body = request(srv, method, ART)
            assert status == 500 and SECRET not in body, (method, status)
        message = error_of(request(srv, "GET", ART)[2])
        assert blob_key(sha) in message and "modeltrack verify" in message
        assert ("SHA-256" in message) if how == "same-size" else ("bytes" in message or "SHA-256" in message)
        # repaired: served again
        blob.unlink()
        blob.write_bytes(CONTENT)
        assert request(srv, "GET", ART)[2] == CONTENT


def test_a_blob_changed_after_verification_is_cut_short(store: str) -> None:
    sha = hashlib.sha256(CONTENT).hexdigest()
    blob = blob_path(store, sha)
    key = blob_key(sha)
    with serve(store) as srv:
        assert request(srv, "GET", ART)[2] == CONTENT
        forged = SECRET.ljust(len(CONTENT), b"!")
        replace_file(blob, forged)
        # as if the change landed between the check and the send: the cache claims it is fine
        st = os.stat(blob)
        srv.app._verified[key] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        conn = http.client.HTTPConnection("127.0.0.1", port_of(srv), timeout=30)
        conn.request("GET", ART)
        r = conn.getresponse()
        got = b""
        try:
            got = r.read()
        except http.client.IncompleteRead as exc:
            got = exc.partial
        conn.close()
        assert len(got) < len(CONTENT) and SECRET not in got
        assert key not in srv.app._verified
        assert request(srv, "GET", ART)[0] == 500  # and from now on refused outright


def test_downloads_from_a_store_without_local_files_are_verified(tmp_path: Path) -> None:
    uri = f"memory://ui-security-{os.getpid()}-{time.monotonic_ns()}"
    sha = fill(uri)
    repo = mt.Repo(uri)
    assert repo.store.local_path(blob_key(sha)) is None
    with serve(uri) as srv:
        status, _, body = request(srv, "GET", ART)
        assert status == 200 and body == CONTENT
        repo.store.write(blob_key(sha), SECRET.ljust(len(CONTENT), b"!"))
        status, _, body = request(srv, "GET", ART)
        assert status == 500 and SECRET not in body and blob_key(sha) in error_of(body)
        repo.store.delete(blob_key(sha))
        status, _, body = request(srv, "GET", ART)
        assert status == 404 and "missing" in error_of(body)


# ---------------------------------------------------------------------- 7. unexpected errors
def test_unexpected_errors_are_a_one_line_json_500(store: str) -> None:
    with serve(store) as srv:

        def boom() -> Any:
            raise RuntimeError("boom\nTraceback (most recent call last):\n  File secret.py")

        srv.app.models = boom  # type: ignore[method-assign]
        status, headers, body = request(srv, "GET", "/api/models")
        assert status == 500 and headers["content-type"].startswith("application/json")
        message = error_of(body)
        assert "RuntimeError" in message and "boom" in message
        assert "\n" not in message and "Traceback" not in message and "secret.py" not in message
        assert request(srv, "GET", "/api/info")[0] == 200
