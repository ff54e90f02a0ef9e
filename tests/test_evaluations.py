"""Evaluations: append-only metrics on a version after its training ended, from the API, the
CLI and other processes; shown by show, compared by diff, usable by the promotion guard."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import modeltrack as mt
from modeltrack.capture.data import fingerprint
from modeltrack.errors import ModelTrackError, PromotionRefusedError


def cli(store: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modeltrack", "--store", store, *args], capture_output=True, text=True, timeout=120
    )


def trained(store: str, loss: float) -> int:
    with mt.start("m", store=store) as v:
        v.log_metrics({"val_loss": loss}, epoch=0)
    return v.number


def test_an_evaluation_is_appended_beside_the_immutable_record(store_uri: str) -> None:
    n = trained(store_uri, 0.5)
    before = mt.show(f"m@v{n}", store=store_uri)
    X = np.arange(12.0).reshape(4, 3)
    rec = mt.evaluate(f"m@v{n}", {"accuracy": 0.9, "auc": np.float32(0.75)}, name="holdout", data={"holdout": X},
                      store=store_uri)  # fmt: skip
    assert rec["metrics"] == {"accuracy": 0.9, "auc": 0.75} and rec["source"] == "api" and rec["actor"]
    mt.evaluate("m", {"accuracy": 0.92}, name="holdout", store=store_uri)  # a later one, by NAME
    after = mt.show(f"m@v{n}", store=store_uri)
    evs = after["evaluations"]
    assert [e["metrics"] for e in evs] == [{"accuracy": 0.9, "auc": 0.75}, {"accuracy": 0.92}]
    assert evs[0]["data"] == [{"name": "holdout", "fingerprint": fingerprint(X)["fingerprint"], "shape": [4, 3]}]
    # the training record did not change
    assert {k: v for k, v in after.items() if k != "evaluations"} == {
        k: v for k, v in before.items() if k != "evaluations"
    }
    assert mt.verify(store=store_uri)["ok"]
    shown = json.loads(cli(store_uri, "show", f"m@v{n}", "--json").stdout)
    assert shown["evaluations"] == evs


def test_diff_and_the_guard_use_evaluation_metrics(store_uri: str) -> None:
    a, b = trained(store_uri, 0.5), trained(store_uri, 0.4)
    mt.evaluate(f"m@v{a}", {"accuracy": 0.90}, name="test", store=store_uri)
    mt.evaluate(f"m@v{b}", {"accuracy": 0.85}, name="test", store=store_uri)
    d = mt.diff(f"m@v{a}", f"m@v{b}", store=store_uri)
    assert d["evaluations"]["test.accuracy"]["from"] == 0.90 and d["evaluations"]["test.accuracy"]["to"] == 0.85
    mt.promote(f"m@v{a}", "production", store=store_uri)
    with pytest.raises(PromotionRefusedError, match=r"test\.accuracy"):
        mt.promote(f"m@v{b}", "production", metric="test.accuracy", store=store_uri)
    with pytest.raises(PromotionRefusedError):
        mt.promote(f"m@v{b}", "production", metric="accuracy", store=store_uri)  # the short name
    mt.evaluate(f"m@v{b}", {"accuracy": 0.95}, name="test", store=store_uri)  # re-evaluated: the newest wins
    assert mt.promote(f"m@v{b}", "production", metric="test.accuracy", store=store_uri)["to"] == b


def test_bad_input_and_running_versions_are_refused_without_writing(store_uri: str) -> None:
    n = trained(store_uri, 0.5)
    for metrics, match in (
        ({}, "at least one metric"),
        ({"acc": "high"}, "not a number"),
        ({"acc": True}, "not a number"),
        ([("acc", 1.0)], "at least one metric"),
    ):
        with pytest.raises(ModelTrackError, match=match):
            mt.evaluate(f"m@v{n}", metrics, store=store_uri)  # type: ignore[arg-type]
    with pytest.raises(ModelTrackError, match="evaluation name"):
        mt.evaluate(f"m@v{n}", {"acc": 1.0}, name="", store=store_uri)
    v = mt.start("m", store=store_uri)
    with pytest.raises(ModelTrackError, match="still running"):
        mt.evaluate(v.ref, {"acc": 1.0}, store=store_uri)
    with pytest.raises(ModelTrackError, match="still running"):
        v.evaluate({"acc": 1.0})
    v.finish()
    assert v.evaluate({"acc": 1.0}, name="test")["name"] == "test"
    assert mt.show(f"m@v{n}", store=store_uri)["evaluations"] == []
    assert mt.verify(store=store_uri)["ok"]


def test_evaluations_from_several_processes_are_all_kept(store_uri: str, tmp_path: Path) -> None:
    n = trained(store_uri, 0.5)
    script = tmp_path / "ev.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys, modeltrack as mt
        for i in range(5):
            mt.evaluate("m@v{n}", {{"score": float(sys.argv[1]) * 10 + i}}, name="job" + sys.argv[1], store={store_uri!r})
        """)
    )
    procs = [subprocess.Popen([sys.executable, str(script), str(k)]) for k in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    evs = mt.show(f"m@v{n}", store=store_uri)["evaluations"]
    assert sorted(e["metrics"]["score"] for e in evs) == sorted(k * 10.0 + i for k in range(4) for i in range(5))


def test_the_cli_records_and_shows_evaluations(store_uri: str) -> None:
    n = trained(store_uri, 0.5)
    out = cli(store_uri, "evaluate", f"m@v{n}", "accuracy=0.93", "f1=0.8", "--name", "holdout")
    assert out.returncode == 0, out.stderr
    assert "evaluation 'holdout' recorded (2 metrics)" in out.stdout
    shown = cli(store_uri, "show", f"m@v{n}").stdout
    assert "evaluations" in shown and "holdout" in shown and "0.93" in shown and "cli" in shown
    bad = cli(store_uri, "evaluate", f"m@v{n}", "accuracy")
    assert bad.returncode == 1 and "NAME=NUMBER" in bad.stderr
    assert len(mt.show(f"m@v{n}", store=store_uri)["evaluations"]) == 1


def test_evaluations_added_after_a_push_follow_on_the_next_push(tmp_path: Path) -> None:
    """A version is immutable, but evaluations are appended to it later (a nightly job): a
    second push of the same version copies the ones the destination lacks, once."""
    from modeltrack.cli import main

    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    with mt.start("m", store=src) as v:
        v.log_metrics({"loss": 0.5}, epoch=0)
    mt.evaluate("m@v1", {"auc": 0.8}, name="test", store=src)
    assert main(["--store", src, "push", "m@v1", dst]) == 0
    assert [e["metrics"] for e in mt.show("m@v1", store=dst)["evaluations"]] == [{"auc": 0.8}]

    mt.evaluate("m@v1", {"auc": 0.85}, name="holdout", store=src)  # after the push
    assert main(["--store", src, "push", "m@v1", dst, "--json"]) == 0
    got = [(e["name"], e["metrics"]) for e in mt.show("m@v1", store=dst)["evaluations"]]
    assert got == [("test", {"auc": 0.8}), ("holdout", {"auc": 0.85})]
    assert main(["--store", src, "push", "m@v1", dst]) == 0  # nothing new: nothing copied twice
    assert len(mt.show("m@v1", store=dst)["evaluations"]) == 2
    assert mt.verify(store=dst)["ok"]
