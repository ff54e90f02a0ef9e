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
from modeltrack.metrics import classification_metrics  # noqa: E402


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


# ---------------------------------------------------------------------- issue 10: searches
def _lowest_precision(results: Any) -> int:
    """A callable refit: the candidate with the lowest mean precision (never sklearn's rank 1)."""
    return int(np.argmin(results["mean_test_precision"]))


@pytest.fixture
def wide() -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + X[:, 1] + 0.8 * rng.normal(size=120) > 0.3).astype(int)
    return X, y


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_multi_metric_search_with_callable_refit(wide: Any, store_uri: str) -> None:
    X, y = wide
    with mts.autolog(model="multi", store=store_uri, max_candidates=3):
        grid = GridSearchCV(
            LogisticRegression(),
            {"C": [0.001, 0.01, 0.1, 1.0, 10.0]},
            scoring=["precision", "recall"],
            refit=_lowest_precision,
            cv=3,
        ).fit(X, y)
    res = grid.cv_results_
    best = grid.best_index_
    assert res["rank_test_precision"][best] != 1  # the callable did not pick sklearn's best
    rec = mt.show("multi", store=store_uri)
    search = rec["info"]["search"]
    assert search["scorers"] == ["precision", "recall"] and search["scoring"] == ["precision", "recall"]
    assert search["scorer"] == "precision" and search["best_index"] == best
    top = rec["info"]["top_candidates"]
    assert len(top) == 3 and top[0]["chosen"] is True and top[0]["params"] == grid.best_params_
    assert top[0]["rank"] == res["rank_test_precision"][best]
    assert [r["rank"] for r in top[1:]] == sorted(r["rank"] for r in top[1:])
    assert [r["chosen"] for r in top[1:]] == [False, False]
    assert top[0]["mean_test_recall"] == pytest.approx(res["mean_test_recall"][best])
    m = {k: v["last"] for k, v in rec["metrics"].items()}
    assert m["best_cv_precision"] == pytest.approx(res["mean_test_precision"][best])
    assert m["best_cv_recall"] == pytest.approx(res["mean_test_recall"][best])
    assert "best_cv_score" not in m
    header = Path(mt.artifact_path("multi", "top_candidates.csv", store=store_uri)).read_text().splitlines()[0]
    assert "mean_test_precision" in header and "std_test_recall" in header
    # A callable refit from an importable module is stored by name, as joblib always did.
    assert [a["path"] for a in rec["artifacts"] if a["kind"] == "model"] == ["model.joblib"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_dict_scoring_refit_by_name_and_single_named_scorer(wide: Any, store_uri: str) -> None:
    X, y = wide
    with mts.autolog(model="dict", store=store_uri, log_models=False):
        grid = GridSearchCV(
            LogisticRegression(),
            {"C": [0.001, 0.1, 10.0]},
            scoring={"p": "precision", "auc": "roc_auc"},
            refit="auc",
            cv=3,
        ).fit(X, y)
    rec = mt.show("dict", store=store_uri)
    assert rec["info"]["search"]["scorers"] == ["p", "auc"] and rec["info"]["search"]["scorer"] == "auc"
    top = rec["info"]["top_candidates"]
    assert top[0]["rank"] == 1 and top[0]["params"] == grid.best_params_
    assert rec["metrics"]["best_cv_auc"]["last"] == pytest.approx(grid.best_score_)
    assert rec["metrics"]["best_cv_p"]["last"] == pytest.approx(grid.cv_results_["mean_test_p"][grid.best_index_])

    y3 = np.digitize(X[:, 0], [-0.5, 0.5])  # three classes
    with mts.autolog(model="ovr", store=store_uri, log_models=False):
        grid3 = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, scoring="roc_auc_ovr", cv=3).fit(X, y3)
    search = mt.show("ovr", store=store_uri)["info"]["search"]
    assert search["scoring"] == "roc_auc_ovr" and search["scorers"] == ["roc_auc_ovr"]
    assert search["scorer"] == "roc_auc_ovr"
    assert mt.show("ovr", store=store_uri)["metrics"]["best_cv_score"]["last"] == pytest.approx(grid3.best_score_)


@pytest.mark.slow
def test_halving_search_keeps_last_iteration_candidates(wide: Any, store_uri: str) -> None:
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import HalvingGridSearchCV

    X, y = wide
    with mts.autolog(model="halving", store=store_uri, log_models=False, max_candidates=10):
        search = HalvingGridSearchCV(
            LogisticRegression(), {"C": [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]}, cv=2, factor=2, random_state=0
        ).fit(X, y)
    res = search.cv_results_
    last = max(res["iter"])
    assert last >= 1 and len(set(res["iter"])) > 1
    finalists = [p for p, it in zip(res["params"], res["iter"]) if it == last]
    info = mt.show("halving", store=store_uri)["info"]
    assert sorted(json.dumps(r["params"], sort_keys=True) for r in info["top_candidates"]) == sorted(
        json.dumps(p, sort_keys=True) for p in finalists
    )
    assert info["top_candidates"][0]["params"] == search.best_params_
    assert info["search"]["iterations"] == search.n_iterations_
    assert info["search"]["last_iteration_candidates"] == len(finalists) < info["search"]["candidates"]


# ---------------------------------------------------------------------- issue 10: script functions
TRAIN_SCRIPT = """
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from modeltrack.integrations import sklearn as mts


def log1p_abs(X):
    return np.log1p(np.abs(X))


def most_recall(results):
    return int(np.argmax(results["mean_test_recall"]))


rng = np.random.default_rng(0)
X = rng.normal(size=(80, 3))
y = (X[:, 0] > 0).astype(int)
with mts.autolog(model="script", store=sys.argv[1]):
    search = GridSearchCV(
        make_pipeline(FunctionTransformer(log1p_abs), LogisticRegression()),
        {"logisticregression__C": [0.1, 1.0]},
        scoring=["precision", "recall"],
        refit=most_recall,
        cv=2,
    ).fit(X, y)
np.save(sys.argv[2], search.predict(X))
np.save(sys.argv[3], X)
"""

LOAD_SCRIPT = """
import sys

import numpy as np

import modeltrack as mt

model = mt.load("script", trust=True, store=sys.argv[1])
assert (model.predict(np.load(sys.argv[3])) == np.load(sys.argv[2])).all()
print(type(model).__name__, model.refit.__name__)
"""


@pytest.mark.slow
def test_functions_of_the_training_script_load_in_another_process(store_uri: str, tmp_path: Path) -> None:
    train, load = tmp_path / "train.py", tmp_path / "load.py"
    train.write_text(TRAIN_SCRIPT)
    load.write_text(LOAD_SCRIPT)
    paths = [store_uri, str(tmp_path / "pred.npy"), str(tmp_path / "X.npy")]
    subprocess.run([sys.executable, str(train), *paths], check=True, cwd=tmp_path, capture_output=True, text=True)
    (art,) = [a for a in mt.show("script", store=store_uri)["artifacts"] if a["kind"] == "model"]
    assert art["path"] == "model.pkl" and art["metadata"]["format"] == "cloudpickle"
    assert art["metadata"]["by_value"].startswith("__main__.")
    out = subprocess.run([sys.executable, str(load), *paths], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GridSearchCV", "most_recall"]


def test_lambda_model_round_trips_and_plain_models_stay_joblib(data: Any, store_uri: str) -> None:
    from sklearn.preprocessing import FunctionTransformer

    X, y, X_test, _ = data
    with mts.autolog(model="lam", store=store_uri):
        model = Pipeline([("f", FunctionTransformer(lambda a: a * 3)), ("clf", LogisticRegression())]).fit(X, y)
        LogisticRegression().fit(X, y)
    arts = {
        v["version"]: a
        for v in mt.versions("lam", store=store_uri)
        for a in mt.show(f"lam@v{v['version']}", store=store_uri)["artifacts"]
        if a["kind"] == "model"
    }
    assert arts[1]["path"] == "model.pkl" and "<lambda>" in arts[1]["metadata"]["by_value"]
    assert arts[2]["path"] == "model.joblib" and arts[2]["metadata"]["format"] == "joblib"
    loaded = mt.load("lam@v1", trust=True, store=store_uri)
    assert (loaded.predict(X_test) == model.predict(X_test)).all()
    with pytest.raises(UntrustedArtifactError):
        mt.load("lam@v1", store=store_uri)


def test_without_cloudpickle_the_save_is_refused_clearly(
    data: Any, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.preprocessing import FunctionTransformer

    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    monkeypatch.setitem(sys.modules, "cloudpickle", None)  # import cloudpickle → ImportError
    X, y, _, _ = data
    with pytest.warns(ModelTrackWarning, match=r"refers to .*<lambda>.*pip install cloudpickle.*importable module"):
        with mts.autolog(model="nocp", store=store_uri):
            model = Pipeline([("f", FunctionTransformer(lambda a: a)), ("clf", LogisticRegression())]).fit(X, y)
    assert model.predict(X).shape == (40,)  # training went on
    rec = mt.show("nocp", store=store_uri)
    assert rec["status"] == "finished" and not [a for a in rec["artifacts"] if a["kind"] == "model"]


# ---------------------------------------------------------------------- issue 10: preprocessing
def test_lone_preprocessing_fit_is_no_version_unless_asked(data: Any, store_uri: str) -> None:
    from sklearn.impute import SimpleImputer

    X, y, X_test, _ = data
    with mts.autolog(model="pre", store=store_uri, log_preprocessing=True):
        StandardScaler().fit(X)
    assert mt.show("pre@v1", store=store_uri)["info"]["estimator"] == "sklearn.preprocessing.StandardScaler"
    with mts.autolog(model="pre", store=store_uri):
        StandardScaler().fit(X)
        SimpleImputer().fit_transform(X)
    assert len(mt.versions("pre", store=store_uri)) == 1

    # Global mode: a scaler fitted between a model's fit and its test score leaves that version open.
    mts.autolog(model="preg", store=store_uri)
    clf = LogisticRegression().fit(X, y)
    StandardScaler().fit(X_test)
    assert [v["status"] for v in mt.versions("preg", store=store_uri)] == ["running"]
    clf.score(X_test, data[3])
    mts.autolog(disable=True)
    assert "test_score" in mt.show("preg@v1", store=store_uri)["metrics"]


# ---------------------------------------------------------------------- issue 10: cross-validation
def test_cross_val_score_of_an_unfitted_estimator_is_one_version(data: Any, store_uri: str) -> None:
    from sklearn import model_selection

    X, y, _, _ = data
    with mts.autolog(model="cv", store=store_uri):
        scores = model_selection.cross_val_score(LogisticRegression(C=0.5), X, y, cv=4, scoring="accuracy")
        multi = model_selection.cross_validate(LogisticRegression(), X, y, cv=3, scoring=["accuracy", "f1"])
    assert len(mt.versions("cv", store=store_uri)) == 2
    rec = mt.show("cv@v1", store=store_uri)
    assert rec["params"]["C"] == 0.5 and rec["info"]["method"] == "cross_val_score"
    series = rec["metrics"]["cv_accuracy"]["series"]
    assert [p["step"] for p in series] == [0, 1, 2, 3]
    assert [p["value"] for p in series] == pytest.approx(list(scores))
    assert rec["metrics"]["cv_accuracy_mean"]["last"] == pytest.approx(scores.mean())
    assert rec["metrics"]["cv_accuracy_std"]["last"] == pytest.approx(scores.std())
    assert not [a for a in rec["artifacts"] if a["kind"] == "model"]  # nothing was fitted
    assert {d["name"] for d in rec["data"]} == {"X_train", "y_train"}
    rec2 = mt.show("cv@v2", store=store_uri)
    assert [p["value"] for p in rec2["metrics"]["cv_f1"]["series"]] == pytest.approx(list(multi["test_f1"]))
    assert "cv_accuracy" in rec2["metrics"] and rec2["evaluations"] == []


def test_cross_validate_of_a_fitted_estimator_is_an_evaluation(data: Any, store_uri: str) -> None:
    from sklearn import model_selection

    X, y, X_test, y_test = data
    X_all, y_all = np.vstack([X, X_test]), np.concatenate([y, y_test])
    with mts.autolog(model="cvfit", store=store_uri):
        clf = LogisticRegression().fit(X, y)
        res = model_selection.cross_validate(clf, X_all, y_all, cv=3, scoring="accuracy")
    assert len(mt.versions("cvfit", store=store_uri)) == 1
    rec = mt.show("cvfit@v1", store=store_uri)
    (ev,) = rec["evaluations"]
    assert ev["name"] == "cross_validate" and ev["source"] == "sklearn cross_validate"
    assert ev["metrics"]["cv_accuracy_mean"] == pytest.approx(res["test_score"].mean())
    assert ev["metrics"]["cv_accuracy_std"] == pytest.approx(res["test_score"].std())
    assert [ev["metrics"][f"cv_accuracy_fold{i}"] for i in range(3)] == pytest.approx(list(res["test_score"]))
    assert ev["data"][0]["name"] == "X_all" and ev["data"][0]["shape"] == [60, 3]
    assert "cv_accuracy" not in rec["metrics"]  # the version's own record is unchanged

    # Global mode, after the version ended: the evaluation is written at once.
    mts.autolog(model="cvg", store=store_uri)
    first = LogisticRegression().fit(X, y)
    LogisticRegression(C=2.0).fit(X, y)  # ends v1
    scores = model_selection.cross_val_score(first, X_all, y_all, cv=2)
    (ev,) = mt.show("cvg@v1", store=store_uri)["evaluations"]
    assert ev["name"] == "cross_val_score" and ev["metrics"]["cv_score_mean"] == pytest.approx(scores.mean())
    mts.autolog(disable=True)
    assert len(mt.versions("cvg", store=store_uri)) == 2


def test_partial_fit_loop_is_one_version_with_series(store_uri: str) -> None:
    from sklearn.linear_model import SGDClassifier

    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    with mts.autolog(model="online", store=store_uri):
        clf = SGDClassifier(random_state=0)
        for i in range(4):
            batch = slice(50 * i, 50 * (i + 1))
            clf.partial_fit(X[batch], y[batch], classes=[0, 1])
    assert len(mt.versions("online", store=store_uri)) == 1
    rec = mt.show("online", store=store_uri)
    assert rec["status"] == "finished" and rec["info"]["method"] == "partial_fit"
    assert rec["info"]["partial_fit_calls"] == 4
    series = rec["metrics"]["train_accuracy"]["series"]
    assert [p["step"] for p in series] == [0, 1, 2, 3]
    assert series[-1]["value"] == pytest.approx(clf.score(X[150:], y[150:]))
    assert rec["params"]["random_state"] == 0
    loaded = mt.load("online", trust=True, store=store_uri)
    assert (loaded.coef_ == clf.coef_).all()  # the model after the last call


# ---------------------------------------------------------------------- issue 10: evaluations
def test_scores_and_metrics_after_the_version_ended_are_evaluations(data: Any, store_uri: str) -> None:
    X, y, X_test, y_test = data
    mts.autolog(model="late", store=store_uri)
    first = LogisticRegression().fit(X, y)
    LogisticRegression(C=3.0).fit(X, y)  # ends v1
    assert mt.versions("late", store=store_uri)[0]["status"] == "finished"
    score = first.score(X_test, y_test)
    acc = metrics.accuracy_score(y_test, first.predict(X_test))
    mts.autolog(disable=True)
    evals = {e["name"]: e for e in mt.show("late@v1", store=store_uri)["evaluations"]}
    assert set(evals) == {"score", "accuracy_score"}
    assert evals["score"]["metrics"] == {"test_score": pytest.approx(score)}
    assert evals["score"]["source"] == "sklearn LogisticRegression.score"
    assert evals["accuracy_score"]["metrics"] == {"test_accuracy_score": pytest.approx(acc)}
    assert evals["accuracy_score"]["source"] == "sklearn.metrics.accuracy_score"
    fp = mt.show("late@v1", store=store_uri)
    for e in evals.values():
        assert e["data"][0]["name"] == "X_test" and e["data"][0]["shape"] == [20, 3]
        assert e["data"][0]["fingerprint"].startswith("sha256:")
    assert "test_score" not in fp["metrics"] and mt.show("late@v2", store=store_uri)["evaluations"] == []


def test_post_training_metrics_off_records_no_evaluation(data: Any, store_uri: str) -> None:
    X, y, X_test, y_test = data
    with mts.autolog(model="quiet", store=store_uri, post_training_metrics=False):
        clf = LogisticRegression().fit(X, y)
        clf.score(X_test, y_test)
    rec = mt.show("quiet", store=store_uri)
    assert rec["evaluations"] == [] and "test_score" not in rec["metrics"]


# ---------------------------------------------------------------------- after fit, off the user's thread
def _forest_data(n: int = 300) -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(int)


def _train_metrics(rec: dict[str, Any]) -> dict[str, float]:
    return {k: v["last"] for k, v in rec["metrics"].items() if k.startswith("train_")}


def test_background_metrics_equal_a_synchronous_computation(store_uri: str) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _forest_data()
    mts.autolog(model="bg", store=store_uri)
    forest = RandomForestClassifier(n_estimators=15, random_state=0).fit(X, y)
    logreg = LogisticRegression().fit(X, y)  # ends the forest's version (waits for its work)
    mts.finish_pending()
    mts.autolog(disable=True)
    for ref, model in (("bg@v1", forest), ("bg@v2", logreg)):
        rec = mt.show(ref, store=store_uri)
        assert rec["status"] == "finished"
        expected = mts._training_metrics(model, X, y, None)  # synchronously, on the user's thread
        assert _train_metrics(rec) == expected
        # and exactly what the metrics of predict() and predict_proba() are (no shortcut changes them)
        proba = model.predict_proba(X)
        assert expected == classification_metrics(
            y, model.predict(X), classes=model.classes_, proba=proba, prefix="train_"
        )
        assert len(expected) == 6
        loaded = mt.load(ref, store=store_uri, trust=True)
        assert (loaded.predict_proba(X) == model.predict_proba(X)).all()
    # a forest's predictions are taken from its probabilities: exactly what predict returns
    assert (mts._forest_predict(forest, forest.predict_proba(X)) == forest.predict(X)).all()
    assert mts._forest_predict(logreg, logreg.predict_proba(X)) is None


def test_a_refit_or_edit_right_after_fit_never_mixes_models(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy
    import threading

    from sklearn.ensemble import RandomForestClassifier

    gate = threading.Event()
    real = mts._training_metrics

    def slow(*args: Any) -> Any:
        assert gate.wait(30)
        return real(*args)

    monkeypatch.setattr(mts, "_training_metrics", slow)
    X, y = _forest_data()
    X_test, y_test = X[:50].copy(), y[:50].copy()
    mts.autolog(model="refit", store=store_uri)
    model = RandomForestClassifier(n_estimators=5, warm_start=True, random_state=0).fit(X, y)
    first = copy.deepcopy(model), X.copy(), y.copy()
    model.score(X_test, y_test)  # held until the training metrics are logged: steps stay in order
    # the user edits everything at once, while the worker still waits
    model.set_params(n_estimators=12, random_state=3)
    model.estimators_ = model.estimators_[:2]
    X *= -1
    y[:] = 1 - y
    gate.set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "step went backwards"
        model.set_params(n_estimators=12).fit(X, y)  # a refit: the first version is complete first
        mts.finish_pending()
    v1, v2 = mt.show("refit@v1", store=store_uri), mt.show("refit@v2", store=store_uri)
    assert _train_metrics(v1) == real(*first, None)
    assert _train_metrics(v2) == real(model, X, y, None)
    assert v1["metrics"]["test_score"]["last"] == first[0].score(X_test, y_test)
    stored = mt.load("refit@v1", store=store_uri, trust=True)
    assert len(stored.estimators_) == 5 and stored.n_estimators == 5
    assert (stored.predict_proba(X) == first[0].predict_proba(X)).all()
    assert len(mt.load("refit@v2", store=store_uri, trust=True).estimators_) == 12


@pytest.mark.parametrize("strict", [False, True])
def test_a_failure_in_background_work_is_a_warning_and_not_recorded(
    store_uri: str, monkeypatch: pytest.MonkeyPatch, data: Any, strict: bool
) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "1" if strict else "0")

    def broken_metrics(*args: Any) -> Any:
        raise ValueError("metrics went wrong")

    def broken_model(*args: Any) -> Any:
        raise OSError("disk on fire")

    monkeypatch.setattr(mts, "_training_metrics", broken_metrics)
    monkeypatch.setattr(mts, "_log_model", broken_model)
    X_train, y_train, _, _ = data
    mts.autolog(model="broken", store=store_uri)
    if strict:
        LogisticRegression().fit(X_train, y_train)  # never the user's crash: raised at the next sync point
        with pytest.raises((ValueError, OSError)):
            mts.finish_pending()
    else:
        with pytest.warns(ModelTrackWarning) as caught:
            LogisticRegression().fit(X_train, y_train)
            mts.finish_pending()
        text = " ".join(str(w.message) for w in caught)
        assert "metrics went wrong" in text and "disk on fire" in text
    rec = mt.show("broken", store=store_uri)
    assert rec["status"] == "finished" and not _train_metrics(rec)
    missing = {x["path"]: x for x in rec["info"]["not_recorded"]}
    assert missing["train_*"]["kind"] == "metrics" and "metrics went wrong" in missing["train_*"]["reason"]
    assert missing["model.joblib"]["kind"] == "model" and "disk on fire" in missing["model.joblib"]["reason"]


def test_the_version_is_complete_when_the_process_exits_right_after_fit(store_uri: str, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import numpy as np\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from modeltrack.integrations import sklearn as mts\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(400, 5)); y = (X[:, 0] > 0).astype(int)\n"
        f"mts.autolog(model='exit', store={store_uri!r})\n"
        "RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path, capture_output=True, text=True)
    rec = mt.show("exit", store=store_uri)
    assert rec["status"] == "finished"
    assert set(_train_metrics(rec)) >= {"train_accuracy", "train_f1", "train_log_loss", "train_roc_auc"}
    assert [a["path"] for a in rec["artifacts"] if a["kind"] == "model"] == ["model.joblib"]
