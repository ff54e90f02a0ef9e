"""Many processes at once, and a process killed mid-epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modeltrack as mt

WRITER = textwrap.dedent(
    """
    import sys, modeltrack as mt
    store, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        with mt.start("shared", store=store, params={"pid_run": i}) as v:
            v.log_metrics({"i": float(i)}, epoch=0)
    """
)


def run_writers(store: str, procs: int = 8, each: int = 25) -> None:
    env = {**os.environ, "MODELTRACK_STRICT": "1"}
    children = [subprocess.Popen([sys.executable, "-c", WRITER, store, str(each)], env=env) for _ in range(procs)]
    for c in children:
        assert c.wait(timeout=600) == 0


@pytest.mark.slow
def test_concurrent_processes_get_unique_numbers(shared_store: str) -> None:
    any_store = shared_store
    run_writers(any_store)
    rows = mt.versions("shared", store=any_store)
    assert [r["version"] for r in rows] == list(range(1, 201))
    assert all(r["status"] == "finished" for r in rows)
    for n in range(1, 201):
        assert mt.show(f"shared@v{n}", store=any_store)["metrics"]["i"]["last"] is not None


CRASHER = textwrap.dedent(
    """
    import sys, time, modeltrack as mt
    v = mt.start("crashy", store=sys.argv[1], params={"epochs": 1000})
    step = 0
    for epoch in range(1000):
        for batch in range(50):
            step += 1
            v.log_metrics({"loss": 1.0 / step}, step=step, epoch=epoch)
        if epoch == 3:
            print("epoch3", flush=True)
        time.sleep(0.01)
    """
)


@pytest.mark.slow
def test_sigkill_mid_epoch_leaves_a_readable_crashed_version(shared_store: str) -> None:
    any_store = shared_store
    env = {**os.environ, "MODELTRACK_FLUSH_INTERVAL": "30"}  # only epoch boundaries flush
    child = subprocess.Popen([sys.executable, "-c", CRASHER, any_store], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "epoch3"
    repo = mt.Repo(any_store)
    deadline = time.time() + 60
    seen: list[int] = []
    while time.time() < deadline:  # wait until the store shows epochs 0..3 flushed
        seen = repo.series("crashy", 1).get("loss", {}).get("epoch", [])
        if seen and max(seen) >= 3:
            break
        time.sleep(0.05)
    time.sleep(0.05)  # and kill somewhere inside a later epoch
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    rec = mt.show("crashy@v1", store=any_store)
    assert rec["status"] == "crashed"
    assert mt.versions("crashy", store=any_store)[0]["status"] == "crashed"
    series = rec["metrics"]["loss"]["series"]
    epochs = [p["epoch"] for p in series]
    # Every epoch boundary flushed the epoch before it: whole epochs 0..k are there, in order.
    assert epochs == sorted(epochs) and max(epochs) >= 3 and len(epochs) >= len(seen)
    complete = set(range(max(epochs)))
    for e in complete:
        assert epochs.count(e) == 50
    assert [p["step"] for p in series] == list(range(1, len(series) + 1))
    assert rec["params"] == {"epochs": 1000}
    assert mt.verify(store=any_store)["ok"]


@pytest.mark.slow
def test_running_version_in_another_live_process_is_running(store_uri: str) -> None:
    code = "import sys, time, modeltrack as mt\nv = mt.start('live', store=sys.argv[1])\nprint('go', flush=True)\ntime.sleep(60)\n"
    child = subprocess.Popen([sys.executable, "-c", code, store_uri], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "go"
        assert mt.show("live@v1", store=store_uri)["status"] == "running"
    finally:
        child.kill()
        child.wait()
    assert mt.show("live@v1", store=store_uri)["status"] == "crashed"


def test_script_exit_without_finish_finishes(store_uri: str) -> None:
    code = "import sys, modeltrack as mt\nv = mt.start('m', store=sys.argv[1])\nv.log_metrics({'a': 1.0})\n"
    subprocess.run([sys.executable, "-c", code, store_uri], check=True, timeout=120)
    assert mt.show("m@v1", store=store_uri)["status"] == "finished"
    code = "import sys, modeltrack as mt\nv = mt.start('m', store=sys.argv[1])\nraise SystemError('boom')\n"
    res = subprocess.run([sys.executable, "-c", code, store_uri], capture_output=True, timeout=120)
    assert res.returncode == 1
    rec = mt.show("m@v2", store=store_uri)
    assert rec["status"] == "failed" and "SystemError: boom" in rec["error"]


def test_import_pulls_in_no_framework() -> None:
    code = (
        "import sys, time\nt = time.perf_counter()\nimport modeltrack\n"
        "print(time.perf_counter() - t)\n"
        "bad = [m for m in ('torch', 'keras', 'sklearn', 'lightning', 'pytorch_lightning', 'tensorflow', 'numpy', 'pandas', 'boto3') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_exported_members() -> None:
    assert sorted(mt.__all__) == sorted(n for n in mt.__all__ if hasattr(mt, n))
    for name in ("start", "autolog", "load", "models", "versions", "show", "diff", "promote", "rollback"):
        assert name in mt.__all__ and callable(getattr(mt, name))
    assert Path(mt.__file__).with_name("py.typed").exists()
