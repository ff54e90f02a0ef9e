"""PyTorch Lightning integration: ``Trainer(callbacks=[ModelTrackCallback()])``.

Every ``Trainer.fit`` becomes a numbered version: hyperparameters (the module's and the
datamodule's ``hparams``, trainer settings, optimizers and schedulers), everything logged
with ``self.log`` as per-epoch series, the checkpoints the user's ``ModelCheckpoint``
writes, data fingerprints, and the status (finished, failed, interrupted).

Both ``lightning.pytorch`` and ``pytorch_lightning`` work. They ship distinct ``Callback``
base classes, so :class:`ModelTrackCallback` is a plain class whose ``__new__`` returns an
instance of a subclass made on first use that derives from ``ModelTrackCallback`` *and*
from the ``Callback`` class of each package in use: the package(s) already imported, or
the one named with ``package=``. With both imported, the instance derives from both bases
and either ``Trainer`` accepts it. The subclasses are module attributes created on demand
(module ``__getattr__``), so instances pickle (``ddp_spawn``) and nothing of Lightning is
imported by importing this module.

Example:
    >>> from lightning.pytorch import Trainer
    >>> from modeltrack.integrations.lightning import ModelTrackCallback
    >>> trainer = Trainer(max_epochs=3, callbacks=[ModelTrackCallback(model="mnist")])
    >>> trainer.fit(module, datamodule=dm)          # -> mnist@v1, mnist@v2, ...
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from typing_extensions import Self, override

from modeltrack import config, patching
from modeltrack.capture.datasets import fingerprint_loader, flatten_loaders
from modeltrack.capture.model import attributes, module_architecture, optimizer_settings, scheduler_settings
from modeltrack.checkpoints import POLICIES, CheckpointMirror, CheckpointPolicy
from modeltrack.errors import InvalidValueError
from modeltrack.patching import Patcher, safe_call, wrap
from modeltrack.patching import disable as _disable_patches
from modeltrack.patching import enable as _enable_patches
from modeltrack.tracking import Version, start

if TYPE_CHECKING:
    from lightning.pytorch import Callback as _CallbackBase
    from lightning.pytorch import LightningModule, Trainer

    from modeltrack.stores import Store
else:
    _CallbackBase = object

#: the two distributions, by the module that holds ``Trainer`` and ``Callback``
PACKAGES = ("lightning.pytorch", "pytorch_lightning")
#: what :meth:`Version.set_framework` records (``load`` dispatches on it)
FRAMEWORK = "lightning"
#: artifact names inside the version
CHECKPOINT_DIR = "checkpoints"
FINAL_MODEL_FILE = "model.ckpt"
#: the key under which a checkpoint carries the version that wrote it
CHECKPOINT_KEY = "modeltrack"
_AUTOLOG_KEY = "lightning"
_LABELS = {"lightning.pytorch": "lightning", "pytorch_lightning": "pytorch_lightning"}


# ---------------------------------------------------------------------- dual-package classes
def _class_name(packages: tuple[str, ...]) -> str:
    return "ModelTrackCallback_" + "_and_".join(_LABELS[p] for p in packages)


_CLASSES: dict[tuple[str, ...], type] = {}


def _callback_class(packages: Iterable[str]) -> type[ModelTrackCallback]:
    """The ``ModelTrackCallback`` subclass deriving from the ``Callback`` of each package."""
    key = tuple(p for p in PACKAGES if p in set(packages))
    if not key:
        raise InvalidValueError(f"no Lightning package among {list(packages)!r}; use {PACKAGES}", value=packages)
    cls = _CLASSES.get(key)
    if cls is None:
        bases = tuple(importlib.import_module(p).Callback for p in key)
        name = _class_name(key)
        cls = type(
            name,
            (ModelTrackCallback, *bases),
            {"__module__": __name__, "__qualname__": name, "__doc__": ModelTrackCallback.__doc__},
        )
        _CLASSES[key] = cls
        globals()[name] = cls
    return cls


def __getattr__(name: str) -> Any:
    # Pickle (ddp_spawn workers) looks the concrete classes up by name in a fresh process.
    for key in ((PACKAGES[0],), (PACKAGES[1],), PACKAGES):
        if _class_name(key) == name:
            return _callback_class(key)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _imported_packages() -> list[str]:
    """Lightning packages imported in this process (whose ``Trainer`` is defined)."""
    return [p for p in PACKAGES if hasattr(sys.modules.get(p), "Trainer")]


def _installed_packages() -> list[str]:
    import importlib.util

    found = []
    for p in PACKAGES:
        try:
            if importlib.util.find_spec(p.split(".")[0]) is not None:
                found.append(p)
        except (ImportError, ValueError):
            continue
    return found


def _package_of(obj: Any) -> str:
    """``"lightning.pytorch"`` or ``"pytorch_lightning"``: the package of a Trainer/module."""
    return "pytorch_lightning" if type(obj).__module__.startswith("pytorch_lightning") else "lightning.pytorch"


def _resolve_packages(package: str | None) -> list[str]:
    if package is not None:
        wanted = {
            "lightning": "lightning.pytorch",
            "lightning.pytorch": "lightning.pytorch",
            "pytorch_lightning": "pytorch_lightning",
            "pytorch-lightning": "pytorch_lightning",
        }.get(package)
        if wanted is None:
            raise InvalidValueError(
                f"package={package!r} is not a Lightning package; use 'lightning' or 'pytorch_lightning'",
                value=package,
            )
        return [wanted]
    packages = _imported_packages() or _installed_packages()
    if not packages:
        raise ImportError(
            "ModelTrackCallback needs PyTorch Lightning: pip install 'modeltrack[lightning]' "
            "(or 'modeltrack[pytorch-lightning]')"
        )
    return packages


def _validate(checkpoints: str | None, every_n_epochs: int, log_every_n_steps: int | None) -> CheckpointPolicy:
    if log_every_n_steps is not None and (not isinstance(log_every_n_steps, int) or log_every_n_steps < 0):
        raise InvalidValueError(
            f"log_every_n_steps={log_every_n_steps!r} must be None (step-only metrics at the Trainer's "
            f"cadence), 0 (no step values) or an int >= 1",
            value=log_every_n_steps,
        )
    return CheckpointPolicy(checkpoints, every_n_epochs=every_n_epochs, checkpoint_budget=None)


# ---------------------------------------------------------------------- the callback
class ModelTrackCallback(_CallbackBase):
    """Record every ``Trainer.fit`` as a new version of ``model``.

    Works with ``lightning.pytorch`` and ``pytorch_lightning`` alike (see the module
    docstring). Only global rank zero writes; other ranks run the same hooks without
    writing. Tracking failures become warnings (errors when ``MODELTRACK_STRICT=1``);
    training is never stopped by them.

    Args:
        model: model name; default ``MODELTRACK_MODEL``, else the LightningModule's class name.
        store: store URI or object; default ``MODELTRACK_STORE``.
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
        log_every_n_steps: step-level values: ``None`` (default) records metrics logged
            only per step (``on_epoch=False``, the ``training_step`` default) every
            ``Trainer(log_every_n_steps)`` steps; ``N`` records every per-step value (those
            also aggregated per epoch as ``NAME_step``) every N steps; ``0`` records none.
        data_fingerprint: fingerprint the datasets behind the train/val dataloaders.
        params: extra hyperparameters to record.
        tags: tags for the version.
        package: force ``"lightning"`` or ``"pytorch_lightning"`` instead of detecting it.

    Attributes:
        version: the :class:`~modeltrack.Version` of the last ``fit`` on this process
            (``None`` on ranks other than zero, or before ``fit``).

    Example:
        >>> trainer = Trainer(max_epochs=5, callbacks=[ModelCheckpoint(monitor="val_loss"),
        ...                                            ModelTrackCallback(model="churn")])
        >>> trainer.fit(model, datamodule=dm)
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is ModelTrackCallback:
            cls = _callback_class(_resolve_packages(kwargs.get("package")))  # type: ignore[assignment]
        return super().__new__(cls)  # type: ignore[misc]

    def __init__(
        self,
        model: str | None = None,
        store: Store | str | None = None,
        *,
        checkpoints: str | None = "best",
        every_n_epochs: int = 1,
        log_every_n_steps: int | None = None,
        data_fingerprint: bool = True,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        package: str | None = None,
    ) -> None:
        self._policy = _validate(checkpoints, every_n_epochs, log_every_n_steps)
        self.model = model
        self.store = store
        self.checkpoints = checkpoints
        self.every_n_epochs = every_n_epochs
        self.log_every_n_steps = log_every_n_steps
        self.data_fingerprint = data_fingerprint
        self.params = dict(params or {})
        self.tags = dict(tags or {})
        self.package = package
        self.version: Version | None = None
        self._reset()

    def _reset(self) -> None:
        self._v: Version | None = None  # the version being written (rank zero, during fit)
        self._mirror: CheckpointMirror | None = None  # the checkpoints stored (rank zero, during fit)
        self._io: _TrackingCheckpointIO | None = None
        self._io_host: Any = None
        self._own_save = False
        self._tmpdir: str | None = None
        self._pending_epoch: tuple[int, int] | None = None
        self._seen: dict[str, Any] = {}
        self._last_step = -1
        self._data_done: set[str] = set()
        self._failure: BaseException | None = None
        self._fitting = False

    def __getstate__(self) -> dict[str, Any]:
        # Workers of ddp_spawn get the configuration, never the running state.
        state = dict(self.__dict__)
        state["version"] = None
        state.update({k: None for k in ("_v", "_mirror", "_io", "_io_host", "_failure")})
        return state

    def __repr__(self) -> str:
        where = self.version.ref if self.version is not None else self.model or "?"
        return f"<ModelTrackCallback {where} checkpoints={self.checkpoints!r}>"

    # ------------------------------------------------------------------ helpers
    def _guard(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return safe_call(f"modeltrack Lightning callback ({what})", fn, *args, **kwargs)

    @property
    def _active(self) -> bool:
        v = self._v
        return v is not None and not v.closed

    # ------------------------------------------------------------------ lifecycle
    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._reset()
        self._fitting = True
        if not trainer.is_global_zero:
            return
        self._guard("starting the version", self._start, trainer, pl_module)
        if self._v is not None:
            self._guard("following checkpoints", self._install_io, trainer)

    def _start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        name = self.model or config.model_name() or _default_name(pl_module)
        v = start(name, store=self.store, tags=self.tags or None)
        self._v = self.version = v
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
        self._guard("recording hyperparameters", v.log_params, _hparams(pl_module))
        if dm is not None:
            self._guard("recording datamodule hyperparameters", v.log_params, {"data": _hparams(dm)})
        self._guard("recording trainer settings", v.log_params, {"trainer": _trainer_params(trainer)})
        if self.params:
            self._guard("recording params", v.log_params, self.params)

    @override
    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        v = self._v
        if v is not None and not v.closed:
            self._guard("recording optimizers", lambda: v.log_params(_optimizer_params(trainer)))
            self._guard("recording the architecture", lambda: v.log_info(**module_architecture(pl_module)))

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active and self.data_fingerprint:
            self._guard("fingerprinting the training data", self._log_data, "train", trainer.train_dataloader)
            self._guard("fingerprinting the validation data", self._log_data, "val", trainer.val_dataloaders)

    @override
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active and self.data_fingerprint and self._fitting and "val" not in self._data_done:
            self._guard("fingerprinting the validation data", self._log_data, "val", trainer.val_dataloaders)

    def _log_data(self, name: str, loaders: Any) -> None:
        if loaders is None or name in self._data_done:
            return
        self._data_done.add(name)
        v = self._v
        assert v is not None
        for sub, loader in flatten_loaders(name, loaders):
            self._guard(f"fingerprinting {sub}", _log_loader, v, sub, loader)

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._pending_epoch is not None and self._active:
            self._guard("recording epoch metrics", self._close_epoch, trainer)

    @override
    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = self.log_every_n_steps
        if every == 0 or self._v is None:
            return
        step = trainer.global_step
        n = every or getattr(trainer, "log_every_n_steps", 50)
        if n and step % n == 0 and step != self._last_step and self._active:
            self._last_step = step
            self._guard("recording step metrics", self._log_step, trainer, step)

    def _log_step(self, trainer: Trainer, step: int) -> None:
        results = _results(trainer, "train")
        if results is not None:
            every = self.log_every_n_steps
            keys = [
                f"{n}_step" if on_ep else n
                for n, on_step, on_ep in _logged(results)
                if on_step and (every or not on_ep)
            ]
            self._log_fresh(trainer.callback_metrics, keys, step, trainer.current_epoch)

    @override
    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active and self._fitting and not trainer.sanity_checking:
            self._guard("recording validation metrics", self._log_val, trainer)

    def _log_val(self, trainer: Trainer) -> None:
        values = trainer.callback_metrics
        names = _epoch_names(_results(trainer, "val"), values, valid_only=True)
        self._log_fresh(values, names, trainer.global_step, trainer.current_epoch)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning computes the epoch aggregates after every callback's on_train_epoch_end
        # (and after LightningModule.on_train_epoch_end may log more): they are recorded
        # at the next epoch start, or at the end of training.
        epoch = trainer.current_epoch
        self._pending_epoch = (epoch, trainer.global_step)
        if self._policy.name == "every_n" and self._policy.due(epoch) and not _checkpoint_callbacks(trainer):
            self._guard(
                "saving a checkpoint", self._save_own, trainer, f"{CHECKPOINT_DIR}/epoch={epoch}.ckpt", "checkpoint"
            )

    def _close_epoch(self, trainer: Trainer) -> None:
        assert self._pending_epoch is not None
        epoch, step = self._pending_epoch
        self._pending_epoch = None
        values = trainer.callback_metrics
        self._log_fresh(values, _epoch_names(_results(trainer, "train"), values), step, epoch)

    def _log_fresh(self, values: Mapping[str, Any], names: list[str], step: int, epoch: int) -> None:
        """Record the values of ``names`` not recorded yet (Lightning keeps stale objects around)."""
        points = {}
        for name in names:
            value = values.get(name)
            if value is not None and value is not self._seen.get(name):
                self._seen[name] = value
                points[name] = value
        if points and self._v is not None:
            self._v.log_metrics(points, step=step, epoch=epoch)

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._pending_epoch is not None and self._active:
            self._guard("recording epoch metrics", self._close_epoch, trainer)
        if self._policy.name != "none" and not _checkpoint_callbacks(trainer):
            self._guard("saving the final weights", self._save_own, trainer, FINAL_MODEL_FILE, "model")

    def _save_own(self, trainer: Trainer, name: str, kind: str) -> None:
        """Save a checkpoint ourselves (every rank must call ``save_checkpoint``)."""
        if not self._fitting:
            return
        if self._tmpdir is None:
            self._tmpdir = tempfile.mkdtemp(prefix="modeltrack-lightning-")
        path = os.path.join(self._tmpdir, name.replace("/", "_"))
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

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._active:
            self._guard("storing the checkpoints", self._reconcile, trainer)
            self._end(None)

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self._uninstall_io()
        if self._active:  # fit ended without on_fit_end or on_exception (should not happen)
            self._end(self._failure)
        self._cleanup()

    @override
    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not self._fitting:
            return
        if self._pending_epoch is not None and self._active:
            self._guard("recording epoch metrics", self._close_epoch, trainer)
        self._failure = exception
        self._cleanup()  # the teardown hook does not run after an exception
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

    # ------------------------------------------------------------------ resume
    @override
    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        v = self._v
        if v is not None and not v.closed:
            checkpoint[CHECKPOINT_KEY] = {"model": v.model, "version": v.number, "ref": v.ref}

    @override
    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        if self._active and self._fitting:
            self._guard("recording the resumed version", self._log_resume, trainer, checkpoint)

    def _log_resume(self, trainer: Trainer, checkpoint: dict[str, Any]) -> None:
        assert self._v is not None
        path = getattr(trainer, "ckpt_path", None)
        meta = checkpoint.get(CHECKPOINT_KEY)
        parent = None
        if isinstance(meta, dict) and meta.get("model") and meta.get("version"):
            parent = f"{meta['model']}@v{int(meta['version'])}"
        elif path and os.path.isfile(str(path)):
            parent = self._v.find_stored(str(path))
        info = {
            "checkpoint": os.path.basename(str(path)) if path else None,
            "epoch": checkpoint.get("epoch"),
            "global_step": checkpoint.get("global_step"),
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
        path = os.path.abspath(path)
        owner = _owner_of(trainer, path)
        self._mirror.written(
            path,
            epoch=trainer.current_epoch,
            step=trainer.global_step,
            best_path=_best_path(trainer),
            owned=owner is not None,
            metadata=_metadata(owner, path),
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
        self._mirror.reconcile(
            held, epoch=trainer.current_epoch, step=trainer.global_step, best_path=_best_path(trainer)
        )


class _TrackingCheckpointIO:
    """Delegates to the strategy's checkpoint IO and tells the callback about every file
    written or removed (the checkpoint is stored as soon as it is on disk)."""

    def __init__(self, inner: Any, callback: ModelTrackCallback, trainer: Any) -> None:
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


# ---------------------------------------------------------------------- what is captured
def _default_name(pl_module: Any) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]", "-", type(pl_module).__name__)[:128] or "model"


def _hparams(obj: Any) -> dict[str, Any]:
    hp = getattr(obj, "hparams", None)
    try:
        return dict(hp) if hp else {}
    except (TypeError, ValueError):
        return {}


def _checkpoint_callbacks(trainer: Any) -> list[Any]:
    return list(getattr(trainer, "checkpoint_callbacks", None) or [])


def _best_path(trainer: Any) -> str | None:
    cb = getattr(trainer, "checkpoint_callback", None)
    path = getattr(cb, "best_model_path", None)
    return os.path.abspath(path) if path else None


def _held(cb: Any, *extra: str) -> list[str]:
    """The files a ModelCheckpoint holds (best, last, top-k), absolute, once each."""
    paths = [getattr(cb, "best_model_path", ""), getattr(cb, "last_model_path", ""), *extra]
    paths += list(getattr(cb, "best_k_models", {}) or {})
    return list(dict.fromkeys(os.path.abspath(p) for p in paths if p))


def _owner_of(trainer: Any, path: str) -> Any:
    for cb in _checkpoint_callbacks(trainer):
        dirpath = getattr(cb, "dirpath", None)
        if path in _held(cb, getattr(cb, "_last_checkpoint_saved", "")) or (
            dirpath and os.path.dirname(path) == os.path.abspath(dirpath)
        ):
            return cb
    return None


def _metadata(owner: Any, path: str) -> dict[str, Any]:
    """What a stored checkpoint records of the ModelCheckpoint that wrote it (its score)."""
    meta: dict[str, Any] = {"source": type(owner).__name__ if owner is not None else "Trainer.save_checkpoint"}
    if owner is not None:
        meta["monitor"] = getattr(owner, "monitor", None)
        score = (getattr(owner, "best_k_models", None) or {}).get(path)
        if score is None and getattr(owner, "best_model_path", None) and os.path.abspath(owner.best_model_path) == path:
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
    get = attributes(trainer, ("precision", "accelerator", "strategy", "callbacks"))
    out["precision"] = str(get["precision"])
    out["accelerator"] = type(get["accelerator"]).__name__
    out["strategy"] = type(get["strategy"]).__name__
    out["callbacks"] = [type(cb).__name__ for cb in get["callbacks"] or [] if not isinstance(cb, ModelTrackCallback)]
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


# ---------------------------------------------------------------------- metrics
def _results(trainer: Any, stage: str) -> Any:
    """Lightning's result collection of the train or validation loop (private API; ``None``
    when it moved, and the callers fall back to ``callback_metrics`` alone)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    if stage == "val":
        loop = getattr(loop, "val_loop", None)
    results = getattr(loop, "_results", None)
    return results if hasattr(results, "items") else None


def _epoch_names(results: Any, values: Mapping[str, Any], *, valid_only: bool = False) -> list[str]:
    """The names of the per-epoch values (all but ``*_step``/``*_epoch`` without ``results``)."""
    if results is None:
        return [k for k in values if not k.endswith(("_step", "_epoch"))]
    return [n for n, _, on_epoch in _logged(results, valid_only=valid_only) if on_epoch]


def _logged(results: Any, *, valid_only: bool = False) -> list[tuple[str, bool, bool]]:
    """``(name as in callback_metrics, on_step, on_epoch)`` of every ``self.log`` key."""
    out = []
    items = results.valid_items() if valid_only and hasattr(results, "valid_items") else results.items()
    for _, rm in items:
        meta = getattr(rm, "meta", None)
        if meta is None:
            continue
        name = meta.name
        if getattr(meta, "add_dataloader_idx", False) and getattr(meta, "dataloader_idx", None) is not None:
            name += f"/dataloader_idx_{meta.dataloader_idx}"
        out.append((name, bool(meta.on_step), bool(meta.on_epoch)))
    return out


def _log_loader(v: Version, name: str, loader: Any) -> None:
    """Record the fingerprint of ``loader``'s dataset (or its sizes and why it has none)."""
    v.log_data_info(name, **fingerprint_loader(loader))


# ---------------------------------------------------------------------- autolog
def autolog(
    disable: bool = False, *, model: str | None = None, store: Store | str | None = None, **callback_kwargs: Any
) -> list[str]:
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
        _disable_patches(_AUTOLOG_KEY)
        return []
    patching.refuse_unknown_options(
        "lightning",
        callback_kwargs,
        ("checkpoints", "every_n_epochs", "log_every_n_steps", "data_fingerprint", "params", "tags"),
    )
    _validate(
        callback_kwargs.get("checkpoints", "best"),
        callback_kwargs.get("every_n_epochs", 1),
        callback_kwargs.get("log_every_n_steps"),
    )
    packages = _imported_packages()
    options = {"model": model, "store": store, **callback_kwargs}

    def install(patcher: Patcher) -> None:
        for pkg in packages:
            trainer_cls = sys.modules[pkg].Trainer
            patcher.setattr(trainer_cls, "__init__", wrap(trainer_cls.__init__, _make_init(pkg, options)))

    _enable_patches(_AUTOLOG_KEY, install)
    return packages


def _make_init(package: str, options: dict[str, Any]) -> Callable[..., Any]:
    def around(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
        new = safe_call(
            "modeltrack autolog (adding ModelTrackCallback to the Trainer)", _with_callback, kwargs, package, options
        )
        return original(self, *args, **(new if new is not None else kwargs))

    return around


def _with_callback(kwargs: dict[str, Any], package: str, options: dict[str, Any]) -> dict[str, Any]:
    callbacks = kwargs.get("callbacks")
    if callbacks is None:
        listed: list[Any] = []
    elif isinstance(callbacks, (list, tuple)):
        listed = list(callbacks)
    else:
        listed = [callbacks]
    if any(isinstance(cb, ModelTrackCallback) for cb in listed):
        return kwargs
    listed.append(_callback_class((package,))(**options))
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

    record = record or {}
    ref = f"{record.get('model')}@v{record.get('version')}"
    if cls is None:
        from modeltrack.loading import import_recorded_class

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
    "FINAL_MODEL_FILE",
    "POLICIES",
    "ModelTrackCallback",
    "artifact_needs_trust",
    "autolog",
    "load_artifact",
]
