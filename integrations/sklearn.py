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
import csv
import functools
import io
import itertools
import json
import math
import os
import sys
import tempfile
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sklearn
from sklearn.base import BaseEstimator

from modeltrack import config, patching
from modeltrack.autologging import cancel_import_hook, when_imported
from modeltrack.capture.params import flatten, to_json_value
from modeltrack.errors import InvalidValueError, ModelTrackError, ModelTrackWarning
from modeltrack.patching import Patcher, enabled, safe_call, wrap
from modeltrack.patching import disable as _unpatch
from modeltrack.patching import enable as _patch
from modeltrack.tracking import Version, report, start

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

F = TypeVar("F", bound=Callable[..., Any])


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


_lock = threading.RLock()
_global: _Scope | None = None
_scopes: list[_Scope] = []
_patcher: Patcher | None = None
_patched: set[tuple[Any, str]] = set()
_by_estimator: dict[int, _Session] = {}
_predictions: dict[int, tuple[Any, _Session, str]] = {}
_fit_owner: int | None = None
_fit_lock = threading.Lock()


class _Local(threading.local):
    evaluating = 0  # > 0 while score/predict/a metric of a tracked model runs on this thread


_local = _Local()


def _active_scope() -> _Scope | None:
    if _scopes:
        return _scopes[-1]
    return _global


# ---------------------------------------------------------------------- patching
def _install(patcher: Patcher) -> None:
    global _patcher
    _patcher = patcher
    _patched.clear()
    when_imported(["sklearn."], KEY, _patch_module, prefix=True, now=False)
    for name, module in list(sys.modules.items()):
        if name.startswith("sklearn.") and module is not None:
            _patch_module(module)


def _ensure_installed(extra: Iterable[type] = ()) -> None:
    with _lock:
        if not enabled(KEY):
            _patch(KEY, _install)
        for cls in extra:
            _patch_class(cls, force=True)


def _uninstall_if_idle() -> None:
    global _patcher
    with _lock:
        if _global is None and not _scopes and enabled(KEY):
            cancel_import_hook(KEY)
            _unpatch(KEY)
            _patcher = None
            _patched.clear()


Target = tuple[type, str, Any, Any, bool]
_module_targets: dict[str, tuple[int, list[Target]]] = {}
_wrappers: dict[tuple[type, str], tuple[Any, Any]] = {}


def _patch_module(module: types.ModuleType) -> None:
    """Patch the public estimator classes defined in ``module`` (and, for
    ``sklearn.metrics``, its metric functions). What to patch is worked out once per module,
    so that switching on again (each call of a decorated function) is a loop of setattr."""
    name = module.__name__
    with _lock:
        if _patcher is None:
            return
        if name == "sklearn.metrics":
            _patch_metrics(module)
        cached = _module_targets.get(name)
        if cached is None or cached[0] != id(module):
            targets: list[Target] = []
            if not any(part in name for part in _SKIP_MODULE_PARTS):
                for obj in list(vars(module).values()):
                    if (
                        isinstance(obj, type)
                        and obj.__module__ == name
                        and not obj.__name__.startswith("_")
                        and (issubclass(obj, BaseEstimator) or obj.__name__.endswith("Mixin"))
                    ):
                        targets += _targets(obj, force=False)
            cached = _module_targets[name] = (id(module), targets)
        for target in cached[1]:
            _apply_target(*target)


def _plan(cls: type, force: bool) -> list[tuple[str, Any, bool]]:
    """``(method, function to wrap, defined by cls itself)`` for each method to patch."""
    plan = []
    for name in (*FIT_METHODS, *PREDICT_METHODS, *SCORE_METHODS):
        raw = cls.__dict__.get(name)
        if raw is not None:
            plan.append((name, raw, True))
            continue
        owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
        if owner is None or owner is object:
            continue
        if force or (name == "fit" and owner.__name__.startswith("_")):
            plan.append((name, owner.__dict__[name], False))
    return plan


def _targets(cls: type, force: bool) -> list[Target]:
    """``(cls, method, original, wrapper, defined by cls itself)`` for each method to patch;
    a wrapper is made once and reused by later installs."""
    out = []
    for name, raw, own in _plan(cls, force):
        if hasattr(raw, "__modeltrack_original__"):
            continue
        around = _fit_around if name in FIT_METHODS else _score_around if name in SCORE_METHODS else _predict_around
        cached = _wrappers.get((cls, name))
        if cached is not None and cached[0] is raw:
            new = cached[1]
        elif isinstance(raw, types.FunctionType):
            new = wrap(raw, around)
        elif hasattr(raw, "__get__") and not isinstance(raw, (staticmethod, classmethod, property)):
            new = _WrappedDescriptor(raw, around)  # e.g. sklearn's available_if: hasattr() keeps working
        else:
            continue
        _wrappers[(cls, name)] = (raw, new)
        out.append((cls, name, raw, new, own))
    return out


def _apply_target(cls: type, name: str, raw: Any, new: Any, own: bool) -> None:
    if _patcher is None or (cls, name) in _patched:
        return
    current = cls.__dict__.get(name)
    if (current is not raw) if own else (current is not None):
        return  # changed since planned (someone else patched it): leave it alone
    _patcher.setattr(cls, name, new)
    _patched.add((cls, name))


def _patch_class(cls: type, *, force: bool = False) -> None:
    """Patch ``cls``'s own fit/predict/score methods (and a ``fit`` inherited from a private
    base); ``force`` (classes the user names) also wraps inherited ones."""
    for target in _targets(cls, force):
        _apply_target(*target)


class _WrappedDescriptor:
    """Wraps a method descriptor (``available_if``) so that attribute access still raises
    ``AttributeError`` when the descriptor says so."""

    def __init__(self, raw: Any, around: Callable[..., Any]) -> None:
        self.__modeltrack_original__ = raw
        self._around = around
        self.__doc__ = getattr(raw, "__doc__", None)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        got = self.__modeltrack_original__.__get__(obj, owner)
        if obj is None:
            return got
        around = self._around

        def call(_est: Any, *args: Any, **kwargs: Any) -> Any:
            return got(*args, **kwargs)

        call.__name__ = getattr(got, "__name__", "call")

        @functools.wraps(got)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return around(call, obj, *args, **kwargs)

        return bound


def _patch_metrics(module: types.ModuleType) -> None:
    for fname in getattr(module, "__all__", ()):
        fn = getattr(module, fname, None)
        if not isinstance(fn, types.FunctionType) and not (callable(fn) and hasattr(fn, "__wrapped__")):
            continue
        if isinstance(fn, type) or not (fname.endswith(METRIC_SUFFIXES) or fname in METRIC_EXTRA):
            continue
        if (module, fname) in _patched or hasattr(fn, "__modeltrack_original__") or _patcher is None:
            continue
        _patcher.setattr(module, fname, wrap(fn, _metric_around))
        _patched.add((module, fname))


def _original(fn: Any) -> Any:
    return getattr(fn, "__modeltrack_original__", fn)


# ---------------------------------------------------------------------- the hot path
def _in_worker_process() -> bool:
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return False
    try:
        return bool(mp.current_process().name != "MainProcess")
    except Exception:  # noqa: BLE001
        return False


_SKLEARN_DIR = os.path.dirname(sklearn.__file__) + os.sep


def _called_by_sklearn() -> bool:
    """Whether sklearn itself called this fit (a metric's ``LabelEncoder``, the folds of
    ``cross_val_score``): only fits called by user code are versions."""
    frame = sys._getframe(3)  # 0 here, 1 _fit_around, 2 the patch wrapper, 3 its caller
    return frame is not None and frame.f_code.co_filename.startswith(_SKLEARN_DIR)


def _claim_fit() -> bool:
    global _fit_owner
    with _fit_lock:
        if _fit_owner is not None:
            return False
        _fit_owner = threading.get_ident()
        return True


def _release_fit() -> None:
    global _fit_owner
    with _fit_lock:
        _fit_owner = None


def _fit_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    scope = _active_scope()
    if scope is None or _fit_owner is not None or _local.evaluating:
        return original(est, *args, **kwargs)
    if scope.is_global and _in_worker_process():
        return original(est, *args, **kwargs)
    if _called_by_sklearn() or not _claim_fit():
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
        _release_fit()


@contextmanager
def _evaluating() -> Iterator[None]:
    _local.evaluating += 1
    try:
        yield
    finally:
        _local.evaluating -= 1


def _session_of(est: Any) -> _Session | None:
    session = _by_estimator.get(id(est))
    if session is None or session.estimator() is not est:
        return None
    return session


def _evaluated_session(est: Any) -> _Session | None:
    """The session to credit a prediction or score to (None outside tracked evaluation)."""
    if not _by_estimator or _local.evaluating or _fit_owner is not None:
        return None
    return _session_of(est)


def _predict_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    session = _evaluated_session(est)
    if session is None:
        return original(est, *args, **kwargs)
    with _evaluating():
        result = original(est, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")
    safe_call("remembering a prediction", _remember, result, session, _dataset_name(X))
    return result


def _score_around(original: Callable[..., Any], est: Any, *args: Any, **kwargs: Any) -> Any:
    session = _evaluated_session(est)
    if session is None:
        return original(est, *args, **kwargs)
    with _evaluating():
        value = original(est, *args, **kwargs)
    X = args[0] if args else kwargs.get("X")
    safe_call("logging a score", session.log_post, f"{_dataset_name(X)}_score", value)
    return value


def _metric_around(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    if not _predictions or _local.evaluating or _fit_owner is not None:
        return original(*args, **kwargs)
    hit = None
    for arg in itertools.chain(args, kwargs.values()):
        rec = _predictions.get(id(arg))
        if rec is not None and rec[0]() is arg and not rec[1].closed:
            hit = rec
            break
    if hit is None:
        return original(*args, **kwargs)
    with _evaluating():
        value = original(*args, **kwargs)
    safe_call("logging a metric", hit[1].log_post, f"{hit[2]}_{getattr(original, '__name__', 'metric')}", value)
    return value


def _remember(result: Any, session: _Session, dataset: str) -> None:
    try:
        ref = weakref.ref(result)
    except TypeError:
        return  # a list or a scalar: cannot be recognised safely later
    if len(_predictions) >= _MAX_PREDICTIONS:
        for key, rec in list(_predictions.items()):
            if rec[0]() is None or rec[1].closed:
                del _predictions[key]
        while len(_predictions) >= _MAX_PREDICTIONS:
            del _predictions[next(iter(_predictions))]
    _predictions[id(result)] = (ref, session, dataset)


def _dataset_name(X: Any) -> str:
    """The name of the caller's variable holding ``X`` (``X_test`` → ``test``), else ``eval``."""
    if X is None:
        return "eval"
    frame = sys._getframe(1)
    here = __file__
    # Walk out of modeltrack and sklearn frames to the user's code.
    while frame is not None and (
        frame.f_code.co_filename == here
        or frame.f_code.co_filename.endswith(("patching.py", "functools.py"))
        or "/sklearn/" in frame.f_code.co_filename
    ):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "eval"
    name = next((k for k, v in frame.f_locals.items() if v is X and not k.startswith(".")), None)
    if name is None and frame.f_globals is not frame.f_locals:
        name = next((k for k, v in frame.f_globals.items() if v is X), None)
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


def _architecture(est: Any, depth: int = 0) -> dict[str, Any]:
    """The structure of an estimator (classes and steps, no hyperparameters), which ``diff``
    compares: ``{"class": "Pipeline", "steps": [["scale", {"class": "StandardScaler"}], …]}``."""
    out: dict[str, Any] = {"class": type(est).__name__}
    if depth > 10:
        return out
    try:
        params = est.get_params(deep=False)
    except Exception:  # noqa: BLE001 - structure is best effort
        return out
    for key, value in params.items():
        if _is_estimator(value):
            out[key] = _architecture(value, depth + 1)
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(i, tuple) and len(i) >= 2 and isinstance(i[0], str) for i in value)
            and any(_is_estimator(i[1]) for i in value)
        ):
            out[key] = [
                [i[0], _architecture(i[1], depth + 1) if _is_estimator(i[1]) else to_json_value(i[1])] for i in value
            ]
    return out


def _xy(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y", kwargs.get("Y"))
    return X, y


def _script_name() -> str | None:
    import re

    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or argv0 in ("-c", "-m") or not argv0.endswith(".py"):
        return None
    return re.sub(r"[^A-Za-z0-9._-]", "-", Path(argv0).stem).strip("-._")[:128] or None


def _tmp_file(version: Version, name: str) -> Path:
    """A fresh file in the version's scratch directory (removed when the version ends)."""
    fd, path = tempfile.mkstemp(prefix="", suffix="-" + name, dir=version.scratch_dir())
    os.close(fd)
    return Path(path)


class _Session:
    """The version being recorded for one outermost fit."""

    def __init__(self, scope: _Scope, version: Version, est: Any) -> None:
        self.scope = scope
        self.version = version
        self.closed = False
        try:
            self.estimator: Callable[[], Any] = weakref.ref(est)
        except TypeError:
            self.estimator = lambda: est

    @classmethod
    def begin(cls, scope: _Scope, est: Any, method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> _Session:
        cfg = scope.cfg
        previous = _session_of(est)
        if previous is not None:  # a refit: the old model is gone, its version is complete
            previous.finish()
        model = cfg.model or config.model_name() or _script_name() or type(est).__name__
        version = start(model, store=cfg.store)
        session = cls(scope, version, est)
        with _lock:
            scope.sessions.append(session)
        atexit.unregister(_finish_all)
        atexit.register(_finish_all)  # after the core's exit hook is registered, so it runs first
        try:
            version.set_framework(
                "sklearn",
                estimator=_public_name(type(est)),
                architecture=_architecture(est),
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
                    _by_estimator[id(est)] = self
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
            if _by_estimator.get(id(self.estimator())) is self:
                del _by_estimator[id(self.estimator())]
            for key in [k for k, rec in _predictions.items() if rec[1] is self]:
                del _predictions[key]
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
            return _regression_metrics(y, y_pred, sample_weight)
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
    """Accuracy, precision/recall/F1 (binary for two classes, else weighted), log loss and
    ROC-AUC (one-vs-rest, weighted, for more classes): a numpy fast path for 1-d targets,
    sklearn's functions otherwise (same definitions, ``zero_division=0``)."""
    import numpy as np

    out: dict[str, float] = {}
    try:
        yt = np.asarray(y)
        yp = np.asarray(y_pred)
        fast = yt.ndim == 1 and yp.shape == yt.shape and classes is not None and np.ndim(classes) == 1
    except Exception:  # noqa: BLE001 - odd targets: let sklearn decide
        fast = False
    if not fast:
        return _sklearn_classification_metrics(y, y_pred, scores, proba, classes, sample_weight)
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    total = w.sum()
    out["train_accuracy"] = float(w[yt == yp].sum() / total)
    binary = len(classes) == 2
    labels = [classes[1]] if binary else list(classes)
    tp = np.array([w[(yt == c) & (yp == c)].sum() for c in labels])
    pred = np.array([w[yp == c].sum() for c in labels])
    true = np.array([w[yt == c].sum() for c in labels])
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(pred > 0, tp / pred, 0.0)
        rec = np.where(true > 0, tp / true, 0.0)
        f1 = np.where(pred + true > 0, 2 * tp / (pred + true), 0.0)
    if binary:
        out.update(train_precision=float(prec[0]), train_recall=float(rec[0]), train_f1=float(f1[0]))
    elif true.sum() > 0:
        out.update(
            train_precision=float(np.average(prec, weights=true)),
            train_recall=float(np.average(rec, weights=true)),
            train_f1=float(np.average(f1, weights=true)),
        )
    if scores is None:
        return out
    s = np.asarray(scores, dtype=float)
    index = {c: i for i, c in enumerate(classes.tolist() if hasattr(classes, "tolist") else classes)}
    try:
        idx = np.array([index[c] for c in (yt.tolist())])
    except KeyError:
        return out
    if proba and s.ndim == 2 and s.shape[1] == len(classes):
        eps = np.finfo(s.dtype).eps
        p = np.clip(s[np.arange(len(idx)), idx], eps, 1 - eps)
        out["train_log_loss"] = float(np.average(-np.log(p), weights=w))
        if binary:
            auc = _binary_auc(idx == 1, s[:, 1], w, sample_weight is not None)
            if auc is not None:
                out["train_roc_auc"] = auc
        else:
            aucs, support = [], []
            for i in range(len(classes)):
                auc = _binary_auc(idx == i, s[:, i], w, sample_weight is not None)
                if auc is None:
                    return out  # a class absent from y: sklearn refuses too
                aucs.append(auc)
                support.append(w[idx == i].sum())
            out["train_roc_auc"] = float(np.average(aucs, weights=support))
    elif binary and s.ndim == 1:
        auc = _binary_auc(idx == 1, s, w, sample_weight is not None)
        if auc is not None:
            out["train_roc_auc"] = auc
    return out


def _binary_auc(positive: Any, score: Any, w: Any, weighted: bool) -> float | None:
    """ROC-AUC as the Mann-Whitney statistic (ties count half); weighted via sklearn."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    if weighted:
        from sklearn.metrics import roc_auc_score

        return float(_original(roc_auc_score)(positive, score, sample_weight=w))
    import numpy as np

    # Average ranks (ties share the mean of their ranks), without importing scipy.stats.
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse.reshape(-1)]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


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


def _regression_metrics(y: Any, y_pred: Any, sample_weight: Any) -> dict[str, float]:
    """MSE, RMSE, MAE and R² (outputs averaged uniformly, as sklearn's defaults)."""
    import numpy as np

    yt = np.asarray(y, dtype=float)
    yp = np.asarray(y_pred, dtype=float).reshape(yt.shape)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    err = yt - yp
    mse = float(np.average(err**2, axis=0, weights=w).mean())
    mae = float(np.average(np.abs(err), axis=0, weights=w).mean())
    ww = np.ones(len(yt)) if w is None else w
    ss_res = (ww[:, None] * err**2).sum(axis=0)
    ss_tot = (ww[:, None] * (yt - np.average(yt, axis=0, weights=ww)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    return {"train_mse": mse, "train_rmse": math.sqrt(mse), "train_mae": mae, "train_r2": float(r2.mean())}


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


def _cell(value: Any) -> Any:
    if value is None or getattr(value, "mask", False) is True:
        return ""
    if isinstance(value, Mapping):
        return json.dumps(to_json_value(dict(value)), sort_keys=True)
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float):
        return repr(value)
    return value if isinstance(value, (int, str, bool)) else json.dumps(to_json_value(value))


def _csv_file(version: Version, name: str, columns: list[str], rows: Iterable[list[Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(c) for c in row])
    path = _tmp_file(version, name)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


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
    path = _csv_file(version, CV_RESULTS_FILE, columns, ([results[c][i] for c in columns] for i in range(n)))
    try:
        version.log_artifact(path, kind="cv_results", name=CV_RESULTS_FILE)
    finally:
        path.unlink(missing_ok=True)
    refit = getattr(est, "refit", True)
    suffix = refit if isinstance(refit, str) and f"rank_test_{refit}" in results else "score"
    ranks = results.get(f"rank_test_{suffix}")
    order = sorted(range(n), key=lambda i: int(ranks[i])) if ranks is not None else list(range(n))
    top = []
    for i in order[:max_candidates]:
        top.append(
            {
                "rank": int(ranks[i]) if ranks is not None else None,
                f"mean_test_{suffix}": _cell(results.get(f"mean_test_{suffix}", [None] * n)[i]),
                f"std_test_{suffix}": _cell(results.get(f"std_test_{suffix}", [None] * n)[i]),
                "mean_fit_time": _cell(results.get("mean_fit_time", [None] * n)[i]),
                "params": to_json_value(results["params"][i]),
            }
        )
    for row in top:
        for k in (f"mean_test_{suffix}", f"std_test_{suffix}", "mean_fit_time"):
            row[k] = float(row[k]) if row[k] not in ("", None) else None
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
        path = _csv_file(version, CANDIDATES_FILE, cols, ([row[c] for c in cols] for row in top))
        try:
            version.log_artifact(path, kind="table", name=CANDIDATES_FILE)
        finally:
            path.unlink(missing_ok=True)


def _finish_scope_sessions(scope: _Scope) -> None:
    for session in list(scope.sessions):
        session.finish()


def _finish_all() -> None:
    scopes = [s for s in (_global, *_scopes) if s is not None]
    for scope in scopes:
        for session in list(scope.sessions):
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
        sessions = [s for scope in (_global, *_scopes) if scope is not None for s in scope.sessions]
    for s in sessions:
        safe_call(f"finishing {s.version.ref}", s.finish)
    return [s.version.ref for s in sessions]


def tracked_versions() -> list[Version]:
    """Versions recorded by sklearn autologging that are still open for post-training metrics."""
    with _lock:
        return [s.version for scope in (_global, *_scopes) if scope is not None for s in scope.sessions]


# ---------------------------------------------------------------------- public switch
@contextmanager
def _scoped(cfg: _Config) -> Iterator[_Scope]:
    scope = _Scope(cfg, is_global=False)
    with _lock:
        _scopes.append(scope)
        try:
            _ensure_installed(cfg.estimators)
        except BaseException:
            _scopes.remove(scope)
            raise
    ok = False
    try:
        yield scope
        ok = True
    finally:
        with _lock:
            if scope in _scopes:
                _scopes.remove(scope)
        try:
            _finish_scope_sessions(scope)
        except Exception as exc:  # noqa: BLE001
            if ok:
                report(exc, "finishing the sklearn versions")
            else:  # the user's exception is on its way: do not replace it
                warnings.warn(
                    f"modeltrack: finishing the sklearn versions failed: {exc}", ModelTrackWarning, stacklevel=3
                )
        finally:
            _uninstall_if_idle()


class AutologHandle:
    """What ``autolog(...)`` returns: autologging is on globally until :meth:`undo`.

    Used as a decorator (``@autolog(model="x")``) or a ``with`` block, it gives the global
    switch back at once and records the fits of each call (or of the block) instead.
    """

    def __init__(self, cfg: _Config, previous: _Scope | None, mine: _Scope) -> None:
        self._cfg = cfg
        self._previous = previous
        self._mine = mine
        self._block: Any = None

    def undo(self) -> None:
        """Give back the global state that was in force before this ``autolog`` call."""
        global _global
        with _lock:
            if _global is self._mine:
                _finish_scope_sessions(self._mine)
                _global = self._previous
                if self._previous is not None:
                    _ensure_installed(self._previous.cfg.estimators)
            _uninstall_if_idle()

    def __call__(self, fn: F) -> F:
        self.undo()
        return _decorate(fn, self._cfg)

    def __enter__(self) -> AutologHandle:
        self.undo()
        self._block = _scoped(self._cfg)
        self._block.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        block, self._block = self._block, None
        if block is not None:
            block.__exit__(*exc)


def _decorate(fn: F, cfg: _Config) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _scoped(cfg):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
    global _global
    patching.refuse_unknown_options("sklearn", kwargs, ())
    cfg = _Config(
        model, store, log_models, log_datasets, training_metrics, post_training_metrics, max_candidates, estimators
    )
    if fn is not None:
        if not callable(fn):
            raise ModelTrackError(f"autolog(fn) takes a function to decorate, got {fn!r}; pass options by keyword")
        return _decorate(fn, cfg)
    with _lock:
        if disable:
            if _global is not None:
                _finish_scope_sessions(_global)
            _global = None
            _uninstall_if_idle()
            return None
        previous = _global
        if previous is not None:
            _finish_scope_sessions(previous)
        mine = _Scope(cfg, is_global=True)
        _global = mine
        _ensure_installed(cfg.estimators)
    return AutologHandle(cfg, previous, mine)


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
