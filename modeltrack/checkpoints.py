"""Checkpoint policies and the ledger of a version's checkpoints, shared by every framework.

An integration only says how its framework saves a model to a path (and, to defer a write,
how it captures and restores the model's state in memory) and translates its epoch hooks
into ledger calls. Which epochs are checkpointed, which stored checkpoint is the best by the
monitored metric, which one a policy no longer keeps (released, so ``gc`` can free it) and
whether a write is worth its cost now are decided here, once, for every framework.

Policies (the ``checkpoints=`` option of every integration):

- ``"best"``: a checkpoint whenever the monitored metric improves; the previous best is
  released.
- ``"last"``: the latest epoch only; the previous one is released.
- ``"every_n"``: every ``every_n_epochs``-th epoch, all kept; those that improved on the
  best so far are marked best.
- ``"all"``: every epoch, all kept (``"every_n"`` with a period of 1).
- ``"none"`` (or ``None``): no checkpoint.

The monitor is the metric that decides "best": by default ``val_loss`` when the epoch's
metrics have it, else ``loss``; its goal (``"min"`` / ``"max"``) is guessed from its name
with :func:`modeltrack.goals.metric_goal` unless given.

Writes are budgeted: saving a model costs tens of milliseconds, so with short epochs saving
on every improvement would dominate the cost of tracking. With a budget (default 0.01), a
``"best"`` or ``"last"`` checkpoint is written at once only when all checkpoint writes so far
plus this one cost at most that share of the time since training began; otherwise the state
is captured in memory (when smaller than :data:`MAX_SNAPSHOT_BYTES`) and written at the next
affordable epoch, at the end of training (where the final model file serves when it holds
the same state), or when training fails. With epochs of a few seconds or more every
checkpoint is written at once; only a process killed outright can lose a deferred one. A
budget of ``None`` writes every checkpoint at once.

Example:
    A framework integration (here a Lightning one) supplies a :class:`StateWriter` and
    calls the ledger from its hooks:

    >>> class LightningState:
    ...     def __init__(self, trainer): self.trainer = trainer
    ...     def save(self, path): self.trainer.save_checkpoint(path)
    ...     def capture(self): return copy.deepcopy(self.trainer.lightning_module.state_dict())
    ...     def restore(self, state): self.trainer.lightning_module.load_state_dict(state)
    >>> policy = CheckpointPolicy("best", monitor="val_acc")  # goal "max", from the name
    >>> ledger = CheckpointLedger(version, policy, version.scratch_dir(), LightningState(trainer),
    ...                           name_format="checkpoints/epoch-{epoch:03d}.ckpt",
    ...                           epochs=trainer.max_epochs, framework="lightning")
    >>> ledger.epoch_end(epoch, trainer.global_step, trainer.callback_metrics)  # each epoch
    >>> ledger.finish(final=None)   # training ended
    >>> ledger.abort()              # training failed: write a deferred best checkpoint
"""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InvalidValueError, ModelTrackWarning
from .goals import metric_goal

if TYPE_CHECKING:
    from .tracking import Version

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "POLICIES",
    "CheckpointLedger",
    "CheckpointMirror",
    "CheckpointPolicy",
    "StateWriter",
]

#: the checkpoint policies (``None`` is accepted as ``"none"``)
POLICIES = ("best", "last", "every_n", "all", "none")
#: largest model state kept in memory to defer a checkpoint write
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024


class StateWriter(Protocol):
    """What the ledger needs of a framework: the live model's state, written or held."""

    def save(self, path: Path) -> None:
        """Write the live model (weights and optimizer state) to ``path``."""

    def capture(self) -> Any:
        """A copy of the live state, held in memory for a deferred write."""

    def restore(self, state: Any) -> None:
        """Put a state returned by :meth:`capture` back into the live model."""


class CheckpointPolicy:
    """A validated checkpoint policy: which epochs to keep, by which metric.

    Args:
        checkpoints: one of :data:`POLICIES`, or ``None`` for ``"none"``.
        monitor: the metric that decides "best" (default: ``val_loss`` when present, else
            ``loss``).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (guessed from the monitor's name).
        every_n_epochs: period of ``"every_n"`` (``"all"`` is period 1).
        checkpoint_budget: share of training time checkpoint writes may take before
            ``"best"`` / ``"last"`` writes are deferred; ``None`` writes each at once.

    Raises:
        InvalidValueError: a setting is invalid (the message names it).
    """

    def __init__(
        self,
        checkpoints: str | None = "best",
        *,
        monitor: str | None = None,
        mode: str = "auto",
        every_n_epochs: int = 1,
        checkpoint_budget: float | None = 0.01,
    ) -> None:
        name = "none" if checkpoints is None else checkpoints
        if name not in POLICIES:
            raise InvalidValueError(
                f"checkpoints={checkpoints!r} is not a policy; use one of {', '.join(map(repr, POLICIES))}",
                value=checkpoints,
            )
        if mode not in ("auto", "min", "max"):
            raise InvalidValueError(f"mode={mode!r} is invalid; use 'auto', 'min' or 'max'", value=mode)
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise InvalidValueError(
                f"every_n_epochs={every_n_epochs!r} is invalid; use an integer >= 1", value=every_n_epochs
            )
        if checkpoint_budget is not None and not (
            isinstance(checkpoint_budget, (int, float)) and 0 <= checkpoint_budget <= 1
        ):
            raise InvalidValueError(
                f"checkpoint_budget={checkpoint_budget!r} is invalid; use a fraction in [0, 1] or None",
                value=checkpoint_budget,
            )
        self.name: str = name
        self.monitor = monitor
        self.mode = mode
        self.every_n_epochs = 1 if name == "all" else every_n_epochs
        self.budget = checkpoint_budget

    def __repr__(self) -> str:
        return f"CheckpointPolicy({self.name!r}, monitor={self.monitor!r}, mode={self.mode!r})"

    def periodic(self) -> bool:
        """Whether epochs are kept by period (``"every_n"``, ``"all"``) rather than by role."""
        return self.name in ("every_n", "all")

    def due(self, epoch: int) -> bool:
        """Whether a periodic policy checkpoints this (0-based) epoch."""
        return self.periodic() and (epoch + 1) % self.every_n_epochs == 0


class _Snapshot:
    """A captured state of one epoch, held until written."""

    def __init__(self, state: Any, epoch: int, step: int, value: float | None) -> None:
        self.state, self.epoch, self.step, self.value = state, epoch, step, value


class CheckpointLedger:
    """Writes a version's checkpoints by a policy and keeps track of the best and the last.

    Args:
        version: the running version the checkpoints are logged to.
        policy: what to keep.
        directory: where checkpoint files are written before being logged.
        writer: the framework's side (see :class:`StateWriter`).
        name_format: artifact name of an epoch's checkpoint (``{epoch}`` is 0-based).
        epochs: the number of epochs training will run, when known.
        final_model: the integration stores a final model file at the end, which can serve
            as the last epoch's checkpoint (so that epoch's write is deferred to it).
        state_bytes: size of the model state (decides whether it can be held in memory).
        started: :func:`time.perf_counter` when training began (default: now).
        framework: the framework's name, for messages.
        clock: the clock of the budget (tests pass a fake one).
    """

    def __init__(
        self,
        version: Version,
        policy: CheckpointPolicy,
        directory: str | Path,
        writer: StateWriter,
        *,
        name_format: str = "checkpoints/epoch-{epoch:03d}",
        epochs: int | None = None,
        final_model: bool = False,
        state_bytes: int = 0,
        max_snapshot_bytes: int = MAX_SNAPSHOT_BYTES,
        started: float | None = None,
        framework: str = "training",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.version = version
        self.policy = policy
        self.directory = Path(directory)
        self.writer = writer
        self.name_format = name_format
        self.epochs = epochs
        self.final_model = final_model
        self.state_bytes = state_bytes
        self.max_snapshot_bytes = max_snapshot_bytes
        self.framework = framework
        self._clock = clock
        self._started = clock() if started is None else started
        #: the monitored metric, once known (the first epoch's metrics decide the default)
        self.monitor: str | None = None
        #: ``"min"`` or ``"max"``: which way the monitor improves
        self.goal = "min"
        #: the best monitored value so far
        self.best_value: float | None = None
        #: artifact names of the checkpoints now marked best / kept as the last
        self.best_name: str | None = None
        self.last_name: str | None = None
        self.write_cost = 0.0
        self._save_cost: float | None = None
        self._pending: _Snapshot | None = None
        self._pending_last: tuple[int, int] | None = None

    # ------------------------------------------------------------------ decisions
    def name(self, epoch: int) -> str:
        """The artifact name of an epoch's checkpoint."""
        return self.name_format.format(epoch=epoch)

    def resolve_monitor(self, metrics: Mapping[str, Any]) -> str:
        """The monitored metric (fixed at the first call) and its goal; warns when the
        metrics lack it."""
        if self.monitor is None:
            name = self.policy.monitor or ("val_loss" if "val_loss" in metrics else "loss")
            self.monitor = name
            self.goal = self.policy.mode if self.policy.mode != "auto" else (metric_goal(name) or "min")
            if name not in metrics:
                warnings.warn(
                    f"modeltrack: checkpoint monitor {name!r} is not in the {self.framework} metrics "
                    f"({', '.join(sorted(metrics)) or 'none'}); the best checkpoint cannot be chosen",
                    ModelTrackWarning,
                    stacklevel=3,
                )
        return self.monitor

    def improved(self, value: float | None) -> bool:
        """Whether ``value`` beats the best so far (the first number always does; NaN never)."""
        if value is None or math.isnan(value):
            return False
        if self.best_value is None:
            return True
        return value < self.best_value if self.goal == "min" else value > self.best_value

    def affordable(self, epoch: int) -> bool:
        """Whether a write now keeps checkpoint writes within the budget. The last epoch's is
        always deferred when a final model file comes next and can serve as it."""
        budget = self.policy.budget
        if budget is None:
            return True
        if (
            self.final_model
            and self.epochs is not None
            and epoch + 1 >= self.epochs
            and self.state_bytes <= self.max_snapshot_bytes
        ):
            return False
        # Before the first save, guess its cost from the model's size.
        expected = self._save_cost if self._save_cost is not None else 0.02 + self.state_bytes / 100e6
        return self.write_cost + expected <= budget * (self._clock() - self._started)

    # ------------------------------------------------------------------ hooks
    def epoch_end(self, epoch: int, step: int, metrics: Mapping[str, Any]) -> None:
        """Checkpoint an epoch that has ended, by the policy (its metrics decide "best")."""
        if self.policy.name == "none":
            return
        raw = metrics.get(self.resolve_monitor(metrics))
        value = float(raw) if isinstance(raw, (int, float)) else None
        improved = self.improved(value)
        if improved:
            self.best_value = value
        if self.policy.periodic():
            if self.policy.due(epoch):
                self.log(self.save(self.name(epoch)), epoch, step, value, best=improved)
        elif self.policy.name == "last":
            if self.affordable(epoch):
                self.keep_last(self.save(self.name(epoch)), epoch, step)
            else:
                self._pending_last = (epoch, step)
        elif improved:
            if self.affordable(epoch) or self.state_bytes > self.max_snapshot_bytes:
                self._pending = None
                self.keep_best(self.save(self.name(epoch)), epoch, step, value)
            else:
                self._pending = _Snapshot(self.writer.capture(), epoch, step, value)

    def finish(self, final: Path | None = None, final_epoch: int | None = None) -> None:
        """Write the deferred checkpoints at the end of training.

        Args:
            final: the final model file, if one was written.
            final_epoch: the epoch whose state ``final`` holds (``None`` when unknown, e.g.
                when a callback restored other weights): a deferred checkpoint of that epoch
                is a copy of it rather than another save.
        """
        if self._pending is not None:
            self._write_snapshot(self._pending, final, final_epoch)
        if self._pending_last is not None:
            epoch, step = self._pending_last
            if final is not None and epoch == final_epoch:
                self.keep_last(self._copy_as(final, self.name(epoch)), epoch, step)
            else:
                self.keep_last(self.save(self.name(epoch)), epoch, step)

    def abort(self) -> None:
        """Training failed: write the deferred best checkpoint (the live state is mid-epoch,
        so a deferred "last" one is dropped)."""
        self._pending_last = None
        if self._pending is not None:
            self._write_snapshot(self._pending, None, None)

    # ------------------------------------------------------------------ bookkeeping
    def log(self, path: Path, epoch: int, step: int, value: float | None, *, best: bool = False) -> str:
        """Log a checkpoint file as the artifact of ``epoch``; return its name."""
        name = self.name(epoch)
        meta = {"monitor": self.monitor, "value": value} if self.monitor else None
        self.version.log_artifact(
            path, kind="checkpoint", name=name, step=step, epoch=epoch, best=best or None, metadata=meta
        )
        return name

    def keep_best(self, path: Path, epoch: int, step: int, value: float | None) -> None:
        """Log the new best checkpoint and release the previous best."""
        name = self.log(path, epoch, step, value, best=True)
        if self.best_name is not None and self.best_name != name:
            self.version.release_artifact(self.best_name)
        self.best_name = name

    def keep_last(self, path: Path, epoch: int, step: int) -> None:
        """Log the latest checkpoint and release the previous one."""
        name = self.log(path, epoch, step, None)
        if self.last_name is not None and self.last_name != name:
            self.version.release_artifact(self.last_name)
        self.last_name = name
        self._pending_last = None

    def mark_best(self, name: str) -> None:
        """Mark an already logged checkpoint as the best (e.g. chosen by the framework)."""
        if name != self.best_name:
            self.version.mark_best(name, kind="checkpoint")
            self.best_name = name

    # ------------------------------------------------------------------ files
    def save(self, name: str) -> Path:
        """Save the live model as ``name`` under the directory, timing the write."""
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = self._clock()
        self.writer.save(path)
        self._save_cost = self._clock() - t
        self.write_cost += self._save_cost
        return path

    def _copy_as(self, src: Path, name: str) -> Path:
        dst = self.directory / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return dst

    def _write_snapshot(self, snap: _Snapshot, final: Path | None, final_epoch: int | None) -> None:
        """Write a deferred best checkpoint; the live state is left exactly as it was."""
        self._pending = None
        name = self.name(snap.epoch)
        if final is not None and snap.epoch == final_epoch:
            path = self._copy_as(final, name)  # the best epoch is the last: the final file is it
        else:
            current = self.writer.capture()
            self.writer.restore(snap.state)
            try:
                path = self.save(name)
            finally:
                self.writer.restore(current)
        self.keep_best(path, snap.epoch, snap.step, snap.value)


class _Mirrored:
    """A stored file of a :class:`CheckpointMirror`."""

    def __init__(self, name: str, sig: tuple[int, int], keep: bool, owned: bool) -> None:
        self.name, self.sig, self.keep, self.owned = name, sig, keep, owned


class CheckpointMirror:
    """The ledger of checkpoint files a framework writes and deletes itself (Lightning's
    ``ModelCheckpoint``): the framework decides which files exist and which is its best;
    the mirror stores each file as soon as it is written, by the same :class:`CheckpointPolicy`
    names, and releases what the policy no longer keeps.

    - ``"best"``: mirrors the framework: what it keeps is kept, what it deletes is released,
      its best is marked.
    - ``"last"``: only the latest file written is kept.
    - ``"all"``: every file ever written is kept.
    - ``"every_n"``: files written at the end of every ``every_n_epochs``-th epoch are kept,
      and the framework's best.

    Args:
        version: the running version the checkpoints are logged to.
        policy: what to keep.
        prefix: the folder of the artifact names (a file keeps its base name, made unique).
    """

    def __init__(self, version: Version, policy: CheckpointPolicy, *, prefix: str = "checkpoints") -> None:
        self.version = version
        self.policy = policy
        self.prefix = prefix
        #: absolute path -> what was stored of it
        self.files: dict[str, _Mirrored] = {}
        self._names: dict[str, str] = {}  # artifact name -> absolute path
        #: artifact name of the checkpoint now marked best
        self.best_name: str | None = None
        self._remote: dict[str, str] = {}  # fsspec URL -> the local copy stored

    def local(self, path: str | None) -> str | None:
        """The local file of ``path``: itself (absolute), or the copy of an fsspec URL."""
        if path is None:
            return None
        return self._remote.get(path) or (path if "://" in path else os.path.abspath(path))

    def _fetch(self, url: str) -> str:
        """Copy a file written to an fsspec URL (``s3://``, ``gs://``…) to the version's scratch
        directory (again each time it is written), so it can be stored like a local one."""
        import fsspec

        local = self._remote.get(url)
        if local is None:
            folder = self.version.scratch_dir() / "remote" / str(len(self._remote))
            folder.mkdir(parents=True, exist_ok=True)
            local = str(folder / (url.rstrip("/").rsplit("/", 1)[-1] or "checkpoint"))
        with fsspec.open(url, "rb") as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        self._remote[url] = local
        return local

    def name_for(self, path: str) -> str:
        """The artifact name of a file: its base name under the prefix, unique in the version."""
        base = os.path.basename(path.rstrip(os.sep)) or "checkpoint"
        name, i = f"{self.prefix}/{base}", 1
        while self._names.get(name, path) != path:
            name, i = f"{self.prefix}/{i}-{base}", i + 1
        return name

    def written(
        self,
        path: str,
        *,
        epoch: int,
        step: int,
        best_path: str | None,
        owned: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """The framework wrote ``path`` (a local path or an fsspec URL) at ``epoch``;
        ``best_path`` is its best file now."""
        if "://" in path:
            metadata = {**(metadata or {}), "uri": path}
            path = self._fetch(path)
        path, best_path = os.path.abspath(path), self.local(best_path)
        keep = not self.policy.periodic() or self.policy.due(epoch)
        if not keep and path != best_path:
            return
        self.store(path, epoch=epoch, step=step, keep=keep, best=path == best_path, owned=owned, metadata=metadata)
        for other, rec in list(self.files.items()):
            if other != path and (self.policy.name == "last" or (not rec.keep and other != best_path)):
                self.release(other)

    def removed(self, path: str) -> None:
        """The framework deleted ``path``: release it unless the policy keeps it."""
        local = self._remote.pop(path, None) or os.path.abspath(path)
        rec = self.files.get(local)
        if rec is not None and self.policy.name != "all" and not (self.policy.name == "every_n" and rec.keep):
            self.release(local)

    def reconcile(
        self,
        held: Iterable[tuple[str, Mapping[str, Any] | None]],
        *,
        epoch: int,
        step: int,
        best_path: str | None,
    ) -> None:
        """At the end of training: store the files the framework holds (``(path, metadata)``)
        that were not seen being written or changed since, mark its best, and (``"best"``)
        release stored files it deleted."""
        best_path = self.local(best_path)
        for path, meta in held:
            path = self.local(path) or path
            if not os.path.isfile(path):
                continue
            rec = self.files.get(path)
            if (
                rec is not None
                or self.policy.name in ("best", "all")
                or (self.policy.name == "every_n" and path == best_path)
            ):
                keep = rec.keep if rec is not None else True
                self.store(path, epoch=epoch, step=step, keep=keep, best=path == best_path, metadata=meta)
        if self.policy.name == "best":
            for path, rec in list(self.files.items()):
                if rec.owned and not os.path.exists(path):
                    self.release(path)

    def store(
        self,
        path: str,
        *,
        epoch: int,
        step: int,
        keep: bool = True,
        best: bool = False,
        owned: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Log ``path`` (again only when its size or time changed; else just mark it best)."""
        try:
            st = os.stat(path)
        except OSError:
            return
        sig = (st.st_size, st.st_mtime_ns)
        rec = self.files.get(path)
        if rec is not None and rec.sig == sig:
            if best and self.best_name != rec.name:
                self.version.mark_best(rec.name, kind="checkpoint")
                self.best_name = rec.name
            return
        name = rec.name if rec is not None else self.name_for(path)
        self.version.log_artifact(
            path, kind="checkpoint", name=name, step=step, epoch=epoch, best=best or None, metadata=metadata
        )
        self.files[path] = _Mirrored(name, sig, keep, owned)
        self._names[name] = path
        if best:
            self.best_name = name

    def release(self, path: str) -> None:
        """Release a stored file (``gc`` may free it)."""
        rec = self.files.pop(path, None)
        if rec is None:
            return
        self._names.pop(rec.name, None)
        if self.best_name == rec.name:
            self.best_name = None
        self.version.release_artifact(rec.name)
