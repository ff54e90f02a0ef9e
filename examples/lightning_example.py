"""Lightning example: train a small classifier twice, each run becomes a version.

Run: python examples/lightning_example.py   (store: $MODELTRACK_STORE or ./.modeltrack)
Then: modeltrack versions lightning-moons; modeltrack diff lightning-moons@v1 lightning-moons@v2
Works with ``pytorch_lightning`` too: change the import below.
"""

from __future__ import annotations

import math
import warnings

import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

import modeltrack as mt
from modeltrack.integrations.lightning import ModelTrackCallback

warnings.filterwarnings("ignore", ".*does not have many workers.*")


def two_moons(n: int, seed: int = 0) -> TensorDataset:
    """Two interleaved half circles with a little noise: a small non-linear problem."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, generator=g) * math.pi
    label = torch.randint(0, 2, (n,), generator=g)
    x = torch.stack([torch.cos(t) + label, torch.sin(t) * (1 - 2 * label) + 0.5 * label], dim=1)
    x += 0.1 * torch.randn(n, 2, generator=g)
    return TensorDataset(x, label)


class MoonsClassifier(L.LightningModule):
    def __init__(self, hidden: int = 16, lr: float = 0.01, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)


def train(hidden: int, lr: float) -> str:
    L.seed_everything(0, verbose=False)
    train_dl = DataLoader(two_moons(512, seed=0), batch_size=64, shuffle=True)
    val_dl = DataLoader(two_moons(256, seed=1), batch_size=256)
    trainer = L.Trainer(
        max_epochs=6,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            ModelCheckpoint(dirpath=f"checkpoints/moons-h{hidden}-lr{lr}", monitor="val_acc", mode="max", save_top_k=2),
            ModelTrackCallback(model="lightning-moons", tags={"example": None}),
        ],
    )
    trainer.fit(MoonsClassifier(hidden=hidden, lr=lr), train_dl, val_dl)
    cb = next(c for c in trainer.callbacks if isinstance(c, ModelTrackCallback))
    assert cb.version is not None
    return cb.version.ref


def main() -> None:
    refs = [train(hidden=8, lr=0.005), train(hidden=32, lr=0.02)]
    for v in mt.versions("lightning-moons"):
        print(f"v{v['version']}  {v['status']:9}  val_acc={v['metrics'].get('val_acc', float('nan')):.3f}")
    d = mt.diff(refs[0], refs[1])
    print(
        f"{refs[0]} -> {refs[1]}: params changed {sorted(d['params']['changed'])}, "
        f"architecture changed: {d['architecture']['changed']}"
    )
    best = mt.load(refs[1], trust=True)  # the best checkpoint, as a MoonsClassifier
    x, y = two_moons(256, seed=1).tensors
    print(f"reloaded {type(best).__name__}: accuracy {(best(x).argmax(dim=1) == y).float().mean():.3f}")


if __name__ == "__main__":
    main()
