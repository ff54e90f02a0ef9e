"""Tracking never stops training: store failures and bad metric input warn (raise only in
strict mode), the version finishes normally and says what it could not record."""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack.errors import InvalidMetricError, InvalidValueError, ModelTrackWarning, StoreNotWritableError


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")


def test_full_store_mid_training_warns_and_training_goes_on(lenient: None, full_dir: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024))  # larger than the 256 KiB disk
    store = str(full_dir / "store")
    steps = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with mt.start("m", store=store) as v:
            for step in range(1000):
                v.log_metrics({"loss": 1.0 / (step + 1)}, step=step, epoch=step // 100)
                if step == 500:
                    assert v.log_artifact(big, kind="checkpoint") == []
                steps += 1
    assert steps == 1000
    msgs = [str(w.message) for w in caught if issubclass(w.category, ModelTrackWarning)]
    assert any("disk is full" in m and "not recorded" in m for m in msgs), msgs
    rec = mt.show("m", store=store)
    assert rec["status"] == "finished"
    assert rec["metrics"]["loss"]["last"] == pytest.approx(1 / 1000)
    assert rec["artifacts"] == []
    assert [x["path"] for x in rec["info"]["not_recorded"]] == ["big.bin"]


def test_store_turning_read_only_mid_training(lenient: None, tmp_path: Path) -> None:
    """A real file system remounted read-only while a version runs (root only)."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("needs root to mount a tmpfs and remount it read-only")
    try:
        f = tmp_path / "m.bin"
        f.write_bytes(os.urandom(1000))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with mt.start("m", store=str(mnt / "store")) as v:
                v.log_metrics({"loss": 1.0}, step=0, epoch=0)
                v.flush()
                subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
                assert v.log_artifact(f) == []
                v.set_tags(after="ro")
                for step in range(1, 100):
                    v.log_metrics({"loss": 1.0 / step}, step=step, epoch=1)
        msgs = [str(w.message) for w in caught if issubclass(w.category, ModelTrackWarning)]
        assert any("read-only" in m for m in msgs), msgs
        # Readable, with what was flushed before; it could not be finished, so it reads as
        # running while this process lives (crashed after it exits).
        rec = mt.show("m@v1", store=str(mnt / "store"))
        assert rec["status"] in ("running", "crashed") and rec["metrics"]["loss"]["last"] == 1.0
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_strict_mode_still_raises(full_dir: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024))
    with mt.start("m", store=str(full_dir / "store")) as v:
        with pytest.raises(StoreNotWritableError):
            v.log_artifact(big)


BAD_METRICS = [
    ({1: 0.5}, {}),
    ({("a", "b"): 0.5}, {}),
    ({"big": 10**400}, {}),
    ({"loss": 0.5}, {"step": "abc"}),
    ({"loss": 0.5}, {"step": float("nan")}),
    ({"loss": 0.5}, {"step": 1.5}),
    ({"loss": 0.5}, {"epoch": "first"}),
    ({"loss": 0.5}, {"epoch": float("inf")}),
]


@pytest.mark.parametrize(("metrics", "where"), BAD_METRICS)
def test_bad_metric_input_warns_and_the_version_finishes(
    lenient: None, any_store: str, metrics: dict, where: dict
) -> None:
    with mt.start("m", store=any_store) as v:
        v.log_metrics({"ok": 1.0}, step=0)
        with pytest.warns(ModelTrackWarning):
            v.log_metrics(metrics, **where)
        v.log_metrics({"ok": 2.0}, step=2)
    rec = mt.show("m", store=any_store)
    assert rec["status"] == "finished"
    assert [p["value"] for p in rec["metrics"]["ok"]["series"]] == [1.0, 2.0]
    assert set(rec["metrics"]) <= {"ok", "loss", "big"} - {"big"}


@pytest.mark.parametrize(("metrics", "where"), BAD_METRICS)
def test_bad_metric_input_in_strict_mode_is_a_clear_error(any_store: str, metrics: dict, where: dict) -> None:
    with mt.start("m", store=any_store) as v:
        with pytest.raises(InvalidMetricError, match="skipped"):
            v.log_metrics(metrics, **where)
    assert mt.show("m", store=any_store)["status"] == "finished"


def test_numpy_steps_are_fine(any_store: str) -> None:
    np = pytest.importorskip("numpy")
    with mt.start("m", store=any_store) as v:
        v.log_metrics({"loss": 0.5}, step=np.int64(3), epoch=np.int32(0))
        v.log_metrics({"loss": 0.4}, step=4.0, epoch=0)
    series = mt.show("m", store=any_store)["metrics"]["loss"]["series"]
    assert [(p["step"], p["epoch"]) for p in series] == [(3, 0), (4, 0)]


def test_fifo_is_refused_without_hanging(lenient: None, store_uri: str, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result: list[object] = []

    def log() -> None:
        with mt.start("m", store=store_uri) as v:
            with pytest.warns(ModelTrackWarning, match="named pipe"):
                result.append(v.log_artifact(fifo))

    t = threading.Thread(target=log, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "log_artifact hung on a FIFO"
    assert result == [[]]
    assert mt.show("m", store=store_uri)["status"] == "finished"


def test_fifo_in_a_logged_directory_is_skipped(lenient: None, store_uri: str, tmp_path: Path) -> None:
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "a.bin").write_bytes(b"a")
    os.mkfifo(d / "pipe")
    with mt.start("m", store=store_uri) as v:
        with pytest.warns(ModelTrackWarning, match="named pipe"):
            arts = v.log_artifact(d)
    assert [a["path"] for a in arts] == ["ckpt/a.bin"]


def test_fifo_in_strict_mode(store_uri: str, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with mt.start("m", store=store_uri) as v:
        with pytest.raises(InvalidValueError, match="not a regular file"):
            v.log_artifact(fifo)


def test_bogus_finish_status_is_refused(store_uri: str) -> None:
    v = mt.start("m", store=store_uri)
    with pytest.raises(InvalidValueError, match="status must be"):
        v.finish(status="bogus")
    v.finish()
    assert mt.show("m", store=store_uri)["status"] == "finished"


def test_artifact_named_dot_is_refused(store_uri: str, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"1")
    with mt.start("m", store=store_uri) as v:
        with pytest.raises(mt.ModelTrackError, match="escape"):
            v.log_artifact(f, name=".")


def test_huge_tag_values_are_refused(lenient: None, store_uri: str) -> None:
    with mt.start("m", store=store_uri) as v:
        with pytest.warns(ModelTrackWarning, match="limit"):
            v.set_tags(blob="x" * 5_000_000)
    with pytest.raises(InvalidValueError, match="limit"):
        mt.tag("m@v1", blob="x" * 5_000_000, store=store_uri)
    assert mt.show("m", store=store_uri)["tags"] == {}


def test_reads_never_create_a_store(tmp_path: Path) -> None:
    where = tmp_path / "nothing-here"
    for call in (lambda: mt.models(store=str(where)), lambda: mt.versions("m", store=str(where))):
        with pytest.raises(mt.ModelTrackError, match="no modeltrack store at"):
            call()
    assert not where.exists()


def test_exception_in_the_block_still_propagates_unchanged(lenient: None, store_uri: str) -> None:
    class Boom(Exception):
        pass

    start = time.monotonic()
    with pytest.raises(Boom):
        with mt.start("m", store=store_uri) as v:
            v.log_metrics({1: 2.0})  # type: ignore[dict-item]
            raise Boom()
    assert time.monotonic() - start < 30
    assert mt.show("m@v1", store=store_uri)["status"] == "failed"
