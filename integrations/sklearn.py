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
``model.joblib`` (kind ``model``, loadable with ``modeltrack.load(REF, trust=True)``), and
for ``GridSearchCV``/``RandomizedSearchCV`` the best params (``best_params.*``), the best
score (``best_cv_score``), ``cv_results.csv`` and the top candidates (``top_candidates.csv``
and the ``top_candidates`` info).

Post-training metrics: after ``fit``, ``est.score(X_test, y_test)`` is logged as
``test_score``, and ``sklearn.metrics.<fn>(y_test, est.predict(X_test))`` as
``test_<fn>`` (the prefix is the name of the variable passed to ``predict``/``score``,
without ``X_``: ``X_val`` gives ``val_``; ``eval_`` when it has no name). The version stays
open for them until the decorated function (or ``with`` block) ends; in global mode until
the next tracked ``fit``, ``autolog(disable=True)``, :func:`finish_pending` or the end of
the process. Metric functions are caught when called through the ``sklearn.metrics``
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
import itertools
import os
import sys
import tempfile
import threading
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sklearn
from sklearn.base import BaseEstimator

from modeltrack import patching
from modeltrack.autologging import cancel_import_hook, when_imported
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
FIT_METHODS = ("fit", "fit_transform", "fit_predict")
PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")
SCORE_METHODS = ("score",)
MODEL_FILE = "model.joblib"
CV_RESULTS_FILE = "cv_results.csv"
CANDIDATES_FILE = "top_candidates.csv"
#: metric functions of ``sklearn.metrics`` that return one number (suffix rule, plus these)
METRIC_SUFFIXES = ("_score", "_error", "_loss", "_deviance")
METRIC_EXTRA = ("matthews_corrcoef",)
_SKIP_MODULE_PARTS = (".tests", "._mocking", "._testing", ".externals")
_MAX_PREDICTIONS = 256


# ---------------------------------------------------------------------- configuration
class _Config:
    """Options of one ``autolog`` call."""

    __slots__ = (
        "estimators",
        "log_datasets",
        "log_models",
        "max_candidates",
        "model",
        "post_training_metrics",
        "store",
        "training_metrics",
    )

    def __init__(
        self,
        model: str | None,
        store: Any,
        log_models: bool,
        log_datasets: bool,
        training_metrics: bool,
        post_training_metrics: bool,
        max_candidates: int,
        estimators: Iterable[type],
    ) -> None:
        if model is not None and not isinstance(model, str):
            raise ModelTrackError(f"autolog(model=...) takes a model name (str), got {model!r}")
        if not isinstance(max_candidates, int) or max_candidates < 0:
            raise ModelTrackError(f"autolog(max_candidates=...) must be an int >= 0, got {max_candidates!r}")
        extra = tuple(estimators)
        for cls in extra:
            if not isinstance(cls, type):
                raise ModelTrackError(f"autolog(estimators=...) takes classes, got {cls!r}; pass type(obj)")
        self.model = model
        self.store = store
        self.log_models = log_models
        self.log_datasets = log_datasets
        self.training_metrics = training_metrics
        self.post_training_metrics = post_training_metrics
        self.max_candidates = max_candidates
        self.estimators = extra


class _Scope:
    """Where fits are recorded: the global switch, or one call of a decorated function."""

    def __init__(self, cfg: _Config, *, is_global: bool) -> None:
        self.cfg = cfg
        self.is_global = is_global
        self.sessions: list[_Session] = []


def _stale(hit: tuple[_Session, str]) -> bool:
    return hit[0].closed


_lock = threading.RLock()
_by_estimator: patching.IdentityMap[_Session] = patching.IdentityMap(strong=True)  # open for post-training metrics
#: a tracked model's predictions → (its session, the dataset's name); lists and scalars are not kept
_predictions: patching.IdentityMap[tuple[_Session, str]] = patching.IdentityMap(max_size=_MAX_PREDICTIONS, stale=_stale)
_fit = patching.Outermost()  # held by the outermost tracked fit of the process
_evaluating = patching.ThreadDepth()  # inside score/predict/a metric of a tracked model


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
    with _lock:
        if not _classes.active:
            return
        if name == "sklearn.metrics":
            _patch_metrics(module)
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
    return name == "fit" and owner.__name__.startswith("_")


# ---------------------------------------------------------------------- the hot path
_SKLEARN_DIR = os.path.dirname(sklearn.__file__) + os.sep


def _called_by_sklearn() -> bool:
    """Whether sklearn itself called this fit (a metric's ``LabelEncoder``, the folds of
    ``cross_val_score``): only fits called by user code are versions."""
    return patching.caller_file(3).startswith(_SKLEARN_DIR)  # 1 _fit_around, 2 the patch wrapper, 3 its caller


def _fit_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    scope = _scopes.active()
    if scope is None or _fit.busy or _evaluating.active:
        return original(est, *args, **kwargs)
    if scope.is_global and patching.in_worker_process():
        return original(est, *args, **kwargs)
    if _called_by_sklearn() or not _fit.claim():
        return original(est, *args, **kwargs)
    try:
        if scope.is_global:
            safe_call("finishing the previous sklearn version", _finish_scope_sessions, scope)
        method = getattr(original, "__name__", "fit")
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


def _evaluated_session(est: Any) -> _Session | None:
    """The session to credit a prediction or score to (None outside tracked evaluation)."""
    if not _by_estimator or _evaluating.active or _fit.busy:
        return None
    return _by_estimator.get(est)


def _predict_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    session = _evaluated_session(est)
    if session is None:
        return original(est, *args, **kwargs)
    with _evaluating:
        result = original(est, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")
    safe_call("remembering a prediction", _predictions.put, result, (session, _dataset_name(X)))
    return result


def _score_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    session = _evaluated_session(est)
    if session is None:
        return original(est, *args, **kwargs)
    with _evaluating:
        value = original(est, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")
    safe_call("logging a score", session.log_post, f"{_dataset_name(X)}_score", value)
    return value


def _metric_around(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if not _predictions or _evaluating.active or _fit.busy:
        return original(*args, **kwargs)
    hit = _predictions.first(itertools.chain(args, kwargs.values()))
    if hit is None:
        return original(*args, **kwargs)
    with _evaluating:
        value = original(*args, **kwargs)
    safe_call("logging a metric", hit[0].log_post, f"{hit[1]}_{getattr(original, '__name__', 'metric')}", value)
    return value


def _not_user_code(filename: str) -> bool:
    return filename == __file__ or filename.endswith(("patching.py", "functools.py")) or "/sklearn/" in filename


def _dataset_name(X: Any) -> str:
    """The name of the caller's variable holding ``X`` (``X_test`` → ``test``), else ``eval``."""
    if X is None:
        return "eval"
    name = patching.caller_variable(X, _not_user_code)
    if name is None:
        return "eval"
    for pre in ("X_", "x_"):
        if name.startswith(pre):
            name = name[len(pre) :]
    for suf in ("_X", "_x"):
        if name.endswith(suf):
            name = name[: -len(suf)]
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

    def __init__(self, scope: _Scope, version: Version) -> None:
        self.scope = scope
        self.version = version
        self.closed = False

    @classmethod
    def begin(cls, scope: _Scope, est: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Session:
        cfg = scope.cfg
        previous = _by_estimator.get(est)
        if previous is not None:  # a refit: the old model is gone, its version is complete
            previous.finish()
        model = cfg.model or default_model_name(None, python_scripts=True) or type(est).__name__
        version = start(model, store=cfg.store)
        session = cls(scope, version)
        with _lock:
            scope.sessions.append(session)
        atexit.unregister(_finish_all)
        atexit.register(_finish_all)  # after the core's exit hook is registered, so it runs first
        try:
            version.set_framework(
                "sklearn",
                estimator=_public_name(type(est)),
                **architecture(_structure(est)),
                method=method,
                sklearn_version=sklearn.__version__,
            )
            params = est.get_params(deep=True) if hasattr(est, "get_params") else {}
            if params:
                version.log_params(flatten({str(k): v for k, v in params.items()}))
            if cfg.log_datasets:
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
        if hasattr(est, "cv_results_"):
            safe_call(f"recording the search results of {v.ref}", _log_search, v, est, cfg.max_candidates)
        if cfg.training_metrics and X is not None and y is not None:
            metrics = safe_call(
                f"computing training metrics of {v.ref}", _training_metrics, est, X, y, kwargs.get("sample_weight")
            )
            if metrics:
                safe_call(f"logging training metrics of {v.ref}", v.log_metrics, metrics, step=0)
        if cfg.log_models:
            safe_call(f"storing the model of {v.ref}", _log_model, v, est)
        if cfg.post_training_metrics:
            with _lock:
                if not self.closed:
                    _by_estimator.put(est, self)
        else:
            safe_call(f"finishing {v.ref}", self.finish)

    def failed(self, exc: BaseException) -> None:
        """Mark the version failed; never replaces the user's exception."""
        try:
            self._close()
            self.version.end(exc)
        except Exception as err:  # noqa: BLE001 - the user's exception matters more
            warnings.warn(
                f"modeltrack: marking {self.version.ref} failed did not work: {err}", ModelTrackWarning, stacklevel=3
            )

    def log_post(self, name: str, value: Any) -> None:
        if self.closed or value is None or isinstance(value, (str, bytes, dict, list, tuple)):
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            return  # an array (average=None, multioutput='raw_values'): not one number
        self.version.log_metrics({name: number})

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
        self._close()
        self.version.finish()


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


def _training_metrics(est: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    """Metrics of the fitted ``est`` on its training data (classifier or regressor)."""
    from sklearn.base import is_classifier, is_regressor

    try:
        kind = "classifier" if is_classifier(est) else "regressor" if is_regressor(est) else None
    except Exception:  # noqa: BLE001 - not a real sklearn estimator
        kind = getattr(est, "_estimator_type", None)
    if kind not in ("classifier", "regressor") or not hasattr(est, "predict"):
        return {}
    with sklearn.config_context(skip_parameter_validation=True):
        y_pred = est.predict(X)
        if kind == "regressor":
            return regression_metrics(y, y_pred, sample_weight=sample_weight, prefix="train_")
        classes = getattr(est, "classes_", None)
        scores = None
        if hasattr(est, "predict_proba"):
            try:
                scores = est.predict_proba(X)
            except (ValueError, TypeError, AttributeError, NotImplementedError):
                scores = None
        proba = scores is not None
        if scores is None and hasattr(est, "decision_function") and classes is not None and len(classes) == 2:
            try:
                scores = est.decision_function(X)
            except (ValueError, TypeError, AttributeError, NotImplementedError):
                scores = None
        return _classification_metrics(y, y_pred, scores, proba, classes, sample_weight)


def _classification_metrics(
    y: Any, y_pred: Any, scores: Any, proba: bool, classes: Any, sample_weight: Any
) -> dict[str, float]:
    """:func:`modeltrack.metrics.classification_metrics` for 1-d targets, sklearn's
    functions otherwise (same definitions, ``zero_division=0``)."""
    fast = {"proba": scores} if proba else {"decision": scores}
    # without classes_, sklearn decides what the labels are
    out = (
        None
        if classes is None
        else classification_metrics(y, y_pred, classes=classes, sample_weight=sample_weight, prefix="train_", **fast)
    )
    if out is None:
        return _sklearn_classification_metrics(y, y_pred, scores, proba, classes, sample_weight)
    return out


def _sklearn_classification_metrics(
    y: Any, y_pred: Any, scores: Any, proba: bool, classes: Any, sample_weight: Any
) -> dict[str, float]:
    from sklearn import metrics as skm

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
        put(
            "train_roc_auc",
            lambda: _original(skm.roc_auc_score)(
                y, scores[:, 1] if binary else scores, multi_class="ovr", average="weighted", labels=classes, **sw
            ),
        )
    elif scores is not None:
        put("train_roc_auc", lambda: _original(skm.roc_auc_score)(y, scores, **sw))
    return out


def _log_model(version: Version, est: Any) -> None:
    import joblib

    path = _tmp_file(version, MODEL_FILE)
    try:
        joblib.dump(est, path)
        version.log_artifact(
            path,
            kind="model",
            name=MODEL_FILE,
            metadata={"format": "joblib", "estimator": _public_name(type(est)), "sklearn_version": sklearn.__version__},
        )
    finally:
        path.unlink(missing_ok=True)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _log_search(version: Version, est: Any, max_candidates: int) -> None:
    results = est.cv_results_
    best_params = getattr(est, "best_params_", None)
    if best_params is not None:
        version.log_params({"best_params": dict(best_params)})
    best_score = getattr(est, "best_score_", None)
    if best_score is not None:
        version.log_metrics({"best_cv_score": best_score}, step=0)
    columns = list(results)
    n = len(results["params"])
    version.log_table(CV_RESULTS_FILE, columns, ([results[c][i] for c in columns] for i in range(n)), kind="cv_results")
    refit = getattr(est, "refit", True)
    suffix = refit if isinstance(refit, str) and f"rank_test_{refit}" in results else "score"
    ranks = results.get(f"rank_test_{suffix}")
    order = sorted(range(n), key=lambda i: int(ranks[i])) if ranks is not None else list(range(n))
    top = []
    for i in order[:max_candidates]:
        top.append(
            {
                "rank": int(ranks[i]) if ranks is not None else None,
                f"mean_test_{suffix}": _number(results.get(f"mean_test_{suffix}", [None] * n)[i]),
                f"std_test_{suffix}": _number(results.get(f"std_test_{suffix}", [None] * n)[i]),
                "mean_fit_time": _number(results.get("mean_fit_time", [None] * n)[i]),
                "params": to_json_value(results["params"][i]),
            }
        )
    version.log_info(
        search={
            "candidates": n,
            "best_index": to_json_value(getattr(est, "best_index_", None)),
            "refit": to_json_value(refit),
            "scorer": suffix,
        },
        top_candidates=top,
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
    cfg = _Config(
        model, store, log_models, log_datasets, training_metrics, post_training_metrics, max_candidates, estimators
    )
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
        file: the ``.joblib`` file.
        sniffed: the content's format (unused: joblib reads pickles, plain or compressed).
        **kwargs: passed to :func:`joblib.load` (e.g. ``mmap_mode="r"``).
    """
    import joblib

    return joblib.load(file, **kwargs)
