"""Overhead of tracking a small Lightning job: untracked vs modeltrack vs MLflow autolog.

The same job each time (an MLP on synthetic data, a few epochs, a ``ModelCheckpoint``
keeping the best by ``val_loss``), in one process, the three modes alternating in a
rotating order for ``--reps`` repetitions after one untimed warm-up of each. The time is
``Trainer(...)`` + ``fit`` wall time, which includes everything a tracker does inside
``fit`` (modeltrack stores the checkpoints and publishes the version before ``fit``
returns; MLflow logs checkpoints and the model).

Run by hand (not in CI): ``python bench/bench_lightning.py [--reps 5] [--epochs 5]``.
Needs ``pip install 'modeltrack[lightning,bench]'`` (mlflow==3.17.2).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODES = ("untracked", "modeltrack", "modeltrack-logger", "mlflow")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions of each mode (default 5)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=20_000, help="training rows (default 20000)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

    import lightning.pytorch as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader, TensorDataset

    from modeltrack.integrations.lightning import ModelTrackCallback, ModelTrackLogger

    # One thread: on a shared machine, torch's thread pool oversubscribes and times swing 40x.
    torch.set_num_threads(args.threads)

    class MLP(L.LightningModule):
        def __init__(self, features: int = 32, hidden: int = 128, lr: float = 1e-3) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(features, hidden),
                torch.nn.ReLU(),
                torch.nn.Linear(hidden, hidden),
                torch.nn.ReLU(),
                torch.nn.Linear(hidden, 2),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            logits = self(x)
            self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
            self.log("val_acc", (logits.argmax(1) == y).float().mean())

        def configure_optimizers(self) -> Any:
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    g = torch.Generator().manual_seed(0)
    n_val = args.rows // 4
    x = torch.randn(args.rows + n_val, 32, generator=g)
    y = (x[:, :4].sum(1) > 0).long()
    train = TensorDataset(x[: args.rows], y[: args.rows])
    val = TensorDataset(x[args.rows :], y[args.rows :])

    work = Path(tempfile.mkdtemp(prefix="modeltrack-bench-lightning-"))
    store = str(work / "modeltrack-store")
    mlflow_mod: Any = None
    if "mlflow" in modes:
        import mlflow
        import mlflow.pytorch

        mlflow_mod = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        mlflow.set_experiment("bench-lightning")
    counter = [0]

    def job(mode: str) -> float:
        counter[0] += 1
        L.seed_everything(0, verbose=False)
        callbacks: list[Any] = [ModelCheckpoint(dirpath=str(work / f"ckpt-{counter[0]}"), monitor="val_loss")]
        logger: Any = False
        if mode == "modeltrack":
            callbacks.append(ModelTrackCallback(model="bench-lightning", store=store))
        elif mode == "modeltrack-logger":  # Trainer(logger=ModelTrackLogger()), no callback of the user's
            logger = ModelTrackLogger(model="bench-lightning", store=store)
        train_dl = DataLoader(train, batch_size=128, shuffle=True)
        val_dl = DataLoader(val, batch_size=512)
        model = MLP()
        if mode == "mlflow":
            mlflow_mod.pytorch.autolog(silent=True)
        try:
            t0 = time.perf_counter()
            trainer = L.Trainer(
                max_epochs=args.epochs,
                accelerator="cpu",
                logger=logger,
                enable_progress_bar=False,
                enable_model_summary=False,
                callbacks=callbacks,
            )
            trainer.fit(model, train_dl, val_dl)
            return time.perf_counter() - t0
        finally:
            if mode == "mlflow":
                mlflow_mod.pytorch.autolog(disable=True)

    times: dict[str, list[float]] = {m: [] for m in modes}
    for m in modes:  # warm-up: first-call costs (imports, sqlite schema) are not what we compare
        job(m)
    for rep in range(args.reps):
        order = modes[rep % len(modes) :] + modes[: rep % len(modes)]
        for m in order:
            settle()
            times[m].append(job(m))
            print(f"rep {rep + 1}/{args.reps} {m:10s} {times[m][-1]:.3f} s", file=sys.stderr)

    print(table(times, args, markdown=args.markdown))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def settle() -> None:
    """Let the previous run's leftovers (garbage, background threads) finish first."""
    gc.collect()
    time.sleep(1.0)


def table(times: dict[str, list[float]], args: argparse.Namespace, *, markdown: bool = False) -> str:
    med = {m: statistics.median(v) for m, v in times.items()}
    base = med.get("untracked")
    rows = [["mode", "median s", "min s", "max s", "vs untracked"]]
    for m, v in times.items():
        ratio = f"{med[m] / base:.3f}x ({(med[m] / base - 1) * 100:+.1f}%)" if base else "-"
        rows.append([m, f"{med[m]:.3f}", f"{min(v):.3f}", f"{max(v):.3f}", ratio])
    title = (
        f"Lightning MLP, {args.rows} rows, {args.epochs} epochs, ModelCheckpoint(monitor='val_loss'), "
        f"{args.threads} torch thread(s); "
        f"{len(next(iter(times.values())))} alternating repetitions, medians"
    )
    fmt: Callable[[list[str]], str]
    if markdown:
        lines = [title, "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))

    return "\n".join([title, *map(fmt, rows)])


if __name__ == "__main__":
    sys.exit(main())
