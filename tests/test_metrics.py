"""modeltrack.metrics against sklearn.metrics, its edge cases, Version.log_table and
default_model_name(fallback=...)."""

from __future__ import annotations

import csv
import io
import math
import sys
from pathlib import Path
from typing import Any

import pytest

import modeltrack as mt
from modeltrack import tracking
from modeltrack.metrics import binary_auc, classification_metrics, regression_metrics

np = pytest.importorskip("numpy")
skm = pytest.importorskip("sklearn.metrics")


def _proba(rng: Any, n: int, k: int) -> Any:
    p = rng.random((n, k)) + 0.05
    return p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_matches_sklearn(weighted: bool) -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 50)
    pred = rng.integers(0, 2, 50)
    proba = _proba(rng, 50, 2)
    proba[:5, 1] = proba[5, 1]  # ties count half
    proba[:5, 0] = 1 - proba[5, 1]
    w = rng.random(50) + 0.1 if weighted else None
    got = classification_metrics(y, pred, classes=np.array([0, 1]), proba=proba, sample_weight=w, prefix="train_")
    assert got is not None
    assert got["train_accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert got["train_precision"] == pytest.approx(skm.precision_score(y, pred, sample_weight=w))
    assert got["train_recall"] == pytest.approx(skm.recall_score(y, pred, sample_weight=w))
    assert got["train_f1"] == pytest.approx(skm.f1_score(y, pred, sample_weight=w))
    assert got["train_log_loss"] == pytest.approx(skm.log_loss(y, proba, sample_weight=w))
    assert got["train_roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1], sample_weight=w))
    decision = rng.normal(size=50)
    dec = classification_metrics(y, pred, decision=decision, sample_weight=w)
    assert dec is not None and "log_loss" not in dec
    assert dec["roc_auc"] == pytest.approx(skm.roc_auc_score(y, decision, sample_weight=w))


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_matches_sklearn(weighted: bool) -> None:
    rng = np.random.default_rng(2)
    labels = np.array(["a", "b", "c"])
    y = labels[rng.integers(0, 3, 60)]
    pred = labels[rng.integers(0, 3, 60)]
    proba = _proba(rng, 60, 3)
    w = rng.random(60) + 0.1 if weighted else None
    got = classification_metrics(y, pred, proba=proba, sample_weight=w)
    assert got is not None
    kw: dict[str, Any] = {"average": "weighted", "sample_weight": w}
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0, **kw))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, **kw))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, **kw))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=labels, sample_weight=w))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels, **kw))


def test_classification_edge_cases() -> None:
    # one class in y: precision/recall defined, ROC-AUC is not (sklearn refuses too)
    got = classification_metrics([1, 1, 1], [1, 0, 1], classes=[0, 1], proba=[[0.2, 0.8]] * 3)
    assert got is not None
    assert got["accuracy"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    assert got["precision"] == 1.0 and "log_loss" in got and "roc_auc" not in got
    # a class never predicted: zero_division=0
    none = classification_metrics([0, 1, 0], [0, 0, 0], classes=[0, 1])
    assert none is not None and none["precision"] == 0.0 and none["f1"] == 0.0
    # a label outside classes: no score-based metrics
    odd = classification_metrics([0, 2], [0, 2], classes=[0, 1], decision=[0.1, 0.9])
    assert odd is not None and "roc_auc" not in odd
    # weights change the answer
    w = classification_metrics([0, 1], [0, 0], sample_weight=[3.0, 1.0])
    assert w is not None and w["accuracy"] == pytest.approx(0.75)
    # not 1-d labels: left to sklearn
    assert classification_metrics([[0, 1], [1, 0]], [[0, 1], [1, 1]]) is None
    assert classification_metrics([0, 1], [0, 1, 1]) is None


def test_binary_auc_ties_and_absent_class() -> None:
    assert binary_auc([True, False], [0.5, 0.5]) == pytest.approx(0.5)
    assert binary_auc([True, False, False], [0.9, 0.1, 0.9]) == pytest.approx(0.75)
    assert binary_auc([True, True], [0.1, 0.2]) is None
    assert binary_auc([True, False], [0.1, 0.2], sample_weight=[1.0, 0.0]) is None


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("outputs", [1, 2])
def test_regression_matches_sklearn(weighted: bool, outputs: int) -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=(30, outputs)).squeeze()
    pred = y + rng.normal(scale=0.5, size=y.shape)
    w = rng.random(30) + 0.1 if weighted else None
    got = regression_metrics(y, pred, sample_weight=w, prefix="train_")
    assert got["train_mse"] == pytest.approx(skm.mean_squared_error(y, pred, sample_weight=w))
    assert got["train_rmse"] == pytest.approx(math.sqrt(got["train_mse"]))
    assert got["train_mae"] == pytest.approx(skm.mean_absolute_error(y, pred, sample_weight=w))
    assert got["train_r2"] == pytest.approx(skm.r2_score(y, pred, sample_weight=w))


def test_regression_edge_cases() -> None:
    assert regression_metrics([2.0, 2.0], [2.0, 2.0])["r2"] == 1.0  # constant, perfect
    assert regression_metrics([2.0, 2.0], [1.0, 3.0])["r2"] == 0.0  # constant, imperfect
    nan = regression_metrics([1.0, float("nan")], [1.0, 2.0])
    assert all(math.isnan(v) for v in nan.values())
    assert regression_metrics([0.0, 1.0], [1.0, 1.0], sample_weight=[0.0, 1.0])["mse"] == 0.0


def test_log_table(tmp_path: Any) -> None:
    ma = np.ma.masked_array([1.0], mask=[True])
    store = str(tmp_path / "store")
    with mt.start("tables", store=store) as v:
        entries = v.log_table(
            "t.csv",
            ["a", "b", "c", "d"],
            [[None, {"z": 1, "a": (1, 2)}, np.float64(0.1), np.int64(3)], [ma[0], 1.0 / 3, True, [1, "x"]]],
        )
        assert entries and entries[0]["path"] == "t.csv" and entries[0]["kind"] == "table"
        assert not any(v.scratch_dir().iterdir())  # the temporary file is gone
        cv = v.log_table("cv.csv", ["x"], [], kind="cv_results")
        assert cv[0]["kind"] == "cv_results"
    text = Path(mt.artifact_path("tables", "t.csv", store=store)).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["a", "b", "c", "d"],
        ["", '{"a": [1, 2], "z": 1}', "0.1", "3"],
        ["", repr(1.0 / 3), "True", '[1, "x"]'],
    ]


def test_default_model_name_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELTRACK_MODEL", raising=False)
    monkeypatch.setattr(sys, "argv", ["-c"])
    assert tracking.default_model_name() == "model"
    assert tracking.default_model_name(None) is None
    assert tracking.default_model_name("est") == "est"
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest"])
    assert tracking.default_model_name() == "pytest"
    assert tracking.default_model_name(None, python_scripts=True) is None
    monkeypatch.setattr(sys, "argv", ["/x/my train!.py"])
    assert tracking.default_model_name(None, python_scripts=True) == "my-train"
    monkeypatch.setenv("MODELTRACK_MODEL", "env-name")
    assert tracking.default_model_name(None, python_scripts=True) == "env-name"
