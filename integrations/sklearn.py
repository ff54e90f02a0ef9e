"""scikit-learn autologging: every outermost ``fit`` becomes a version.

Three ways to switch it on::

    from modeltrack.integrations import sklearn as mt_sklearn

    @mt_sklearn.autolog(model="churn")          # fits inside train() only
    def train(): ...

    mt_sklearn.autolog(model="churn")           # globally, until autolog(disable=True)

    with mt_sklearn.autolog(model="churn"):     # for a block
        ...

What a version holds: ``get_params(deep=True)`` (flattened; estimators and other non-JSON
values as readable stand-ins), training metrics computed on the training data (classifier:
``train_accuracy``, ``train_precision``, ``train_recall``, ``train_f1`` — binary for two
classes, weighted otherwise —, ``train_log_loss`` and ``train_roc_auc`` where probabilities
or decision scores exist; regressor: ``train_mse``, ``train_rmse``, ``train_mae``,
``train_r2``), fingerprints of ``X_train`` and ``y_train``, the fitted model as
``model.joblib`` (kind ``model``, loadable with ``modeltrack.load(REF, trust=True)``; ``model.pkl``
written with cloudpickle when it refers to functions of the training script, see
:mod:`modeltrack.pickling`), and for searches (grid, randomized, halving) the best params
(``best_params.*``), the chosen candidate's CV score (``best_cv_score``; ``best_cv_<scorer>``
for each of several scorers), ``cv_results.csv`` and the top candidates (``top_candidates.csv``
and the ``top_candidates`` info: the chosen one, then by the refit scorer's rank; a halving
search's last iteration only).

Not versions: a preprocessing estimator fitted alone (:data:`PREPROCESSING`) unless
``log_preprocessing=True``. ``cross_validate``/``cross_val_score``: on an estimator fitted in
the run, an evaluation of its version (``cv_<scorer>_mean``/``_std``/``_fold<i>``); otherwise
a version of their own with one point per fold. ``partial_fit`` calls on one estimator are
one version: a point per call, the model stored when the version ends.

Post-training metrics: after ``fit``, ``est.score(X_test, y_test)`` is logged as
``test_score``, and ``sklearn.metrics.<fn>(y_test, est.predict(X_test))`` as
``test_<fn>`` (the prefix is the name of the variable passed to ``predict``/``score``,
without ``X_``: ``X_val`` gives ``val_``; ``eval_`` when it has no name). The version stays
open for them until the decorated function (or ``with`` block) ends; in global mode until
the next tracked ``fit``, ``autolog(disable=True)``, :func:`finish_pending` or the end of
the process. Later ones (patches still on) are evaluations of the ended version. Metric functions are caught when called through the ``sklearn.metrics``
module, or imported from it after autologging was switched on.

Patching: ``fit``/``fit_transform``/``fit_predict``, ``predict``-like methods and ``score``
of the public estimator classes of the sklearn modules imported so far, plus those of
modules imported later (a post-import hook, so nothing is imported up front), saved from
``cls.__dict__`` and undone exactly (see :mod:`modeltrack.patching`). Only the outermost
tracked ``fit`` running in the process is recorded, so a ``Pipeline`` or a search is one
version, even with ``n_jobs`` threads. In worker processes (joblib/loky, multiprocessing)
global autologging stays silent: their fits are a search's inner fits.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import os
import re
import statistics
import sys
import tempfile
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sklearn
from sklearn.base import BaseEstimator

from modeltrack import background, patching, pickling
from modeltrack.autologging import cancel_import_hook, when_imported
from modeltrack.capture.data import can_fingerprint
from modeltrack.capture.model import architecture
from modeltrack.capture.params import flatten, to_json_value
from modeltrack.errors import InvalidValueError, ModelTrackError, ModelTrackWarning
from modeltrack.metrics import classification_metrics, regression_metrics
from modeltrack.patching import Patcher, enabled, safe_call
from modeltrack.patching import disable as _unpatch
from modeltrack.patching import enable as _patch
from modeltrack.patching import original as _original
from modeltrack.tracking import Version, default_model_name, report, start

__all__ = ["AutologHandle", "artifact_needs_trust", "autolog", "finish_pending", "load_artifact", "tracked_versions"]

KEY = "sklearn"
FIT_METHODS = ("fit", "fit_transform", "fit_predict", "partial_fit")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
SCORE_METHODS = ("score",)
MODEL_FILE = "model.joblib"
MODEL_FILE_BY_VALUE = "model.pkl"  # cloudpickle: the model refers to functions of the training script
CV_RESULTS_FILE = "cv_results.csv"
CANDIDATES_FILE = "top_candidates.csv"
#: metric functions of ``sklearn.metrics`` that return one number (suffix rule, plus these)
METRIC_SUFFIXES = ("_score", "_error", "_loss", "_deviance")
METRIC_EXTRA = ("matthews_corrcoef",)
_SKIP_MODULE_PARTS = (".tests", "._mocking", "._testing", ".externals")
#: fitted alone, these are not versions unless ``log_preprocessing=True`` (MLflow's exclusions)
_PRE = ("preprocessing", "impute", "feature_extraction", "feature_selection")
PREPROCESSING = (*(f"sklearn.{m}." for m in _PRE), "sklearn.compose.ColumnTransformer")
CV_FUNCTIONS = ("cross_validate", "cross_val_score")
_MAX_PREDICTIONS = 256


# ---------------------------------------------------------------------- configuration
@dataclasses.dataclass
class _Config:
    """Options of one ``autolog`` call."""

    model: str | None
    store: Any
    log_models: bool
    log_datasets: bool
    training_metrics: bool
    post_training_metrics: bool
    log_preprocessing: bool
    max_candidates: int
    estimators: tuple[type, ...]

    def __post_init__(self) -> None:
        if self.model is not None and not isinstance(self.model, str):
            raise ModelTrackError(f"autolog(model=...) takes a model name (str), got {self.model!r}")
        if not isinstance(self.max_candidates, int) or self.max_candidates < 0:
            raise ModelTrackError(f"autolog(max_candidates=...) must be an int >= 0, got {self.max_candidates!r}")
        for cls in self.estimators:
            if not isinstance(cls, type):
                raise ModelTrackError(f"autolog(estimators=...) takes classes, got {cls!r}; pass type(obj)")


class _Scope:
    """Where fits are recorded: the global switch, or one call of a decorated function."""

    def __init__(self, cfg: _Config, *, is_global: bool) -> None:
        self.cfg = cfg
        self.is_global = is_global
        self.sessions: list[_Session] = []


#: what a prediction is credited to: the open session or the ended version of its model, the
#: dataset's name, and a weak reference to X (to fingerprint it for an evaluation)
_Hit = tuple["_Session | Version", str, "Callable[[], Any] | None"]


def _stale(hit: _Hit) -> bool:
    return isinstance(hit[0], _Session) and hit[0].closed


_lock = threading.RLock()
_by_estimator: patching.IdentityMap[_Session] = patching.IdentityMap(strong=True)  # open for post-training metrics
_ended: patching.IdentityMap[Version] = patching.IdentityMap(max_size=1024)  # estimator → its finished version
#: a tracked model's predictions → their _Hit; lists and scalars are not kept
_predictions: patching.IdentityMap[_Hit] = patching.IdentityMap(max_size=_MAX_PREDICTIONS, stale=_stale)
_fit = patching.Outermost()  # held by the outermost tracked fit of the process
_evaluating = patching.ThreadDepth()  # inside score/predict/a metric of a tracked model
_deferred: list[types.ModuleType] = []  # imported by the background worker: patched by the user's thread


# ---------------------------------------------------------------------- patching
def _install(patcher: Patcher) -> None:
    _classes.start(patcher)
    when_imported(["sklearn."], KEY, _patch_module, prefix=True, now=False)
    for name, module in list(sys.modules.items()):
        if name.startswith("sklearn.") and module is not None:
            _patch_module(module)


def _ensure_installed(scope: _Scope) -> None:
    with _lock:
        if not enabled(KEY):
            _patch(KEY, _install)
        for cls in scope.cfg.estimators:
            _classes.patch_class(cls, force=True)


def _uninstall() -> None:
    if enabled(KEY):
        cancel_import_hook(KEY)
        _unpatch(KEY)
        _classes.stop()


def _is_estimator_class(cls: type) -> bool:
    return issubclass(cls, BaseEstimator) or cls.__name__.endswith("Mixin")


def _patch_module(module: types.ModuleType) -> None:
    """Patch the public estimator classes defined in ``module`` (and, for
    ``sklearn.metrics``, its metric functions)."""
    name = module.__name__
    if background.on_worker():  # the user's thread may hold _lock while it waits for this work
        _deferred.append(module)
        return
    with _lock:
        while _deferred:
            _patch_module(_deferred.pop())
        if not _classes.active:
            return
        if name == "sklearn.metrics":
            _patch_metrics(module)
        if name == "sklearn.model_selection":
            for fname in CV_FUNCTIONS:
                _classes.patch_function(module, fname, _cv_around)
        skip = any(part in name for part in _SKIP_MODULE_PARTS)
        _classes.patch_module(module, (lambda cls: False) if skip else _is_estimator_class)


def _patch_metrics(module: types.ModuleType) -> None:
    for fname in getattr(module, "__all__", ()):
        fn = getattr(module, fname, None)
        if not isinstance(fn, types.FunctionType) and not (callable(fn) and hasattr(fn, "__wrapped__")):
            continue
        if isinstance(fn, type) or not (fname.endswith(METRIC_SUFFIXES) or fname in METRIC_EXTRA):
            continue
        _classes.patch_function(module, fname, _metric_around)


def _wrap_inherited(cls: type, name: str, owner: type) -> bool:
    """A ``fit`` inherited from a private base is the class's own in all but name."""
    return name in ("fit", "partial_fit") and owner.__name__.startswith("_")


# ---------------------------------------------------------------------- the hot path
_SKLEARN_DIR = os.path.dirname(sklearn.__file__) + os.sep


def _called_by_sklearn() -> bool:
    """Whether sklearn itself called this fit (a metric's ``LabelEncoder``, the folds of
    ``cross_val_score``): only fits called by user code are versions."""
    return patching.caller_file(3).startswith(_SKLEARN_DIR)  # 1 _fit_around, 2 the patch wrapper, 3 its caller


def _fit_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    scope = _scopes.active()
    if scope is None or _fit.busy or _evaluating.active or (scope.is_global and patching.in_worker_process()):
        return original(est, *args, **kwargs)
    if _called_by_sklearn() or not _fit.claim():
        return original(est, *args, **kwargs)
    try:
        method = getattr(original, "__name__", "fit")
        if not scope.cfg.log_preprocessing and _public_name(type(est)).startswith(PREPROCESSING):
            return original(est, *args, **kwargs)  # a lone scaler/imputer/selector is no model
        session = _by_estimator.get(est) if method == "partial_fit" else None
        if session is None or session.method != "partial_fit":
            if scope.is_global:
                safe_call("finishing the previous sklearn version", _finish_scope_sessions, scope)
            session = safe_call("starting an sklearn version", _Session.begin, scope, est, method, args, kwargs)
        try:
            result = original(est, *args, **kwargs)
        except BaseException as exc:
            if session is not None:
                session.failed(exc)
            raise
        if session is not None:
            session.after_fit(est, args, kwargs)
        return result
    finally:
        _fit.release()


def _evaluated(est: Any) -> _Session | Version | None:
    """What a prediction or score of ``est`` is credited to: its open session, else its
    ended version (None outside tracked evaluation)."""
    if _evaluating.active or _fit.busy or not (_by_estimator or _ended):
        return None
    return _by_estimator.get(est) or _ended.get(est)


def _weak(X: Any) -> Callable[[], Any] | None:
    try:
        return weakref.ref(X)
    except TypeError:
        return None


def _predict_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    target = _evaluated(est)
    if target is None:
        return original(est, *args, **kwargs)
    with _evaluating:
        result = original(est, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")
    safe_call("remembering a prediction", _predictions.put, result, (target, _dataset_name(X), _weak(X)))
    return result


def _score_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    target = _evaluated(est)
    if target is None:
        return original(est, *args, **kwargs)
    with _evaluating:
        value = original(est, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")
    source = f"sklearn {type(est).__name__}.score"
    safe_call("logging a score", _post, target, _dataset_name(X), "score", value, source, X)
    return value


def _metric_around(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if not _predictions or _evaluating.active or _fit.busy:
        return original(*args, **kwargs)
    hit = _predictions.first(itertools.chain(args, kwargs.values()))
    if hit is None:
        return original(*args, **kwargs)
    with _evaluating:
        value = original(*args, **kwargs)
    fn = getattr(original, "__name__", "metric")
    X = hit[2]() if hit[2] is not None else None
    safe_call("logging a metric", _post, hit[0], hit[1], fn, value, f"sklearn.metrics.{fn}", X)
    return value


def _post(target: _Session | Version, dataset: str, what: str, value: Any, source: str, X: Any) -> None:
    """A number computed after ``fit``: ``DATASET_WHAT`` on the open version, else an
    evaluation named ``what`` of the ended one."""
    if value is None or isinstance(value, (str, bytes, dict, list, tuple)):
        return
    try:
        number = float(value)
    except (TypeError, ValueError):
        return  # an array (average=None, multioutput='raw_values'): not one number
    if isinstance(target, _Session):
        target.log_post(f"{dataset}_{what}", number)
    else:
        _evaluate(target, {f"{dataset}_{what}": number}, what, source, dataset, X)


def _evaluate(version: Version, metrics: dict[str, float], name: str, source: str, dataset: str, X: Any) -> None:
    data = {"X" if dataset == "eval" else f"X_{dataset}": X} if X is not None and can_fingerprint(X) else None
    version.evaluate(metrics, name=name, data=data, source=source)


def _cv_around(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    scope = _scopes.active()
    if scope is None or _fit.busy or _evaluating.active or (scope.is_global and patching.in_worker_process()):
        return original(*args, **kwargs)
    if not _fit.claim():  # another thread's fit holds it
        return original(*args, **kwargs)
    try:  # the folds' fits are sklearn's: none is a version
        result = original(*args, **kwargs)
    finally:
        _fit.release()
    safe_call("recording cross-validation scores", _log_cv, scope, original.__name__, result, args, kwargs)
    return result


def _log_cv(scope: _Scope, fn: str, result: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Fold scores: an evaluation of the version of an estimator fitted in the run (when that
    version ends), else a version of their own (one point per fold, and the mean and std)."""
    est = args[0] if args else kwargs.get("estimator")
    X, y = _xy(args[1:], {k: v for k, v in kwargs.items() if k != "estimator"})
    scoring = kwargs.get("scoring")
    single = scoring if isinstance(scoring, str) else "score"
    folds: dict[str, list[float]] = {}
    for key, values in (result if isinstance(result, Mapping) else {"test_score": result}).items():
        part, _, scorer = key.partition("_")
        if part in ("test", "train") and scorer:
            scorer = single if scorer == "score" else scorer
            folds[f"cv_{scorer}" if part == "test" else f"cv_train_{scorer}"] = [float(v) for v in values]
    summary = {}
    for name, values in folds.items():
        summary.update({f"{name}_mean": statistics.fmean(values), f"{name}_std": statistics.pstdev(values)})
        summary.update({f"{name}_fold{i}": value for i, value in enumerate(values)})
    if not summary:
        return
    dataset, source = _dataset_name(X), f"sklearn {fn}"
    session, ended = _by_estimator.get(est), _ended.get(est)
    if session is not None:
        session.pending.append((summary, fn, source, dataset, X))
    elif ended is not None:
        _evaluate(ended, summary, fn, source, dataset, X)
    else:
        session = _Session.begin(scope, est, fn, (X, y), {})
        session.est = None  # not fitted: nothing to evaluate later
        session.version.log_metrics({k: v for k, v in summary.items() if "_fold" not in k}, step=0)
        for i in range(max(len(v) for v in folds.values())):
            session.version.log_metrics({k: v[i] for k, v in folds.items() if i < len(v)}, step=i)
        session.finish()


def _not_user_code(filename: str) -> bool:
    return filename == __file__ or filename.endswith(("patching.py", "functools.py")) or "/sklearn/" in filename


def _dataset_name(X: Any) -> str:
    """The name of the caller's variable holding ``X`` (``X_test`` → ``test``), else ``eval``."""
    name = re.sub(r"^[Xx]_|_[Xx]$", "", (patching.caller_variable(X, _not_user_code) if X is not None else None) or "")
    return name if name and name not in ("X", "x") else "eval"


# ---------------------------------------------------------------------- one version
def _public_name(cls: type) -> str:
    parts = [p for p in cls.__module__.split(".") if not p.startswith("_")]
    return ".".join([*parts, cls.__qualname__])


def _is_estimator(value: Any) -> bool:
    return not isinstance(value, type) and hasattr(value, "fit") and hasattr(value, "get_params")


def _structure(est: Any, path: str = "", depth: int = 0) -> list[str]:
    """One line per estimator inside ``est`` (its parameter path and class, no
    hyperparameters): ``["Pipeline", "steps.scale StandardScaler", "steps.clf LogisticRegression"]``."""
    lines = [f"{path} {type(est).__name__}".strip()]
    try:
        params = est.get_params(deep=False) if depth <= 10 else {}
    except Exception:  # noqa: BLE001 - structure is best effort
        params = {}
    for key, value in params.items():
        where = f"{path}.{key}" if path else key
        if _is_estimator(value):
            lines += _structure(value, where, depth + 1)
        elif isinstance(value, (list, tuple)) and all(isinstance(i, tuple) and len(i) >= 2 for i in value):
            for item in value:
                if isinstance(item[0], str) and _is_estimator(item[1]):
                    lines += _structure(item[1], f"{where}.{item[0]}", depth + 1)
    return lines


def _xy(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
    return X, y


def _tmp_file(version: Version, name: str) -> Path:
    """A fresh file in the version's scratch directory (removed when the version ends)."""
    fd, path = tempfile.mkstemp(prefix="", suffix="-" + name, dir=version.scratch_dir())
    os.close(fd)
    return Path(path)


class _Session:
    """The version being recorded for one outermost fit."""

    def __init__(self, scope: _Scope, version: Version, est: Any, method: str) -> None:
        self.scope = scope
        self.version = version
        self.est = est
        self.method = method
        self.calls = 0  # partial_fit calls
        self.closed = False
        #: evaluations to record once the version ended: (metrics, name, source, dataset, X)
        self.pending: list[tuple[dict[str, float], str, str, str, Any]] = []
        self.work = background.Work(version)  # the after-fit work, off the user's thread

    @classmethod
    def begin(cls, scope: _Scope, est: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Session:
        cfg = scope.cfg
        previous = _by_estimator.get(est)
        if previous is not None:  # a refit: the old model is gone, its version is complete
            previous.finish()
        stale = _ended.get(est)
        if stale is not None:  # nor is a finished version's
            _ended.discard(lambda v: v is stale)
        model = cfg.model or default_model_name(None, python_scripts=True) or type(est).__name__
        version = start(model, store=cfg.store)
        session = cls(scope, version, est, method)
        with _lock:
            scope.sessions.append(session)
        atexit.unregister(_finish_all)
        atexit.register(_finish_all)  # after the core's exit hook is registered, so it runs first
        try:
            info = {"estimator": _public_name(type(est)), "method": method, "sklearn_version": sklearn.__version__}
            version.set_framework("sklearn", **info, **architecture(_structure(est)))
            params = est.get_params(deep=True) if hasattr(est, "get_params") else {}
            if params:
                version.log_params(flatten({str(k): v for k, v in params.items()}))
            if cfg.log_datasets and method != "partial_fit":  # one batch is not the training data
                X, y = _xy(args, kwargs)
                for name, data in (("X_train", X), ("y_train", y)):
                    if data is not None:
                        _log_data(version, name, data)
        except Exception as exc:  # noqa: BLE001 - the version exists: keep it, report the gap
            report(exc, f"recording the inputs of {version.ref}")
        return session

    # -------------------------------------------------------------- after fit
    def after_fit(self, est: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
        cfg = self.scope.cfg
        v = self.version
        X, y = _xy(args, kwargs)
        if self.method == "partial_fit":  # a point per call; the model is stored when the version ends
            self.calls += 1
            if cfg.training_metrics and X is not None and y is not None:
                metrics = safe_call(
                    f"computing metrics of {v.ref}", _training_metrics, est, X, y, kwargs.get("sample_weight")
                )
                if metrics:
                    safe_call(f"logging metrics of {v.ref}", v.log_metrics, metrics, step=self.calls - 1)
            self._register(est)
            return
        if hasattr(est, "cv_results_"):
            safe_call(f"recording the search results of {v.ref}", _log_search, v, est, cfg.max_candidates)
        metrics = cfg.training_metrics and X is not None and y is not None
        if metrics or cfg.log_models:
            work = (est, X, y, kwargs.get("sample_weight")) if metrics else (est,)
            self.work.start(f"recording {v.ref}", self._record_fitted, metrics, *work)  # on private copies
        if cfg.post_training_metrics:
            self._register(est)
        else:
            safe_call(f"finishing {v.ref}", self.finish)

    def _register(self, est: Any) -> None:
        with _lock:
            if not self.closed:
                _by_estimator.put(est, self)

    def failed(self, exc: BaseException) -> None:
        """Mark the version failed; never replaces the user's exception."""
        try:
            self._close()
            self.version.end(exc)
        except Exception as err:  # noqa: BLE001 - the user's exception matters more
            warnings.warn(
                f"modeltrack: marking {self.version.ref} failed did not work: {err}", ModelTrackWarning, stacklevel=3
            )

    def _record_fitted(self, metrics: bool, est: Any, X: Any = None, y: Any = None, sw: Any = None) -> None:
        """The training metrics and the model file of the fitted ``est`` (a private copy on
        the background worker); what fails is recorded under ``info.not_recorded``."""
        w = self.work
        if metrics:
            w.release(w.attempt("training metrics", "train_*", "metrics", _training_metrics, est, X, y, sw), 0)
        if self.scope.cfg.log_models:
            w.attempt("storing the model", MODEL_FILE, "model", _log_model, self.version, est)

    def log_post(self, name: str, value: float) -> None:
        if not self.closed and self.scope.cfg.post_training_metrics:
            self.work.log_metrics({name: value})  # after the training metrics: steps stay in order

    def _close(self) -> None:
        with _lock:
            self.closed = True
            _by_estimator.discard(lambda session: session is self)
            _predictions.discard(lambda hit: hit[0] is self)
            if self in self.scope.sessions:
                self.scope.sessions.remove(self)

    def finish(self) -> None:
        if self.closed:
            return
        self.work.wait()  # the training metrics and the model are recorded before the version ends
        if _deferred:
            _patch_module(_deferred.pop())
        v = self.version
        if self.method == "partial_fit":
            v.log_info(partial_fit_calls=self.calls)
            if self.scope.cfg.log_models:
                safe_call(f"storing the model of {v.ref}", _log_model, v, self.est)
        self._close()
        v.finish()
        if self.est is not None and self.scope.cfg.post_training_metrics:
            _ended.put(self.est, v)  # its later scores and metrics become evaluations
        for metrics, name, source, dataset, X in self.pending:
            safe_call(f"recording the {name} evaluation of {v.ref}", _evaluate, v, metrics, name, source, dataset, X)
        self.pending.clear()
        self.work.surface()


def _log_data(version: Version, name: str, data: Any) -> None:
    try:
        version.log_data(name, data)
    except InvalidValueError as exc:
        shape = getattr(data, "shape", None)
        length = len(data) if hasattr(data, "__len__") else None
        version.log_data_info(
            name,
            pytype=f"{type(data).__module__}.{type(data).__qualname__}",
            shape=list(shape) if shape is not None else None,
            length=length,
            reason=f"not fingerprinted: {exc}",
        )


def _training_metrics(est: Any, X: Any, y: Any, sw: Any) -> dict[str, float]:
    """Metrics of the fitted ``est`` on its training data (classifier or regressor):
    :func:`modeltrack.metrics.classification_metrics` for 1-d targets, sklearn's functions
    otherwise (same definitions, ``zero_division=0``)."""
    from sklearn.base import is_classifier, is_regressor

    try:
        kind = "classifier" if is_classifier(est) else "regressor" if is_regressor(est) else None
    except Exception:  # noqa: BLE001 - not a real sklearn estimator
        kind = getattr(est, "_estimator_type", None)
    if kind not in ("classifier", "regressor") or not hasattr(est, "predict"):
        return {}
    with sklearn.config_context(skip_parameter_validation=True):
        if kind == "regressor":
            return regression_metrics(y, est.predict(X), sample_weight=sw, prefix="train_")
        classes = getattr(est, "classes_", None)
        scores = _scores(getattr(est, "predict_proba", None), X)
        y_pred = _forest_predict(est, scores)
        y_pred = est.predict(X) if y_pred is None else y_pred
        proba = scores is not None
        if scores is None and classes is not None and len(classes) == 2:
            scores = _scores(getattr(est, "decision_function", None), X)
        fast = {"proba": scores} if proba else {"decision": scores}
        if classes is None:  # without classes_, sklearn decides what the labels are
            return _sklearn_classification_metrics(y, y_pred, scores, proba, classes, sw)
        out = classification_metrics(y, y_pred, classes=classes, sample_weight=sw, prefix="train_", **fast)
        return _sklearn_classification_metrics(y, y_pred, scores, proba, classes, sw) if out is None else out


def _scores(method: Callable[[Any], Any] | None, X: Any) -> Any:
    try:
        return None if method is None else method(X)
    except (ValueError, TypeError, AttributeError, NotImplementedError):
        return None


def _forest_predict(est: Any, proba: Any) -> Any:
    """A forest's ``predict(X)`` from its ``predict_proba(X)``, which is exactly what
    ``predict`` computes (one pass over the trees instead of two); None for other models."""
    from sklearn.ensemble._forest import ForestClassifier as F

    cls = type(est)
    if proba is None or not isinstance(est, F) or getattr(est, "n_outputs_", None) != 1:
        return None
    if _original(cls.predict) is not _original(F.predict) or _original(cls.predict_proba) is not _original(
        F.predict_proba
    ):
        return None  # a subclass's own predict
    import numpy as np

    return est.classes_.take(np.argmax(proba, axis=1), axis=0)


def _sklearn_classification_metrics(
    y: Any, y_pred: Any, scores: Any, proba: bool, classes: Any, sample_weight: Any
) -> dict[str, float]:
    from sklearn import metrics as skm

    skm_auc = _original(skm.roc_auc_score)
    out: dict[str, float] = {}
    sw = {"sample_weight": sample_weight} if sample_weight is not None else {}
    binary = classes is not None and len(classes) == 2

    def put(name: str, fn: Callable[[], Any]) -> None:
        try:
            out[name] = float(fn())
        except (ValueError, TypeError, AttributeError, IndexError):
            pass  # not applicable to this target (e.g. multilabel, one class present)

    put("train_accuracy", lambda: _original(skm.accuracy_score)(y, y_pred, **sw))
    try:
        avg: dict[str, Any] = {"average": "binary", "pos_label": classes[1]} if binary else {"average": "weighted"}
        p, r, f, _ = _original(skm.precision_recall_fscore_support)(y, y_pred, zero_division=0, **avg, **sw)
        out.update(train_precision=float(p), train_recall=float(r), train_f1=float(f))
    except (ValueError, TypeError):
        pass
    if scores is not None and proba:
        put("train_log_loss", lambda: _original(skm.log_loss)(y, scores, labels=classes, **sw))
    ovr = {"multi_class": "ovr", "average": "weighted", "labels": classes} if proba else {}
    if scores is not None:
        put("train_roc_auc", lambda: skm_auc(y, scores[:, 1] if proba and binary else scores, **ovr, **sw))
    return out


def _log_model(version: Version, est: Any) -> None:
    """``model.joblib``; ``model.pkl`` (cloudpickle) when the model refers to functions or
    classes of the training script, which joblib would store by a name no other process has."""
    import joblib

    by_value = pickling.by_value_reference(est)
    path = _tmp_file(version, MODEL_FILE_BY_VALUE if by_value else MODEL_FILE)
    try:
        if by_value:
            fmt = pickling.dump_by_value(est, path, reference=by_value)
        else:
            fmt = "joblib"
            joblib.dump(est, path)
        meta = {"format": fmt, "estimator": _public_name(type(est)), "sklearn_version": sklearn.__version__}
        meta = {**meta, "by_value": by_value} if by_value else meta
        version.log_artifact(path, kind="model", name=MODEL_FILE_BY_VALUE if by_value else MODEL_FILE, metadata=meta)
    finally:
        path.unlink(missing_ok=True)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _log_search(version: Version, est: Any, max_candidates: int) -> None:
    """Best params, each scorer's CV score of the chosen candidate, ``cv_results.csv`` and
    the top candidates: the chosen one first (a callable ``refit`` picks it), then by the rank
    of the refit scorer (else the first); of a halving search, its last iteration's."""
    results = est.cv_results_
    best_params = getattr(est, "best_params_", None)
    if best_params is not None:
        version.log_params({"best_params": dict(best_params)})
    columns = list(results)
    n = len(results["params"])
    version.log_table(CV_RESULTS_FILE, columns, ([results[c][i] for c in columns] for i in range(n)), kind="cv_results")
    refit, scoring = getattr(est, "refit", True), getattr(est, "scoring", None)
    names = [k[len("mean_test_") :] for k in columns if k.startswith("mean_test_")] or ["score"]
    multi = names != ["score"]
    best = getattr(est, "best_index_", None)
    best = None if best is None else int(best)
    if not multi and getattr(est, "best_score_", None) is not None:
        version.log_metrics({"best_cv_score": est.best_score_}, step=0)
    elif multi and best is not None:
        version.log_metrics({f"best_cv_{s}": results[f"mean_test_{s}"][best] for s in names}, step=0)
    ranked = refit if isinstance(refit, str) and refit in names else names[0]
    ranks = results.get(f"rank_test_{ranked}")
    iters = results.get("iter")  # halving searches: candidates of the last iteration only
    pool = [i for i in range(n) if iters is None or iters[i] == max(iters)]
    order = sorted(pool, key=lambda i: (i != best, int(ranks[i]) if ranks is not None else 0))
    top = []
    for i in order[:max_candidates]:
        row: dict[str, Any] = {"rank": int(ranks[i]) if ranks is not None else None, "chosen": i == best}
        for s in names:
            for stat in ("mean", "std"):
                row[f"{stat}_test_{s}"] = _number(results.get(f"{stat}_test_{s}", [None] * n)[i])
        row.update(mean_fit_time=_number(results.get("mean_fit_time", [None] * n)[i]))
        top.append({**row, "params": to_json_value(results["params"][i])})
    scorers = names if multi else [scoring if isinstance(scoring, str) else "score"]
    search = {"candidates": n, "best_index": best, "refit": to_json_value(refit), "scoring": to_json_value(scoring)}
    if iters is not None:
        search.update(iterations=int(max(iters)) + 1, last_iteration_candidates=len(pool))
    version.log_info(
        search={**search, "scorers": scorers, "scorer": ranked if multi else scorers[0]}, top_candidates=top
    )
    if top:
        cols = list(top[0])
        version.log_table(CANDIDATES_FILE, cols, ([row[c] for c in cols] for row in top))


def _finish_scope_sessions(scope: _Scope) -> None:
    for session in list(scope.sessions):
        session.finish()


def _all_sessions() -> list[_Session]:
    return [s for scope in _scopes.all() for s in scope.sessions]


def _finish_all() -> None:
    for session in _all_sessions():
        try:
            session.finish()
        except Exception as exc:  # noqa: BLE001 - never fail interpreter exit
            sys.stderr.write(f"modeltrack: could not finish {session.version.ref} at exit: {exc}\n")


def finish_pending() -> list[str]:
    """Finish the versions still open for post-training metrics (global mode).

    Returns:
        their references (``MODEL@vN``).
    """
    with _lock:
        sessions = _all_sessions()
    for s in sessions:
        safe_call(f"finishing {s.version.ref}", s.finish)
    return [s.version.ref for s in sessions]


def tracked_versions() -> list[Version]:
    """Versions recorded by sklearn autologging that are still open for post-training metrics."""
    with _lock:
        return [s.version for s in _all_sessions()]


_classes = patching.ClassPatcher(
    {
        **dict.fromkeys(FIT_METHODS, _fit_around),
        **dict.fromkeys(PREDICT_METHODS, _predict_around),
        **dict.fromkeys(SCORE_METHODS, _score_around),
    },
    inherited=_wrap_inherited,
    lock=_lock,
)
_scopes: patching.Scopes[_Scope] = patching.Scopes(
    install=_ensure_installed, finish=_finish_scope_sessions, idle=_uninstall, what="the sklearn versions", lock=_lock
)


# ---------------------------------------------------------------------- public switch
class AutologHandle(patching.ScopeHandle[_Scope]):
    """What ``autolog(...)`` returns: autologging is on globally until :meth:`undo`.

    Used as a decorator (``@autolog(model="x")``) or a ``with`` block, it gives the global
    switch back at once and records the fits of each call (or of the block) instead.
    """


def _block_scope(cfg: _Config) -> Callable[[], _Scope]:
    return lambda: _Scope(cfg, is_global=False)


def autolog(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    disable: bool = False,
    model: str | None = None,
    store: Any = None,
    log_models: bool = True,
    log_datasets: bool = True,
    training_metrics: bool = True,
    post_training_metrics: bool = True,
    max_candidates: int = 5,
    estimators: Iterable[type] = (),
    log_preprocessing: bool = False,
    **kwargs: Any,
) -> Any:
    """Record every outermost scikit-learn ``fit`` as a version.

    Args:
        fn: used as ``@autolog`` (without parentheses): the function whose fits are recorded.
        disable: switch global autologging off (finishing its open versions).
        model: model name (default ``MODELTRACK_MODEL``, else the script's name, else the
            estimator's class name).
        store: store URI or object (default ``MODELTRACK_STORE``).
        log_models: store the fitted estimator as ``model.joblib``.
        log_datasets: fingerprint ``X`` and ``y``.
        training_metrics: compute metrics on the training data after ``fit``.
        post_training_metrics: log ``score()`` and ``sklearn.metrics`` results on the fitted
            model's predictions.
        max_candidates: how many search candidates the ``top_candidates`` table keeps.
        estimators: extra estimator classes to patch (your own ``BaseEstimator`` subclasses).
        log_preprocessing: also record a preprocessing estimator fitted alone (a
            ``StandardScaler``, an imputer, a feature selector or extractor, a
            ``ColumnTransformer``); inside a Pipeline or a search they are always recorded.
        **kwargs: refused (``InvalidOptionError``): every option is named above.

    Returns:
        with ``fn``, the decorated function; with ``disable=True``, ``None``; otherwise an
        :class:`AutologHandle` (autologging is then on globally, unless the handle is used as
        a decorator or a ``with`` block, which scope it instead).

    Raises:
        ModelTrackError: an option has a wrong type.

    Example:
        >>> @autolog(model="iris")
        ... def train(X, y):
        ...     return LogisticRegression().fit(X, y)
    """
    patching.refuse_unknown_options("sklearn", kwargs, ())
    flags = (log_models, log_datasets, training_metrics, post_training_metrics, log_preprocessing)
    cfg = _Config(model, store, *flags, max_candidates, tuple(estimators))
    if fn is not None:
        if not callable(fn):
            raise ModelTrackError(f"autolog(fn) takes a function to decorate, got {fn!r}; pass options by keyword")
        return _scopes.decorate(fn, _block_scope(cfg))
    if disable:
        _scopes.clear_global()
        return None
    mine = _Scope(cfg, is_global=True)
    previous = _scopes.set_global(mine)
    return AutologHandle(_scopes, previous, mine, _block_scope(cfg))


# ---------------------------------------------------------------------- loading
def artifact_needs_trust(sniffed: Any, **kwargs: Any) -> bool:
    """``joblib.load`` unpickles whatever it reads: it always needs trust."""
    return True


def load_artifact(
    file: str | os.PathLike[str],
    *,
    record: Mapping[str, Any] | None = None,
    artifact: Mapping[str, Any] | None = None,
    sniffed: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load a stored estimator (called by :func:`modeltrack.load` after the trust check).

    Args:
        file: the ``.joblib`` file, or the ``.pkl`` written with cloudpickle (as its metadata says).
        sniffed: the content's format (unused: joblib reads pickles, plain or compressed).
        **kwargs: passed to :func:`joblib.load` (e.g. ``mmap_mode="r"``).
    """
    import joblib

    if ((artifact or {}).get("metadata") or {}).get("format") == pickling.FORMAT:
        return pickling.load_by_value(file)
    return joblib.load(file, **kwargs)
