"""Every code block of the README works as written.

The Python blocks run in order in one fresh interpreter, in a scratch directory with its own
store, after a prelude that defines only what a block leaves to the reader (``model``, ``dm``,
``X_train``…) and the versions its references name; after some blocks an epilogue calls what
the block defined. Each ``modeltrack …`` command line of the shell blocks must parse with the
real command-line parser (same sub-commands, same options).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)

PRELUDE = """
import os, warnings
warnings.filterwarnings("ignore")
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import joblib
import modeltrack as mt
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import f1_score

rng = np.random.default_rng(0)
X_train = rng.normal(size=(64, 4)); y_train = (X_train.sum(1) > 0).astype(int)
X_test = rng.normal(size=(32, 4)); y_test = (X_test.sum(1) > 0).astype(int)
X_holdout = rng.normal(size=(16, 4))
joblib.dump(LogisticRegression().fit(X_train, y_train), "model.joblib")
# the store the Quick start's references name: v1 holds production, v2 exists, its run is v3
with mt.start("churn") as v:
    v.log_metrics({"val_acc": 0.5}, epoch=0)
    v.log_artifact("model.joblib", kind="model")
mt.promote("churn@v1", "production")
with mt.start("churn") as v:
    v.log_metrics({"val_acc": 0.6}, epoch=0)
loss, acc, global_step = 0.3, 0.9, 0
"""

#: what a block needs that the reader brings, keyed by a line of the block
NEEDS = {
    "trainer.fit(model, datamodule=dm)": """
import torch
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as L

class Net(L.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)
    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)
    def training_step(self, batch, i):
        loss = self._loss(batch); self.log("train_loss", loss); return loss
    def validation_step(self, batch, i):
        self.log("val_loss", self._loss(batch))
    def test_step(self, batch, i):
        self.log("test_loss", self._loss(batch))
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

class Data(L.LightningDataModule):
    def __init__(self):
        super().__init__()
        x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
        self.ds = TensorDataset(x, x.sum(1, keepdim=True))
    def train_dataloader(self): return DataLoader(self.ds, batch_size=16)
    def val_dataloader(self): return DataLoader(self.ds, batch_size=16)
    def test_dataloader(self): return DataLoader(self.ds, batch_size=16)

model, dm = Net(), Data()
""",
    "model.fit(x, y": """
import keras
x = X_train.astype("float32"); y = y_train.astype("float32")
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
""",
}
#: what to call after a block that only defines something
AFTER = {"def train(X_train, y_train, X_test, y_test):": "train(X_train, y_train, X_test, y_test)\n"}


def _program() -> str:
    parts = [PRELUDE]
    for block in PYTHON_BLOCKS:
        parts += [code for marker, code in NEEDS.items() if marker in block]
        parts.append(block)
        parts += [code for marker, code in AFTER.items() if marker in block]
    parts.append('print("README-BLOCKS-OK", [v["version"] for v in mt.versions("churn")])\n')
    return "\n".join(textwrap.dedent(p) for p in parts)


def test_the_readme_has_the_blocks_this_test_knows() -> None:
    assert len(PYTHON_BLOCKS) >= 6
    assert any("mt.load(" in b for b in PYTHON_BLOCKS) and any("ModelTrackLogger" in b for b in PYTHON_BLOCKS)


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "readme_blocks.py").write_text(_program())
    env = {**os.environ, "MODELTRACK_STORE": str(tmp_path / "store"), "KERAS_BACKEND": "torch"}
    env.pop("MODELTRACK_MODEL", None)
    out = subprocess.run(
        [sys.executable, "readme_blocks.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "README-BLOCKS-OK" in out.stdout
    assert not (ROOT / "weights.npy").exists()  # the main job writes scratch files elsewhere


def _command_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].split(">", 1)[0].strip()
            if line.startswith("modeltrack "):
                lines.append(line)
    return lines


@pytest.mark.parametrize("line", _command_lines())
def test_every_command_line_of_the_readme_parses(line: str) -> None:
    from modeltrack.cli import build_parser

    words = shlex.split(line)[1:]
    if "--" in words:  # `modeltrack run … -- python train.py`: the script's own arguments
        words = words[: words.index("--") + 2]
    try:
        build_parser().parse_args(words)
    except SystemExit as exc:  # argparse's way of saying no
        pytest.fail(f"README command does not parse: {line!r} (exit {exc.code})")
