"""The Lightning integration, trained for real on tiny data on CPU, with both packages.

Every fit is 1-5 epochs of 3 batches of a 4-8-1 MLP, so each test takes seconds.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import modeltrack as mt  # noqa: E402
from modeltrack.capture.data import fingerprint  # noqa: E402
from modeltrack.errors import ModelTrackWarning  # noqa: E402
from modeltrack.integrations import lightning as mtl  # noqa: E402
from modeltrack.integrations.lightning import ModelTrackCallback  # noqa: E402

try:
    import lightning.pytorch as lpt
except ImportError:
    lpt = None
try:
    import pytorch_lightning as ptl
except ImportError:
    ptl = None

PACKAGES = [p for p in (lpt, ptl) if p is not None]
if not PACKAGES:
    pytest.skip("neither lightning nor pytorch_lightning is installed", allow_module_level=True)

from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _define(pkg: Any, name: str) -> type:
    class Tiny(pkg.LightningModule):
        """A 4-8-1 MLP regressing the sum of its inputs."""

        def __init__(self, lr: float = 0.05, hidden: int = 8, scores: list[float] | None = None) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
            self.error: BaseException | None = None
            self.fail_at_step = -1

        def forward(self, x: Any) -> Any:
            return self.net(x)

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            if self.global_step == self.fail_at_step and self.error is not None:
                raise self.error
            x, y = batch
            loss = torch.nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            self.log("raw_loss", loss)  # training_step default: per step only
            return loss

        def validation_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))
            if self.hparams.scores:
                self.log("score", float(self.hparams.scores[self.current_epoch]))

        def test_step(self, batch: Any, batch_idx: int) -> None:
            x, y = batch
            self.log("test_loss", torch.nn.functional.mse_loss(self(x), y))

        def on_train_epoch_end(self) -> None:
            self.log("epoch_marker", float(self.current_epoch))

        def configure_optimizers(self) -> Any:
            opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9)
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.9)
            return {"optimizer": opt, "lr_scheduler": sched}

    Tiny.__name__ = Tiny.__qualname__ = name
    return Tiny


def _define_datamodule(pkg: Any) -> type:
    class TinyData(pkg.LightningDataModule):
        def __init__(self, batch_size: int = 16) -> None:
            super().__init__()
            self.save_hyperparameters()

        def train_dataloader(self) -> Any:
            return DataLoader(TRAIN, batch_size=self.hparams.batch_size)

        def val_dataloader(self) -> Any:
            return DataLoader(VAL, batch_size=self.hparams.batch_size)

    return TinyData


# Module-level names so that load() can import the class back.
TinyLightning = _define(lpt, "TinyLightning") if lpt is not None else None
TinyPL = _define(ptl, "TinyPL") if ptl is not None else None
MODELS = {id(lpt): TinyLightning, id(ptl): TinyPL}

g = torch.Generator().manual_seed(0)
X = torch.randn(64, 4, generator=g)
Y = X.sum(dim=1, keepdim=True)
TRAIN = TensorDataset(X[:48], Y[:48])
VAL = TensorDataset(X[48:], Y[48:])


def loaders() -> tuple[DataLoader, DataLoader]:
    return DataLoader(TRAIN, batch_size=16), DataLoader(VAL, batch_size=16)


def trainer(pkg: Any, tmp_path: Path, callbacks: list[Any], **kw: Any) -> Any:
    opts: dict[str, Any] = {
        "max_epochs": 3,
        "logger": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(tmp_path / "root"),
        "accelerator": "cpu",
        "devices": 1,
    }
    opts.update(kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pkg.Trainer(callbacks=callbacks, **opts)


def fit(t: Any, module: Any, **kw: Any) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        if "datamodule" in kw:
            t.fit(module, **kw)
        else:
            t.fit(module, *loaders(), **kw)


def sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cli(*args: str, store: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", *args, "--store", store, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def epochs_of(record: dict[str, Any], metric: str) -> list[int]:
    return [p["epoch"] for p in record["metrics"][metric]["series"]]


@pytest.fixture(params=[p.__name__ for p in PACKAGES])
def pkg(request: pytest.FixtureRequest) -> Any:
    return sys.modules[request.param]


# ---------------------------------------------------------------------- the main path
@pytest.mark.slow
def test_fit_records_a_complete_version(pkg: Any, tmp_path: Path, store_uri: str) -> None:
    Model = MODELS[id(pkg)]
    ckpt_dir = tmp_path / "ckpt"
    mc = pkg.callbacks.ModelCheckpoint(dirpath=str(ckpt_dir))  # monitor=None: keeps the latest only
    cb = ModelTrackCallback(model="tiny", store=store_uri, tags={"suite": "lightning"})
    assert isinstance(cb, pkg.Callback)
    module = Model(lr=0.05)
    fit(trainer(pkg, tmp_path, [mc, cb]), module)

    assert cb.version is not None and cb.version.ref == "tiny@v1"
    rec = mt.show("tiny", store=store_uri)
    assert rec["status"] == "finished" and rec["framework"] == "lightning"
    assert rec["tags"] == {"suite": "lightning"}
    # params: hparams, trainer settings, optimizer and scheduler
    p = rec["params"]
    assert p["lr"] == 0.05 and p["hidden"] == 8
    assert p["trainer.max_epochs"] == 3 and p["trainer.precision"] == "32-true"
    assert p["trainer.accumulate_grad_batches"] == 1 and "ModelCheckpoint" in p["trainer.callbacks"]
    assert p["optimizer.name"] == "SGD" and p["optimizer.lr"] == 0.05 and p["optimizer.momentum"] == 0.9
    assert p["scheduler.name"] == "StepLR" and p["scheduler.gamma"] == 0.9
    # info: package, class, parameter counts, architecture
    info = rec["info"]
    assert info["package"] == pkg.__name__.split(".")[0]
    assert info["module_class"].endswith(f":{Model.__name__}")
    assert info["params_total"] == info["params_trainable"] == 4 * 8 + 8 + 8 + 1
    assert info["architecture"].startswith("sha256:")
    # per-epoch series under Lightning's names and step numbers (those its own loggers get)
    for name in ("train_loss_epoch", "val_loss", "epoch_marker"):
        assert epochs_of(rec, name) == [0, 1, 2], name
        assert [pt["step"] for pt in rec["metrics"][name]["series"]] == [2, 5, 8]
    assert [pt["value"] for pt in rec["metrics"]["epoch_marker"]["series"]] == [0.0, 1.0, 2.0]
    assert "train_loss" not in rec["metrics"]
    # per-step values Lightning never handed its loggers (log_every_n_steps=50 > 9 steps): the
    # last value of each epoch, at the step of its last batch
    for name in ("train_loss_step", "raw_loss"):
        assert [pt["step"] for pt in rec["metrics"][name]["series"]] == [2, 5, 8], name
    final_val = float(module.trainer.callback_metrics["val_loss"])
    assert rec["metrics"]["val_loss"]["last"] == pytest.approx(final_val)
    # checkpoints: the one Lightning kept, byte for byte; the evicted ones released
    ckpts = [a for a in rec["artifacts"] if a["kind"] == "checkpoint"]
    on_disk = sorted(os.listdir(ckpt_dir))
    assert [Path(a["path"]).name for a in ckpts] == on_disk == ["epoch=2-step=9.ckpt"]
    assert ckpts[0]["sha256"] == sha256(mc.best_model_path) and ckpts[0]["best"] is True
    assert ckpts[0]["epoch"] == 2 and ckpts[0]["step"] == 9
    assert mt.verify(store=store_uri)["ok"]
    # data fingerprints
    data = {d["name"]: d for d in rec["data"]}
    assert data["train"]["fingerprint"] == fingerprint(TRAIN.tensors)["fingerprint"]
    assert data["val"]["fingerprint"] == fingerprint(VAL.tensors)["fingerprint"]
    assert data["train"]["parts"] == [[48, 4], [48, 1]]
    # environment
    env = rec["environment"]
    assert env["python"] and "torch" in env["packages"]
    # the same through the CLI
    shown = cli("show", "tiny@v1", store=store_uri)
    assert shown["params"] == p and shown["status"] == "finished"
    assert [pt["epoch"] for pt in shown["metrics"]["val_loss"]["series"]] == [0, 1, 2]
    assert shown["artifacts"][0]["sha256"] == sha256(mc.best_model_path)
    assert shown["data"] == rec["data"] and shown["environment"]["packages"]["torch"]

    # load gives back the trained module
    loaded = mt.load("tiny", store=store_uri, trust=True)
    assert type(loaded) is Model
    module.eval()
    with torch.no_grad():
        assert torch.equal(loaded(X), module(X))

    # a second run with other hyperparameters is v2, and diff says what changed
    cb2 = ModelTrackCallback(model="tiny", store=store_uri)
    fit(trainer(pkg, tmp_path, [pkg.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt2")), cb2]), Model(lr=0.01))
    assert cb2.version is not None and cb2.version.number == 2
    assert [v["version"] for v in mt.versions("tiny", store=store_uri)] == [1, 2]
    d = mt.diff("tiny@v1", "tiny@v2", store=store_uri)
    assert d["params"]["changed"]["lr"] == {"from": 0.05, "to": 0.01}
    assert d["params"]["changed"]["optimizer.lr"] == {"from": 0.05, "to": 0.01}
    assert not d["data"] and not d["architecture"]["changed"]
    assert cli("diff", "tiny@v1", "tiny@v2", store=store_uri)["params"]["changed"]["lr"]["to"] == 0.01


@pytest.mark.slow
def test_top_k_checkpoints_are_mirrored_and_best_marked(tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    # score per epoch: top-2 by min keeps e0, e1; e2 is not top-2; e3 evicts e0.
    scores = [0.5, 0.2, 0.9, 0.1]
    mc = pkg.callbacks.ModelCheckpoint(
        dirpath=str(tmp_path / "ckpt"),
        monitor="score",
        mode="min",
        save_top_k=2,
        save_last=True,
        filename="{epoch}",
    )
    cb = ModelTrackCallback(model="topk", store=store_uri)
    fit(trainer(pkg, tmp_path, [mc, cb], max_epochs=4), MODELS[id(pkg)](scores=scores))
    rec = mt.show("topk", store=store_uri)
    arts = {Path(a["path"]).name: a for a in rec["artifacts"]}
    assert sorted(arts) == sorted(os.listdir(tmp_path / "ckpt")) == ["epoch=1.ckpt", "epoch=3.ckpt", "last.ckpt"]
    for name, a in arts.items():
        assert a["sha256"] == sha256(tmp_path / "ckpt" / name)
    assert [n for n, a in arts.items() if a.get("best")] == ["epoch=3.ckpt"]
    assert arts["epoch=3.ckpt"]["metadata"]["score"] == pytest.approx(0.1)
    assert mt.load("topk", kind="path", store=store_uri).endswith("epoch=3.ckpt")
    assert rec["params"]["trainer.checkpointing"] == [
        {
            "monitor": "score",
            "mode": "min",
            "save_top_k": 2,
            "save_last": True,
            "every_n_epochs": 1,
            "save_weights_only": False,
        }
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("all", ["epoch=0.ckpt", "epoch=1.ckpt", "epoch=2.ckpt"]),
        ("last", ["epoch=2.ckpt"]),
        ("every_n", ["epoch=1.ckpt", "epoch=2.ckpt"]),  # every 2nd epoch (e1), plus the best (e2)
    ],
)
def test_checkpoint_policies(policy: str, expected: list[str], tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    mc = pkg.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), filename="{epoch}")
    cb = ModelTrackCallback(model="policy", store=store_uri, checkpoints=policy, every_n_epochs=2)
    fit(trainer(pkg, tmp_path, [mc, cb]), MODELS[id(pkg)]())
    rec = mt.show("policy", store=store_uri)
    assert sorted(Path(a["path"]).name for a in rec["artifacts"]) == expected
    assert [Path(a["path"]).name for a in rec["artifacts"] if a.get("best")] == ["epoch=2.ckpt"]


@pytest.mark.slow
def test_without_model_checkpoint_the_final_weights_are_stored(tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[-1]
    Model = MODELS[id(pkg)]
    cb = ModelTrackCallback(model="final", store=store_uri)
    module = Model()
    dm = _define_datamodule(pkg)(batch_size=16)
    t = trainer(pkg, tmp_path, [cb], max_epochs=2, enable_checkpointing=False, log_every_n_steps=1)
    fit(t, module, datamodule=dm)
    rec = mt.show("final", store=store_uri)
    assert rec["params"]["data.batch_size"] == 16 and rec["info"]["datamodule_class"].endswith("TinyData")
    assert {d["name"] for d in rec["data"]} == {"train", "val"}
    assert [(a["path"], a["kind"]) for a in rec["artifacts"]] == [("model.ckpt", "model")]
    assert not (tmp_path / "root").exists() or not list((tmp_path / "root").rglob("*.ckpt"))
    # per-step values at the Trainer's cadence, both series of on_step+on_epoch metrics
    assert [pt["step"] for pt in rec["metrics"]["train_loss_step"]["series"]] == [0, 1, 2, 3, 4, 5]
    assert [pt["epoch"] for pt in rec["metrics"]["raw_loss"]["series"]] == [0, 0, 0, 1, 1, 1]
    assert epochs_of(rec, "train_loss_epoch") == [0, 1]
    loaded = mt.load("final@v1", store=store_uri, trust=True)
    module.eval()
    with torch.no_grad():
        assert torch.equal(loaded(X), module(X))


# ---------------------------------------------------------------------- failures
@pytest.mark.slow
def test_exception_in_training_step_fails_the_version_and_propagates_unchanged(
    pkg: Any, tmp_path: Path, store_uri: str
) -> None:
    module = MODELS[id(pkg)]()
    module.error = err = ValueError("boom in training_step")
    module.fail_at_step = 4
    cb = ModelTrackCallback(model="boom", store=store_uri)
    with pytest.raises(ValueError) as info:
        fit(trainer(pkg, tmp_path, [cb]), module)
    assert info.value is err
    rec = mt.show("boom@v1", store=store_uri)
    assert rec["status"] == "failed"
    assert "ValueError: boom in training_step" in rec["error"] and "training_step" in rec["error"]
    assert epochs_of(rec, "train_loss_epoch") == [0]  # the completed epoch is kept
    assert [Path(a["path"]).name for a in rec["artifacts"]] == ["epoch=0-step=3.ckpt"]


@pytest.mark.slow
def test_keyboard_interrupt_marks_the_version_interrupted(tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    module = MODELS[id(pkg)]()
    module.error = KeyboardInterrupt()
    module.fail_at_step = 2
    cb = ModelTrackCallback(model="ctrlc", store=store_uri)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises((KeyboardInterrupt, SystemExit)):  # Lightning turns it into exit(1)
            fit(trainer(pkg, tmp_path, [cb]), module)
    finally:
        signal.signal(signal.SIGINT, handler)
    rec = mt.show("ctrlc@v1", store=store_uri)
    assert rec["status"] == "failed" and rec["error"] == "interrupted"


def _read_only_location(tmp_path: Path) -> Path | None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").mkdir()
    except OSError:
        return ro / "store"
    for base in ("/sys", "/proc"):  # as root, a read-only mount is the way
        try:
            os.mkdir(f"{base}/modeltrack-probe")
        except OSError:
            return Path(base) / "modeltrack-store"
        os.rmdir(f"{base}/modeltrack-probe")
    return None


@pytest.mark.slow
def test_read_only_store_warns_and_training_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    store = _read_only_location(tmp_path)
    if store is None:
        pytest.skip("no read-only location to put a store on")
    pkg = PACKAGES[0]
    cb = ModelTrackCallback(model="ro", store=str(store))
    module = MODELS[id(pkg)]()
    with pytest.warns(ModelTrackWarning, match="read-only|not yours|cannot write"):
        fit(trainer(pkg, tmp_path, [cb]), module)
    assert module.trainer.current_epoch == 3 and cb.version is None


@pytest.mark.slow
def test_store_that_fills_up_during_training_warns_and_training_completes(
    tmp_path: Path, store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    from modeltrack.stores.local import LocalStore

    pkg = PACKAGES[0]
    real = LocalStore._write_tmp

    def full(self: Any, path: Path, data: bytes) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    class FillUp(pkg.Callback):
        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if trainer.current_epoch == 1:
                monkeypatch.setattr(LocalStore, "_write_tmp", full)

    cb = ModelTrackCallback(model="full", store=store_uri)
    module = MODELS[id(pkg)]()
    with pytest.warns(ModelTrackWarning, match="disk is full"):
        fit(trainer(pkg, tmp_path, [FillUp(), cb]), module)
    monkeypatch.setattr(LocalStore, "_write_tmp", real)
    assert module.trainer.current_epoch == 3
    assert mt.show("full@v1", store=store_uri)["params"]["lr"] == 0.05  # written before the disk filled up


# ---------------------------------------------------------------------- resume
@pytest.mark.slow
def test_resuming_from_a_checkpoint_records_the_parent(tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    Model = MODELS[id(pkg)]
    mc = pkg.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt"))
    fit(trainer(pkg, tmp_path, [mc, ModelTrackCallback(model="resume", store=store_uri)], max_epochs=2), Model())
    # resume from the copy in the store (what `load(..., kind="path")` gives)
    path = mt.load("resume@v1", kind="path", store=store_uri)
    cb = ModelTrackCallback(model="resume", store=store_uri)
    mc2 = pkg.callbacks.ModelCheckpoint(dirpath=str(tmp_path / "ckpt2"))
    fit(trainer(pkg, tmp_path, [mc2, cb], max_epochs=4), Model(), ckpt_path=path)
    rec = mt.show("resume@v2", store=store_uri)
    assert rec["parent"] == "resume@v1"
    assert rec["info"]["resumed_from"]["epoch"] == 1
    assert epochs_of(rec, "val_loss") == [2, 3]
    assert cli("show", "resume@v2", store=store_uri)["parent"] == "resume@v1"


# ---------------------------------------------------------------------- both packages, pickling, import cost
def test_callback_is_an_instance_of_each_imported_package_callback() -> None:
    cb = ModelTrackCallback()
    for p in PACKAGES:
        assert isinstance(cb, p.Callback)
    assert isinstance(cb, ModelTrackCallback)
    for p in PACKAGES:
        only = ModelTrackCallback(package=p.__name__.split(".")[0])
        assert isinstance(only, p.Callback)
        assert all(not isinstance(only, q.Callback) for q in PACKAGES if q is not p)
    clone = pickle.loads(pickle.dumps(cb))
    assert type(clone) is type(cb) and clone.checkpoints == "best"
    with pytest.raises(mt.ModelTrackError, match="checkpoints='sometimes'"):
        ModelTrackCallback(checkpoints="sometimes")
    with pytest.raises(mt.ModelTrackError, match="package='tensorflow'"):
        ModelTrackCallback(package="tensorflow")


@pytest.mark.slow
@pytest.mark.parametrize("package", [p.__name__ for p in PACKAGES])
def test_a_fresh_process_imports_only_what_it_uses(package: str) -> None:
    other = "pytorch_lightning" if package == "lightning.pytorch" else "lightning"
    code = textwrap.dedent(f"""
        import pickle, sys
        import modeltrack.integrations.lightning as mtl
        assert "torch" not in sys.modules and "lightning" not in sys.modules, "import is not lazy"
        import {package} as pkg
        cb = mtl.ModelTrackCallback()
        assert isinstance(cb, pkg.Callback)
        assert {other!r} not in sys.modules, "imported the other package"
        sys.stdout.buffer.write(pickle.dumps(cb))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr.decode()
    # unpickling in another fresh process (as ddp_spawn workers do) recreates the class
    load = "import pickle, sys; cb = pickle.loads(sys.stdin.buffer.read()); print(type(cb).__name__)"
    back = subprocess.run([sys.executable, "-c", load], input=out.stdout, capture_output=True, timeout=300)
    assert back.returncode == 0, back.stderr.decode()
    assert back.stdout.decode().strip() == type(ModelTrackCallback(package=package)).__name__


# ---------------------------------------------------------------------- autolog
@pytest.fixture
def autolog_off() -> Any:
    yield
    mtl.autolog(disable=True)


def test_autolog_patches_trainer_reversibly_and_once(autolog_off: None, store_uri: str) -> None:
    originals = {p: p.Trainer.__dict__["__init__"] for p in PACKAGES}
    assert mtl.autolog(model="auto", store=store_uri) == [p.__name__ for p in PACKAGES]
    mtl.autolog(model="auto", store=store_uri, checkpoints="last")  # again: re-patched, not stacked
    for p in PACKAGES:
        init = p.Trainer.__dict__["__init__"]
        assert init.__modeltrack_original__ is originals[p]
        t = trainer(p, Path(store_uri), [])
        mine = [cb for cb in t.callbacks if isinstance(cb, ModelTrackCallback)]
        assert len(mine) == 1 and isinstance(mine[0], p.Callback) and mine[0].checkpoints == "last"
        assert mine[0].model == "auto"
        own = ModelTrackCallback(model="mine")
        t = trainer(p, Path(store_uri), [own])
        assert [cb for cb in t.callbacks if isinstance(cb, ModelTrackCallback)] == [own]
    mtl.autolog(disable=True)
    for p in PACKAGES:
        assert p.Trainer.__dict__["__init__"] is originals[p]
        assert not any(isinstance(cb, ModelTrackCallback) for cb in trainer(p, Path(store_uri), []).callbacks)
    with pytest.raises(TypeError, match="unexpected"):
        mtl.autolog(epochs=3)


@pytest.mark.slow
def test_autolog_records_an_untouched_training_script(autolog_off: None, tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    mtl.autolog(store=store_uri)
    fit(trainer(pkg, tmp_path, []), MODELS[id(pkg)]())
    (only,) = mt.models(store=store_uri)
    assert only["name"] == MODELS[id(pkg)].__name__ and only["latest"] == 1


# ---------------------------------------------------------------------- loading and data, no training
def test_load_names_the_class_that_cannot_be_imported(tmp_path: Path) -> None:
    record = {"model": "gone", "version": 3, "info": {"module_class": "no_such_package.models:Gone"}}
    with pytest.raises(ImportError, match=r"no_such_package\.models:Gone.*cls=Gone"):
        mtl.load_artifact(tmp_path / "x.ckpt", record=record, artifact={})
    record["info"]["module_class"] = "test_lightning:_define.<locals>.Tiny"
    with pytest.raises(ImportError, match="inside a function"):
        mtl.load_artifact(tmp_path / "x.ckpt", record=record, artifact={})


def test_dataset_fingerprints_and_reasons() -> None:
    from torch.utils.data import ConcatDataset, Dataset, IterableDataset, Subset

    from modeltrack.capture.datasets import dataset_arrays

    data, _ = dataset_arrays(Subset(TRAIN, [0, 2]))
    assert torch.equal(data[0], X[[0, 2]])
    data, _ = dataset_arrays(ConcatDataset([TRAIN, VAL]))
    assert torch.equal(data[0], X) and torch.equal(data[1], Y)

    class Squares(Dataset):
        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int) -> Any:
            return torch.tensor([float(i)]), i * i

    data, _ = dataset_arrays(Squares())
    assert data[1].tolist() == [0, 1, 4, 9, 16]

    class Words(Squares):
        def __getitem__(self, i: int) -> Any:
            return {"text": "hello"}

    class Stream(IterableDataset):
        def __iter__(self) -> Any:
            return iter([])

    assert dataset_arrays(Words())[0] is None and "dict" in dataset_arrays(Words())[1]
    assert "iterable" in dataset_arrays(Stream())[1]
    with mt.start("data", store="memory://lightning-data") as v:
        mtl._log_loader(v, "train", DataLoader(Stream(), batch_size=4))
        mtl._log_loader(v, "val", DataLoader(VAL, batch_size=4))
    rec = mt.show("data", store="memory://lightning-data")
    by = {d["name"]: d for d in rec["data"]}
    assert by["train"]["fingerprint"] is None and "iterable" in by["train"]["reason"]
    assert by["val"]["fingerprint"] == fingerprint(VAL.tensors)["fingerprint"]


# ---------------------------------------------------------------------- distributed
DDP_SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
import torch
import lightning.pytorch as L
from torch.utils.data import DataLoader, TensorDataset
from modeltrack.integrations.lightning import ModelTrackCallback

class Net(L.LightningModule):
    def __init__(self, lr=0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(4, 1)
    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True)
        return loss
    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y), sync_dist=True)
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

if __name__ == "__main__":
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g); y = x.sum(1, keepdim=True)
    dl = DataLoader(TensorDataset(x, y), batch_size=8)
    if sys.argv[4] == "logger":  # the Logger style: no callback of the user's
        from modeltrack.integrations.lightning import ModelTrackLogger
        track = {"logger": ModelTrackLogger(model="ddp", store=sys.argv[1])}
    else:
        track = {"logger": False, "callbacks": [ModelTrackCallback(model="ddp", store=sys.argv[1])]}
    t = L.Trainer(max_epochs=2, accelerator="cpu", devices=2, strategy=sys.argv[2],
                  enable_progress_bar=False, enable_model_summary=False, default_root_dir=sys.argv[3], **track)
    t.fit(Net(), dl, dl)
"""


@pytest.mark.slow
@pytest.mark.skipif(lpt is None, reason="the DDP script uses lightning.pytorch")
@pytest.mark.parametrize("style", ["callback", "logger"])
def test_ddp_two_processes_make_one_version(style: str, tmp_path: Path, store_uri: str) -> None:
    script = tmp_path / "train_ddp.py"
    script.write_text(DDP_SCRIPT)
    out = subprocess.run(
        [sys.executable, str(script), store_uri, "ddp", str(tmp_path / "root"), style],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (version,) = mt.versions("ddp", store=store_uri)
    assert version["status"] == "finished"
    rec = mt.show("ddp", store=store_uri)
    assert rec["params"]["trainer.num_devices"] == 2 and rec["params"]["trainer.strategy"] == "DDPStrategy"
    assert epochs_of(rec, "train_loss") == [0, 1] and epochs_of(rec, "val_loss") == [0, 1]
    assert [pt["step"] for pt in rec["metrics"]["val_loss"]["series"]] == [3, 7]  # 64 rows / 2 ranks / 8
    ckpts = [a for a in rec["artifacts"] if a["kind"] == "checkpoint"]
    assert len(ckpts) == 1 and ckpts[0]["best"]


class _Recorder:
    """The parts of a Version a CheckpointMirror calls, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def log_artifact(self, path: str, *, name: str, **kw: Any) -> None:
        self.calls.append(("log" + ("+best" if kw.get("best") else ""), name))

    def release_artifact(self, name: str) -> None:
        self.calls.append(("release", name))

    def mark_best(self, name: str, kind: str | None = None) -> None:
        self.calls.append(("best", name))


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        ("best", {"checkpoints/a.ckpt", "checkpoints/c.ckpt"}),  # b was deleted by the framework
        ("last", {"checkpoints/c.ckpt"}),
        ("all", {"checkpoints/a.ckpt", "checkpoints/b.ckpt", "checkpoints/c.ckpt"}),
        ("every_n", {"checkpoints/a.ckpt", "checkpoints/b.ckpt"}),  # epoch 1 by period, a as the best
    ],
)
def test_checkpoint_mirror_keeps_what_the_policy_says(policy: str, kept: set[str], tmp_path: Path) -> None:
    from modeltrack.checkpoints import CheckpointMirror, CheckpointPolicy

    v = _Recorder()
    mirror = CheckpointMirror(v, CheckpointPolicy(policy, every_n_epochs=2))  # type: ignore[arg-type]
    files = {n: tmp_path / f"{n}.ckpt" for n in "abc"}
    for f in files.values():
        f.write_bytes(b"x")
    a, b, c = (str(files[n]) for n in "abc")
    mirror.written(a, epoch=0, step=3, best_path=a)
    mirror.written(b, epoch=1, step=6, best_path=a)
    mirror.removed(b)
    mirror.written(c, epoch=2, step=9, best_path=a)
    stored = {rec.name for rec in mirror.files.values()}
    assert stored == kept
    if policy != "last":
        assert mirror.best_name == "checkpoints/a.ckpt"
    other = tmp_path / "sub"
    other.mkdir()
    (other / "a.ckpt").write_bytes(b"y")
    assert mirror.name_for(str(other / "a.ckpt")) == (
        "checkpoints/1-a.ckpt" if "checkpoints/a.ckpt" in kept else "checkpoints/a.ckpt"
    )


# ---------------------------------------------------------------------- the Logger, evaluations, runs that train nothing
def _csv_points(log_dir: Path) -> dict[str, list[int]]:
    import csv

    points: dict[str, list[int]] = {}
    with open(log_dir / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for k, v in row.items():
                if k not in ("step", "epoch") and v != "":
                    points.setdefault(k, []).append(int(row["step"]))
    return points


@pytest.mark.slow
def test_logger_beside_lightnings_own_records_what_it_records(pkg: Any, tmp_path: Path, store_uri: str) -> None:
    csv_logger = pkg.loggers.CSVLogger(str(tmp_path / "csv"))
    mine = mtl.ModelTrackLogger(model="logged", store=store_uri)
    assert isinstance(mine, pkg.loggers.Logger)
    lr = pkg.callbacks.LearningRateMonitor(logging_interval="epoch")
    t = trainer(pkg, tmp_path, [lr], logger=[csv_logger, mine], log_every_n_steps=2)
    module = MODELS[id(pkg)]()
    fit(t, module)
    rec = mt.show("logged", store=store_uri)
    assert len(mt.versions("logged", store=store_uri)) == 1 and rec["status"] == "finished"
    assert t.loggers == [csv_logger, mine] and mine.experiment is not None and mine.experiment.ref == "logged@v1"
    # every series Lightning's own CSVLogger got, at the same steps
    got = {k: [p["step"] for p in m["series"]] for k, m in rec["metrics"].items()}
    assert got == _csv_points(Path(csv_logger.log_dir))
    assert "lr-SGD" in got and "train_loss_step" in got and "train_loss_epoch" in got
    # the user's checkpoint directory is the one Lightning picks from the first logger
    ckpts = [a for a in rec["artifacts"] if a["kind"] == "checkpoint"]
    assert (
        len(ckpts) == 1
        and Path(t.checkpoint_callback.best_model_path).parent == Path(csv_logger.log_dir) / "checkpoints"
    )
    assert rec["params"]["lr"] == 0.05 and rec["params"]["trainer.loggers"] == ["CSVLogger"]
    # test after fit: an evaluation of the same version, not a new version
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = t.test(module, loaders()[1], verbose=False)
    (ev,) = mt.show("logged", store=store_uri)["evaluations"]
    assert ev["name"] == "test" and ev["metrics"]["test_loss"] == pytest.approx(results[0]["test_loss"])
    assert ev["source"] == f"{pkg.__name__} trainer.test"
    assert ev["data"][0]["fingerprint"] == fingerprint(VAL.tensors)["fingerprint"]
    assert len(mt.versions("logged", store=store_uri)) == 1


@pytest.mark.slow
def test_logger_alone_and_with_the_callback_make_one_version_each_fit(tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    # alone, as the only logger: checkpoints go where they go without a logger
    t = trainer(pkg, tmp_path, [], logger=mtl.ModelTrackLogger(model="alone", store=store_uri))
    fit(t, MODELS[id(pkg)]())
    assert Path(t.checkpoint_callback.best_model_path).parent == tmp_path / "root" / "checkpoints"
    assert t.log_dir == str(tmp_path / "root")
    rec = mt.show("alone", store=store_uri)
    assert rec["status"] == "finished" and epochs_of(rec, "val_loss") == [0, 1, 2]
    assert {d["name"] for d in rec["data"]} == {"train", "val"}  # the callback it added did its part
    assert sum(isinstance(cb, ModelTrackCallback) for cb in t.callbacks) == 1
    # with the callback: still one version, and the values the logger gets reach it
    cb = ModelTrackCallback(model="both", store=store_uri)
    lg = mtl.ModelTrackLogger(model="ignored-the-callback-names-it", store=store_uri)
    fit(trainer(pkg, tmp_path, [cb], logger=lg), MODELS[id(pkg)]())
    assert [m["name"] for m in mt.models(store=store_uri)] == ["alone", "both"]
    assert lg.experiment is cb.version and "train_loss_epoch" in mt.show("both", store=store_uri)["metrics"]


class _Noted(TinyLightning if TinyLightning is not None else object):  # type: ignore[misc]
    def on_fit_start(self) -> None:
        for lg in self.loggers:
            lg.log_hyperparams({"dataset": "synthetic-v2", "lr": 0.05})


@pytest.mark.slow
@pytest.mark.skipif(lpt is None, reason="uses lightning.pytorch")
def test_hyperparameters_sent_to_loggers_are_recorded(tmp_path: Path, store_uri: str) -> None:
    cb = ModelTrackCallback(model="noted", store=store_uri)
    fit(trainer(lpt, tmp_path, [cb]), _Noted())
    p = mt.show("noted", store=store_uri)["params"]
    assert p["dataset"] == "synthetic-v2" and p["lr"] == 0.05


@pytest.mark.slow
def test_runs_that_train_nothing_make_no_version(tmp_path: Path, store_uri: str) -> None:
    pkg = PACKAGES[0]
    Model = MODELS[id(pkg)]
    fit(trainer(pkg, tmp_path, [ModelTrackCallback(model="dev", store=store_uri)], fast_dev_run=True), Model())
    assert not Path(store_uri).exists()  # nothing recorded, not even an empty model
    cb = ModelTrackCallback(model="again", store=store_uri)
    t = trainer(pkg, tmp_path, [cb], max_epochs=1)
    module = Model()
    fit(t, module)
    fit(t, module)  # max_epochs already reached: Lightning trains nothing
    assert [v["version"] for v in mt.versions("again", store=store_uri)] == [1]
    assert mt.load("again", store=store_uri, trust=True) is not None
    # a fresh trainer testing the fitted module evaluates its version
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(pkg, tmp_path, [ModelTrackCallback(store=store_uri)]).test(module, loaders()[1], verbose=False)
    assert [e["name"] for e in mt.show("again@v1", store=store_uri)["evaluations"]] == ["test"]


@pytest.mark.slow
def test_checkpoints_written_to_an_fsspec_url_are_stored(tmp_path: Path, store_uri: str) -> None:
    import fsspec

    pkg = PACKAGES[0]
    url = f"memory://ckpts-{os.getpid()}"
    mc = pkg.callbacks.ModelCheckpoint(dirpath=url, save_top_k=2, monitor="val_loss", filename="{epoch}")
    fit(trainer(pkg, tmp_path, [mc, ModelTrackCallback(model="remote", store=store_uri)]), MODELS[id(pkg)]())
    rec = mt.show("remote", store=store_uri)
    fs = fsspec.filesystem("memory")
    held = sorted(os.path.basename(p) for p in fs.ls(url.split("://")[1], detail=False))
    arts = {Path(a["path"]).name: a for a in rec["artifacts"] if a["kind"] == "checkpoint"}
    assert sorted(arts) == held and len(held) == 2
    for name, a in arts.items():
        with fsspec.open(f"{url}/{name}", "rb") as f:
            assert a["sha256"] == hashlib.sha256(f.read()).hexdigest()
        assert a["metadata"]["uri"] == f"{url}/{name}"
    assert [n for n, a in arts.items() if a.get("best")] == [os.path.basename(mc.best_model_path)]


CLI_SCRIPT = """
import warnings
warnings.filterwarnings("ignore")
import torch
from torch.utils.data import DataLoader, TensorDataset
from {pkg}.cli import LightningCLI
import {pkg} as L


class Net(L.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch, i):
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Data(L.LightningDataModule):
    def __init__(self, batch_size: int = 16):
        super().__init__()
        self.save_hyperparameters()
        x = torch.randn(48, 4, generator=torch.Generator().manual_seed(0))
        self.ds = TensorDataset(x, x.sum(1, keepdim=True))

    def train_dataloader(self):
        return DataLoader(self.ds, batch_size=self.hparams.batch_size)

    def val_dataloader(self):
        return DataLoader(self.ds, batch_size=self.hparams.batch_size)

    def test_dataloader(self):
        return DataLoader(self.ds, batch_size=self.hparams.batch_size)


if __name__ == "__main__":
    LightningCLI(Net, Data)
"""

CLI_CONFIG = """
trainer:
  max_epochs: 2
  accelerator: cpu
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: modeltrack.integrations.lightning.ModelTrackCallback
      init_args:
        model: cli-yaml
model:
  hidden: 6
"""


@pytest.mark.slow
@pytest.mark.parametrize("package", [p.__name__ for p in PACKAGES])
def test_lightning_cli_takes_the_documented_class_paths(package: str, tmp_path: Path, store_uri: str) -> None:
    pytest.importorskip("jsonargparse")
    (tmp_path / "train.py").write_text(CLI_SCRIPT.format(pkg=package))
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "fit.yaml").write_text(CLI_CONFIG)
    env = {**os.environ, "MODELTRACK_STORE": store_uri}

    def run(*args: str) -> None:
        out = subprocess.run(
            [sys.executable, "train.py", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]

    run("fit", "--config", "configs/fit.yaml", "--trainer.default_root_dir", "yaml")
    rec = mt.show("cli-yaml", store=store_uri)
    assert rec["status"] == "finished" and rec["params"]["hidden"] == 6 and "_instantiator" not in rec["params"]
    config = next(a for a in rec["artifacts"] if a["path"] == "config.yaml")
    assert config["kind"] == "config"
    assert "hidden: 6" in Path(mt.artifact_path("cli-yaml", "config.yaml", store=store_uri)).read_text()
    assert epochs_of(rec, "train_loss_epoch") == [0, 1]
    # the same class on the command line; the script's name names the model
    callback = "modeltrack.integrations.lightning.ModelTrackCallback"
    run("fit", "--trainer.max_epochs=1", f"--trainer.callbacks+={callback}", "--trainer.default_root_dir", "cmd",
        "--trainer.enable_progress_bar=false")  # fmt: skip
    assert mt.show("train", store=store_uri)["params"]["trainer.max_epochs"] == 1
    # the logger's class path, then `test` on a stored checkpoint: an evaluation of that version
    run("fit", "--trainer.max_epochs=1", "--trainer.logger=modeltrack.integrations.lightning.ModelTrackLogger",
        "--trainer.default_root_dir", "lg", "--trainer.enable_progress_bar=false")  # fmt: skip
    assert [v["version"] for v in mt.versions("train", store=store_uri)] == [1, 2]
    ckpt = mt.load("train@v2", kind="path", store=store_uri)
    run("test", f"--ckpt_path={ckpt}", f"--trainer.callbacks+={callback}", "--trainer.default_root_dir", "t",
        "--trainer.enable_progress_bar=false")  # fmt: skip
    (ev,) = mt.show("train@v2", store=store_uri)["evaluations"]
    assert ev["name"] == "test" and "test_loss" in ev["metrics"]
    assert [v["version"] for v in mt.versions("train", store=store_uri)] == [1, 2]
