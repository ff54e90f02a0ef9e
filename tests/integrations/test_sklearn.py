"""scikit-learn autologging: real fits on tiny data, and the autolog safety contract on a
fake estimator (after MLflow's ``tests/autologging/test_autologging_safety_unit.py``)."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")

from sklearn import metrics  # noqa: E402
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import modeltrack as mt  # noqa: E402
from modeltrack import patching  # noqa: E402
from modeltrack.errors import ModelTrackWarning, UntrustedArtifactError  # noqa: E402
from modeltrack.integrations import sklearn as mts  # noqa: E402


@pytest.fixture
def data() -> tuple[Any, Any, Any, Any]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=60) > 0).astype(int)
    return X[:40], y[:40], X[40:], y[40:]


@pytest.fixture(autouse=True)
def _clean() -> Any:
    yield
    mts.autolog(disable=True)
    assert not patching.enabled(mts.KEY), "patches leaked out of a test"


def _cli(*args: str, store: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "--store", store, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- real estimators
@pytest.mark.slow
def test_decorated_fit_records_everything(data: Any, store_uri: str, tmp_path: Path) -> None:
    X_train, y_train, X_test, y_test = data

    @mts.autolog(model="clf", store=store_uri)
    def train(C: float) -> Any:
        model = LogisticRegression(C=C).fit(X_train, y_train)
        model.score(X_test, y_test)
        metrics.f1_score(y_test, model.predict(X_test))
        return model

    model = train(0.5)
    rec = mt.show("clf", store=store_uri)
    assert rec["status"] == "finished" and rec["framework"] == "sklearn"
    assert rec["params"]["C"] == 0.5 and rec["params"]["solver"] == "lbfgs"
    m = {k: v["last"] for k, v in rec["metrics"].items()}
    assert m["train_accuracy"] == pytest.approx(metrics.accuracy_score(y_train, model.predict(X_train)))
    for key in ("train_precision", "train_recall", "train_f1", "train_log_loss", "train_roc_auc"):
        assert key in m
    assert m["test_score"] == pytest.approx(model.score(X_test, y_test))
    assert m["test_f1_score"] == pytest.approx(metrics.f1_score(y_test, model.predict(X_test)))
    data_recs = {d["name"]: d for d in rec["data"]}
    assert data_recs["X_train"]["shape"] == [40, 3] and data_recs["y_train"]["shape"] == [40]
    assert data_recs["X_train"]["fingerprint"].startswith("sha256:")
    (art,) = [a for a in rec["artifacts"] if a["kind"] == "model"]
    assert art["path"] == "model.joblib"
    assert rec["environment"]["python"] and rec["environment"]["packages"].get("scikit-learn")
    assert rec["info"]["estimator"] == "sklearn.linear_model.LogisticRegression"

    # The same through the CLI, and the stored file is the model.
    shown = _cli("show", "clf@v1", "--json", store=store_uri)
    assert shown["params"]["C"] == 0.5 and "train_accuracy" in shown["metrics"]
    path = Path(mt.artifact_path("clf@v1", "model.joblib", store=store_uri))
    assert _sha(path) == art["sha256"] == shown["artifacts"][0]["sha256"]

    loaded = mt.load("clf@v1", trust=True, store=store_uri)
    assert (loaded.predict(X_test) == model.predict(X_test)).all()
    with pytest.raises(UntrustedArtifactError):
        mt.load("clf@v1", store=store_uri)

    train(2.0)
    d = _cli("diff", "clf@v1", "clf@v2", "--json", store=store_uri)
    assert d["params"]["changed"]["C"] == {"from": 0.5, "to": 2.0}
    assert d["data"] == {}


@pytest.mark.slow
def test_training_metrics_match_sklearn(data: Any) -> None:
    X, y, _, _ = data
    clf = LogisticRegression().fit(X, y)
    got = mts._training_metrics(clf, X, y, None)
    proba = clf.predict_proba(X)
    assert got["train_precision"] == pytest.approx(metrics.precision_score(y, clf.predict(X)))
    assert got["train_f1"] == pytest.approx(metrics.f1_score(y, clf.predict(X)))
    assert got["train_log_loss"] == pytest.approx(metrics.log_loss(y, proba))
    assert got["train_roc_auc"] == pytest.approx(metrics.roc_auc_score(y, proba[:, 1]))
    y3 = np.array(["a", "b", "c", "a"] * 10)
    clf3 = LogisticRegression().fit(X, y3)
    got3 = mts._training_metrics(clf3, X, y3, None)
    pred3 = clf3.predict(X)
    assert got3["train_recall"] == pytest.approx(metrics.recall_score(y3, pred3, average="weighted"))
    assert got3["train_f1"] == pytest.approx(metrics.f1_score(y3, pred3, average="weighted"))
    assert got3["train_roc_auc"] == pytest.approx(
        metrics.roc_auc_score(y3, clf3.predict_proba(X), multi_class="ovr", average="weighted")
    )
    w = np.linspace(0.5, 2, len(y))
    yr = X @ np.array([1.0, -2.0, 0.5])
    reg = LinearRegression().fit(X, yr + 0.1)
    got_r = mts._training_metrics(reg, X, yr, w)
    pr = reg.predict(X)
    assert got_r["train_mse"] == pytest.approx(metrics.mean_squared_error(yr, pr, sample_weight=w))
    assert got_r["train_rmse"] == pytest.approx(math.sqrt(got_r["train_mse"]))
    assert got_r["train_mae"] == pytest.approx(metrics.mean_absolute_error(yr, pr, sample_weight=w))
    assert got_r["train_r2"] == pytest.approx(metrics.r2_score(yr, pr, sample_weight=w))


@pytest.mark.slow
def test_pipeline_and_search_are_one_version_each(data: Any, store_uri: str) -> None:
    X, y, X_test, _ = data

    @mts.autolog(model="pipe", store=store_uri)
    def train_pipe() -> Any:
        return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(X, y)

    train_pipe()
    assert len(mt.versions("pipe", store=store_uri)) == 1
    rec = mt.show("pipe", store=store_uri)
    assert rec["params"]["clf__C"] == 1.0
    assert rec["info"]["structure"] == ["Pipeline", "steps.scale StandardScaler", "steps.clf LogisticRegression"]
    assert rec["info"]["architecture"].startswith("sha256:")

    @mts.autolog(model="search", store=store_uri, max_candidates=2)
    def train_search() -> Any:
        grid = GridSearchCV(
            Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]), {"clf__C": [0.1, 1.0, 10.0]}, cv=3
        )
        grid.fit(X, y)
        grid.predict(X_test)  # a prediction without a metric logs nothing
        return grid

    grid = train_search()
    assert len(mt.versions("search", store=store_uri)) == 1
    rec = mt.show("search", store=store_uri)
    assert rec["params"]["best_params.clf__C"] == grid.best_params_["clf__C"]
    assert rec["metrics"]["best_cv_score"]["last"] == pytest.approx(grid.best_score_)
    paths = {a["path"]: a for a in rec["artifacts"]}
    assert {"cv_results.csv", "top_candidates.csv", "model.joblib"} <= set(paths)
    csv_text = Path(mt.artifact_path("search", "cv_results.csv", store=store_uri)).read_text()
    assert csv_text.splitlines()[0].startswith("mean_fit_time") and len(csv_text.splitlines()) == 4
    top = rec["info"]["top_candidates"]
    assert len(top) == 2 and top[0]["rank"] == 1 and top[0]["params"] == grid.best_params_
    assert rec["info"]["search"]["candidates"] == 3

    @mts.autolog(model="rsearch", store=store_uri)
    def train_random() -> None:
        RandomizedSearchCV(LogisticRegression(), {"C": [0.1, 1.0, 10.0]}, n_iter=2, cv=2, random_state=0).fit(X, y)

    train_random()
    assert len(mt.versions("rsearch", store=store_uri)) == 1


@pytest.mark.slow
def test_exception_in_fit_marks_failed_and_propagates(store_uri: str) -> None:
    @mts.autolog(model="bad", store=store_uri)
    def train() -> None:
        LogisticRegression().fit(np.zeros((4, 2)), np.array([0, 0, 0, 0]))  # one class: sklearn refuses

    with pytest.raises(ValueError, match="class"):
        train()
    rec = mt.show("bad@v1", store=store_uri)
    assert rec["status"] == "failed" and "ValueError" in rec["error"]


@pytest.mark.slow
def test_global_autolog_and_disable(data: Any, store_uri: str) -> None:
    X, y, X_test, y_test = data
    original = LogisticRegression.__dict__["fit"]
    mts.autolog(model="glob", store=store_uri)
    first = LogisticRegression().fit(X, y)
    assert mt.versions("glob", store=store_uri)[0]["status"] == "running"  # open for test metrics
    first.score(X_test, y_test)
    LogisticRegression(C=3.0).fit(X, y)  # the next fit finishes the previous version
    assert [v["status"] for v in mt.versions("glob", store=store_uri)] == ["finished", "running"]
    assert "test_score" in mt.show("glob@v1", store=store_uri)["metrics"]
    mts.autolog(disable=True)
    assert [v["status"] for v in mt.versions("glob", store=store_uri)] == ["finished", "finished"]
    assert LogisticRegression.__dict__["fit"] is original
    LogisticRegression().fit(X, y)
    assert len(mt.versions("glob", store=store_uri)) == 2


@pytest.mark.slow
def test_context_manager_and_handle_scope(data: Any, store_uri: str) -> None:
    X, y, _, _ = data
    with mts.autolog(model="block", store=store_uri):
        LogisticRegression().fit(X, y)
        LogisticRegression(C=2.0).fit(X, y)
    assert [v["status"] for v in mt.versions("block", store=store_uri)] == ["finished", "finished"]
    assert not patching.enabled(mts.KEY)


def test_enable_twice_never_double_patches() -> None:
    original = LogisticRegression.__dict__["fit"]
    mts.autolog()
    once = LogisticRegression.__dict__["fit"]
    mts.autolog()
    assert LogisticRegression.__dict__["fit"] is not original
    assert LogisticRegression.__dict__["fit"].__modeltrack_original__ is original
    assert once.__modeltrack_original__ is original
    mts.autolog(disable=True)
    assert LogisticRegression.__dict__["fit"] is original


def test_decorator_undoes_its_patches_and_keeps_signature() -> None:
    import inspect

    sig = inspect.signature(LogisticRegression.fit)
    seen = []

    @mts.autolog(model="x")
    def inside() -> None:
        seen.append(LogisticRegression.__dict__["fit"])
        assert inspect.signature(LogisticRegression.fit) == sig
        assert LogisticRegression.fit.__name__ == "fit"

    inside()
    assert hasattr(seen[0], "__modeltrack_original__")
    assert not hasattr(LogisticRegression.__dict__["fit"], "__modeltrack_original__")
    # Descriptors stay descriptors: hasattr() still answers from sklearn's available_if.
    assert not hasattr(Pipeline([("s", StandardScaler())]), "predict_proba")


# ---------------------------------------------------------------------- the safety contract
class FakeEstimator:
    """Not an sklearn class: records calls, returns and raises what it is told."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.result = result
        self.error = error

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"alpha": 1}

    def fit(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
        self.calls.append((X, y, kwargs))
        if self.error is not None:
            raise self.error
        return self if self.result is None else self.result

    def predict(self, X: Any) -> Any:
        return np.zeros(len(X))


def test_fit_runs_once_and_returns_its_result(store_uri: str) -> None:
    sentinel = object()
    est = FakeEstimator(result=sentinel)

    @mts.autolog(model="fake", store=store_uri, estimators=[FakeEstimator])
    def train() -> Any:
        return est.fit([[1.0], [2.0]], [0, 1], sample_weight=None)

    assert train() is sentinel
    assert len(est.calls) == 1 and est.calls[0][2] == {"sample_weight": None}
    rec = mt.show("fake", store=store_uri)
    assert rec["status"] == "finished" and rec["params"] == {"alpha": 1}
    assert "fit" not in FakeEstimator.__dict__ or not hasattr(FakeEstimator.__dict__["fit"], "__modeltrack_original__")


def test_user_exception_propagates_unchanged(store_uri: str) -> None:
    err = KeyError("boom")
    est = FakeEstimator(error=err)

    @mts.autolog(model="fake", store=store_uri, estimators=[FakeEstimator])
    def train() -> None:
        est.fit([[1.0]], [0])

    with pytest.raises(KeyError) as info:
        train()
    assert info.value is err and len(est.calls) == 1
    rec = mt.show("fake@v1", store=store_uri)
    assert rec["status"] == "failed" and "KeyError" in rec["error"]


def test_keyboard_interrupt_marks_interrupted(store_uri: str) -> None:
    est = FakeEstimator(error=KeyboardInterrupt())

    @mts.autolog(model="fake", store=store_uri, estimators=[FakeEstimator])
    def train() -> None:
        est.fit([[1.0]], [0])

    with pytest.raises(KeyboardInterrupt):
        train()
    assert mt.show("fake@v1", store=store_uri)["error"] == "interrupted"


@pytest.mark.parametrize("where", ["begin", "after"])
def test_tracking_failure_warns_and_training_goes_on(
    where: str, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracking is broken")

    if where == "begin":
        monkeypatch.setattr(mts._Session, "begin", classmethod(broken))
    else:
        monkeypatch.setattr(mts, "_log_model", broken)
    est = FakeEstimator()

    @mts.autolog(model="fake", store=store_uri, estimators=[FakeEstimator])
    def train() -> Any:
        return est.fit([[1.0], [2.0]], [0, 1])

    with pytest.warns(ModelTrackWarning, match="tracking is broken"):
        assert train() is est
    assert len(est.calls) == 1


def test_strict_mode_raises_tracking_errors(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("tracking is broken")

    monkeypatch.setattr(mts, "_log_model", broken)
    est = FakeEstimator()

    @mts.autolog(model="fake", store=store_uri, estimators=[FakeEstimator])
    def train() -> Any:
        return est.fit([[1.0], [2.0]], [0, 1])

    with pytest.raises(RuntimeError, match="tracking is broken"):
        train()
    assert len(est.calls) == 1


def test_failure_while_marking_failed_keeps_the_user_exception(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    err = ValueError("user")

    def broken_fail(self: Any, exc: Any = None) -> None:
        raise RuntimeError("store down")

    monkeypatch.setattr(mt.Version, "fail", broken_fail)
    est = FakeEstimator(error=err)

    @mts.autolog(model="fake", store=store_uri, estimators=[FakeEstimator])
    def train() -> None:
        est.fit([[1.0]], [0])

    with pytest.raises(ValueError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train()
    assert info.value is err


def test_nested_fits_record_the_outermost_only(store_uri: str) -> None:
    class Outer(FakeEstimator):
        def fit(self, X: Any, y: Any = None, **kwargs: Any) -> Any:
            FakeEstimator().fit(X, y)
            FakeEstimator().fit(X, y)
            return super().fit(X, y)

    @mts.autolog(model="nest", store=store_uri, estimators=[FakeEstimator, Outer], log_models=False)
    def train() -> None:
        Outer().fit([[1.0], [2.0]], [0, 1])

    train()
    assert len(mt.versions("nest", store=store_uri)) == 1


def test_fits_outside_the_decorated_function_are_not_recorded(store_uri: str) -> None:
    @mts.autolog(model="scoped", store=store_uri, estimators=[FakeEstimator])
    def train() -> None:
        FakeEstimator().fit([[1.0]], [0])

    train()
    FakeEstimator().fit([[1.0]], [0])
    assert len(mt.versions("scoped", store=store_uri)) == 1


def test_bad_options_are_refused() -> None:
    with pytest.raises(mt.ModelTrackError, match="max_candidates"):
        mts.autolog(max_candidates=-1)
    with pytest.raises(mt.ModelTrackError, match="classes"):
        mts.autolog(estimators=[FakeEstimator()])


def test_unfingerprintable_data_is_described(store_uri: str) -> None:
    @mts.autolog(model="odd", store=store_uri, estimators=[FakeEstimator])
    def train() -> None:
        FakeEstimator().fit([{"a": object()}], None)

    train()
    (d,) = mt.show("odd", store=store_uri)["data"]
    assert d["name"] == "X_train" and d["fingerprint"] is None and "not fingerprinted" in d["reason"]


@pytest.mark.slow
@pytest.mark.parametrize("where", ["read-only", "full"])
def test_unwritable_store_warns_and_the_fit_completes(
    where: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real read-only file system, or a real full one: tracking warns, the fit returns."""
    import os
    import warnings

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from modeltrack.errors import ModelTrackWarning
    from modeltrack.integrations.sklearn import autolog

    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    base = request.getfixturevalue("readonly_dir" if where == "read-only" else "full_dir")
    if where == "full":
        fd = os.open(base / "filler", os.O_WRONLY | os.O_CREAT)  # fill the 256 KiB file system
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)

    @autolog(model="unwritable", store=str(base / "store"))
    def train() -> LogisticRegression:
        return LogisticRegression().fit(X, y)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = train()
    assert isinstance(est, LogisticRegression) and est.predict(X).shape == (40,)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ModelTrackWarning)]
    assert any("read-only" in m or "disk is full" in m for m in msgs), msgs
    assert not os.path.exists(base / "store" / "models")


def test_search_params_absent_from_a_candidate_are_empty_cells(data: Any, store_uri: str) -> None:
    X, y, _, _ = data
    grid = [{"C": [0.5]}, {"C": [1.0], "tol": [1e-3]}]  # no tol in the first: a masked cell
    with mts.autolog(model="masked", store=store_uri, log_models=False):
        GridSearchCV(LogisticRegression(), grid, cv=2).fit(X, y)
    import csv

    text = Path(mt.artifact_path("masked", "cv_results.csv", store=store_uri)).read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert [r["param_tol"] for r in rows] == ["", "0.001"]
    assert [json.loads(r["params"]) for r in rows] == [{"C": 0.5}, {"C": 1.0, "tol": 0.001}]
