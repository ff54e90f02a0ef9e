"""Keras 3: ``model.fit(..., callbacks=[ModelTrackCallback(...)])`` and :func:`autolog`.

Works with every Keras 3 backend and never imports TensorFlow. Keras picks its backend when
it is first imported, from ``KERAS_BACKEND`` (or ``~/.keras/keras.json``); without TensorFlow
installed, set ``KERAS_BACKEND=torch`` (or ``jax``) before importing Keras or this module.

Each ``fit`` becomes one version that holds:

- params: compile settings (loss, metrics, optimizer config), a per-layer summary of the
  model config, fit settings (epochs, steps, batch size, validation split, class / sample
  weights present, shuffle, the other callbacks and their main settings), and the
  ``params=`` you pass;
- info: the framework (``keras``, backend, Keras version), parameter counts and an
  ``architecture`` fingerprint (layer classes and weight shapes), and how training ended
  (epochs run, early stop);
- metrics: every key of Keras's epoch ``logs`` (``loss``, ``val_loss``, …) plus
  ``learning_rate``, one point per epoch (``epoch`` = Keras's epoch index, ``step`` = batches
  run so far in this fit); ``batch_*`` series per batch with ``log_batches``;
- data: fingerprints of the arrays / tensors the user passed to ``fit``, as given (a float64
  array stays float64; under ``validation_split`` the rows Keras trains and validates on):
  ``train.x``, ``train.y``, ``val.x``, ``val.y``, and ``NAME.KEY`` per part for dicts / lists
  (multi-input / multi-output); for a ``PyDataset``, a generator or a ``tf.data`` dataset, its
  type, length and steps with the reason there is no fingerprint (a PyDataset's ``workers`` /
  ``use_multiprocessing`` / ``max_queue_size`` are params);
- artifacts: ``model_config.json``, checkpoints and the final ``model.keras``. A subclassed
  model without its own ``get_config`` (which Keras cannot save whole) is stored as
  ``model.weights.h5`` with its class (info ``model_class``, ``module:Qualname``), the
  constructor arguments it still holds as attributes of the same name (``model_init``) and its
  input shape (``model_input``); ``load`` rebuilds it from them (see :func:`load_artifact`);
- parent: a ``fit`` of a model object fitted before in this process records that version as
  its parent;
- evaluations: ``model.evaluate(...)`` after the fit adds an evaluation ``test`` to the fit's
  version (Keras's metric names, the fingerprints of ``x`` / ``y``, source
  ``keras model.evaluate``); ``evaluate`` returns exactly what it would.

Checkpoints: with a ``keras.callbacks.ModelCheckpoint`` among the callbacks, the files it
writes are stored as it writes them (Keras has no checkpoint IO seam: the model's own ``save`` /
``save_weights`` are watched while ``fit`` runs, so the path is the one it wrote) by the
:class:`~modeltrack.checkpoints.CheckpointMirror` — its best (``save_best_only``) marked best, an
overwritten file stored again under the same name — and this module writes none of its own.
Without one, checkpoints follow the ``checkpoints=`` policy.

How a failed ``fit`` is noticed (Keras callbacks have no exception hook):

1. With :func:`autolog`, the patched ``Model.fit`` sees the exception itself.
2. The callback wraps the model's ``train_function`` / ``test_function`` while ``fit`` runs,
   so an exception in a layer, a loss, a metric or the optimizer marks the version failed
   with its traceback the moment it happens (``StopIteration`` and TensorFlow's
   ``OutOfRangeError``, which Keras uses to end an epoch, are let through).
3. Anything else (a failing data generator or another callback) is noticed when ``fit``'s
   :class:`keras.callbacks.CallbackList` is freed without ``on_train_end`` having run
   (a ``weakref.finalize``, which also runs at interpreter exit); the version is marked
   failed, with the uncaught exception if the program ended on one.

The user's exception always propagates unchanged, and a tracking failure never stops
training: it becomes a :class:`~modeltrack.ModelTrackWarning` (an error under
``MODELTRACK_STRICT=1``).

Checkpoints follow :mod:`modeltrack.checkpoints` (the policies, the monitor and the write
budget every integration shares); this module only saves the model and holds its weights.

Example:
    >>> import os; os.environ.setdefault("KERAS_BACKEND", "torch")
    >>> import keras
    >>> from modeltrack.integrations.keras import ModelTrackCallback
    >>> model.fit(x, y, epochs=5, validation_split=0.2,
    ...           callbacks=[ModelTrackCallback(model="churn", params={"data": "v2"})])
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import keras
except ModuleNotFoundError as _exc:  # pragma: no cover - depends on the installation
    if _exc.name and _exc.name.split(".")[0] == "tensorflow":
        raise ImportError(
            "Keras is set to the TensorFlow backend, which is not installed; set KERAS_BACKEND=torch "
            "(or jax) before importing keras or modeltrack.integrations.keras"
        ) from _exc
    raise

from modeltrack import fitted, patching, rebuild, tracking
from modeltrack.capture import nested
from modeltrack.capture.data import can_fingerprint, split_xy, to_host, unfingerprinted
from modeltrack.capture.model import architecture as capture_architecture
from modeltrack.capture.params import is_simple
from modeltrack.checkpoints import MAX_SNAPSHOT_BYTES, CheckpointLedger, CheckpointMirror, CheckpointPolicy
from modeltrack.errors import ModelTrackError, ModelTrackWarning
from modeltrack.tracking import Version, report

if TYPE_CHECKING:
    from modeltrack.stores import Store

__all__ = ["ModelTrackCallback", "artifact_needs_trust", "autolog", "load_artifact"]

_PATCH_KEY = "keras"
_EVAL_KEY = "keras.evaluate"
#: the version each model was last fitted into: its parent for the next fit, evaluated by ``evaluate``
_FITTED = fitted.Fitted()
_DEFAULT_CALLBACKS = ("History", "ProgbarLogger")
#: settings recorded as params for the callbacks that shape a run
_CALLBACK_SETTINGS: dict[str, tuple[str, ...]] = {
    "EarlyStopping": ("monitor", "patience", "min_delta", "mode", "restore_best_weights", "start_from_epoch"),
    "ReduceLROnPlateau": ("monitor", "factor", "patience", "min_delta", "cooldown", "min_lr", "mode"),
    "ModelCheckpoint": ("monitor", "save_best_only", "save_weights_only", "mode", "save_freq"),
    "LearningRateScheduler": (),
    "TerminateOnNaN": (),
}
_FIT_SETTINGS = "validation_split shuffle initial_epoch validation_freq validation_steps validation_batch_size".split()
_PYDATASET_SETTINGS = ("workers", "use_multiprocessing", "max_queue_size")
#: layer config keys left out of the per-layer summary (names and dtypes change run to run)
_SKIP_LAYER_KEYS = {"name", "dtype", "trainable", "autocast", "registered_name"}


def _warn(exc: BaseException, what: str) -> None:
    """Warn even in strict mode: used where raising would replace the user's exception."""
    warnings.warn(f"modeltrack: {what} failed: {exc}", ModelTrackWarning, stacklevel=3)


def _loop_control(exc: BaseException) -> bool:
    """Exceptions Keras raises inside a step function to end an epoch (caught by ``fit``)."""
    return isinstance(exc, StopIteration) or type(exc).__name__ == "OutOfRangeError"


def _to_float(value: Any) -> float | None:
    try:
        if isinstance(value, keras.Variable):
            value = value.value  # the backend tensor: numpy converts it without a deprecation warning
        return float(keras.ops.convert_to_numpy(value))
    except Exception:  # noqa: BLE001 - a missing or odd value is simply not recorded
        return None


def _f32(value: Any) -> Any:
    """A float32 setting as the number the user wrote (0.003, not 0.003000000026077032)."""
    return float(f"{value:.7g}") if isinstance(value, float) else value


def _name_of(obj: Any) -> Any:
    """A short readable name for a loss / metric / optimizer as given to ``compile``."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, Mapping):
        if "class_name" in obj:
            return obj.get("registered_name") or obj["class_name"]
        return {str(k): _name_of(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_name_of(v) for v in obj]
    return getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__


def layer_summary(layer: Any) -> str:
    """``Dense(units=16, activation='relu', use_bias=True)``: the class and the scalar
    settings of a layer's config (names and dtypes left out, so equal layers read equal)."""
    try:
        cfg = layer.get_config()
    except Exception:  # noqa: BLE001 - subclassed layers need not implement get_config
        cfg = {}
    items = [f"{k}={v!r}" for k, v in cfg.items() if k not in _SKIP_LAYER_KEYS and v is not None and is_simple(v, 8)]
    return f"{type(layer).__name__}({', '.join(items)})"


def architecture(model: Any) -> dict[str, Any]:
    """The core's :func:`~modeltrack.capture.model.architecture` record of a built model: its
    class, then each layer's class and weight shapes, and the parameter counts.

    Layer and weight *names* are left out: Keras numbers them (``dense_3``) per process.
    """
    lines = [f"{type(model).__module__}.{type(model).__qualname__}"]
    for i, layer in enumerate(model.layers):
        shapes = " ".join(str(list(w.shape)) for w in layer.weights)
        lines.append(f"{i} {type(layer).__name__} {shapes}".rstrip())
    if not model.layers:  # a subclassed model that tracks no layers: its weights are its structure
        lines.extend(str(list(w.shape)) for w in model.weights)
    trainable, non_trainable = _count(model.trainable_weights), _count(model.non_trainable_weights)
    return capture_architecture(
        lines, params_trainable=trainable, params_non_trainable=non_trainable, params_total=trainable + non_trainable
    )


def _count(weights: Any) -> int:
    return sum(math.prod(int(d) for d in w.shape) for w in weights)


def _as_host(obj: Any) -> Any:
    """JAX / TF arrays as numpy (the core fingerprints numpy, torch and pandas natively)."""
    return to_host(obj, keras.ops.convert_to_numpy)


def _weights_only(model: Any) -> bool:
    """A subclassed model that Keras cannot save whole: no ``get_config`` of its own (Keras's
    automatic config then holds the constructor's defaults, not the values passed)."""
    cls = type(model)
    if cls.__module__.split(".")[0] == "keras":
        return False
    if any("get_config" in vars(c) for c in cls.__mro__ if c.__module__.split(".")[0] != "keras"):
        return False
    try:
        return "layers" not in model.get_config()  # a functional subclass serialises as its graph
    except Exception:  # noqa: BLE001 - Keras raises NotImplementedError with a long example
        return True


def _input_spec(x: Any) -> Any:
    if isinstance(x, keras.utils.PyDataset) and len(x):
        batch = x[0]  # its first batch: a PyDataset is indexable, by design
        x = batch[0] if isinstance(batch, tuple) else batch
    return nested.spec(x)


class _KerasState:
    """The :class:`~modeltrack.checkpoints.StateWriter` of a Keras model: weights and optimizer state."""

    def __init__(self, model: Any, weights_only: bool = False) -> None:
        self.model = model
        self.weights_only = weights_only

    def save(self, path: Path) -> None:
        # Through the class: the instance's save methods report the user's callbacks' writes.
        (type(self.model).save_weights if self.weights_only else type(self.model).save)(self.model, path)

    def capture(self) -> tuple[list[Any], list[Any]]:
        import numpy as np

        # np.array(copy=True): on the torch CPU backend get_weights() may share memory with the
        # live variables, which the next optimizer step overwrites.
        weights = [np.array(w, copy=True) for w in self.model.get_weights()]
        opt = getattr(self.model, "optimizer", None)
        opt_vars = [np.array(keras.ops.convert_to_numpy(v.value), copy=True) for v in getattr(opt, "variables", [])]
        return weights, opt_vars

    def restore(self, state: tuple[list[Any], list[Any]]) -> None:
        weights, opt_vars = state
        self.model.set_weights(weights)
        opt = getattr(self.model, "optimizer", None)
        for var, value in zip(getattr(opt, "variables", []), opt_vars, strict=True):
            var.assign(value)


def _state_bytes(model: Any) -> int:
    opt = getattr(model, "optimizer", None)
    return 4 * (_count(model.weights) + _count(getattr(opt, "variables", [])))


class ModelTrackCallback(keras.callbacks.Callback):
    """Record every ``fit`` it is passed to as a new version of ``model``.

    Args:
        model: model name; default ``MODELTRACK_MODEL`` or the script's name.
        store: store URI or object; default ``MODELTRACK_STORE``.
        checkpoints: ``"best"`` (by ``monitor``; the previous best is released), ``"last"``
            (only the latest epoch is kept), ``"every_n"`` (every ``every_n_epochs`` epochs,
            all kept, the best marked), ``"all"`` (every epoch) or ``"none"`` / ``None``
            (see :mod:`modeltrack.checkpoints`). With a ``keras.callbacks.ModelCheckpoint``
            among the callbacks, no checkpoint is written here: the files it writes are
            stored as they are written, and this policy says which are kept (``"best"``: all
            it wrote, its best marked; ``"last"``: the latest; ``"none"``: none).
        monitor: the ``logs`` key that decides "best"; default ``val_loss`` when validation
            runs, else ``loss``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (guessed from the name: losses and errors
            are minimised, accuracies maximised).
        every_n_epochs: period of ``"every_n"``.
        checkpoint_budget: share of training time checkpoint writes may take before
            ``"best"`` / ``"last"`` writes are deferred (see :mod:`modeltrack.checkpoints`); ``None`` writes
            every checkpoint at once.
        checkpoint_dir: keep the checkpoint and model files here (default: a temporary
            directory, removed after ``fit``).
        save_model: store the final model as ``model.keras`` (``kind="model"``).
        log_batches: also record ``logs`` per batch as ``batch_<key>`` series (``True``, or
            every N batches).
        data: datasets to fingerprint, ``{name: array_or_tensor}``, in addition to what
            ``fit`` was given.
        fingerprint_data: fingerprint the arrays given to ``fit``.
        params: extra hyperparameters to record.
        tags: tags of the new version.
        version: record into this running version instead of starting one per ``fit``
            (you then finish or fail it yourself; failures are not watched).

    Raises:
        ModelTrackError: a setting is invalid.

    Example:
        >>> cb = ModelTrackCallback(model="churn", checkpoints="best", monitor="val_auc")
        >>> model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[cb])
        >>> cb.last_version.ref
        'churn@v3'
    """

    #: name of the final model file inside the version
    MODEL_FILE = "model.keras"
    #: the same for a subclassed model Keras cannot save whole: its weights (rebuilt by ``load``)
    WEIGHTS_FILE = "model.weights.h5"
    #: name of the model config file inside the version
    CONFIG_FILE = "model_config.json"
    #: checkpoint names inside the version (``epoch`` is Keras's 0-based index)
    CHECKPOINT_FILE = "checkpoints/epoch-{epoch:03d}.keras"
    CHECKPOINT_WEIGHTS_FILE = "checkpoints/epoch-{epoch:03d}.weights.h5"
    #: largest model + optimizer state kept in memory to defer a checkpoint write
    MAX_SNAPSHOT_BYTES = MAX_SNAPSHOT_BYTES

    def __init__(
        self,
        model: str | None = None,
        store: Store | str | None = None,
        *,
        checkpoints: str | None = "best",
        monitor: str | None = None,
        mode: str = "auto",
        every_n_epochs: int = 1,
        checkpoint_budget: float | None = 0.01,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        save_model: bool = True,
        log_batches: bool | int = False,
        data: Mapping[str, Any] | None = None,
        fingerprint_data: bool = True,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        version: Version | None = None,
    ) -> None:
        super().__init__()
        self._policy = CheckpointPolicy(
            checkpoints, monitor=monitor, mode=mode, every_n_epochs=every_n_epochs, checkpoint_budget=checkpoint_budget
        )
        if not isinstance(log_batches, (bool, int)) or log_batches < 0:
            raise ModelTrackError(f"log_batches={log_batches!r} is invalid; use True/False or a batch period >= 1")
        if data is not None and not isinstance(data, Mapping):
            raise ModelTrackError(f"data={type(data).__name__} is invalid; pass a mapping {{name: array}}")
        self.model_name = model
        self.store = store
        self.checkpoints = self._policy.name
        self.monitor = monitor
        self.mode = mode
        self.every_n_epochs = self._policy.every_n_epochs
        self.checkpoint_budget = checkpoint_budget
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.save_model = save_model
        self.log_batches = int(log_batches)
        self.data = dict(data or {})
        self.fingerprint_data = fingerprint_data
        self.extra_params = dict(params or {})
        self.tags = dict(tags or {})
        self._given_version = version
        #: the version being recorded by the running ``fit`` (``None`` between fits)
        self.version: Version | None = None
        #: the version recorded by the latest ``fit`` (finished or failed)
        self.last_version: Version | None = None
        self.versions: list[Version] = []
        self._fit_args: dict[str, Any] | None = None
        self._reset()
        if self.log_batches:
            # Only then: Keras dispatches batch hooks asynchronously when no callback overrides them.
            self.on_train_batch_end = self._on_train_batch_end  # type: ignore[method-assign]

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self._in_fit = False
        self._owns = False
        self._dir: Path | None = None
        self._watch: patching.FailureWatch | None = None
        self._iter0: int | None = None
        self._step = self._epoch_base_step = 0
        self._lr: float | None = None
        self._ledger: CheckpointLedger | None = None
        self._last_epoch: int | None = None
        self._epoch: int | None = None
        self._initial_epoch = 0
        self._t0 = 0.0
        # Weak: the finalizer watching fit's CallbackList holds this callback strongly.
        self._callback_list_ref: weakref.ref[Any] | None = None
        self._config: Any = None
        self._weights_only = False
        self._mirror: CheckpointMirror | None = None
        self._saves = fitted.SaveWatch(self._saved)  # the model's save methods, while a callback saves
        self._user_args: dict[str, Any] | None = None

    def _other_callbacks(self) -> list[Any]:
        """The other callbacks of the running ``fit`` (empty when unknown)."""
        callback_list = self._callback_list_ref() if self._callback_list_ref is not None else None
        return [c for c in getattr(callback_list, "callbacks", []) if c is not self]

    @property
    def _active(self) -> Version | None:
        v = self.version
        return v if v is not None and not v.closed else None

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Start the version and record everything known before the first epoch."""
        if self._in_fit:
            patching.safe_call("ending the previous keras fit", self._abandon, None)
        self._reset()
        self._in_fit = True
        self._t0 = time.perf_counter()
        fit_locals = patching.safe_call("inspecting keras fit", self._find_fit_frame)
        patching.safe_call("starting a keras version", self._begin, fit_locals or {})

    def _find_fit_frame(self) -> dict[str, Any]:
        """The ``CallbackList`` calling us, the locals of the ``fit`` that built it and the
        arguments that ``fit`` was called with.

        Keras passes callbacks only ``epochs``, ``steps`` and ``verbose``; batch size,
        validation settings and the arrays themselves are locals of ``fit`` (which reassigns
        ``x`` to its own split and converted copy under ``validation_split``: the caller's
        frame still holds the user's ``args``). Read, never written; when Keras is laid out
        differently, they are simply not recorded.
        """
        owner = fitted.caller_self(keras.callbacks.CallbackList, where=lambda cl: any(c is self for c in cl.callbacks))
        self._callback_list_ref = weakref.ref(owner) if owner is not None else None
        fit_locals, self._user_args = fitted.call_arguments("fit", self._model)
        return fit_locals

    def _begin(self, fit_locals: dict[str, Any]) -> None:
        model = self.model
        if self._given_version is not None:
            self.version = self._given_version
        else:
            self.version = tracking.start(self.model_name, store=self.store, tags=self.tags or None)
            self._owns = True
        v = self.version
        self.versions.append(v)
        self.last_version = v
        if self._owns:
            self._watch_failures()
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            self._dir = self.checkpoint_dir
        else:
            self._dir = self.version.scratch_dir()
        self._iter0 = self._iterations()
        self._weights_only = bool(patching.safe_call("inspecting the keras model", _weights_only, model))
        _FITTED.started(model, v, owned=self._owns)  # the same model object fitted again continues it
        patching.safe_call("following keras model.evaluate", fitted.follow_calls, *_EVALUATE)
        if any(isinstance(c, keras.callbacks.ModelCheckpoint) for c in self._other_callbacks()):
            if self._policy.name != "none":  # the user's ModelCheckpoint decides: store what it writes
                self._mirror = CheckpointMirror(v, self._policy, prefix="checkpoints")
                self._saves.watch(model, "save", "save_weights")
        elif self._policy.name != "none":
            self._ledger = CheckpointLedger(
                v,
                self._policy,
                self._dir,
                _KerasState(model, self._weights_only),
                name_format=self.CHECKPOINT_WEIGHTS_FILE if self._weights_only else self.CHECKPOINT_FILE,
                epochs=(self.params or {}).get("epochs"),
                final_model=self.save_model,
                state_bytes=patching.safe_call("sizing the keras model", _state_bytes, model) or 0,
                max_snapshot_bytes=self.MAX_SNAPSHOT_BYTES,
                started=self._t0,
                framework="keras",
            )
        args = {**(self._fit_args or {}), **{k: v for k, v in fit_locals.items() if k != "self"}}
        user = self._fit_args or self._user_args or args  # what the user passed, before Keras converted it
        self._initial_epoch = int(args.get("initial_epoch") or 0)
        # Gathered first and written as one record each: every record is a store write.
        params: dict[str, Any] = dict(self.extra_params)
        info: dict[str, Any] = {}
        for what, collect, arg in (
            ("model info", self._model_params, model),
            ("compile settings", self._compile_params, model),
            ("fit settings", self._fit_params, args),
        ):
            params.update(patching.safe_call(f"recording keras {what}", collect, arg, info) or {})
        if self._weights_only:
            info["model_input"] = patching.safe_call("recording the keras input shape", _input_spec, user.get("x"))
        v.set_framework("keras", **info)
        v.log_params(params)
        patching.safe_call("recording the keras model config", self._log_config, v, model)
        patching.safe_call("recording keras data", self._log_data, v, user, fit_locals)

    def _watch_failures(self) -> None:
        """Fail the version the moment a train step raises, or when ``fit``'s CallbackList is
        freed without ``on_train_end`` (an exception outside the step)."""
        self._watch = patching.FailureWatch(self._failed, ignore=_loop_control)
        self._watch.wrap(self._model, "train_function")
        callback_list = self._callback_list_ref() if self._callback_list_ref is not None else None
        if callback_list is not None:
            self._watch.when_dropped(callback_list, _abandoned_reason)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """During ``fit``'s validation, watch ``test_function`` for failures too."""
        if self._in_fit and self._watch is not None and self._active is not None:
            patching.safe_call("watching keras validation", self._watch.wrap, self._model, "test_function")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Read the learning rate this epoch trains with."""
        if self._active is None:
            return
        self._epoch = epoch
        self._epoch_base_step = self._step
        try:
            opt: Any = getattr(self.model, "optimizer", None)
            self._lr = _f32(_to_float(opt.learning_rate)) if hasattr(opt, "learning_rate") else None
        except Exception as exc:  # noqa: BLE001 - tracking never stops training
            report(exc, "reading the keras learning rate")

    def _on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        v, step = self._active, self._epoch_base_step + int(batch) + 1
        if v is not None and logs and not step % self.log_batches:
            metrics = {f"batch_{k}": val for k, val in logs.items()}
            patching.safe_call("recording keras batch logs", v.log_metrics, metrics, step=step, epoch=self._epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Record the epoch's ``logs`` and the learning rate; write checkpoints by policy."""
        v = self._active
        if v is not None:  # tracking never stops training: a failure only warns
            patching.safe_call(f"recording keras epoch {epoch}", self._epoch_end, v, epoch, dict(logs or {}))

    def _epoch_end(self, v: Version, epoch: int, logs: dict[str, Any]) -> None:
        self._last_epoch = epoch
        self._step = self._steps_done(epoch)
        if self._lr is not None and "learning_rate" not in logs:
            logs["learning_rate"] = self._lr
        v.log_metrics(logs, step=self._step, epoch=epoch)
        if self._ledger is not None:
            self._ledger.epoch_end(epoch, self._step, logs)

    def _iterations(self) -> int | None:
        opt = getattr(self.model, "optimizer", None)
        it = getattr(opt, "iterations", None)
        value = _to_float(it) if it is not None else None
        return int(value) if value is not None else None

    def _steps_done(self, epoch: int) -> int:
        """Batches run so far in this fit: the optimizer's step counter, else epochs × steps."""
        now = self._iterations()
        if now is not None and self._iter0 is not None and now > self._iter0:
            return now - self._iter0
        steps = (self.params or {}).get("steps") or 1
        return (epoch + 1 - self._initial_epoch) * int(steps)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Write the final model and pending checkpoints, then finish the version."""
        if not self._in_fit:
            return
        try:
            v = self._active
            if v is not None:
                self._end(v)
        except Exception as exc:  # noqa: BLE001 - tracking never stops training
            report(exc, "finishing the keras version")
        finally:
            self._close()

    def _end(self, v: Version) -> None:
        # Each step on its own: a full store losing the model file must not leave the
        # version unfinished.
        model = self.model
        patching.safe_call("recording how keras training ended", self._log_outcome, v, model)
        final: Path | None = None
        if self.save_model:
            final = patching.safe_call("storing the final keras model", self._store_model, v, model)
        if self._ledger is not None:
            final_epoch = None if self._weights_restored() else self._last_epoch
            patching.safe_call("writing the pending keras checkpoint", self._ledger.finish, final, final_epoch)
        if self._owns:
            v.finish()

    def _store_model(self, v: Version, model: Any) -> Path:
        assert self._dir is not None
        final = self._dir / (self.WEIGHTS_FILE if self._weights_only else self.MODEL_FILE)
        _KerasState(model, self._weights_only).save(final)
        v.log_artifact(final, kind="model", name=final.name, step=self._step, epoch=self._last_epoch)
        return final

    def _close(self) -> None:
        """Leave the model as it was and forget the fit (both on success and on failure)."""
        self._in_fit = False
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        self._saves.stop()
        self._callback_list_ref = None
        self._fit_args = None
        self._ledger = None
        self._mirror = None
        self.version = None

    # ------------------------------------------------------------------ failure
    def _failed(self, exc: BaseException | str | None) -> None:
        """Mark the version failed (never raises: the user's exception must propagate)."""
        v = self._active
        if v is None or not self._owns:
            return
        try:
            if self._ledger is not None:
                self._ledger.abort()
        except Exception as err:  # noqa: BLE001
            _warn(err, "writing the pending keras checkpoint")
        try:
            v.end(exc if exc is not None else "failed")
        except Exception as err:  # noqa: BLE001
            _warn(err, f"marking {v.ref} failed")
        finally:
            self._close()

    def _abandon(self, exc: BaseException | str | None) -> None:
        """``fit`` ended without ``on_train_end``: fail the version it left running."""
        if self._in_fit and self._active is not None:
            self._failed(exc or _abandoned_reason())

    # ------------------------------------------------------------------ checkpoints
    def _saved(self, path: str) -> None:
        if self._active is None or self._mirror is None:
            return
        # The ModelCheckpoint that is saving (a frame above): with save_best_only, its file is its best.
        mc = fitted.caller_self(keras.callbacks.ModelCheckpoint)  # the one saving, a few frames up
        best = mc is not None and bool(mc.save_best_only)
        meta = {"monitor": mc.monitor, "value": _to_float(mc.best)} if mc is not None and best else None
        epoch = self._epoch if self._epoch is not None else self._initial_epoch
        best_path = os.path.abspath(path) if best else None
        self._mirror.written(path, epoch=epoch, step=self._steps_done(epoch), best_path=best_path, metadata=meta)

    def _weights_restored(self) -> bool:
        """Whether a callback (EarlyStopping) may put other weights than the last epoch's in the
        model at the end of training."""
        return any(getattr(c, "restore_best_weights", False) for c in self._other_callbacks())

    # ------------------------------------------------------------------ capture
    def _model_params(self, model: Any, info: dict[str, Any]) -> dict[str, Any]:
        info.update(
            architecture(model),
            backend=keras.backend.backend(),
            keras_version=keras.__version__,
            model_class=f"{type(model).__module__}:{type(model).__qualname__}",
            layers=len(model.layers),
        )
        params: dict[str, Any] = {
            "model.class": type(model).__name__,
            "model.layers": [layer_summary(x) for x in model.layers],
        }
        self._config = None
        if self._weights_only:
            # Keras's automatic config would hold the constructor's defaults: record what the model holds.
            config, missing = rebuild.init_args(model, skip=_SKIP_LAYER_KEYS)
            info.update(model_init=config, **({"model_init_missing": missing} if missing else {}))
        else:
            with contextlib.suppress(Exception):  # a model need not be configurable
                self._config = model.get_config()
            config = dict(self._config) if isinstance(self._config, Mapping) and "layers" not in self._config else {}
        # A subclassed model's config is its constructor arguments: real hyperparameters.
        params.update(
            {f"model.{k}": val for k, val in config.items() if k not in _SKIP_LAYER_KEYS and is_simple(val, 8)}
        )
        return params

    def _log_config(self, v: Version, model: Any) -> None:
        if isinstance(self._config, Mapping):
            assert self._dir is not None
            path = self._dir / self.CONFIG_FILE
            path.write_text(json.dumps(self._config, indent=1, sort_keys=True, default=repr))
            v.log_artifact(path, kind="config", name=self.CONFIG_FILE)
        self._config = None

    def _compile_params(self, model: Any, info: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        cfg: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # custom compile() overrides may not support it
            cfg = model.get_compile_config() or {}
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if cfg.get(key) is not None:
                params[f"compile.{key}"] = _name_of(cfg[key])
        if "loss" not in cfg and getattr(model, "loss", None) is not None:
            params["compile.loss"] = _name_of(model.loss)
        for key in ("run_eagerly", "steps_per_execution", "jit_compile"):
            if key in cfg:
                params[f"compile.{key}"] = cfg[key]
        opt = getattr(model, "optimizer", None)
        if opt is not None:
            params["optimizer.class"] = type(opt).__name__
            opt_cfg: dict[str, Any] = {}
            with contextlib.suppress(Exception):
                opt_cfg = opt.get_config()
            # "name" is numbered per process (adam, adam_1, …): the class says the same, stably.
            params.update(
                {f"optimizer.{k}": _f32(val) for k, val in opt_cfg.items() if val is not None and k != "name"}
            )
        return params

    def _fit_params(self, args: Mapping[str, Any], info: dict[str, Any]) -> dict[str, Any]:
        p = self.params or {}
        params: dict[str, Any] = {
            "fit.epochs": p.get("epochs", args.get("epochs")),
            "fit.steps_per_epoch": p.get("steps"),
        }
        if args.get("batch_size") is not None:
            params["fit.batch_size"] = args["batch_size"]
        elif "x" in args and args["x"] is not None and not can_fingerprint(args["x"]):
            params["fit.batch_size"] = None  # the dataset batches itself
        elif "x" in args:
            params["fit.batch_size"] = 32  # Keras's default for arrays
        params.update({f"fit.{k}": args[k] for k in (*_FIT_SETTINGS, "steps_per_epoch") if args.get(k) is not None})
        if isinstance(args.get("x"), keras.utils.PyDataset):  # how it is read: Keras's PyDataset settings
            params.update({f"fit.x.{k}": getattr(args["x"], k, None) for k in _PYDATASET_SETTINGS})
        if "validation_data" in args:
            params["fit.validation_data"] = args.get("validation_data") is not None
        for key in ("class_weight", "sample_weight"):
            if key in args:
                params[f"fit.{key}"] = args[key] is not None
        others = [c for c in self._other_callbacks() if type(c).__name__ not in _DEFAULT_CALLBACKS]
        if self._callback_list_ref is not None:
            params["fit.callbacks"] = [type(c).__name__ for c in others]
        for c in others:
            for attr in _CALLBACK_SETTINGS.get(type(c).__name__, ()):
                if hasattr(c, attr) and is_simple(getattr(c, attr), 8):
                    params[f"callbacks.{type(c).__name__}.{attr}"] = getattr(c, attr)
        if args.get("class_weight") is not None:
            info["class_weight"] = {str(k): val for k, val in dict(args["class_weight"]).items()}
        return {k: val for k, val in params.items() if val is not None or k == "fit.batch_size"}

    def _log_data(self, v: Version, args: Mapping[str, Any], frame: Mapping[str, Any]) -> None:
        """Fingerprint the arrays the user passed (``args``), split as Keras split them."""
        for name, value in self.data.items():
            v.log_data(name, _as_host(value))
        if not self.fingerprint_data:
            return
        x, y = args.get("x"), args.get("y")
        val_x, val_y = split_xy(args.get("validation_data"))
        split, reason = args.get("validation_split"), None
        if split and args.get("validation_data") is None and can_fingerprint(x):
            n = nested.rows(frame.get("x"))  # the training part Keras kept: the first n rows
            if n is not None:
                (x, val_x), (y, val_y) = nested.split_rows(x, n), nested.split_rows(y, n)
            else:  # only the arrays before Keras's split are known: say so rather than mislabel them
                reason = f"fingerprint of x before validation_split={split} (train and validation parts together)"
        for prefix, dx, dy in (("train", x, y), ("val", val_x, val_y)):
            if dx is None or any(k.startswith(prefix + ".") or k == prefix for k in self.data):
                continue
            if can_fingerprint(dx) and (dy is None or can_fingerprint(dy)):
                for name, part in nested.arrays({f"{prefix}.x": dx, f"{prefix}.y": dy}).items():
                    v.log_data(name, _as_host(part))
                if reason and prefix == "train":
                    v.log_info(train_data_note=reason)
            else:
                steps = (self.params or {}).get("steps") if prefix == "train" else args.get("validation_steps")
                v.log_data_info(prefix, **unfingerprinted(dx, steps=steps, hint="pass data={...} to fingerprint it"))

    def _log_outcome(self, v: Version, model: Any) -> None:
        stopper = next((c for c in self._other_callbacks() if type(c).__name__ == "EarlyStopping"), None)
        epochs = (self.params or {}).get("epochs")
        last = self._last_epoch
        run = 0 if last is None else last + 1 - self._initial_epoch
        short = last is not None and epochs is not None and last + 1 < epochs
        stopped = short and bool(getattr(model, "stop_training", False))
        info: dict[str, Any] = {"epochs_run": run, "last_epoch": last, "stopped_early": stopped}
        if stopped:
            info["stopped_epoch"] = last
        if stopper is not None:
            info["early_stopping"] = {
                "stopped_epoch": getattr(stopper, "stopped_epoch", 0) or None,
                "best_epoch": getattr(stopper, "best_epoch", None),
                "best": _to_float(getattr(stopper, "best", None)),
                "restored_best_weights": bool(getattr(stopper, "restore_best_weights", False)),
            }
        v.log_info(**info)


def _abandoned_reason() -> BaseException | str:
    return tracking.last_uncaught() or (
        "keras fit ended without reaching on_train_end: an exception escaped fit outside the "
        "train/test step (e.g. in the data pipeline or another callback)"
    )


# ---------------------------------------------------------------------- evaluations
def _record_evaluation(v: Version, model: Any, arguments: Mapping[str, Any], result: Any) -> None:
    """``model.evaluate`` after a tracked fit: an evaluation ``test`` of that fit's version."""
    logs = result if isinstance(result, Mapping) else model.get_metrics_result()  # Keras's own names
    metrics = {str(k): val for k, val in ((k, _to_float(x)) for k, x in logs.items()) if val is not None}
    data = {
        k: _as_host(a) for k, a in nested.arrays({"test.x": arguments.get("x"), "test.y": arguments.get("y")}).items()
    }
    if metrics:
        v.evaluate(metrics, name="test", data=data, source="keras model.evaluate")


_EVALUATE = (_EVAL_KEY, keras.Model, "evaluate", _FITTED, _record_evaluation)


# ---------------------------------------------------------------------- autolog
def autolog(
    disable: bool = False, *, model: str | None = None, store: Store | str | None = None, **callback_kwargs: Any
) -> None:
    """Give every ``keras.Model.fit`` a :class:`ModelTrackCallback` (unless it has one).

    Only the outermost ``fit`` is recorded (a custom ``fit`` calling ``super().fit`` is one
    version). The user's ``fit`` runs exactly once and its result and exceptions reach the
    caller unchanged; an exception marks the version failed. Enabling twice never patches
    twice; ``autolog(disable=True)`` restores ``keras.Model`` exactly.

    Args:
        disable: remove the patch instead.
        model: model name for the versions (default ``MODELTRACK_MODEL`` or the script).
        store: store URI or object.
        **callback_kwargs: passed to :class:`ModelTrackCallback` (``checkpoints=``, …).

    Raises:
        ModelTrackError: a callback setting is invalid.

    Example:
        >>> from modeltrack.integrations import keras as mt_keras
        >>> mt_keras.autolog(model="churn", checkpoints="last")
        >>> model.fit(x, y, epochs=3)   # recorded as churn@vN
    """
    if disable:
        patching.disable(_PATCH_KEY)
        patching.disable(_EVAL_KEY)
        return
    known = inspect.signature(ModelTrackCallback.__init__).parameters
    patching.refuse_unknown_options(
        "keras", callback_kwargs, (k for k in known if k not in ("self", "model", "store", "version"))
    )
    settings = {"model": model, "store": store, **callback_kwargs}
    ModelTrackCallback(**settings)  # validate now, not at the first fit

    fitted.patch_outermost(_PATCH_KEY, keras.Model, "fit", functools.partial(_prepare, settings))


def _ended(cb: ModelTrackCallback, exc: BaseException | None) -> None:
    cb._fit_args = None
    if exc is not None:
        cb._failed(exc)


def _prepare(
    settings: dict[str, Any], signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[BaseException | None], None]] | None:
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None  # let Keras report the bad call itself
    callbacks = bound.arguments.get("callbacks")
    if isinstance(callbacks, keras.callbacks.CallbackList):
        note = (
            "fit got a CallbackList, which autolog does not change; add a ModelTrackCallback to it to record this run"
        )
        warnings.warn(f"modeltrack: {note}", ModelTrackWarning, stacklevel=4)
        return None
    given = list(callbacks) if isinstance(callbacks, (list, tuple)) else ([] if callbacks is None else [callbacks])
    cb = next((c for c in given if isinstance(c, ModelTrackCallback)), None)
    if cb is None:
        cb = ModelTrackCallback(**settings)
        bound.arguments["callbacks"] = [*given, cb]
    cb._fit_args = {k: v for k, v in bound.arguments.items() if k not in ("self", "callbacks")}
    return bound.args, bound.kwargs, functools.partial(_ended, cb)


# ---------------------------------------------------------------------- loading
def artifact_needs_trust(sniffed: Any, **kwargs: Any) -> bool:
    """Whether loading a file of this content can execute code (``modeltrack.load`` asks).

    A Keras archive loads in Keras's safe mode: no code runs, so no trust is needed unless
    the caller turns safe mode off. A legacy HDF5 model may hold marshalled Python code
    (``Lambda`` layers), so it needs trust. Anything else is not a Keras model and is refused.

    Raises:
        ModelTrackError: the file is not a Keras model at all (e.g. a pickle named ``.keras``).
    """
    name = getattr(sniffed, "name", sniffed)
    if name == "keras":
        return kwargs.get("safe_mode", True) is False
    if name == "hdf5":
        return True
    raise ModelTrackError(
        f"the file is {getattr(sniffed, 'description', name)}, not a Keras archive; refusing to load it as a "
        f"Keras model (use modeltrack.load(ref, kind='path') to inspect it)"
    )


def load_artifact(
    file: str | os.PathLike[str],
    *,
    record: Mapping[str, Any] | None = None,
    artifact: Mapping[str, Any] | None = None,
    sniffed: str | None = None,
    cls: type | None = None,
    **kwargs: Any,
) -> Any:
    """Load a stored Keras model (``modeltrack.load`` calls this for Keras versions).

    ``.keras`` files are a zip of JSON config and weights, loaded with Keras's ``safe_mode``
    (no arbitrary code) unless you pass ``safe_mode=False``. A ``.weights.h5`` file (a
    subclassed model Keras cannot save whole) is loaded into a new instance of the recorded
    class: imported, constructed with the recorded constructor arguments (``info.model_init``,
    else none), called once on zeros of the recorded input shape to build it, then given the
    weights (uncompiled).

    Args:
        file: the local file.
        record: the version record (its ``info`` names the class and input shape).
        artifact: the artifact record (unused).
        sniffed: the content's format as :func:`modeltrack.formats.sniff` named it.
        cls: the model class to rebuild a weights file into, instead of the recorded one.
        **kwargs: passed to :func:`keras.saving.load_model` (``custom_objects=``,
            ``compile=``, ``safe_mode=``).

    Raises:
        ModelTrackError: a weights file whose model cannot be rebuilt (the message says how to
            build it yourself).
        ImportError: the recorded class cannot be imported here.
    """
    path = Path(file)
    if path.name.endswith(".weights.h5"):
        return _rebuild(path, record or {}, cls)
    wanted = {"keras": ".keras", "hdf5": ".h5"}.get(sniffed or "")
    if wanted and path.suffix != wanted:
        # Keras picks its reader by suffix: give the (verified, cached) copy the one its content calls for.
        view = path.with_name(path.name + wanted)
        if not view.exists():
            with contextlib.suppress(FileExistsError):
                os.link(path, view)
        path = view
    kwargs.setdefault("safe_mode", True)
    return keras.saving.load_model(path, **kwargs)


def _rebuild(path: Path, record: Mapping[str, Any], cls: type | None) -> Any:
    info = record.get("info") or {}
    ref = f"{record.get('model')}@v{record.get('version')}"
    model = rebuild.instance(info, ref, cls=cls, what="the Keras model", needs=("model_input",), file=path.name)
    if info.get("model_input"):
        model(nested.zeros(info["model_input"]))  # builds its weights
    if info.get("architecture") not in (None, architecture(model).get("architecture")):
        raise rebuild.mismatch(model, ref, info.get("model_init"))
    model.load_weights(path)
    return model
