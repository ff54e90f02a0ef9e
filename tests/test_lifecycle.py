"""The lifecycle every integration shares: one ``end(exc)`` mapping, ``closed``, a scratch
directory removed at the end, and finding a version by the content it stored."""

from __future__ import annotations

from pathlib import Path

import pytest

import modeltrack as mt
from modeltrack import tracking


@pytest.mark.parametrize(
    ("exc", "status", "reason"),
    [(None, "finished", None), (KeyboardInterrupt(), "failed", "interrupted"), (ValueError("boom"), "failed", "boom")],
)
def test_end_maps_how_training_ended(
    store_uri: str, exc: BaseException | None, status: str, reason: str | None
) -> None:
    v = mt.start("m", store=store_uri)
    assert not v.closed
    v.end(exc)
    assert v.closed
    rec = mt.show(f"m@v{v.number}", store=store_uri)
    assert rec["status"] == status
    if reason is None:
        assert rec["error"] is None
    else:
        assert reason in rec["error"]
    v.end(RuntimeError("later"))  # an ended version stays as it ended
    assert mt.show(f"m@v{v.number}", store=store_uri)["status"] == status


def test_scratch_dir_is_removed_when_the_version_ends(store_uri: str) -> None:
    v = mt.start("m", store=store_uri)
    scratch = v.scratch_dir()
    assert scratch.is_dir() and v.scratch_dir() == scratch
    f = scratch / "model.bin"
    f.write_bytes(b"weights")
    v.log_artifact(f, kind="model")
    v.finish()
    assert not scratch.exists()
    assert Path(mt.artifact_path("m", store=store_uri)).read_bytes() == b"weights"


def test_find_stored_names_the_version_that_stored_a_file(store_uri: str, tmp_path: Path) -> None:
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"epoch 3 state")
    with mt.start("m", store=store_uri) as v1:
        v1.log_artifact(ckpt, kind="checkpoint")
    with mt.start("m", store=store_uri) as v2:
        assert v2.find_stored(ckpt) == "m@v1"
        other = tmp_path / "other.ckpt"
        other.write_bytes(b"something else")
        assert v2.find_stored(other) is None


def test_last_uncaught_is_none_in_a_healthy_process() -> None:
    assert tracking.last_uncaught() is None


@pytest.mark.parametrize(("reason", "status"), [("the process exited during fit", "failed"), (None, "finished")])
def test_fail_on_exit_decides_how_an_open_version_ends(store_uri: str, reason: str | None, status: str) -> None:
    import subprocess
    import sys

    code = (
        "import sys, modeltrack as mt\n"
        "v = mt.start('m', store=sys.argv[1])\n"
        "v.log_metrics({'loss': 1.0}, epoch=0)\n"
        "v.fail_on_exit(sys.argv[2] or None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, store_uri, reason or ""], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rec = mt.show("m@v1", store=store_uri)
    assert rec["status"] == status
    assert (rec["error"] or "") == (reason or "")
    assert rec["metrics"]["loss"]["last"] == 1.0
