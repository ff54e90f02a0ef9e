"""Registry writes under real races: many processes at once, never a lost or stale event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import CorruptRecordError
from modeltrack.repo import Repo

pytestmark = pytest.mark.slow

PROCS = 8


def _run_all(script: str, args_per_proc: list[list[str]], timeout: float = 300) -> list[str]:
    """Start every process, release them at the same instant, wait, return their stdout."""
    go = time.time() + 2.0
    env = {**os.environ, "MODELTRACK_STRICT": "1", "GO_AT": str(go)}
    children = [
        subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for args in args_per_proc
    ]
    outs = []
    for c in children:
        out, err = c.communicate(timeout=timeout)
        assert c.returncode == 0, err.decode()[-3000:]
        outs.append(out.decode())
    return outs


WAIT = "import os, time\ntime.sleep(max(0.0, float(os.environ['GO_AT']) - time.time()))\n"

TAGGER = WAIT + textwrap.dedent(
    """
    import sys, modeltrack as mt
    store, who = sys.argv[1], sys.argv[2]
    for k in range(5):
        mt.tag("m@v1", **{f"{who}-{k}": str(k)}, store=store)
    """
)


def test_concurrent_tagging_keeps_every_key(shared_store: str) -> None:
    with mt.start("m", store=shared_store):
        pass
    _run_all(TAGGER, [[shared_store, f"p{i}"] for i in range(PROCS)])
    tags = mt.show("m@v1", store=shared_store)["tags"]
    kept = sum(1 for i in range(PROCS) for k in range(5) if tags.get(f"p{i}-{k}") == str(k))
    print(f"tags kept: {kept}/{PROCS * 5}")
    assert kept == PROCS * 5


def test_tags_set_and_removed_in_order(any_store: str) -> None:
    with mt.start("m", store=any_store) as v:
        v.set_tags(a="1", b=None)
    mt.tag("m@v1", c="3", store=any_store)
    mt.tag("m@v1", remove=["a"], store=any_store)
    mt.tag("m@v1", b="2", store=any_store)
    assert mt.show("m@v1", store=any_store)["tags"] == {"b": "2", "c": "3"}
    assert mt.versions("m", store=any_store)[0]["tags"] == {"b": "2", "c": "3"}


PROMOTER = WAIT + textwrap.dedent(
    """
    import sys, modeltrack as mt
    from modeltrack.errors import PromotionRefusedError
    store, versions = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
    for n in versions:
        try:
            mt.promote(f"m@v{n}", "production", metric="val_loss", store=store)
            print("moved", n)
        except PromotionRefusedError:
            print("refused", n)
    """
)


def test_concurrent_guarded_promotions_never_regress(shared_store: str) -> None:
    count = 24
    losses = {}
    for n in range(1, count + 1):
        loss = ((n * 7919) % 97) / 97.0  # a scrambled order of qualities
        losses[n] = loss
        with mt.start("m", store=shared_store) as v:
            v.log_metrics({"val_loss": loss}, epoch=0)
    plan = [[shared_store, ",".join(str(n) for n in range(1 + i, count + 1, PROCS))] for i in range(PROCS)]
    _run_all(PROMOTER, plan)
    history = mt.alias_history("m", "production", store=shared_store)
    stale = violations = 0
    holder = None
    for ev in history:
        if ev["from"] != holder:
            stale += 1
        if holder is not None and losses[ev["to"]] > losses[holder]:
            violations += 1
        holder = ev["to"]
    print(f"alias events: {len(history)}, stale from: {stale}, guard violations: {violations}")
    assert stale == 0 and violations == 0
    assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
    best = min(losses, key=lambda n: losses[n])
    assert mt.show("m@production", store=shared_store)["version"] == best
    # rollback goes to the holder before the last move, which did hold the alias
    ev = mt.rollback("m", "production", store=shared_store)
    assert ev["to"] == history[-1]["from"]
    assert ev["to"] in {e["to"] for e in history}


def test_promoting_the_holder_records_nothing(store_uri: str) -> None:
    for _ in range(2):
        with mt.start("m", store=store_uri):
            pass
    mt.set_alias("m@v1", "production", store=store_uri)
    ev = mt.set_alias("m@v1", "production", store=store_uri)
    assert ev.get("noop") is True
    assert len(mt.alias_history("m", "production", store=store_uri)) == 1


REUSER = WAIT + textwrap.dedent(
    """
    import sys, modeltrack as mt
    store, path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(rounds):
        with mt.start("reuse", store=store) as v:
            v.log_artifact(path, kind="model")
        print(v.number, flush=True)
    """
)


def test_gc_never_deletes_a_blob_a_running_version_reuses(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    payload = tmp_path / "model.bin"
    payload.write_bytes(os.urandom(200_000))
    rounds_without_loss = 0
    for rnd in range(6):
        with mt.start("old", store=store) as v:
            (art,) = v.log_artifact(payload, kind="model")
        mt.gc("old", [v.number], force=True, store=store, grace_seconds=0)  # the blob is now unreferenced
        blob = Path(store, "blobs", "sha256", art["sha256"][:2], art["sha256"])
        if blob.exists():
            os.utime(blob, (time.time() - 7200, time.time() - 7200))  # and old: gc may take it
        proc = subprocess.Popen(
            [sys.executable, "-c", REUSER, store, str(payload), "3"],
            env={**os.environ, "GO_AT": str(time.time())},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        while proc.poll() is None:
            mt.gc(store=store)  # default grace: a blob re-used meanwhile must survive
        assert proc.returncode == 0, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        report = mt.verify(store=store)
        if report["ok"]:
            rounds_without_loss += 1
        else:
            pytest.fail(f"round {rnd}: {report['problems']}")
        assert Path(mt.artifact_path("reuse", store=store)).read_bytes() == payload.read_bytes()
    print(f"gc rounds without loss: {rounds_without_loss}/6")


def test_gc_stops_on_an_unreadable_record(store_uri: str, tmp_path: Path) -> None:
    payload = tmp_path / "model.bin"
    payload.write_bytes(b"weights" * 1000)
    with mt.start("m", store=store_uri) as v:
        (art,) = v.log_artifact(payload, kind="model")
    final = Path(store_uri, "models", "m", "versions", "1", "final.json")
    final.write_text('{"status": "finished", "artifacts": ')
    blob = Path(store_uri, "blobs", "sha256", art["sha256"][:2], art["sha256"])
    os.utime(blob, (time.time() - 7200, time.time() - 7200))
    with pytest.raises(CorruptRecordError, match=r"gc stopped.*m/versions/1"):
        mt.gc(store=store_uri)
    assert blob.exists()
    final.write_text("[]")  # valid JSON, wrong shape
    with pytest.raises(CorruptRecordError, match="gc stopped"):
        mt.gc(store=store_uri, grace_seconds=0)
    assert blob.exists()


def test_gc_refuses_a_negative_grace(store_uri: str) -> None:
    with mt.start("m", store=store_uri):
        pass
    with pytest.raises(mt.ModelTrackError, match="grace"):
        mt.gc(store=store_uri, grace_seconds=-5)


def test_half_claimed_number_never_breaks_listing(store_uri: str) -> None:
    with mt.start("m", store=store_uri) as v:
        v.log_metrics({"loss": 1.0}, epoch=0)
    # A process killed inside start(), after creating versions/2/ and before publishing claim.json:
    half = Path(store_uri, "models", "m", "versions", "2")
    half.mkdir()
    (half / ".claim.json.123.1.abcd.tmp").write_text("{")
    assert [r["version"] for r in mt.versions("m", store=store_uri)] == [1]
    assert mt.models(store=store_uri)[0]["name"] == "m"
    assert mt.show("m", store=store_uri)["version"] == 1
    with mt.start("m", store=store_uri) as v3:
        pass
    assert v3.number == 3  # the half-claimed number is never reused
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "versions", "m", "--json"],
        env={**os.environ, "MODELTRACK_STORE": store_uri},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert [r["version"] for r in json.loads(out.stdout)] == [1, 3]
    assert Repo(store_uri).status("m", 2) == "skipped"


MOVER = WAIT + textwrap.dedent(
    """
    import sys, modeltrack as mt
    store, versions = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
    for n in versions:
        mt.set_alias(f"m@v{n}", "staging", store=store)
    """
)


def test_concurrent_alias_moves_record_the_true_previous_holder(shared_store: str) -> None:
    for _ in range(PROCS):
        with mt.start("m", store=shared_store):
            pass
    # each process cycles through the versions in its own order: many real moves at once
    plan = [[shared_store, ",".join(str((i + k) % PROCS + 1) for k in range(10))] for i in range(PROCS)]
    _run_all(MOVER, plan)
    history = mt.alias_history("m", "staging", store=shared_store)
    holder, stale = None, 0
    for ev in history:
        stale += ev["from"] != holder
        assert ev["from"] != ev["to"]
        holder = ev["to"]
    print(f"alias moves: {len(history)}, stale from: {stale}")
    assert stale == 0 and len(history) >= PROCS


def test_cli_says_when_a_promotion_changes_nothing(store_uri: str) -> None:
    with mt.start("m", store=store_uri):
        pass
    env = {**os.environ, "MODELTRACK_STORE": store_uri}
    first = subprocess.run(
        [sys.executable, "-m", "modeltrack", "promote", "m@v1"], env=env, capture_output=True, text=True
    )
    again = subprocess.run(
        [sys.executable, "-m", "modeltrack", "promote", "m@v1"], env=env, capture_output=True, text=True
    )
    assert first.returncode == again.returncode == 0, again.stderr
    assert "promoted m@v1 to production" in first.stdout
    assert "already holds production; nothing recorded" in again.stdout
    assert len(mt.alias_history("m", "production", store=store_uri)) == 1


def test_gc_frees_checkpoints_a_finished_version_released(store_uri: str, tmp_path: Path) -> None:
    kept, evicted = tmp_path / "best.ckpt", tmp_path / "old.ckpt"
    kept.write_bytes(b"best weights")
    evicted.write_bytes(b"evicted weights")
    with mt.start("m", store=store_uri) as v:
        (old,) = v.log_artifact(evicted, kind="checkpoint")
        (best,) = v.log_artifact(kept, kind="checkpoint")
        v.release_artifact("old.ckpt")  # evicted from the top-k: gc may free it
    res = mt.gc(store=store_uri, grace_seconds=0)
    assert res["deleted_blobs"] == 1
    blobs = Path(store_uri, "blobs", "sha256")
    assert not (blobs / old["sha256"][:2] / old["sha256"]).exists()
    assert (blobs / best["sha256"][:2] / best["sha256"]).exists()
    assert mt.verify(store=store_uri)["ok"]
