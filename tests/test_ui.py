"""Web UI server, its JSON API and safety rules, and ``modeltrack plot`` (no browser needed).

The browser tests are in ``test_ui_browser.py``; both fill their stores by real (tiny) numpy
training runs through the core API.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import modeltrack as mt
from modeltrack.cli import main
from modeltrack.errors import ModelTrackError
from modeltrack.ui.series import downsample_indices, per_epoch
from modeltrack.ui.server import UIServer, check_bind, is_loopback, make_server

np = pytest.importorskip("numpy")

XSS_NOTE = '<script>window.__xss = 1</script> <img src=x onerror="window.__xss = 2"> release notes'
XSS_TAG = '<img src=x onerror="window.__xss = 3">'
XSS_PARAM = "</code><script>window.__xss = 4</script>"


# ---------------------------------------------------------------------- training runs
def train(
    store: str,
    model: str = "churn",
    *,
    lr: float = 0.1,
    epochs: int = 6,
    seed: int = 0,
    notes: str | None = None,
    tags: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    fail_at: int | None = None,
    n_rows: int = 64,
) -> mt.Version:
    """A small logistic regression trained with numpy, logged through the core API:
    params, per-epoch train/val loss and accuracy, data fingerprints and the weights file."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rows, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=n_rows) > 0).astype(float)
    xv, yv, xt, yt = x[: n_rows // 4], y[: n_rows // 4], x[n_rows // 4 :], y[n_rows // 4 :]
    w = np.zeros(3)
    params = {"lr": lr, "epochs": epochs, "seed": seed, "optimizer": {"name": "sgd"}, **(extra or {})}

    def evaluate(xs: Any, ys: Any) -> tuple[float, float]:
        q = np.clip(1 / (1 + np.exp(-(xs @ w))), 1e-7, 1 - 1e-7)
        return float(-np.mean(ys * np.log(q) + (1 - ys) * np.log(1 - q))), float(np.mean((q > 0.5) == ys))

    with mt.start(model, params=params, store=store, tags=tags) as v:
        v.log_data("train", xt)
        v.log_data("val", xv)
        for epoch in range(epochs):
            for batch in range(0, len(yt), 16):
                xb, yb = xt[batch : batch + 16], yt[batch : batch + 16]
                p = 1 / (1 + np.exp(-(xb @ w)))
                w -= lr * xb.T @ (p - yb) / len(yb)
            tl, ta = evaluate(xt, yt)
            vl, va = evaluate(xv, yv)
            v.log_metrics({"train_loss": tl, "train_acc": ta, "val_loss": vl, "val_acc": va}, step=epoch, epoch=epoch)
            if fail_at is not None and epoch == fail_at:
                raise RuntimeError("loss diverged")
        with tempfile.TemporaryDirectory() as d:
            f = Path(d) / "weights.npy"
            np.save(f, w)
            v.log_artifact(f, kind="model")
        if notes:
            v.set_notes(notes)
    return v


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """churn v1..v4 (v3 failed; v1 with XSS payloads; production v1 -> v2), and fraud v1."""
    store = str(tmp_path_factory.mktemp("ui") / "store")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MODELTRACK_STRICT", "1")
        train(store, lr=0.05, notes=XSS_NOTE, tags={XSS_TAG: "x", "dataset": "v1"}, extra={"comment": XSS_PARAM})
        train(store, lr=0.2)
        with pytest.raises(RuntimeError):
            train(store, lr=5.0, fail_at=2)
        train(store, lr=0.5, seed=1)
        repo = mt.Repo(store)
        repo.set_alias("churn@v1", "production")
        repo.set_alias("churn@v2", "production", action="promote")
        train(store, model="fraud", lr=0.1, epochs=3)
    return store


@contextmanager
def serve(store: str, token: str | None = None, poll: float = 0.3) -> Iterator[UIServer]:
    srv = make_server(store, "127.0.0.1", 0, token=token, poll_interval=poll)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def request(
    srv: UIServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send a raw request (the path goes out exactly as given, no normalisation)."""
    u = urlsplit(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    data = None
    hdrs = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def get_json(srv: UIServer, path: str) -> Any:
    status, _, body = request(srv, "GET", path)
    assert status == 200, body
    return json.loads(body)


# ---------------------------------------------------------------------- unit
def test_downsample_keeps_ends_and_extremes() -> None:
    values = [float(i % 100) for i in range(10_000)]
    values[5_000] = 1e6
    values[7_000] = -1e6
    keep = downsample_indices(values, 500)
    assert len(keep) <= 500
    assert keep[0] == 0 and keep[-1] == 9_999
    assert 5_000 in keep and 7_000 in keep
    assert keep == sorted(keep)
    assert downsample_indices([1.0, 2.0], 500) == [0, 1]
    nan = [float("nan")] * 50 + [None] * 50
    assert downsample_indices(nan, 10)[0] == 0
    assert per_epoch([0, 1, 2]) and not per_epoch([0, 0, 1]) and not per_epoch([None, 1]) and not per_epoch([])


def test_loopback_detection_and_bind_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.4")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "secret")
    with pytest.raises(ModelTrackError, match="token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ModelTrackError, match="MODELTRACK_UI_TOKEN"):
        make_server(None, "0.0.0.0", 0)


# ---------------------------------------------------------------------- API
def test_api_reads(filled_store: str) -> None:
    with serve(filled_store) as srv:
        info = get_json(srv, "/api/info")
        assert info["store"] == mt.Repo(filled_store).store.uri and info["token_required"] is False
        models = {m["name"]: m for m in get_json(srv, "/api/models")}
        assert models["churn"]["versions"] == 4 and models["churn"]["aliases"] == {"production": 2}
        rows = get_json(srv, "/api/models/churn/versions")
        assert [r["status"] for r in rows] == ["finished", "finished", "failed", "finished"]
        assert all(r["duration_s"] is not None and r["duration_s"] >= 0 for r in rows)
        assert rows[1]["aliases"] == ["production"] and "val_loss" in rows[0]["metrics"]

        rec = get_json(srv, "/api/versions/churn/2")
        assert rec["model"] == "churn" and rec["version"] == 2 and rec["params"]["lr"] == 0.2
        assert rec["metrics"]["val_loss"]["count"] == 6 and "series" not in rec["metrics"]["val_loss"]
        assert rec["changes"]["against"] == 1 and "lr" in rec["changes"]["params"]["changed"]
        assert [d["name"] for d in rec["data"]] == ["train", "val"]
        assert rec["artifacts"][0]["path"] == "weights.npy"
        assert [e["to"] for e in rec["alias_history"]] == [1, 2]
        assert "code_diff" in rec and rec["environment"]["python"]
        assert get_json(srv, "/api/versions/churn/3")["error"].strip().endswith("RuntimeError: loss diverged")

        s = get_json(srv, "/api/versions/churn/2/series?points=2000")
        assert s["status"] == "finished"
        loss = s["metrics"]["val_loss"]
        assert loss["per_epoch"] and loss["epoch"] == [0, 1, 2, 3, 4, 5] and loss["goal"] == "min"

        cmp = get_json(srv, "/api/compare?ref=churn@v1&ref=churn@v4")
        assert [v["version"] for v in cmp["versions"]] == [1, 4]
        assert set(cmp["diffs"][0]["data"]) == {"train", "val"}  # another seed: other data
        assert get_json(srv, "/api/models/churn/aliases")[-1]["action"] == "promote"

        for path, status in [
            ("/api/models/nope/versions", 404),
            ("/api/versions/churn/99", 404),
            ("/api/versions/..%2F..%2Fetc/1", 400),
            ("/api/versions/churn/x1", 400),
            ("/api/compare?ref=churn@v1", 400),
            ("/api/nothing", 404),
        ]:
            got, _, body = request(srv, "GET", path)
            assert got == status, (path, body)
            assert "error" in json.loads(body)


def test_static_assets_and_headers(filled_store: str) -> None:
    with serve(filled_store) as srv:
        status, headers, body = request(srv, "GET", "/")
        assert status == 200 and b"/static/app.js" in body
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        for name in ("app.js", "charts.js", "style.css", "favicon.svg"):
            status, headers, body = request(srv, "GET", f"/static/{name}")
            assert status == 200 and body, name
        for name in ("app.js", "charts.js"):
            code = request(srv, "GET", f"/static/{name}")[2].decode()
            assert not re.search(r"\.innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", code), name
        assert b"http://" not in request(srv, "GET", "/static/app.js")[2]  # no CDN
        for path in (
            "/static/../server.py",
            "/static/%2e%2e/server.py",
            "/static/..%2Fserver.py",
            "/../../etc/passwd",
            "/static/",
            "/server.py",
        ):
            assert request(srv, "GET", path)[0] == 404, path


def test_bundled_chart_library_is_served_offline(filled_store: str) -> None:
    """uPlot ships inside the package at the version package.json pins, with its licence; the
    page loads it (and nothing) from another host."""
    root = Path(__file__).resolve().parents[1]
    pinned = json.loads((root / "package.json").read_text())["dependencies"]["uplot"]
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", pinned), "pin an exact version"
    with serve(filled_store) as srv:
        index = request(srv, "GET", "/")[2].decode()
        assert "/static/vendor/uplot/uPlot.iife.min.js" in index and "/static/vendor/uplot/uPlot.min.css" in index
        assert not re.search(r"(src|href)=\"(https?:)?//", index)  # nothing from another host
        status, headers, body = request(srv, "GET", "/static/vendor/uplot/uPlot.iife.min.js")
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        assert body.startswith(f"/*! https://github.com/leeoniya/uPlot (v{pinned}) */".encode())
        status, headers, body = request(srv, "GET", "/static/vendor/uplot/LICENSE")
        assert status == 200 and b"MIT" in body and headers["content-type"].startswith("text/plain")
        assert request(srv, "GET", "/static/vendor/uplot/../../server.py")[0] == 404
        assert request(srv, "GET", "/static/vendor/")[0] == 404


def test_package_data_ships_the_bundled_library() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["modeltrack"]
    vendored = sorted(
        p.relative_to(root / "modeltrack").as_posix()
        for p in (root / "modeltrack/ui/static/vendor").rglob("*")
        if p.is_file()
    )
    assert vendored, "modeltrack/ui/static/vendor is empty: run npm ci && npm run vendor"
    for f in vendored:
        assert any(Path(f).match(glob) for glob in data), f"{f} is not in package-data"


def test_one_palette_for_the_browser_and_plot(filled_store: str) -> None:
    from modeltrack.ui import plot
    from modeltrack.ui.palette import PALETTE

    assert plot.PALETTE is PALETTE and len(PALETTE) >= 10 and len(set(PALETTE)) == len(PALETTE)
    with serve(filled_store) as srv:
        assert get_json(srv, "/api/info")["palette"] == PALETTE
        for name in ("app.js", "charts.js"):  # no second list of colours in the page
            code = request(srv, "GET", f"/static/{name}")[2].decode()
            assert not any(c.lower() in code.lower() for c in PALETTE), name


def test_actor_of_versions_and_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = str(tmp_path / "store")
    monkeypatch.setenv("MODELTRACK_ACTOR", "alice@trainer")
    train(store, epochs=2)
    train(store, epochs=2)
    monkeypatch.setenv("MODELTRACK_ACTOR", "bob@laptop")
    repo = mt.Repo(store)
    repo.set_alias("churn@v1", "production")
    repo.set_tags("churn@v2", {"stage": "candidate"})
    repo.set_tags("churn@v1", {"other": "x"})
    repo.set_notes("churn@v2", "reviewed")
    with serve(store) as srv:
        rec = get_json(srv, "/api/versions/churn/2")
        assert rec["actor"] == "alice@trainer" and rec["notes_actor"] == "bob@laptop" and rec["notes_time"]
        assert [(e["set"], e["actor"]) for e in rec["tag_history"]] == [({"stage": "candidate"}, "bob@laptop")]
        assert rec["alias_history"][0]["actor"] == "bob@laptop"
        cmp = get_json(srv, "/api/compare?ref=churn@v1&ref=churn@v2")
        assert [v["actor"] for v in cmp["versions"]] == ["alice@trainer", "alice@trainer"]


def test_dns_rebinding_host_is_refused(filled_store: str) -> None:
    with serve(filled_store) as srv:
        assert request(srv, "GET", "/api/models", headers={"Host": "evil.example:80"})[0] == 403
        assert request(srv, "GET", "/api/models", headers={"Host": "localhost:1234"})[0] == 200


def test_writes_without_token_on_loopback(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    train(store, lr=0.1, epochs=2)
    train(store, lr=0.2, epochs=2)
    repo = mt.Repo(store)
    with serve(store) as srv:
        status, _, body = request(srv, "POST", "/api/models/churn/aliases", {"alias": "staging", "version": 1})
        assert status == 200, body
        assert request(srv, "POST", "/api/models/churn/aliases", {"alias": "staging", "version": 2})[0] == 200
        assert repo.aliases("churn") == {"staging": 2}
        assert request(srv, "POST", "/api/models/churn/aliases/staging/rollback", {})[0] == 200
        assert repo.aliases("churn") == {"staging": 1}
        assert [e["action"] for e in repo.alias_history("churn")] == ["promote", "promote", "rollback"]
        # a rollback walks back through the holders: v1 was the first, nothing before it
        assert get_json(srv, "/api/versions/churn/1")["rollbacks"] == {}
        assert request(srv, "POST", "/api/models/churn/aliases/staging/rollback", {})[0] == 409
        assert repo.aliases("churn") == {"staging": 1}
        assert request(srv, "POST", "/api/versions/churn/1/tags", {"set": {"k": "v", "label": None}})[0] == 200
        assert request(srv, "POST", "/api/versions/churn/1/tags", {"remove": ["k"]})[0] == 200
        assert repo.tags("churn", 1) == {"label": None}
        assert request(srv, "POST", "/api/versions/churn/1/notes", {"text": "hello"})[0] == 200
        assert repo.notes("churn", 1) == "hello"
        assert request(srv, "POST", "/api/versions/churn/1/notes", {"text": None})[0] == 200
        assert repo.notes("churn", 1) is None
        assert request(srv, "POST", "/api/models/churn/aliases/staging/remove", {})[0] == 200
        assert repo.aliases("churn") == {}
        # bad input is refused with a message
        assert request(srv, "POST", "/api/models/churn/aliases", {"alias": "latest", "version": 1})[0] == 400
        assert request(srv, "POST", "/api/models/churn/aliases", {"alias": "x", "version": 9})[0] == 404
        assert request(srv, "POST", "/api/versions/churn/1/tags", {"set": {"a\nb": "x"}})[0] == 400
        # a cross-site form post (not JSON) or another Origin is refused even without a token
        assert (
            request(
                srv,
                "POST",
                "/api/versions/churn/1/notes",
                b"text=pwned",
                {"Content-Type": "application/x-www-form-urlencoded"},
            )[0]
            == 415
        )
        assert (
            request(srv, "POST", "/api/versions/churn/1/notes", {"text": "pwned"}, {"Origin": "http://evil.example"})[0]
            == 403
        )
        assert repo.notes("churn", 1) is None


def test_writes_need_the_token(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    train(store, lr=0.1, epochs=2)
    repo = mt.Repo(store)
    with serve(store, token="s3cret") as srv:
        assert get_json(srv, "/api/info")["token_required"] is True
        assert request(srv, "GET", "/api/models")[0] == 200  # reading needs no token
        body = {"alias": "production", "version": 1}
        assert request(srv, "POST", "/api/models/churn/aliases", body)[0] == 401
        assert request(srv, "POST", "/api/models/churn/aliases", body, {"Authorization": "Bearer wrong"})[0] == 403
        assert request(srv, "POST", "/api/models/churn/aliases", body, {"Authorization": "Basic s3cret"})[0] == 403
        for path, b in [
            ("/api/versions/churn/1/notes", {"text": "x"}),
            ("/api/versions/churn/1/tags", {"set": {"a": "b"}}),
            ("/api/models/churn/aliases/production/rollback", {}),
        ]:
            assert request(srv, "POST", path, b)[0] == 401, path
        assert repo.aliases("churn") == {} and repo.notes("churn", 1) is None and repo.tags("churn", 1) == {}
        status, _, out = request(srv, "POST", "/api/models/churn/aliases", body, {"Authorization": "Bearer s3cret"})
        assert status == 200, out
        assert repo.aliases("churn") == {"production": 1}


# ---------------------------------------------------------------------- downloads
def test_download_serves_only_recorded_artifacts(filled_store: str) -> None:
    repo = mt.Repo(filled_store)
    art = repo.version("churn@v2", series=False)["artifacts"][0]
    with serve(filled_store) as srv:
        status, headers, body = request(srv, "GET", "/api/versions/churn/2/artifacts/weights.npy")
        assert status == 200
        assert hashlib.sha256(body).hexdigest() == art["sha256"] == headers["x-checksum-sha256"]
        assert headers["content-disposition"] == 'attachment; filename="weights.npy"'
        assert headers["content-type"] == "application/octet-stream"
        assert np.load(__import__("io").BytesIO(body)).shape == (3,)
        evil = [
            "/api/versions/churn/2/artifacts/../../../../FORMAT",
            "/api/versions/churn/2/artifacts/..%2F..%2F..%2F..%2FFORMAT",
            "/api/versions/churn/2/artifacts/%2e%2e/%2e%2e/claim.json",
            "/api/versions/churn/2/artifacts/%2Fetc%2Fpasswd",
            "/api/versions/churn/2/artifacts//etc/passwd",
            "/api/versions/churn/2/artifacts/claim.json",
            "/api/versions/churn/2/artifacts/final.json",
            f"/api/versions/churn/2/artifacts/blobs/sha256/{art['sha256'][:2]}/{art['sha256']}",
            f"/api/versions/churn/2/artifacts/{art['sha256']}",
            "/api/versions/churn/3/artifacts/weights.npy",  # v3 failed before logging one
            "/api/versions/..%2F..%2Fetc/2/artifacts/passwd",
            "/api/versions/churn/2/artifacts/weights.npy%00.txt",
        ]
        for path in evil:
            status, _, body = request(srv, "GET", path)
            assert status in (400, 404), (path, status)
            assert b"root:" not in body and b'"format"' not in body


# ---------------------------------------------------------------------- CLI
def _spawn_ui(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "modeltrack", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_cli_ui_refuses_public_host_without_token(filled_store: str) -> None:
    proc = _spawn_ui("ui", "--store", filled_store, "--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "refusing" in err and "--token" in err and "MODELTRACK_UI_TOKEN" in err
    assert "serving" not in out


@pytest.mark.parametrize("how", ["flag", "env"])
def test_cli_ui_serves_and_prints_address(filled_store: str, how: str) -> None:
    args = ["ui", "--store", filled_store, "--port", "0"]
    env = None
    if how == "flag":
        args += ["--host", "0.0.0.0", "--token", "tok"]
    else:
        env = {"MODELTRACK_UI_TOKEN": "tok"}
    proc = _spawn_ui(*args, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving" in line and "http://" in line, line
        url = line.split(" at ")[-1].strip()
        port = urlsplit(url).port
        assert urlsplit(url).hostname == ("0.0.0.0" if how == "flag" else "127.0.0.1")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        read_headers = {}
        if how == "flag":
            # off loopback, reads need the token too
            conn.request("GET", "/api/info")
            r = conn.getresponse()
            assert r.status == 401 and "token" in json.loads(r.read())["error"]
            read_headers = {"Authorization": "Bearer tok"}
        conn.request("GET", "/api/info", headers=read_headers)
        info = json.loads(conn.getresponse().read())
        assert info["token_required"] is True
        conn.request(
            "POST", "/api/versions/churn/1/notes", body=b'{"text": "x"}', headers={"Content-Type": "application/json"}
        )
        assert conn.getresponse().status == 401
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_plot_writes_a_png(filled_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plots" / "curves.png"
    rc = main(
        [
            "plot",
            "churn@v1",
            "churn@v2",
            "churn@v3",
            "--metric",
            "val_loss",
            "--metric",
            "train_acc",
            "-o",
            str(out),
            "--store",
            filled_store,
        ]
    )
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(out)
    raw = out.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    assert width >= 600 and height >= 800  # two panels
    import matplotlib.image

    img = matplotlib.image.imread(str(out))
    assert img.shape[0] == height and img.shape[1] == width and float(img.std()) > 0.01


def test_plot_unknown_metric_is_an_error(filled_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["plot", "churn@v1", "--metric", "nope", "-o", str(tmp_path / "x.png"), "--store", filled_store])
    assert rc == 1
    err = capsys.readouterr().err
    assert "nope" in err and "val_loss" in err
    assert not (tmp_path / "x.png").exists()


def test_plot_of_running_version_uses_flushed_points(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    v = mt.start("live", store=store)
    try:
        for e in range(4):
            v.log_metrics({"loss": 1.0 / (e + 1)}, epoch=e)
        v.flush()
        out, warnings = mt_plot(store, ["live@v1"], ["loss"], tmp_path / "p.png")
        assert out.stat().st_size > 1000 and warnings == []
    finally:
        v.finish()


def mt_plot(store: str, refs: list[str], metrics: list[str], out: Path) -> tuple[Path, list[str]]:
    from modeltrack.ui.plot import plot_curves

    return plot_curves(mt.Repo(store), refs, metrics, out)


def test_keep_alive_after_a_post_whose_body_the_route_ignores(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    train(store, lr=0.1, epochs=2)
    train(store, lr=0.2, epochs=2)
    repo = mt.Repo(store)
    repo.set_alias("churn@v1", "production")
    repo.set_alias("churn@v2", "production")
    with serve(store) as srv:
        u = urlsplit(srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        conn.request(
            "POST",
            "/api/models/churn/aliases/production/rollback",
            body=b'{"ignored": true}',
            headers={"Content-Type": "application/json"},
        )
        assert conn.getresponse().read() and repo.aliases("churn") == {"production": 1}
        conn.request("GET", "/api/info")  # same connection: the POST body must not leak into it
        r = conn.getresponse()
        assert r.status == 200 and json.loads(r.read())["token_required"] is False
        conn.close()
