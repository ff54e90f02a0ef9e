"""PyTorch Lightning: a ``Logger``, a ``Callback``, or both; every ``Trainer.fit`` is a version.

    Trainer(logger=ModelTrackLogger(model="mnist"))                     # the logger
    Trainer(callbacks=[ModelTrackCallback(model="mnist")])              # or the callback
    Trainer(logger=[TensorBoardLogger("tb"), ModelTrackLogger()],       # or both, beside
            callbacks=[ModelTrackCallback()])                           # other loggers: one version

Each way, one ``fit`` becomes one version holding: hyperparameters (the module's and the
datamodule's ``hparams``, anything else sent to ``Logger.log_hyperparams``, the LightningCLI
config as ``config.yaml``), trainer settings, optimizers and schedulers; every value Lightning
hands its loggers, under Lightning's own names and step numbers (``loss_step`` every
``Trainer(log_every_n_steps)`` steps and ``loss_epoch`` per epoch for
``self.log("loss", on_step=True, on_epoch=True)``, ``val_loss``, ``lr-SGD`` from
``LearningRateMonitor``…); the checkpoints the user's ``ModelCheckpoint`` writes, stored as
they are written (local paths and fsspec URLs such as ``s3://``); data fingerprints; the
architecture; the status (finished, failed, interrupted). ``trainer.test``/``validate`` after
``fit`` add an *evaluation* to the fit's version instead of making another one. Runs that
train nothing (``fast_dev_run``, a ``fit`` resumed at ``max_epochs``) make no version.

The callback owns the version and the logger is how Lightning's values reach it: a callback on
a trainer without a ModelTrackLogger adds a private one to ``trainer.loggers`` for the run
(appended, and when it is the only logger it answers as if there were none, so checkpoint
directories, ``trainer.log_dir`` and the progress bar stay as they were); a ModelTrackLogger
on a trainer without the callback adds one when Lightning first asks for its ``experiment``.

Both ``lightning.pytorch`` and ``pytorch_lightning`` work. They ship distinct base classes,
so ``ModelTrackCallback`` and ``ModelTrackLogger`` are classes made on first use that derive
from the ``Callback`` (``Logger``) of each package in use: those already imported, else those
installed (``package=`` picks one). They are real subclasses, so LightningCLI accepts
``--trainer.callbacks+=modeltrack.integrations.lightning.ModelTrackCallback`` and the same
class paths in a YAML config; they pickle (``ddp_spawn``); importing this module imports
nothing of Lightning.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import shutil
import sys
import tempfile
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from modeltrack import patching
from modeltrack.capture.datasets import fingerprint_loader, flatten_loaders
from modeltrack.capture.model import attributes, module_architecture, optimizer_settings, scheduler_settings
from modeltrack.checkpoints import POLICIES, CheckpointMirror, CheckpointPolicy
from modeltrack.errors import InvalidValueError, ModelTrackWarning
from modeltrack.families import ClassFamily, Member
from modeltrack.patching import safe_call
from modeltrack.tracking import Version, default_model_name, start

if TYPE_CHECKING:
    from lightning.pytorch import LightningModule, Trainer

#: the two distributions, by the module that holds ``Trainer`` and ``Callback``
PACKAGES = ("lightning.pytorch", "pytorch_lightning")
#: what :meth:`Version.set_framework` records (``load`` dispatches on it)
FRAMEWORK = "lightning"
#: artifact names inside the version
CHECKPOINT_DIR = "checkpoints"
FINAL_MODEL_FILE = "model.ckpt"
CONFIG_FILE = "config.yaml"
#: the key under which a checkpoint carries the version that wrote it
CHECKPOINT_KEY = "modeltrack"
_AUTOLOG_KEY = "lightning"
#: the version each LightningModule was last fitted into (a later ``trainer.test`` evaluates it)
_FITTED: weakref.WeakKeyDictionary[Any, Version] = weakref.WeakKeyDictionary()


def _concrete(role: str, packages: Iterable[str]) -> Any:
    return _FAMILY.concrete(role, packages)


def __getattr__(name: str) -> Any:
    # ModelTrackCallback/ModelTrackLogger for the packages in use; the concrete classes by name (pickle)
    return _FAMILY.attribute(name)


def _package_of(obj: Any) -> str:
    """``"lightning.pytorch"`` or ``"pytorch_lightning"``: the package of a Trainer/module."""
    return _FAMILY.package_of(obj)


def _settings(
    model: str | None,
    store: Any,
    checkpoints: str | None,
    every_n_epochs: int,
    data_fingerprint: bool,
    params: Mapping[str, Any] | None,
    tags: Mapping[str, Any] | None,
    package: str | None,
) -> dict[str, Any]:
    CheckpointPolicy(checkpoints, every_n_epochs=every_n_epochs, checkpoint_budget=None)  # validates
    if params is not None and not isinstance(params, Mapping):
        raise InvalidValueError(f"params={type(params).__name__} is invalid; pass a mapping", value=params)
    _FAMILY.resolve(package) if package is not None else None
    return {
        "model": model,
        "store": store,
        "checkpoints": checkpoints,
        "every_n_epochs": every_n_epochs,
        "data_fingerprint": data_fingerprint,
        "params": dict(params or {}),
        "tags": dict(tags or {}),
        "package": package,
    }


# ---------------------------------------------------------------------- the callback
class _ModelTrackCallback(Member):
    """Record every ``Trainer.fit`` as a new version of ``model``.

    Only global rank zero writes; other ranks run the same hooks without writing. Tracking
    failures become warnings (errors when ``MODELTRACK_STRICT=1``); training never stops
    because of them.

    Args:
        model: model name; default ``MODELTRACK_MODEL``, else the script's name, else the
            LightningModule's class name.
        store: store URI (or a ``Store``); default ``MODELTRACK_STORE``.
        checkpoints: what to keep of the checkpoints the user's ``ModelCheckpoint``(s) write
            (each is stored as soon as it is written, so a crash loses nothing):
            ``"best"`` (default) mirrors the ModelCheckpoint — what it keeps (top-k, last)
            is kept, what it deletes is released, its best is marked; ``"last"`` keeps only
            the latest one; ``"all"`` keeps every one ever written; ``"every_n"`` keeps those
            written at the end of every ``every_n_epochs``-th epoch, and the best. Without a
            ModelCheckpoint the final weights are stored as ``model.ckpt`` (``"every_n"``
            also saves one every ``every_n_epochs`` epochs). ``None`` (or ``"none"``) stores
            nothing. See :class:`modeltrack.checkpoints.CheckpointMirror`.
        every_n_epochs: period of the ``"every_n"`` policy.
        data_fingerprint: fingerprint the datasets behind the train/val (and test) dataloaders.
        params: extra hyperparameters to record.
        tags: tags for the version.
        package: force ``"lightning"`` or ``"pytorch_lightning"`` instead of detecting it.

    Attributes:
        version: the :class:`~modeltrack.Version` of the last ``fit`` on this process
            (``None`` on ranks other than zero, before ``fit``, or when it trained nothing).

    Example:
        >>> trainer = Trainer(max_epochs=5, callbacks=[ModelCheckpoint(monitor="val_loss"),
        ...                                            ModelTrackCallback(model="churn")])
        >>> trainer.fit(model, datamodule=dm)
        >>> trainer.test(model, datamodule=dm)   # an evaluation "test" of the same version
    """

    _role = "Callback"

    def __init__(
        self,
        model: str | None = None,
        store: str | None = None,
        *,
        checkpoints: str | None = "best",
        every_n_epochs: int = 1,
        data_fingerprint: bool = True,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        package: str | None = None,
    ) -> None:
        s = _settings(model, store, checkpoints, every_n_epochs, data_fingerprint, params, tags, package)
        self._policy = CheckpointPolicy(checkpoints, every_n_epochs=every_n_epochs, checkpoint_budget=None)
        self.model, self.store, self.checkpoints = s["model"], s["store"], s["checkpoints"]
        self.every_n_epochs, self.data_fingerprint = s["every_n_epochs"], s["data_fingerprint"]
        self.params, self.tags, self.package = s["params"], s["tags"], s["package"]
        self.version: Version | None = None
        self._reset()

    def _reset(self) -> None:
        self._v: Version | None = None  # the version being written (rank zero, during fit)
        self._trainer: Any = None
        self._module: Any = None
        self._stage: str | None = None
        self._mirror: CheckpointMirror | None = None
        self._io: _TrackingCheckpointIO | None = None
        self._io_host: Any = None
        self._logger: _ModelTrackLogger | None = None
        self._added_logger: _ModelTrackLogger | None = None
        self._own_save = False
        self._tmpdir: str | None = None
        self._pending_params: list[dict[str, Any]] = []
        self._pending_config: str | None = None  # a LightningCLI config sent to log_hyperparams
        self._resume: dict[str, Any] | None = None
        self._data_done: set[str] = set()
        self._delivered: set[str] = set()  # names Lightning handed its loggers in this fit
        self._gap: tuple[int, int] | None = None  # (epoch, step) whose undelivered values are due
        self._failure: BaseException | None = None
        self._fitting = False
        self._eval: tuple[Version | str | None, dict[str, Any]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Workers of ddp_spawn get the configuration, never the running state.
        state = dict(self.__dict__)
        state["version"] = None
        running = ("_v", "_trainer", "_module", "_mirror", "_io", "_io_host", "_logger", "_added_logger", "_eval")
        state.update({k: None for k in running}, _failure=None)
        return state

    def __repr__(self) -> str:
        where = self.version.ref if self.version is not None else self.model or "?"
        return f"<ModelTrackCallback {where} checkpoints={self.checkpoints!r}>"

    def _guard(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return safe_call(f"modeltrack Lightning callback ({what})", fn, *args, **kwargs)

    @property
    def _active(self) -> bool:
        v = self._v
        return v is not None and not v.closed

    # ------------------------------------------------------------------ lifecycle
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))  # Lightning passes its TrainerFn enum
        if stage == "fit":
            self._reset()
            if getattr(trainer, "fast_dev_run", False):
                return  # a smoke test of the code, not a training run (Lightning disables loggers too)
            self._fitting = True
        elif stage in ("test", "validate"):
            if not trainer.is_global_zero or getattr(trainer, "fast_dev_run", False):
                return
            fitted = self.version if self.version is not None and self.version.closed else _FITTED.get(pl_module)
            self._eval = (fitted, {})  # or the version named by the checkpoint it loads
        else:
            return
        self._trainer, self._module, self._stage = trainer, pl_module, stage
        self._guard("attaching the logger", self._bind_logger, trainer)
        if self._fitting and trainer.is_global_zero:
            self._guard("following checkpoints", self._install_io, trainer)

    def _bind_logger(self, trainer: Trainer) -> None:
        mine = next((lg for lg in trainer.loggers if isinstance(lg, _ModelTrackLogger)), None)
        if mine is None:
            mine = _concrete("Logger", (_package_of(trainer),))(_added=True)
            mine._mimic = str(trainer.loggers[0].version) if trainer.loggers else ""
            trainer.loggers = [*trainer.loggers, mine]
            self._added_logger = mine
        mine._callback = self
        mine._root = trainer.default_root_dir
        self._logger = mine

    def _unbind_logger(self) -> None:
        added, trainer = self._added_logger, self._trainer
        if added is not None and trainer is not None:
            trainer.loggers = [lg for lg in trainer.loggers if lg is not added]
        self._logger = self._added_logger = None  # a user's logger stays bound: its experiment is this version

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._fitting and self._v is None and trainer.is_global_zero:
            self._guard("starting the version", self._begin)

    def _begin(self) -> None:
        """Training starts: create the version and record everything known before epoch 0."""
        trainer, pl_module = self._trainer, self._module
        name = self.model or default_model_name(None, python_scripts=True) or _default_name(pl_module)
        v = start(name, store=self.store, tags=self.tags or None)
        self._v = self.version = v
        _FITTED[pl_module] = v
        self._mirror = CheckpointMirror(v, self._policy, prefix=CHECKPOINT_DIR)
        # A ddp_spawn worker whose exception Lightning never reports to callbacks exits with
        # the version open: it fails then, instead of being finished by the core at exit.
        v.fail_on_exit("the process exited during Trainer.fit")
        package = _package_of(trainer)
        top = importlib.import_module(package.split(".")[0])
        cls = type(pl_module)
        info: dict[str, Any] = {
            "package": package.split(".")[0],
            "package_version": getattr(top, "__version__", None),
            "module_class": f"{cls.__module__}:{cls.__qualname__}",
        }
        dm = getattr(trainer, "datamodule", None)
        if dm is not None:
            info["datamodule_class"] = f"{type(dm).__module__}:{type(dm).__qualname__}"
        self._guard("recording the framework", v.set_framework, FRAMEWORK, **info)
        self._guard("recording the architecture", lambda: v.log_info(**module_architecture(pl_module)))
        self._guard("recording hyperparameters", v.log_params, _hparams(pl_module))
        if dm is not None and _hparams(dm):
            self._guard("recording datamodule hyperparameters", v.log_params, {"data": _hparams(dm)})
        self._guard("recording trainer settings", v.log_params, {"trainer": _trainer_params(trainer)})
        self._guard("recording optimizers", v.log_params, _optimizer_params(trainer))
        for params in [self.params, *self._pending_params]:
            if params:
                self._guard("recording params", v.log_params, params)
        self._pending_params = []
        self._guard("storing the LightningCLI config", self._log_cli_config, trainer)
        if self._resume is not None:
            self._guard("recording the resumed version", self._log_resume, self._resume)
        if self.data_fingerprint:
            self._guard("fingerprinting the training data", self._log_data, "train", trainer.train_dataloader)
            self._guard("fingerprinting the validation data", self._log_data, "val", trainer.val_dataloaders)

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active and self.data_fingerprint and "val" not in self._data_done:
            self._guard("fingerprinting the validation data", self._log_data, "val", trainer.val_dataloaders)

    def _log_data(self, name: str, loaders: Any) -> None:
        if loaders is None or name in self._data_done:
            return
        self._data_done.add(name)
        v = self._v
        assert v is not None
        for sub, loader in flatten_loaders(name, loaders):
            self._guard(f"fingerprinting {sub}", _log_loader, v, sub, loader)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        epoch = trainer.current_epoch
        # Lightning hands its loggers the epoch aggregates after this hook: look at what it
        # never delivered once they are in (next epoch start, or the end of training).
        self._gap = (epoch, max(trainer.global_step - 1, 0))
        if self._policy.name == "every_n" and self._policy.due(epoch) and not _checkpoint_callbacks(trainer):
            self._guard(
                "saving a checkpoint", self._save_own, trainer, f"{CHECKPOINT_DIR}/epoch={epoch}.ckpt", "checkpoint"
            )

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._gap is not None and self._active:
            self._guard("recording per-step values", self._fill_gaps, trainer)

    def _fill_gaps(self, trainer: Trainer) -> None:
        """A value logged per step that Lightning never handed its loggers (an epoch shorter
        than ``log_every_n_steps``): its last value of the epoch, at Lightning's step of the
        epoch's last batch, so a short run still has its loss."""
        assert self._v is not None and self._gap is not None
        (epoch, step), self._gap = self._gap, None
        values = trainer.callback_metrics
        missing = {
            k: v
            for k, v in values.items()
            if k not in self._delivered
            and f"{k}_step" not in values  # on_step and on_epoch: Lightning's names are NAME_step/NAME_epoch
            and not k.endswith("_epoch")
            and not k.startswith(("val", "test"))
        }
        if missing:
            self._v.log_metrics(missing, step=step, epoch=epoch)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._gap is not None and self._active:
            self._guard("recording per-step values", self._fill_gaps, trainer)
        if self._policy.name != "none" and not _checkpoint_callbacks(trainer):
            self._guard("saving the final weights", self._save_own, trainer, FINAL_MODEL_FILE, "model")

    def _save_own(self, trainer: Trainer, name: str, kind: str) -> None:
        """Save a checkpoint ourselves (every rank must call ``save_checkpoint``)."""
        if not self._fitting:
            return
        path = os.path.join(self._scratch(), name.replace("/", "_"))
        self._own_save = True
        try:
            trainer.save_checkpoint(path)
        finally:
            self._own_save = False
        v = self._v
        if v is not None and not v.closed and os.path.exists(path):
            step, epoch = trainer.global_step, trainer.current_epoch
            self._guard(f"storing {name}", v.log_artifact, path, kind, name, step=step, epoch=epoch)
            with contextlib.suppress(OSError):
                os.remove(path)

    def _scratch(self) -> str:
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="modeltrack-lightning-")
        return self._tmpdir

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active:
            self._guard("storing the checkpoints", self._reconcile, trainer)
            self._end(None)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        stage = str(getattr(stage, "value", stage))
        if stage == "fit":
            self._uninstall_io()
            if self._active:  # fit ended without on_fit_end or on_exception (should not happen)
                self._end(self._failure)
            self._cleanup()
        elif self._eval is not None:
            self._guard("recording the evaluation", self._evaluate, trainer, stage)
            self._eval = None
        self._unbind_logger()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._eval = None
        if not self._fitting:
            self._unbind_logger()
            return
        if self._v is None and trainer.is_global_zero and self._module is not None:
            self._guard("starting the version", self._begin)  # failed before training began: still a run
        self._failure = exception
        self._cleanup()  # the teardown hook does not run after an exception
        self._unbind_logger()
        if self._io is not None and any(
            getattr(cb, "save_on_exception", False) for cb in _checkpoint_callbacks(trainer)
        ):
            # ModelCheckpoint(save_on_exception=True) writes after this hook: the version
            # fails once the strategy tears down (our checkpoint IO's teardown).
            return
        self._end(exception)

    def _end(self, failure: BaseException | None) -> None:
        v = self._v
        if v is None or v.closed:
            return
        self._guard("ending the version", v.end, failure)
        self._fitting = False

    def _cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        self._fitting = False

    # ------------------------------------------------------------------ what the logger hands over
    def _log_metrics(self, metrics: Mapping[str, Any], step: int | None) -> None:
        values = dict(metrics)
        epoch = values.pop("epoch", None)
        if self._eval is not None:
            self._eval[1].update(values)
        elif self._active and self._v is not None:
            trainer = self._trainer
            epoch = int(epoch) if epoch is not None else getattr(trainer, "current_epoch", None)
            self._delivered.update(values)
            self._v.log_metrics(values, step=step if step is not None else trainer.global_step, epoch=epoch)

    def _log_hyperparams(self, params: Mapping[str, Any]) -> None:
        params = dict(params)
        config = params.pop("config", None)  # SaveConfigCallback.save_config's documented pattern
        if isinstance(config, str) and self._fitting:
            self._pending_config = config
        known = set(_hparams(self._module)) | set(_hparams(getattr(self._trainer, "datamodule", None)))
        extra = {k: v for k, v in params.items() if k not in known and k not in ("_class_path", "_instantiator")}
        if not extra or not self._fitting:
            return
        if self._v is None:
            self._pending_params.append(extra)
        elif self._active:
            self._v.log_params(extra)

    def _checkpoint_saved(self, checkpoint_callback: Any) -> None:
        """``Logger.after_save_checkpoint``: store what the ModelCheckpoint holds that the
        checkpoint IO did not see being written (strategies that bypass it)."""
        trainer, mirror = self._trainer, self._mirror
        if not self._active or mirror is None or trainer is None or self._policy.name == "none":
            return
        held = [(p, _metadata(checkpoint_callback, p)) for p in _held(checkpoint_callback) if "://" not in p]
        if any(os.path.abspath(p) not in mirror.files for p, _ in held):
            mirror.reconcile(held, epoch=trainer.current_epoch, step=trainer.global_step, best_path=_best_path(trainer))

    def _log_cli_config(self, trainer: Trainer) -> None:
        """The LightningCLI config (``SaveConfigCallback``'s parser and config), as ``config.yaml``."""
        text = self._pending_config
        for cb in getattr(trainer, "callbacks", ()):
            if text is None and any(c.__name__ == "SaveConfigCallback" for c in type(cb).__mro__):
                text = cb.parser.dump(cb.config, skip_none=False)
        if text is None or self._v is None:
            return
        path = os.path.join(self._scratch(), CONFIG_FILE)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        self._v.log_artifact(path, kind="config", name=CONFIG_FILE)

    def _evaluate(self, trainer: Trainer, stage: str) -> None:
        assert self._eval is not None
        target, metrics = self._eval
        if not metrics or target is None:
            return
        loaders = trainer.test_dataloaders if stage == "test" else trainer.val_dataloaders
        data = {}
        if self.data_fingerprint and loaders is not None:
            data = {sub: fingerprint_loader(dl) for sub, dl in flatten_loaders(stage, loaders)}
        source = f"{_package_of(trainer)} trainer.{stage}"
        if isinstance(target, str):
            from modeltrack.api import evaluate

            evaluate(target, metrics, name=stage, data=data, source=source, store=self.store)
        else:
            target.evaluate(metrics, name=stage, data=data, source=source)

    # ------------------------------------------------------------------ resume
    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        v = self._v
        if v is not None and not v.closed:
            checkpoint[CHECKPOINT_KEY] = {"model": v.model, "version": v.number, "ref": v.ref}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._fitting:
            path = getattr(trainer, "ckpt_path", None)
            self._resume = {"path": path, **{k: checkpoint.get(k) for k in (CHECKPOINT_KEY, "epoch", "global_step")}}
        meta = checkpoint.get(CHECKPOINT_KEY)
        if self._eval is not None and self._eval[0] is None and isinstance(meta, dict) and meta.get("ref"):
            self._eval = (str(meta["ref"]), self._eval[1])  # evaluating a checkpoint a version stored

    def _log_resume(self, resume: dict[str, Any]) -> None:
        assert self._v is not None
        path, meta = resume["path"], resume[CHECKPOINT_KEY]
        parent = None
        if isinstance(meta, dict) and meta.get("model") and meta.get("version"):
            parent = f"{meta['model']}@v{int(meta['version'])}"
        elif path and os.path.isfile(str(path)):
            parent = self._v.find_stored(str(path))
        info = {
            "checkpoint": os.path.basename(str(path)) if path else None,
            "epoch": resume["epoch"],
            "global_step": resume["global_step"],
            "parent": parent,
        }
        self._v.log_info(resumed_from=info)
        if parent is not None:
            self._v.set_parent(parent)

    # ------------------------------------------------------------------ checkpoints
    def _install_io(self, trainer: Trainer) -> None:
        if self._policy.name == "none":
            return
        strategy = trainer.strategy
        outer = strategy.checkpoint_io
        host: Any = strategy
        attr = "checkpoint_io"
        # An async IO returns before the file exists: follow the IO that writes it.
        if (
            any(c.__name__ == "_WrappingCheckpointIO" for c in type(outer).__mro__)
            and getattr(outer, "_checkpoint_io", None) is not None
        ):
            host, attr = outer, "_checkpoint_io"
        inner = getattr(host, attr)
        self._io = _TrackingCheckpointIO(inner, self, trainer)
        self._io_host = (host, attr, inner)
        setattr(host, attr, self._io)

    def _uninstall_io(self) -> None:
        if self._io_host is not None:
            host, attr, inner = self._io_host
            if getattr(host, attr, None) is self._io:
                setattr(host, attr, inner)
        self._io_host = None
        self._io = None

    def _io_teardown(self) -> None:
        # The strategy tears down on success and on failure (before on_fit_end), and the
        # teardown hook only runs on success: put the user's IO back here.
        self._uninstall_io()
        if self._failure is not None and self._active:
            self._end(self._failure)

    def _on_saved(self, trainer: Trainer | None, path: str) -> None:
        if self._own_save or not self._active or trainer is None or self._mirror is None:
            return
        owner = _owner_of(trainer, path)
        self._mirror.written(
            path,
            epoch=trainer.current_epoch,
            step=trainer.global_step,
            best_path=_best_path(trainer),
            owned=owner is not None,
            metadata=_metadata(owner, _norm(path)),
        )

    def _on_removed(self, path: str) -> None:
        if not self._own_save and self._active and self._mirror is not None:
            self._mirror.removed(path)

    def _reconcile(self, trainer: Trainer) -> None:
        """At the end: store what the ModelCheckpoints hold that was not seen being written
        (strategies that bypass the checkpoint IO), re-store files changed since, mark the best."""
        if self._mirror is None or self._policy.name == "none":
            return
        held = [(p, _metadata(cb, p)) for cb in _checkpoint_callbacks(trainer) for p in _held(cb)]
        best = _best_path(trainer)
        self._mirror.reconcile(held, epoch=trainer.current_epoch, step=trainer.global_step, best_path=best)


class _TrackingCheckpointIO:
    """Delegates to the strategy's checkpoint IO (a documented plugin seam) and tells the
    callback about every file written or removed (the checkpoint is stored once on disk)."""

    def __init__(self, inner: Any, callback: _ModelTrackCallback, trainer: Any) -> None:
        self.inner = inner
        self._callback = callback
        self._trainer = trainer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["inner"], name)

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is None:
            self.inner.save_checkpoint(checkpoint, path)
        else:
            self.inner.save_checkpoint(checkpoint, path, storage_options=storage_options)
        cb = self._callback
        safe_call("modeltrack Lightning callback (storing a checkpoint)", cb._on_saved, self._trainer, os.fspath(path))

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)
        cb = self._callback
        safe_call("modeltrack Lightning callback (releasing a checkpoint)", cb._on_removed, os.fspath(path))

    def load_checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.load_checkpoint(*args, **kwargs)

    def teardown(self) -> None:
        try:
            self.inner.teardown()
        finally:
            safe_call("modeltrack Lightning callback (ending the version)", self._callback._io_teardown)


# ---------------------------------------------------------------------- the logger
class _ModelTrackLogger(Member):
    """A Lightning ``Logger`` that records each ``fit`` as a version (see the module docstring).

    ``Trainer(logger=ModelTrackLogger())`` alone, in a list beside other loggers, or with a
    :class:`ModelTrackCallback` (one version either way: the callback and the logger share it).
    Takes the callback's arguments; ``experiment`` is the running :class:`~modeltrack.Version`
    (``None`` before training starts and on ranks other than zero). Checkpoint directories and
    ``trainer.log_dir`` are those Lightning uses without a logger (``save_dir`` defaults to the
    trainer's ``default_root_dir``; ``name`` and ``version`` are empty).

    Example:
        >>> trainer = Trainer(logger=ModelTrackLogger(model="churn"), max_epochs=5)
        >>> trainer.fit(model, datamodule=dm)
        >>> trainer.logger.experiment.ref
        'churn@v3'
    """

    _role = "Logger"

    def __init__(
        self,
        model: str | None = None,
        store: str | None = None,
        *,
        checkpoints: str | None = "best",
        every_n_epochs: int = 1,
        data_fingerprint: bool = True,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        package: str | None = None,
        save_dir: str | None = None,
        _added: bool = False,
    ) -> None:
        super().__init__()
        self._settings = _settings(model, store, checkpoints, every_n_epochs, data_fingerprint, params, tags, package)
        self._save_dir = save_dir
        self._added = _added  # made by a callback for the run, not by the user
        self._mimic = ""
        self._root: str | None = None
        self._callback: _ModelTrackCallback | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_callback": None}

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return self._mimic

    @property
    def save_dir(self) -> str | None:
        return self._save_dir or self._root or os.getcwd()

    @property
    def experiment(self) -> Version | None:
        """The version being recorded (Lightning asks for this first, during setup)."""
        cb = self._callback
        if not self._added and (cb is None or (not cb._fitting and cb._eval is None)):
            safe_call("modeltrack Lightning logger (adding its callback)", self._adopt_trainer, cb is None)
        cb = self._callback
        return cb.version if cb is not None else None

    def _adopt_trainer(self, warn: bool) -> None:
        """Give the trainer that holds this logger a ModelTrackCallback unless it has one; the
        callback binds this logger in its ``setup``. (A Logger is never told its trainer: the
        trainer is the one in the calling frames whose ``loggers`` hold this very object.)"""
        for _, local in patching.callers(6):
            trainer: Any = local.get("trainer")
            if any(lg is self for lg in getattr(trainer, "loggers", None) or ()):
                self._root = trainer.default_root_dir  # before any ModelCheckpoint asks for save_dir
                if not any(isinstance(cb, _ModelTrackCallback) for cb in trainer.callbacks):
                    cb = _concrete("Callback", (_package_of(trainer),))(**self._settings)
                    trainer.callbacks.append(cb)
                return
        if warn:
            warnings.warn(
                "modeltrack: ModelTrackLogger could not find its Trainer, so nothing is recorded; add "
                "callbacks=[ModelTrackCallback()] to the Trainer",
                ModelTrackWarning,
                stacklevel=3,
            )

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        cb = self._callback
        if cb is not None:
            raw = vars(params) if hasattr(params, "__dict__") and not isinstance(params, Mapping) else params
            safe_call("modeltrack Lightning logger (recording hyperparameters)", cb._log_hyperparams, dict(raw))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        cb = self._callback
        if cb is not None:
            safe_call("modeltrack Lightning logger (recording metrics)", cb._log_metrics, metrics, step)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        cb = self._callback
        if cb is not None:
            safe_call("modeltrack Lightning logger (storing a checkpoint)", cb._checkpoint_saved, checkpoint_callback)

    def finalize(self, status: str) -> None:
        """The callback ends the version (it sees the exception itself); nothing to do here."""


_FAMILY = ClassFamily(
    __name__,
    PACKAGES,
    labels={"lightning.pytorch": "lightning", "pytorch_lightning": "pytorch_lightning"},
    aliases={
        "lightning": "lightning.pytorch",
        "pytorch_lightning": "pytorch_lightning",
        "lightning.pytorch": "lightning.pytorch",
        "pytorch-lightning": "pytorch_lightning",
    },
    bases={
        "Callback": lambda pkg: importlib.import_module(pkg).Callback,
        "Logger": lambda pkg: importlib.import_module(pkg + ".loggers").Logger,
    },
    impls={"Callback": _ModelTrackCallback, "Logger": _ModelTrackLogger},
    install_hint="modeltrack's Lightning integration needs PyTorch Lightning: pip install 'modeltrack[lightning]' "
    "(or 'modeltrack[pytorch-lightning]')",
    marker="Trainer",
)

if TYPE_CHECKING:
    ModelTrackCallback = _ModelTrackCallback
    ModelTrackLogger = _ModelTrackLogger


# ---------------------------------------------------------------------- what is captured
def _default_name(pl_module: Any) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "-", type(pl_module).__name__)[:128] or "model"


def _hparams(obj: Any) -> dict[str, Any]:
    """``hparams`` without LightningCLI's bookkeeping keys (``_instantiator``, ``_class_path``)."""
    hp = getattr(obj, "hparams", None)
    try:
        return {k: v for k, v in dict(hp).items() if k not in ("_instantiator", "_class_path")} if hp else {}
    except (TypeError, ValueError):
        return {}


def _norm(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _checkpoint_callbacks(trainer: Any) -> list[Any]:
    return list(getattr(trainer, "checkpoint_callbacks", None) or [])


def _best_path(trainer: Any) -> str | None:
    path = getattr(getattr(trainer, "checkpoint_callback", None), "best_model_path", None)
    return _norm(path) if path else None


def _held(cb: Any, *extra: str) -> list[str]:
    """The files a ModelCheckpoint holds (best, last, top-k), absolute, once each."""
    paths = [getattr(cb, "best_model_path", ""), getattr(cb, "last_model_path", ""), *extra]
    paths += list(getattr(cb, "best_k_models", {}) or {})
    return list(dict.fromkeys(_norm(p) for p in paths if p))


def _owner_of(trainer: Any, path: str) -> Any:
    path = _norm(path)
    for cb in _checkpoint_callbacks(trainer):
        dirpath = getattr(cb, "dirpath", None)
        if path in _held(cb) or (dirpath and os.path.dirname(path) == _norm(str(dirpath)).rstrip("/")):
            return cb
    return None


def _metadata(owner: Any, path: str) -> dict[str, Any]:
    """What a stored checkpoint records of the ModelCheckpoint that wrote it (its score)."""
    meta: dict[str, Any] = {"source": type(owner).__name__ if owner is not None else "Trainer.save_checkpoint"}
    if owner is not None:
        meta["monitor"] = getattr(owner, "monitor", None)
        score = (getattr(owner, "best_k_models", None) or {}).get(path)
        if score is None and getattr(owner, "best_model_path", None) and _norm(owner.best_model_path) == path:
            score = getattr(owner, "best_model_score", None)
        if score is not None:
            meta["score"] = float(score)
    return meta


_TRAINER_SETTINGS = (
    "max_epochs min_epochs max_steps accumulate_grad_batches gradient_clip_val gradient_clip_algorithm "
    "check_val_every_n_epoch val_check_interval limit_train_batches limit_val_batches log_every_n_steps "
    "num_devices num_nodes"
).split()
_CHECKPOINT_SETTINGS = ("monitor", "mode", "save_top_k", "save_last", "every_n_epochs", "save_weights_only")


def _trainer_params(trainer: Any) -> dict[str, Any]:
    out = attributes(trainer, _TRAINER_SETTINGS)
    get = attributes(trainer, ("precision", "accelerator", "strategy", "callbacks", "loggers"))
    out["precision"] = str(get["precision"])
    out["accelerator"] = type(get["accelerator"]).__name__
    out["strategy"] = type(get["strategy"]).__name__
    out["callbacks"] = [type(cb).__name__ for cb in get["callbacks"] or [] if not isinstance(cb, _ModelTrackCallback)]
    out["loggers"] = [type(lg).__name__ for lg in get["loggers"] or [] if not isinstance(lg, _ModelTrackLogger)]
    ckpts = [attributes(cb, _CHECKPOINT_SETTINGS, simple=True) for cb in _checkpoint_callbacks(trainer)]
    if ckpts:
        out["checkpointing"] = ckpts
    return {k: v for k, v in out.items() if v is not None}


def _optimizer_params(trainer: Any) -> dict[str, Any]:
    optimizers = list(getattr(trainer, "optimizers", None) or [])
    configs = list(getattr(trainer, "lr_scheduler_configs", None) or [])
    out = {
        "optimizer" if len(optimizers) == 1 else f"optimizer.{i}": optimizer_settings(o)
        for i, o in enumerate(optimizers)
    }
    for i, cfg in enumerate(configs):
        settings = {"interval": cfg.interval, "frequency": cfg.frequency, **scheduler_settings(cfg.scheduler)}
        if cfg.monitor:
            settings["monitor"] = cfg.monitor
        out["scheduler" if len(configs) == 1 else f"scheduler.{i}"] = settings
    return out


def _log_loader(v: Version, name: str, loader: Any) -> None:
    """Record the fingerprint of ``loader``'s dataset (or its sizes and why it has none)."""
    v.log_data_info(name, **fingerprint_loader(loader))


# ---------------------------------------------------------------------- autolog
_OPTIONS = ("checkpoints", "every_n_epochs", "data_fingerprint", "params", "tags")


def autolog(disable: bool = False, *, model: str | None = None, store: Any = None, **callback_kwargs: Any) -> list[str]:
    """Give every ``Trainer`` a :class:`ModelTrackCallback` (unless it already has one).

    Patches ``Trainer.__init__`` of each Lightning package already imported; the global
    :func:`modeltrack.autolog` calls this again when another one is imported later.
    Enabling twice never patches twice; ``disable=True`` restores the original.

    Args:
        disable: remove the patches.
        model: model name for the versions (default as for the callback).
        store: store URI or object.
        **callback_kwargs: other :class:`ModelTrackCallback` options.

    Returns:
        the packages patched (``["lightning.pytorch", ...]``), empty when disabling.
    """
    if disable:
        patching.disable(_AUTOLOG_KEY)
        return []
    patching.refuse_unknown_options("lightning", callback_kwargs, _OPTIONS)
    options = {"model": model, "store": store, **callback_kwargs}
    _concrete("Callback", _FAMILY.resolve(None))(**options)  # validates the options now
    packages = _FAMILY.imported()

    def install(patcher: patching.Patcher) -> None:
        for pkg in packages:
            trainer_cls = sys.modules[pkg].Trainer
            patcher.setattr(trainer_cls, "__init__", patching.wrap(trainer_cls.__init__, _make_init(pkg, options)))

    patching.enable(_AUTOLOG_KEY, install)
    return packages


def _make_init(package: str, options: dict[str, Any]) -> Callable[..., Any]:
    def around(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
        new = safe_call("modeltrack autolog (adding ModelTrackCallback)", _with_callback, kwargs, package, options)
        return original(self, *args, **(new if new is not None else kwargs))

    return around


def _with_callback(kwargs: dict[str, Any], package: str, options: dict[str, Any]) -> dict[str, Any]:
    callbacks = kwargs.get("callbacks")
    listed = [] if callbacks is None else list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
    if any(isinstance(cb, _ModelTrackCallback) for cb in listed):
        return kwargs
    listed.append(_concrete("Callback", (package,))(**options))
    return {**kwargs, "callbacks": listed}


# ---------------------------------------------------------------------- loading
def artifact_needs_trust(sniffed: Any, **kwargs: Any) -> bool:
    """Loading a Lightning checkpoint unpickles it (``torch.load``): it always needs trust."""
    return True


def load_artifact(
    file: str | os.PathLike[str],
    *,
    record: Mapping[str, Any] | None = None,
    artifact: Mapping[str, Any] | None = None,
    cls: type | None = None,
    map_location: Any = None,
    sniffed: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load a stored checkpoint back as the LightningModule that was trained.

    Called by :func:`modeltrack.load` for versions recorded by this integration.

    Args:
        file: the local checkpoint file.
        record: the version record (``show --json`` shape).
        artifact: the artifact record being loaded.
        cls: the LightningModule class to use instead of the recorded one.
        map_location: passed to ``load_from_checkpoint`` (default ``"cpu"`` unless CUDA is available).
        sniffed: the content's format (unused: checkpoints are always pickles).
        **kwargs: passed to ``load_from_checkpoint`` (e.g. hparams overrides).

    Raises:
        ImportError: the recorded class cannot be imported here.
    """
    import torch

    from modeltrack.loading import import_recorded_class

    record = record or {}
    ref = f"{record.get('model')}@v{record.get('version')}"
    if cls is None:
        target = (record.get("info") or {}).get("module_class")
        cls = import_recorded_class(str(target) if target else None, ref, what="the LightningModule")
    if map_location is None and not torch.cuda.is_available():
        map_location = "cpu"
    try:
        accepts_weights_only = "weights_only" in inspect.signature(cls.load_from_checkpoint).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        accepts_weights_only = False
    if accepts_weights_only:  # load() already asked the user to trust this store: hparams may hold any object
        kwargs.setdefault("weights_only", False)
    module = cls.load_from_checkpoint(os.fspath(file), map_location=map_location, **kwargs)  # type: ignore[attr-defined]
    module.eval()
    return module


__all__ = [
    "CHECKPOINT_KEY",
    "CONFIG_FILE",
    "FINAL_MODEL_FILE",
    "POLICIES",
    "ModelTrackCallback",
    "ModelTrackLogger",
    "artifact_needs_trust",
    "autolog",
    "load_artifact",
]
