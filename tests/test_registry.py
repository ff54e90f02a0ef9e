"""Aliases, promote/rollback, tags, notes, diff, changelog, labels, gc and verify."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import AliasNotFoundError, PromotionRefusedError, StoreError


def make(store: str, model: str = "m", **metrics: float) -> int:
    with mt.start(model, params={"k": len(metrics)}, store=store) as v:
        v.log_metrics(metrics, epoch=0)
    return v.number


def test_alias_set_move_history_and_rollback(any_store: str) -> None:
    for loss in (0.5, 0.4, 0.3):
        make(any_store, val_loss=loss)
    mt.set_alias("m@v1", "production", store=any_store)
    mt.promote("m@v2", "production", store=any_store)
    assert mt.resolve("m@production", store=any_store) == ("m", 2)
    assert mt.show("m@v2", store=any_store)["aliases"] == ["production"]
    mt.rollback("m", "production", store=any_store)
    assert mt.resolve("m@production", store=any_store) == ("m", 1)
    hist = mt.alias_history("m", "production", store=any_store)
    assert [(e["action"], e["from"], e["to"]) for e in hist] == [
        ("set", None, 1),
        ("promote", 1, 2),
        ("rollback", 2, 1),
    ]
    mt.remove_alias("m", "production", store=any_store)
    with pytest.raises(AliasNotFoundError, match="production"):
        mt.resolve("m@production", store=any_store)
    assert len(mt.alias_history("m", store=any_store)) == 4  # every move is kept


def test_guarded_promotion(any_store: str) -> None:
    make(any_store, val_loss=0.3, acc=0.9)
    make(any_store, val_loss=0.5, acc=0.95)
    mt.promote("m@v1", store=any_store)
    with pytest.raises(PromotionRefusedError, match="worse"):
        mt.promote("m@v2", metric="val_loss", store=any_store)
    assert mt.resolve("m@production", store=any_store) == ("m", 1)
    mt.promote("m@v2", metric="acc", store=any_store)  # higher acc is better: allowed
    assert mt.resolve("m@production", store=any_store) == ("m", 2)


def test_tags_and_notes(any_store: str) -> None:
    make(any_store)
    assert mt.tag("m@v1", {"dataset": "v2"}, experimental=None, store=any_store) == {
        "dataset": "v2",
        "experimental": None,
    }
    assert mt.tag("m@v1", remove=["experimental"], store=any_store) == {"dataset": "v2"}
    mt.set_notes("m@v1", "first release\n<b>bold</b>", store=any_store)
    assert mt.show("m@v1", store=any_store)["notes"] == "first release\n<b>bold</b>"
    assert mt.versions("m", store=any_store)[0]["tags"] == {"dataset": "v2"}


def test_diff_changelog_and_semantic_labels(any_store: str, tmp_path: Path) -> None:
    import numpy as np

    X = np.ones((4, 2))

    def run(lr: float, data: object, arch: str) -> None:
        with mt.start("m", params={"lr": lr}, store=any_store) as v:
            v.set_framework("custom", architecture=arch)
            v.log_data("train", data)
            v.log_metrics({"loss": lr}, epoch=0)

    run(0.1, X, "mlp-2")
    run(0.2, X, "mlp-2")  # params only -> patch
    run(0.2, X * 2, "mlp-2")  # data -> major
    run(0.2, X * 2, "mlp-3")  # architecture -> major
    labels = [r["label"] for r in mt.versions("m", store=any_store)]
    assert labels == ["1.0.0", "1.0.1", "2.0.0", "3.0.0"]
    d = mt.diff("m@v1", "m@v3", store=any_store)
    assert d["params"]["changed"] == {"lr": {"from": 0.1, "to": 0.2}}
    assert set(d["data"]) == {"train"} and d["metrics"]["loss"]["delta"] == pytest.approx(0.1)
    cl = mt.changelog("m@v2", store=any_store)
    assert cl is not None and cl["params"]["changed"]["lr"]["to"] == 0.2 and not cl["data"]
    assert mt.changelog("m@v1", store=any_store) is None


def test_gc_deletes_named_versions_and_orphans(any_store: str, tmp_path: Path) -> None:
    paths = []
    for i in range(3):
        f = tmp_path / f"w{i}.bin"
        f.write_bytes(f"weights {i}".encode())
        paths.append(f)
        with mt.start("m", store=any_store) as v:
            v.log_artifact(f, kind="model")
    mt.set_alias("m@v1", "production", store=any_store)
    with pytest.raises(StoreError, match="production"):
        mt.gc("m", [1], store=any_store)
    res = mt.gc("m", [2], grace_seconds=0, store=any_store)
    assert res["deleted_versions"] == ["m@v2"] and res["deleted_blobs"] == 1
    assert [r["version"] for r in mt.versions("m", store=any_store)] == [1, 3]
    # Numbers are never reused.
    with mt.start("m", store=any_store) as v:
        pass
    assert v.number == 4
    assert mt.verify(store=any_store)["ok"]


def test_verify_reports_damage_by_path(store_uri: str, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"good weights")
    with mt.start("m", store=store_uri) as v:
        v.log_artifact(f, kind="model")
    res = mt.verify(store=store_uri)
    assert {k: res[k] for k in ("ok", "artifacts_checked", "problems")} == {
        "ok": True,
        "artifacts_checked": 1,
        "problems": [],
    }
    assert res["records_checked"] >= 3 and res["notes"] == []
    blob = next(Path(store_uri, "blobs").rglob("*"))
    while blob.is_dir():
        blob = next(blob.iterdir())
    blob.write_bytes(b"evil weights")
    res = mt.verify(store=store_uri)
    assert not res["ok"]
    assert res["problems"][0]["key"] == "models/m/versions/1/artifacts/model.bin"
    assert "checksum mismatch" in res["problems"][0]["problem"]


def test_latest_names_a_running_version_and_load_reads_it(store_uri: str, tmp_path: Path) -> None:
    make(store_uri, val_loss=0.5)
    f = tmp_path / "weights.bin"
    f.write_bytes(b"partial")
    with mt.start("m", store=store_uri) as v:
        v.log_metrics({"val_loss": 0.4}, epoch=0)
        v.log_artifact(f, kind="checkpoint")
        assert mt.resolve("m", store=store_uri) == ("m", 1)  # NAME: the newest finished
        assert mt.resolve("m@latest", store=store_uri) == ("m", 2)
        rec = mt.show("m@latest", store=store_uri)
        assert rec["status"] == "running" and rec["version"] == 2
        # a running version's stored checkpoint can be read by name while it trains
        assert Path(mt.load("m@latest", kind="path", store=store_uri)).read_bytes() == b"partial"
    assert mt.resolve("m@latest", store=store_uri) == mt.resolve("m", store=store_uri) == ("m", 2)
    with pytest.raises(mt.ModelTrackError, match="no model 'nope'"):
        mt.resolve("nope@latest", store=store_uri)


def test_gc_removes_temporary_files_left_by_killed_writers(tmp_path: Path) -> None:
    """A writer killed between writing a temporary file and publishing it, or while holding
    a logged checkpoint for its writer thread, leaves a hidden ``.….tmp`` file: gc removes
    it once it is older than the grace period, and never a published file."""
    import os
    import signal
    import subprocess
    import sys

    store = tmp_path / "s"
    ckpt = tmp_path / "big.ckpt"
    ckpt.write_bytes(os.urandom(1 << 20))
    old = time.time() - 7200
    os.utime(ckpt, (old, old))  # an old file: its held link keeps this mtime
    code = (
        "import os, signal, modeltrack as mt\n"
        "from modeltrack import tracking\n"
        f"v = mt.start('m', store={str(store)!r})\n"
        "tracking.Version._work_artifacts = lambda self: None\n"  # the writer never gets to it
        f"v.log_artifact({str(ckpt)!r}, kind='checkpoint')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MODELTRACK_STRICT"}  # strict stores at once
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == -signal.SIGKILL
    left = [p for p in store.rglob(".*.tmp")]
    assert left, "the killed writer held the logged file under a temporary name"
    (store / "models" / "m" / "versions" / "1" / ".claim.json.1.x.1.1.tmp").write_bytes(b"{half")
    before = {p for p in store.rglob("*") if p.is_file() and not p.name.endswith(".tmp")}

    kept = mt.gc(store=str(store), grace_seconds=3600)
    assert kept["removed_temporaries"] == 0  # just made (the link moved the inode's ctime): kept
    assert all(p.exists() for p in left)

    res = mt.gc(store=str(store), grace_seconds=0)
    assert res["removed_temporaries"] == len(left) + 1
    assert not list(store.rglob(".*.tmp"))
    assert {p for p in store.rglob("*") if p.is_file()} == before  # every published file kept
    assert ckpt.stat().st_size == 1 << 20  # the user's file itself is untouched
    assert mt.verify(store=str(store))["ok"]
