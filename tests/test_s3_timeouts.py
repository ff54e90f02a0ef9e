"""Training never stops or hangs because of a remote store: every S3 request is bounded,
a store that stopped answering is not waited on again, and the spool reports a full or
read-only disk as a modeltrack error.

The faults come from :class:`faultproxy.FaultProxy` between boto3 and the moto server:
a black hole (accepts, never answers), connections cut mid-response, HTTP 500 to every
request, refused connections. Run with ``-s`` to see the measured seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

from faultproxy import FaultProxy

import modeltrack as mt
from modeltrack.cli import main
from modeltrack.errors import StoreError, StoreNotWritableError, StoreUnavailableError
from modeltrack.stores.memory import MemoryStore
from modeltrack.stores.s3 import S3Store
from modeltrack.stores.spool import Spool, SpoolingStore

#: small budgets so that the tests are quick: a small request gets (1 + 1) × 1 s
FAST = {
    "MODELTRACK_S3_CONNECT_TIMEOUT": "1",
    "MODELTRACK_S3_READ_TIMEOUT": "1",
    "MODELTRACK_S3_TRANSFER_TIMEOUT": "2",
    "MODELTRACK_S3_RETRIES": "1",
    "MODELTRACK_UPLOAD_TIMEOUT": "2",
    "MODELTRACK_UPLOAD_BACKOFF_MAX": "0.5",
}
#: what one small request may take against a black hole with FAST: attempts × read timeout
REQUEST_BUDGET = 2 * 1.0


@pytest.fixture
def proxy(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A fault proxy in front of the moto server; boto3 goes through it."""
    p = FaultProxy(("127.0.0.1", s3_server.port))
    monkeypatch.setenv("AWS_ENDPOINT_URL", p.endpoint)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    return text


# ---------------------------------------------------------------------- mt.start()
@pytest.mark.parametrize("fault", ["blackhole", "500", "cut", "refuse"])
def test_start_fails_fast_with_one_line_naming_the_endpoint(
    s3_server: Any, proxy: FaultProxy, fast: None, fault: str
) -> None:
    uri = s3_server.new_store_uri()
    mt.start("m", store=uri).finish()  # an existing store: FORMAT and v1
    proxy.mode = fault
    t = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        mt.start("m", store=uri)
    took = time.monotonic() - t
    print(f"\nmt.start() against {fault!r} with {FAST}: StoreUnavailableError after {took:.1f} s")
    msg = one_line(info.value)
    assert proxy.endpoint in msg
    if fault == "500":
        assert "InternalError" in msg and "retry later" in msg  # the server answered: it is failing
    else:
        assert "AWS_ENDPOINT_URL" in msg
    if fault == "blackhole":
        assert "MODELTRACK_S3_READ_TIMEOUT" in msg
    assert info.value.__cause__ is not None  # raised from the botocore error
    assert took < 3 * REQUEST_BUDGET + 2  # + botocore's backoff between attempts


@pytest.mark.slow
def test_start_against_a_black_hole_with_the_default_settings(s3_server: Any, proxy: FaultProxy) -> None:
    uri = s3_server.new_store_uri()
    mt.start("m", store=uri).finish()
    proxy.mode = "blackhole"
    t = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        mt.start("m", store=uri)
    took = time.monotonic() - t
    print(f"\nmt.start() against a black hole, default settings (5 s connect, 10 s read, 2 retries): {took:.1f} s")
    assert "within 10 s (3 attempts)" in one_line(info.value)
    assert took < 40  # three 10 s attempts and botocore's backoff


def test_a_store_that_stopped_answering_is_not_waited_on_again(s3_server: Any, proxy: FaultProxy, fast: None) -> None:
    store = S3Store.from_uri(s3_server.new_store_uri())
    store.write("a", b"1")
    proxy.mode = "blackhole"
    t = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="did not answer within 1 s"):
        store.read("a")
    first = time.monotonic() - t
    t = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="is not answering") as info:
        store.list("")
    again = time.monotonic() - t
    print(f"\nfirst request into the black hole: {first:.1f} s, the next one: {again:.3f} s")
    assert first < 3 * REQUEST_BUDGET + 2 and again < 0.5
    assert proxy.endpoint in one_line(info.value)
    proxy.mode = "pass"
    time.sleep(1.1)  # the cool-down (the read timeout): then one request probes again
    assert store.read("a") == b"1"
    assert store.list("") == ["a"]


def test_every_store_method_raises_modeltrack_errors_only(s3_server: Any, proxy: FaultProxy, fast: None) -> None:
    store = S3Store.from_uri(s3_server.new_store_uri())
    store.write("k", b"v")
    for fault in ("500", "cut", "refuse", "blackhole"):
        proxy.mode = fault
        fresh = S3Store.from_uri(store.uri)  # no memory of earlier failures
        calls: list[tuple[Any, tuple[Any, ...], tuple[Any, ...]]] = [
            (fresh.read, ("k",), (b"v",)),
            (fresh.write, ("k", b"v"), (None,)),
            (fresh.exists, ("k",), (True,)),
            (fresh.head, ("k",), ({"size": 1, "sha256": None},)),
            (fresh.list, ("",), (["k"],)),
            (fresh.delete, ("x",), (None,)),
        ]
        for call, args, right in calls:
            try:
                got = call(*args)
            except StoreUnavailableError as exc:
                one_line(exc)
                continue
            # A cut that spares the status line leaves a request that the server carried
            # out: success is then right, but never a wrong answer (an empty listing).
            assert fault == "cut" and got in right, (fault, got)
    proxy.mode = "pass"
    assert S3Store.from_uri(store.uri).read("k") == b"v"


# ---------------------------------------------------------------------- a training run
TRAINING = textwrap.dedent(
    """
    import json, sys, time, warnings
    import modeltrack as mt

    store, artifact, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v = mt.start("net", store=store, params={"lr": 0.1})
        print("started", flush=True)
        sys.stdin.readline()  # the test switches the fault on
        t = time.monotonic()
        for step in range(steps):
            v.log_metrics({"loss": 1.0 / (step + 1), "acc": step / steps}, step=step, epoch=step // 50)
            if step == steps // 2:
                v.log_artifact(artifact, kind="checkpoint", step=step)
        loop = time.monotonic() - t
        t = time.monotonic()
        v.finish()
        took = time.monotonic() - t
    found = [[w.category.__name__, str(w.message)] for w in caught]
    print("RESULT " + json.dumps({"ref": v.ref, "status": v.status, "loop_s": loop, "finish_s": took,
                                  "warnings": found}), flush=True)
    """
)


def train_through(fault: str, uri: str, proxy: FaultProxy, artifact: Path, steps: int = 200) -> dict[str, Any]:
    """Run a training process whose store goes bad (``fault``) after ``mt.start``; returns
    what it reported, with ``exit_s``: seconds from the end of ``finish()`` to its exit."""
    env = {**os.environ, "MODELTRACK_STRICT": "0"}
    child = subprocess.Popen(
        [sys.executable, "-c", TRAINING, uri, str(artifact), str(steps)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "started"
        proxy.mode = fault
        child.stdin.write("go\n")
        child.stdin.flush()
        line = child.stdout.readline()
        t = time.monotonic()
        _, err = child.communicate(timeout=120)
        exit_s = time.monotonic() - t
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and line.startswith("RESULT "), err
    return {**json.loads(line[len("RESULT ") :]), "exit_s": exit_s, "stderr": err}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["blackhole", "500", "cut"])
def test_training_through_a_fault_completes_and_sync_publishes_everything(
    s3_server: Any, proxy: FaultProxy, fast: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    uri = s3_server.new_store_uri()
    mt.start("net", store=uri).finish()  # a previous version: the changelog reads it
    artifact = tmp_path / "model.ckpt"
    artifact.write_bytes(os.urandom(3 * 1024 * 1024))
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()

    res = train_through(fault, uri, proxy, artifact)
    with capsys.disabled():
        print(
            f"\n{fault!r}: 200-step loop {res['loop_s']:.2f} s, finish() {res['finish_s']:.1f} s "
            f"(MODELTRACK_UPLOAD_TIMEOUT={FAST['MODELTRACK_UPLOAD_TIMEOUT']}, read timeout "
            f"{FAST['MODELTRACK_S3_READ_TIMEOUT']} s, {FAST['MODELTRACK_S3_RETRIES']} retry), "
            f"process exit {res['exit_s']:.1f} s after"
        )
    assert res["status"] == "finished" and res["ref"] == "net@v2"
    assert res["loop_s"] < 5  # training itself never waited on the network
    upload_timeout = float(FAST["MODELTRACK_UPLOAD_TIMEOUT"])
    # The changelog's read of v1 (one bounded request), then the bounded wait for uploads.
    assert res["finish_s"] < 3 * (upload_timeout + REQUEST_BUDGET)
    assert res["exit_s"] < 5  # no transfer thread keeps the finished process alive
    kinds = {category for category, _ in res["warnings"] if category not in ("DeprecationWarning",)}
    assert kinds == {"ModelTrackWarning"}, res["warnings"]
    pending = Spool().status(uri)
    if fault == "cut" and not pending:
        # Half of every answer still carries its status line and ETag, and the server got
        # each request whole: with nothing read back to verify, the uploads went through.
        assert not any("still pending" in text for _, text in res["warnings"])
    else:
        assert any("still pending" in text for _, text in res["warnings"])
        assert [e["versions"] for e in pending] == [["net@v2"]] and not pending[0]["uploading"]
    proxy.mode = "pass"
    assert main(["--store", uri, "sync"]) == 0
    assert "nothing pending" in capsys.readouterr().out
    assert Spool().status(uri) == []

    rec = mt.show("net@v2", store=uri)
    assert rec["status"] == "finished"
    steps = list(range(200))
    assert [p["step"] for p in rec["metrics"]["loss"]["series"]] == steps
    assert [p["value"] for p in rec["metrics"]["loss"]["series"]] == [1.0 / (s + 1) for s in steps]
    assert [p["value"] for p in rec["metrics"]["acc"]["series"]] == [s / 200 for s in steps]
    assert [a["sha256"] for a in rec["artifacts"]] == [sha]
    local = mt.artifact_path("net@v2", kind="checkpoint", store=uri, dest=str(tmp_path / "dl"))
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == sha
    assert mt.verify(store=uri)["ok"]


# ---------------------------------------------------------------------- a full or read-only spool
def _mount(path: Path, options: str) -> str | None:
    """Mount a tmpfs at ``path``; the reason it failed, or None."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "not root"
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    return None if res.returncode == 0 else (res.stderr.strip() or f"mount exited {res.returncode}")


def _spool_files(root: Path) -> list[str]:
    names = ("lock", "owner.json", "store.json")
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in names)


def test_a_full_spool_gives_store_not_writable_and_leaves_no_partial_files(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    why = _mount(root, "size=2m")
    if why is not None:
        print(f"\nskipped: cannot mount a 2 MiB tmpfs ({why})")
        pytest.skip(f"cannot mount a 2 MiB tmpfs: {why}")
    try:
        remote = MemoryStore.shared(uuid.uuid4().hex)
        writer = SpoolingStore(remote, spool=Spool(root))
        writer.write("small", b"fits")
        assert writer.drain(10)
        big = tmp_path / "big.ckpt"
        big.write_bytes(os.urandom(3 * 1024 * 1024))

        def check(exc: StoreNotWritableError, what: str) -> None:
            msg = one_line(exc)
            assert str(root) in msg and what in msg and "MODELTRACK_SPOOL" in msg and "free space" in msg, msg
            assert isinstance(exc.__cause__, OSError)

        with pytest.raises(StoreNotWritableError) as info:
            writer.write("models/m/versions/1/series.json", os.urandom(3 * 1024 * 1024))
        check(info.value, "series.json")
        with pytest.raises(StoreNotWritableError) as info:
            writer.put_file("blobs/x", big)
        check(info.value, "blobs/x")
        with pytest.raises(StoreNotWritableError) as info:
            writer.stage_file(big)
        check(info.value, str(big))
        assert _spool_files(root) == []  # no partial copy, no orphan payload

        # Now really full: even a few bytes do not fit.
        with open(root / "ballast", "wb", buffering=0) as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
        for call in (
            lambda: writer.write("k", b"x" * 10000),
            lambda: writer.create("c", b"y" * 10000),
            lambda: writer.delete("k"),
        ):
            with pytest.raises(StoreNotWritableError) as info:
                call()
            check(info.value, "not recorded")
        (root / "ballast").unlink()
        writer.write("k", b"after")  # space again: recording resumes
        assert writer.drain(10) and remote.read("k") == b"after"
        assert _spool_files(root) == []
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


def test_a_read_only_spool_gives_store_not_writable(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    why = _mount(root, "ro,size=1m")
    if why is not None:
        print(f"\nskipped: cannot mount a read-only tmpfs ({why})")
        pytest.skip(f"cannot mount a read-only tmpfs: {why}")
    try:
        writer = SpoolingStore(MemoryStore.shared(uuid.uuid4().hex), spool=Spool(root))
        src = tmp_path / "f.bin"
        src.write_bytes(b"data")
        for call in (
            lambda: writer.write("k", b"x"),
            lambda: writer.create("c", b"y"),
            lambda: writer.delete("k"),
            lambda: writer.put_file("blobs/f", src),
            lambda: writer.stage_file(src),
        ):
            with pytest.raises(StoreNotWritableError, match="MODELTRACK_SPOOL") as info:
                call()
            assert str(root) in one_line(info.value)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


def test_a_missing_source_file_is_a_store_error_not_a_spool_error(tmp_path: Path) -> None:
    writer = SpoolingStore(MemoryStore.shared(uuid.uuid4().hex), spool=Spool(tmp_path / "spool"))
    for call in (
        lambda: writer.put_file("blobs/f", tmp_path / "missing.bin"),
        lambda: writer.stage_file(tmp_path / "missing.bin"),
    ):
        with pytest.raises(StoreError, match="missing.bin") as info:
            call()
        assert not isinstance(info.value, StoreNotWritableError)


# ---------------------------------------------------------------------- tags and notes during an outage
@pytest.mark.slow
@pytest.mark.parametrize("fault", ["blackhole", "500"])
def test_tags_and_notes_during_an_outage_are_spooled(
    s3_server: Any, proxy: FaultProxy, fast: None, fault: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    uri = s3_server.new_store_uri()
    v = mt.start("m", store=uri)
    proxy.mode = fault
    started = time.monotonic()
    for i in range(20):  # never raises into training, never waits on the network
        v.set_tags(**{f"k{i}": str(i)})
        v.set_notes(f"notes {i}")
        v.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
    spent = time.monotonic() - started
    print(f"20 set_tags + set_notes during a {fault}: {spent:.3f} s")
    assert spent < 2.0
    v.finish()  # gives up waiting after MODELTRACK_UPLOAD_TIMEOUT; the uploader keeps trying
    proxy.mode = "pass"
    assert v.store.drain(60)  # this live process owns its queue and publishes it itself
    rec = mt.show("m@v1", store=uri)
    assert rec["status"] == "finished"
    assert rec["tags"] == {f"k{i}": str(i) for i in range(20)}
    assert rec["notes"] == "notes 19"


def test_uploads_send_no_expect_100_continue(s3_server: Any) -> None:
    """botocore spins for ever reading the interim answer when a connection is cut right
    after "100 Continue" (a CI run hung 600 s on it): uploads never ask for one."""
    store = S3Store.from_uri(s3_server.new_store_uri())
    seen: list[str | None] = []

    def record(request: Any, **_kwargs: Any) -> None:
        seen.append(request.headers.get("Expect"))

    for client in (store.client, store.transfer_client):
        client.meta.events.register_last("before-send.s3", record)
    try:
        store.write("k", b"v" * 1000)
        src = Path(os.environ.get("TMPDIR", "/tmp")) / f"mt-expect-{uuid.uuid4().hex}"
        src.write_bytes(os.urandom(100_000))
        try:
            store.put_file("blob", src)
        finally:
            src.unlink()
    finally:
        for client in (store.client, store.transfer_client):
            client.meta.events.unregister("before-send.s3", record)
    assert seen and all(v is None for v in seen), seen
    assert store.read("k") == b"v" * 1000


def test_a_spool_full_before_start_warns_and_training_goes_on(
    s3_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start() claims the number on the server; everything after goes to the spool, which is
    full: each write is a ModelTrackWarning (an error in strict mode), never a raw OSError."""
    root = tmp_path / "spool"
    why = _mount(root, "ro,size=1m")
    if why is not None:
        print(f"\nskipped: cannot mount a read-only tmpfs ({why})")
        pytest.skip(f"cannot mount a read-only tmpfs: {why}")
    try:
        monkeypatch.setenv("MODELTRACK_SPOOL", str(root))
        monkeypatch.setenv("MODELTRACK_STRICT", "0")
        monkeypatch.setenv("MODELTRACK_UPLOAD_TIMEOUT", "1")
        uri = s3_server.new_store_uri()
        f = tmp_path / "m.bin"
        f.write_bytes(b"weights")
        with pytest.warns(mt.ModelTrackWarning, match="MODELTRACK_SPOOL"):
            with mt.start("m", store=uri, params={"lr": 0.1}, tags={"a": "1"}) as v:
                for step in range(50):
                    v.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
                assert v.log_artifact(f) == []
        assert v.number == 1 and v.closed
        monkeypatch.setenv("MODELTRACK_STRICT", "1")
        v2 = mt.start("m", store=uri)
        with pytest.raises(StoreNotWritableError):
            v2.log_params(lr=0.2)
        monkeypatch.setenv("MODELTRACK_STRICT", "0")
        with pytest.warns(mt.ModelTrackWarning):
            v2.finish()
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)
