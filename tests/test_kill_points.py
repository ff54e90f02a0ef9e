"""Kill a run before and after each of its store publication steps, start to finish: after
every kill, every read still works and ``verify`` passes or names the damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import ModelTrackError

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from modeltrack.stores.local import LocalStore

    store, kill_at, when = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    count = [0]
    log = open(sys.argv[4], "a")

    def wrap(name):
        original = getattr(LocalStore, name)

        def op(self, key, *args, **kwargs):
            count[0] += 1
            log.write(f"{count[0]} {name} {key}\\n"); log.flush()
            if count[0] == kill_at and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = original(self, key, *args, **kwargs)
            if count[0] == kill_at and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        setattr(LocalStore, name, op)

    for name in ("write", "create", "put_file", "delete", "touch"):
        wrap(name)

    import modeltrack as mt

    payload = os.path.join(os.path.dirname(sys.argv[4]), "model.bin")
    with open(payload, "wb") as f:
        f.write(b"w" * 5000)
    with mt.start("m", store=store, params={"lr": 0.1}, tags={"team": "a"}) as v:
        v.log_data("train", [[1.0, 2.0], [3.0, 4.0]])
        for epoch in range(3):
            v.log_metrics({"loss": 1.0 / (epoch + 1)}, step=epoch, epoch=epoch)
            v.flush()
        v.log_artifact(payload, kind="model")
        v.set_tags(done=None)
        v.set_notes("release notes")
    mt.set_alias(f"m@v{v.number}", "production", store=store)
    print("completed", count[0])
    """
)


def _run(store: Path, kill_at: int, when: str, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELTRACK_FLUSH_INTERVAL": "1000", "MODELTRACK_HEARTBEAT_INTERVAL": "1000"}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(store), str(kill_at), when, str(log)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _check_readable(store: Path) -> dict[str, object]:
    """Every read works; returns verify's report."""
    models = mt.models(store=str(store))
    for m in models:
        rows = mt.versions(m["name"], store=str(store))
        for row in rows:
            rec = mt.show(f"{m['name']}@v{row['version']}", store=str(store))
            assert rec["status"] in ("finished", "failed", "crashed", "running")
            assert isinstance(rec["metrics"], dict)
        mt.alias_history(m["name"], store=str(store))
    return mt.verify(store=str(store))


def test_kill_before_and_after_every_publication_step(tmp_path: Path) -> None:
    # A first, finished version, so that later kills happen in a store that has history.
    base = tmp_path / "base"
    done = _run(base, 0, "never", tmp_path / "base.log")
    assert done.returncode == 0 and "completed" in done.stdout, done.stderr
    total = int(done.stdout.split()[-1])
    assert total >= 10
    damaged, outcomes = [], {"verify_ok": 0, "verify_named_damage": 0}
    for when in ("before", "after"):
        for k in range(1, total + 1):
            store = tmp_path / f"s-{when}-{k}"
            # v1 finished normally, v2 is the one killed at step k
            assert _run(store, 0, "never", tmp_path / f"l-{when}-{k}-0.log").returncode == 0
            log = tmp_path / f"l-{when}-{k}.log"
            res = _run(store, k, when, log)
            assert res.returncode in (0, -signal.SIGKILL), res.stderr[-2000:]
            step = log.read_text().splitlines()[k - 1] if res.returncode else "none"
            try:
                report = _check_readable(store)
            except ModelTrackError as exc:
                pytest.fail(f"kill {when} step {step}: a read failed: {exc}")
            if report["ok"]:
                outcomes["verify_ok"] += 1
            else:
                outcomes["verify_named_damage"] += 1
                assert all(p.get("key") for p in report["problems"]), report
                damaged.append((when, step, report["problems"]))
            v1 = mt.show("m@v1", store=str(store))
            assert v1["status"] == "finished" and v1["metrics"]["loss"]["last"] == pytest.approx(1 / 3)
    print(f"kill points: {2 * total}, {outcomes}")
    # A kill never damages records: at worst a crashed version, which is not damage.
    assert not damaged, damaged


def test_cli_reads_a_store_killed_mid_start(tmp_path: Path) -> None:
    store = tmp_path / "s"
    assert _run(store, 0, "never", tmp_path / "a.log").returncode == 0
    res = _run(store, 1, "before", tmp_path / "b.log")  # killed before its claim is published
    assert res.returncode == -signal.SIGKILL
    env = {**os.environ, "MODELTRACK_STORE": str(store)}
    for args in (["models", "--json"], ["versions", "m", "--json"], ["show", "m", "--json"], ["verify"]):
        out = subprocess.run([sys.executable, "-m", "modeltrack", *args], env=env, capture_output=True, text=True)
        assert out.returncode == 0, (args, out.stderr)
        assert "Traceback" not in out.stderr
        if "--json" in args:
            json.loads(out.stdout)
