"""Keras 3 integration: real ``fit`` on CPU with the torch backend, tiny synthetic data.

Every test that trains is marked ``slow``; each trains a few-parameter MLP for 2-4 epochs.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")  # also set by conftest.py; here for running this file alone
pytest.importorskip("keras")
pytest.importorskip("numpy")

import keras
import numpy as np

import modeltrack as mt
import modeltrack.integrations.keras as mtk
from modeltrack.capture.data import fingerprint
from modeltrack.errors import ModelTrackError, ModelTrackWarning, StoreNotWritableError, UntrustedArtifactError
from modeltrack.integrations.keras import ModelTrackCallback
from modeltrack.stores.local import LocalStore

slow = pytest.mark.slow
# Keras 3.15 + numpy 2 warn inside Keras's own tensor conversion; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# ---------------------------------------------------------------------- helpers
def make_data(n: int = 64, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("float32")
    return x, y


def make_model(units: int = 8, lr: float = 0.01, seed: int = 1) -> Any:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli_show(ref: str, store: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "modeltrack", "show", ref, "--json", "--store", store],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def epochs_of(rec: dict[str, Any], metric: str) -> list[int | None]:
    return [p["epoch"] for p in rec["metrics"][metric]["series"]]


def values_of(rec: dict[str, Any], metric: str) -> list[float]:
    return [p["value"] for p in rec["metrics"][metric]["series"]]


class Boom(Exception):
    """The user's own exception."""


BOOM = Boom("layer exploded")


@keras.saving.register_keras_serializable(package="modeltrack_tests")
class ExplodingDense(keras.layers.Dense):
    """A Dense layer that raises ``BOOM`` on its ``fail_at``-th training call."""

    def __init__(self, *args: Any, fail_at: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at = fail_at
        self.calls = 0
        self.raises: BaseException = BOOM

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if training:
            self.calls += 1
            if self.calls >= self.fail_at:
                raise self.raises
        return super().call(inputs)


@pytest.fixture
def autologged() -> Iterator[None]:
    yield
    mtk.autolog(disable=True)


# ---------------------------------------------------------------------- the full record
@slow
def test_fit_is_recorded_with_params_series_artifacts_env_and_data(tmp_path: Path, store_uri: str) -> None:
    x, y = make_data()
    model = make_model()
    ckpt = tmp_path / "ckpt"
    cb = ModelTrackCallback(
        model="xor",
        store=store_uri,
        checkpoint_dir=ckpt,
        checkpoint_budget=None,
        params={"dataset": "synthetic-v1"},
        tags={"team": "ml"},
    )
    history = model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[cb])
    assert cb.last_version is not None and cb.last_version.ref == "xor@v1"
    assert len(history.history["loss"]) == 3

    for rec in (mt.show("xor", store=store_uri), cli_show("xor@v1", store_uri)):
        assert rec["status"] == "finished" and rec["framework"] == "keras"
        assert rec["tags"] == {"team": "ml"}
        p = rec["params"]
        assert p["dataset"] == "synthetic-v1"
        assert p["compile.loss"] == "binary_crossentropy" and p["compile.metrics"] == ["accuracy"]
        assert p["optimizer.class"] == "Adam" and p["optimizer.learning_rate"] == pytest.approx(0.01)
        assert p["fit.epochs"] == 3 and p["fit.batch_size"] == 16 and p["fit.steps_per_epoch"] == 3
        assert p["fit.validation_split"] == 0.25 and p["fit.validation_data"] is True
        assert p["fit.class_weight"] is False and p["fit.sample_weight"] is False
        assert p["model.layers"][0].startswith("Dense(units=8, activation='relu'")
        info = rec["info"]
        assert info["backend"] == "torch" and info["architecture"].startswith("sha256:")
        assert info["params_trainable"] == 3 * 8 + 8 + 8 + 1 and info["params_non_trainable"] == 0
        assert info["epochs_run"] == 3 and info["stopped_early"] is False

        for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
            assert epochs_of(rec, name) == [0, 1, 2], name
        assert [pt["step"] for pt in rec["metrics"]["loss"]["series"]] == [3, 6, 9]
        assert values_of(rec, "loss") == pytest.approx(history.history["loss"])
        assert values_of(rec, "val_loss") == pytest.approx(history.history["val_loss"])
        assert values_of(rec, "learning_rate") == pytest.approx([0.01] * 3)

        # Keras trains on the first 75% and validates on the rest.
        data = {d["name"]: d for d in rec["data"]}
        assert data["train.x"]["fingerprint"] == fingerprint(x[:48])["fingerprint"]
        assert data["train.y"]["fingerprint"] == fingerprint(y[:48])["fingerprint"]
        assert data["val.x"]["fingerprint"] == fingerprint(x[48:])["fingerprint"]
        assert data["val.x"]["shape"] == [16, 3]

        arts = {a["path"]: a for a in rec["artifacts"]}
        assert arts["model.keras"]["kind"] == "model"
        assert arts["model.keras"]["sha256"] == sha256(ckpt / "model.keras")
        ckpts = [a for a in rec["artifacts"] if a["kind"] == "checkpoint"]
        assert len(ckpts) == 1 and ckpts[0]["best"] is True  # earlier bests were released
        best_epoch = int(np.argmin(history.history["val_loss"]))
        assert ckpts[0]["epoch"] == best_epoch and ckpts[0]["metadata"]["monitor"] == "val_loss"
        assert ckpts[0]["sha256"] == sha256(ckpt / ckpts[0]["path"])
        assert arts["model_config.json"]["kind"] == "config"

        env = rec["environment"]
        assert env["python"] and "keras" in {k.lower() for k in env["packages"]}

    assert "tensorflow" not in sys.modules
    assert model.train_function.__dict__.get("__modeltrack_original__") is None  # left as it was


@slow
def test_second_run_is_v2_and_diff_shows_the_changes(store_uri: str) -> None:
    x, y = make_data()
    make_model().fit(x, y, epochs=2, verbose=0, callbacks=[ModelTrackCallback("m", store=store_uri)])
    x2, y2 = make_data(seed=7)
    make_model(units=4, lr=0.05).fit(x2, y2, epochs=2, verbose=0, callbacks=[ModelTrackCallback("m", store=store_uri)])

    assert [v["version"] for v in mt.versions("m", store=store_uri)] == [1, 2]
    d = mt.diff("m@v1", "m@v2", store=store_uri)
    changed = d["params"]["changed"]
    assert changed["optimizer.learning_rate"]["to"] == pytest.approx(0.05)
    assert "model.layers" in changed
    assert d["architecture"]["changed"] is True
    assert set(d["data"]) == {"train.x", "train.y"}
    assert mt.show("m@v2", store=store_uri)["label"] == "2.0.0"  # data and architecture changed


@slow
def test_load_gives_back_a_model_predicting_the_same(store_uri: str) -> None:
    x, y = make_data()
    model = make_model()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[ModelTrackCallback("loadme", store=store_uri)])
    loaded = mt.load("loadme", store=store_uri)
    assert isinstance(loaded, keras.Model)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert Path(mt.load("loadme", kind="path", store=store_uri)).name == "model.keras"


# ---------------------------------------------------------------------- failure paths
def _exploding_model() -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), ExplodingDense(4, fail_at=3), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.fixture(params=["keras-filtering", "no-filtering"])
def traceback_filtering(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Keras's traceback filtering re-creates a layer's exception with a longer message (its own
    doing, with or without modeltrack); without it the very object raised reaches the caller."""
    on = request.param == "keras-filtering"
    was = keras.config.is_traceback_filtering_enabled()
    (keras.config.enable_traceback_filtering if on else keras.config.disable_traceback_filtering)()
    yield on
    (keras.config.enable_traceback_filtering if was else keras.config.disable_traceback_filtering)()


def _untracked_exception() -> BaseException:
    x, y = make_data()
    try:
        _exploding_model().fit(x, y, epochs=3, batch_size=16, verbose=0)
    except Exception as exc:
        return exc
    raise AssertionError("the exploding model did not explode")


def _expected_exception(filtering: bool) -> BaseException:
    """What the user gets from the same failing ``fit`` without modeltrack."""
    return _untracked_exception() if filtering else BOOM


def _assert_same(got: BaseException, want: BaseException) -> None:
    if want is BOOM:
        assert got is BOOM
    else:
        assert type(got) is type(want) and str(got) == str(want)


@slow
def test_exception_in_a_layer_fails_the_version_and_propagates_unchanged(
    store_uri: str, traceback_filtering: bool
) -> None:
    x, y = make_data()
    want = _expected_exception(traceback_filtering)
    model = _exploding_model()
    with pytest.raises(Exception) as info:
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ModelTrackCallback("boom", store=store_uri)])
    _assert_same(info.value, want)
    rec = mt.show("boom@v1", store=store_uri)
    assert rec["status"] == "failed"
    assert "layer exploded" in rec["error"] and "Boom" in rec["error"]
    assert "train_function" not in model.__dict__ or not hasattr(model.train_function, "__modeltrack_original__")


@slow
def test_exception_in_a_layer_under_autolog(store_uri: str, autologged: None, traceback_filtering: bool) -> None:
    x, y = make_data()
    want = _expected_exception(traceback_filtering)
    mtk.autolog(model="boom-auto", store=store_uri)
    with pytest.raises(Exception) as info:
        _exploding_model().fit(x, y, epochs=3, batch_size=16, verbose=0)
    _assert_same(info.value, want)
    rec = mt.show("boom-auto@v1", store=store_uri)
    assert rec["status"] == "failed" and "layer exploded" in rec["error"]


@slow
def test_keyboard_interrupt_fails_the_version_as_interrupted(store_uri: str) -> None:
    x, y = make_data()
    model = _exploding_model()
    model.layers[0].raises = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ModelTrackCallback("ctrl-c", store=store_uri)])
    rec = mt.show("ctrl-c@v1", store=store_uri)
    assert rec["status"] == "failed" and rec["error"] == "interrupted"


class FailingBatches(keras.utils.PyDataset):
    """A dataset whose third batch cannot be read."""

    def __init__(self) -> None:
        super().__init__()
        self.x, self.y = make_data(32)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if i == 2:
            raise Boom("bad batch")
        return self.x[i * 8 : (i + 1) * 8], self.y[i * 8 : (i + 1) * 8]


@slow
def test_exception_outside_the_step_is_caught_when_fit_is_left(store_uri: str) -> None:
    model = make_model()
    try:
        model.fit(
            FailingBatches(),
            epochs=2,
            verbose=0,
            shuffle=False,
            callbacks=[ModelTrackCallback("data-boom", store=store_uri)],
        )
    except Boom:
        pass
    else:  # pragma: no cover
        pytest.fail("fit did not raise")
    # Noticed when fit's CallbackList is freed: at once, or when Keras's batch-hook worker
    # thread drops its last reference a moment later.
    deadline = time.monotonic() + 10
    while True:
        gc.collect()
        rec = mt.show("data-boom@v1", store=store_uri)
        if rec["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert rec["status"] == "failed"
    assert "on_train_end" in rec["error"]
    info = {d["name"]: d for d in rec["data"]}["train"]
    assert info["fingerprint"] is None and "FailingBatches" in info["reason"] and info["length"] == 4
    assert rec["params"]["fit.batch_size"] is None


class BrokenStore(LocalStore):
    """A local store whose disk is full (or read-only) from ``broken = True`` on."""

    def __init__(self, root: Path, *, broken: bool = False, errno_: int = 28) -> None:
        super().__init__(root)
        self.broken = broken
        self.errno_ = errno_

    def _write_tmp(self, path: Path, data: bytes) -> Path:
        if self.broken:
            raise OSError(self.errno_, os.strerror(self.errno_))
        return super()._write_tmp(path, data)

    def put_file(self, key: str, src: str | os.PathLike[str]) -> None:
        if self.broken:
            raise self._oserror(OSError(self.errno_, os.strerror(self.errno_)), key)
        super().put_file(key, src)

    def create(self, key: str, data: bytes) -> bool:
        if self.broken:
            raise self._oserror(OSError(self.errno_, os.strerror(self.errno_)), key)
        return super().create(key, data)


class BreakAfterFirstEpoch(keras.callbacks.Callback):
    def __init__(self, store: BrokenStore) -> None:
        super().__init__()
        self.store = store

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.store.broken = True


@slow
@pytest.mark.parametrize("when", ["from-start-read-only", "full-mid-run"])
def test_store_failures_warn_while_training_completes(
    when: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELTRACK_STRICT", "0")
    if when == "from-start-read-only":
        store = BrokenStore(tmp_path / "s", broken=True, errno_=30)  # EROFS
        extra: list[Any] = []
    else:
        store = BrokenStore(tmp_path / "s")
        extra = [BreakAfterFirstEpoch(store)]
    x, y = make_data()
    model = make_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(
            x,
            y,
            epochs=3,
            verbose=0,
            validation_split=0.25,
            callbacks=[*extra, ModelTrackCallback("full", store=store)],
        )
    assert len(history.history["loss"]) == 3
    msgs = [str(w.message) for w in caught if issubclass(w.category, ModelTrackWarning)]
    assert msgs and all("training continues" in m or "failed" in m for m in msgs)
    assert any("read-only" in m or "disk is full" in m for m in msgs)


@slow
def test_store_failure_raises_in_strict_mode(tmp_path: Path) -> None:
    store = BrokenStore(tmp_path / "s", broken=True)
    x, y = make_data()
    with pytest.raises(StoreNotWritableError):
        make_model().fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("strict", store=store)])


# ---------------------------------------------------------------------- EarlyStopping, ReduceLROnPlateau
@slow
def test_early_stopping_is_visible(store_uri: str) -> None:
    x, y = make_data()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0)
    history = make_model().fit(x, y, epochs=10, verbose=0, callbacks=[stop, ModelTrackCallback("es", store=store_uri)])
    run = len(history.history["loss"])
    assert run < 10
    rec = mt.show("es", store=store_uri)
    assert epochs_of(rec, "loss") == list(range(run))
    assert rec["info"]["stopped_early"] is True and rec["info"]["stopped_epoch"] == run - 1
    assert rec["info"]["early_stopping"]["stopped_epoch"] == run - 1
    assert rec["params"]["fit.callbacks"] == ["EarlyStopping"]
    assert rec["params"]["callbacks.EarlyStopping.patience"] == 1


@slow
def test_reduce_lr_on_plateau_shows_in_the_learning_rate_series(store_uri: str) -> None:
    x, y = make_data()
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    # modeltrack first: the rate it records is the one each epoch trained with.
    make_model(lr=0.04).fit(x, y, epochs=3, verbose=0, callbacks=[ModelTrackCallback("lr", store=store_uri), plateau])
    rec = mt.show("lr", store=store_uri)
    # Epoch 0 sets the best loss; after epoch 1 (no improvement by 10) the rate halves.
    assert values_of(rec, "learning_rate") == pytest.approx([0.04, 0.04, 0.02])
    assert epochs_of(rec, "learning_rate") == [0, 1, 2]
    assert rec["params"]["callbacks.ReduceLROnPlateau.factor"] == 0.5


# ---------------------------------------------------------------------- checkpoints
class WeightsPerEpoch(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.weights: list[list[Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.weights.append(self.model.get_weights())


@slow
def test_deferred_best_checkpoint_holds_the_best_epochs_weights(store_uri: str) -> None:
    """checkpoint_budget=0 defers every best checkpoint to the end of training."""
    x, y = make_data()
    model = make_model(lr=0.5)  # large steps: the best epoch is usually not the last
    seen = WeightsPerEpoch()
    history = model.fit(
        x,
        y,
        epochs=4,
        verbose=0,
        validation_split=0.25,
        callbacks=[seen, ModelTrackCallback("defer", store=store_uri, checkpoint_budget=0)],
    )
    final = model.get_weights()
    rec = mt.show("defer", store=store_uri)
    ckpts = [a for a in rec["artifacts"] if a["kind"] == "checkpoint"]
    best = int(np.argmin(history.history["val_loss"]))
    assert len(ckpts) == 1 and ckpts[0]["epoch"] == best and ckpts[0]["best"]
    loaded = mt.load("defer", kind="checkpoint", store=store_uri)
    for got, want in zip(loaded.get_weights(), seen.weights[best], strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(model.get_weights(), final, strict=True):  # the live model was left alone
        np.testing.assert_array_equal(got, want)


@slow
@pytest.mark.parametrize(
    ("policy", "expected"), [("every_n", [1, 3]), ("all", [0, 1, 2, 3]), ("last", [3]), ("none", [])]
)
def test_checkpoint_policies(policy: str, expected: list[int], store_uri: str) -> None:
    x, y = make_data()
    cb = ModelTrackCallback("pol", store=store_uri, checkpoints=policy, every_n_epochs=2, checkpoint_budget=None)
    make_model().fit(x, y, epochs=4, verbose=0, callbacks=[cb])
    rec = mt.show("pol", store=store_uri)
    assert sorted(a["epoch"] for a in rec["artifacts"] if a["kind"] == "checkpoint") == expected
    assert [a["kind"] for a in rec["artifacts"]].count("model") == 1


@slow
def test_log_batches(store_uri: str) -> None:
    x, y = make_data()
    make_model().fit(
        x,
        y,
        epochs=2,
        batch_size=16,
        verbose=0,
        callbacks=[ModelTrackCallback("batches", store=store_uri, log_batches=True)],
    )
    rec = mt.show("batches", store=store_uri)
    assert [p["step"] for p in rec["metrics"]["batch_loss"]["series"]] == list(range(1, 9))
    assert epochs_of(rec, "batch_loss") == [0] * 4 + [1] * 4
    assert epochs_of(rec, "loss") == [0, 1]


@slow
def test_subclassed_model_and_explicit_data(store_uri: str) -> None:
    class TwoLayer(keras.Model):
        def __init__(self, hidden: int = 5, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.hidden = hidden
            self.a = keras.layers.Dense(hidden, activation="tanh")
            self.b = keras.layers.Dense(1)

        def call(self, inputs: Any) -> Any:
            return self.b(self.a(inputs))

    x, y = make_data()
    model = TwoLayer()
    model.compile(optimizer="sgd", loss="mse")
    extra = np.arange(12, dtype="float32").reshape(4, 3)
    model.fit(
        x,
        y,
        epochs=2,
        verbose=0,
        callbacks=[ModelTrackCallback("sub", store=store_uri, data={"holdout": extra}, checkpoints="none")],
    )
    rec = mt.show("sub", store=store_uri)
    assert rec["status"] == "finished"
    assert rec["info"]["params_trainable"] == 3 * 5 + 5 + 5 + 1
    assert {d["name"] for d in rec["data"]} == {"holdout", "train.x", "train.y"}
    assert {d["name"]: d for d in rec["data"]}["holdout"]["fingerprint"] == fingerprint(extra)["fingerprint"]


# ---------------------------------------------------------------------- autolog
@slow
def test_autolog_records_every_outermost_fit_once(store_uri: str, autologged: None) -> None:
    mtk.autolog(model="auto", store=store_uri, checkpoints="none")
    mtk.autolog(model="auto", store=store_uri, checkpoints="none")  # enabling twice: one patch
    assert not hasattr(keras.Model.__dict__["fit"].__modeltrack_original__, "__modeltrack_original__")
    x, y = make_data()
    model = make_model()
    history = model.fit(x, y, 16, 2, 0, validation_data=(x[:8], y[:8]))  # positional args still work
    assert isinstance(history, keras.callbacks.History) and len(history.history["loss"]) == 2

    class FitsAnother(keras.callbacks.Callback):
        """A fit inside a fit (e.g. a teacher trained on the fly) is part of the outer version."""

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            make_model().fit(x, y, epochs=1, verbose=0)

    make_model().fit(x, y, epochs=2, verbose=0, callbacks=[FitsAnother()])
    # A fit that brings its own callback is recorded by that callback only.
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("own", store=store_uri)])

    vs = mt.versions("auto", store=store_uri)
    assert [v["status"] for v in vs] == ["finished", "finished"]
    rec = mt.show("auto@v1", store=store_uri)
    assert rec["params"]["fit.batch_size"] == 16 and rec["params"]["fit.epochs"] == 2
    assert {d["name"] for d in rec["data"]} == {"train.x", "train.y", "val.x", "val.y"}
    assert len(mt.versions("own", store=store_uri)) == 1

    mtk.autolog(disable=True)
    assert "fit" not in keras.Model.__dict__
    make_model().fit(x, y, epochs=1, verbose=0)
    assert len(mt.versions("auto", store=store_uri)) == 2


def test_autolog_validates_settings_and_is_reversible(autologged: None) -> None:
    with pytest.raises(ModelTrackError, match="checkpoints='sometimes'"):
        mtk.autolog(checkpoints="sometimes")
    assert "fit" not in keras.Model.__dict__
    # One policy for every integration: an option it does not take is refused, naming it.
    with pytest.raises(TypeError, match="unexpected option.*log_every_n_steps"):
        mtk.autolog(log_every_n_steps=5)
    assert "fit" not in keras.Model.__dict__
    mtk.autolog()
    assert "fit" in keras.Model.__dict__
    mtk.autolog(disable=True)
    mtk.autolog(disable=True)
    assert "fit" not in keras.Model.__dict__


@pytest.mark.parametrize(
    "kwargs",
    [{"checkpoints": "often"}, {"mode": "up"}, {"every_n_epochs": 0}, {"checkpoint_budget": 2.0}, {"data": [1, 2]}],
)
def test_invalid_settings_name_the_value(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ModelTrackError, match=next(iter(kwargs))):
        ModelTrackCallback(**kwargs)


def test_load_artifact_refuses_weights_only_files(tmp_path: Path) -> None:
    with pytest.raises(ModelTrackError, match="weights only"):
        mtk.load_artifact(tmp_path / "m.weights.h5")


def test_architecture_ignores_names_but_not_shapes() -> None:
    def build(units: int) -> Any:
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(units), keras.layers.Dense(1)])

    assert mtk.architecture(build(4)) == mtk.architecture(build(4))
    assert mtk.architecture(build(4)) != mtk.architecture(build(5))


# ---------------------------------------------------------------------- issue 10: framework fidelity
class SubclassDemo(keras.Model):
    """Keras's own subclassing demo: layers made in ``__init__``, a ``call``, no ``get_config``."""

    def __init__(self, hidden: int = 16, classes: int = 2) -> None:
        super().__init__()
        self.hidden = hidden  # kept under its own name: recorded, so load can rebuild it
        self.dense1 = keras.layers.Dense(hidden, activation="relu")
        self.dense2 = keras.layers.Dense(classes, activation="softmax")

    def call(self, inputs: Any) -> Any:
        return self.dense2(self.dense1(inputs))


class NeedsWidth(keras.Model):
    """A required constructor argument that the model does not keep: it cannot be recorded."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.d = keras.layers.Dense(width)

    def call(self, inputs: Any) -> Any:
        return self.d(inputs)


class Batches(keras.utils.PyDataset):
    def __init__(self, x: Any, y: Any, batch: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x, self.y, self.batch = x, y, batch

    def __len__(self) -> int:
        return len(self.x) // self.batch

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        sl = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[sl], self.y[sl]


def _no_modeltrack_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ModelTrackWarning)]


@slow
def test_subclassed_model_without_get_config_is_stored_as_weights_and_rebuilt(store_uri: str) -> None:
    x, y = make_data()
    keras.utils.set_random_seed(3)
    model = SubclassDemo(hidden=6)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(x, y.astype("int64"), epochs=2, verbose=0, callbacks=[ModelTrackCallback("demo", store=store_uri)])
    assert _no_modeltrack_warnings(caught) == []

    rec = mt.show("demo", store=store_uri)
    assert rec["status"] == "finished"
    arts = {a["path"]: a for a in rec["artifacts"]}
    assert arts["model.weights.h5"]["kind"] == "model" and "model.keras" not in arts
    assert [p for p in arts if p.startswith("checkpoints/")] and all(
        p.endswith(".weights.h5") for p in arts if p.startswith("checkpoints/")
    )
    info = rec["info"]
    assert info["model_class"] == f"{SubclassDemo.__module__}:SubclassDemo"
    assert info["model_init"] == {"hidden": 6}  # what the model holds, not Keras's default-filled config
    assert info["model_input"] == {"shape": [None, 3], "dtype": "float32"}
    assert rec["params"]["model.hidden"] == 6

    with pytest.raises(UntrustedArtifactError):
        mt.load("demo", store=store_uri)  # rebuilding imports and runs the recorded class
    loaded = mt.load("demo", store=store_uri, trust=True)
    assert type(loaded) is SubclassDemo and loaded.hidden == 6
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


@slow
def test_subclassed_model_that_cannot_be_rebuilt_says_how(store_uri: str) -> None:
    x, y = make_data()
    model = NeedsWidth(1)
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("wide", store=store_uri, checkpoints="none")])
    assert mt.show("wide", store=store_uri)["info"]["model_init_missing"] == ["width"]
    with pytest.raises(ModelTrackError, match=r"cannot construct .*NeedsWidth\(\).*width.*load_weights"):
        mt.load("wide", store=store_uri, trust=True)

    class Local(keras.Model):  # defined in a function: its class path cannot be imported
        def __init__(self) -> None:
            super().__init__()
            self.d = keras.layers.Dense(1)

        def call(self, inputs: Any) -> Any:
            return self.d(inputs)

    local = Local()
    local.compile(optimizer="sgd", loss="mse")
    local.fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("local", store=store_uri, checkpoints="none")])
    with pytest.raises(ImportError, match="inside a function"):
        mt.load("local", store=store_uri, trust=True)


@slow
def test_a_users_model_checkpoint_is_followed_not_duplicated(tmp_path: Path, store_uri: str) -> None:
    x, y = make_data()
    model = make_model(lr=0.05)
    user = keras.callbacks.ModelCheckpoint(str(tmp_path / "ck-{epoch:02d}.keras"), monitor="loss", save_best_only=True)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[ModelTrackCallback("mcp", store=store_uri), user])
    rec = mt.show("mcp", store=store_uri)
    ckpts = [a for a in rec["artifacts"] if a["kind"] == "checkpoint"]
    written = sorted(p.name for p in tmp_path.glob("ck-*.keras"))
    assert [a["path"] for a in ckpts] == [f"checkpoints/{n}" for n in written]  # no epoch-NNN copies of our own
    for a in ckpts:  # stored as written: each at the epoch Keras wrote it, with its bytes
        assert a["epoch"] == int(a["path"][-8:-6]) - 1
        assert a["sha256"] == sha256(tmp_path / Path(a["path"]).name)
    best = [a for a in ckpts if a.get("best")]
    assert len(best) == 1 and best[0]["epoch"] == int(np.argmin(history.history["loss"]))
    assert best[0]["metadata"]["monitor"] == "loss"
    assert rec["params"]["callbacks.ModelCheckpoint.save_best_only"] is True
    assert "save" not in model.__dict__  # the model's save methods are left as they were

    # One fixed path, overwritten by a weights-only checkpoint: one artifact, the last bytes.
    fixed = keras.callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), save_weights_only=True)
    make_model().fit(x, y, epochs=3, verbose=0, callbacks=[fixed, ModelTrackCallback("mcp", store=store_uri)])
    ckpts = [a for a in mt.show("mcp@v2", store=store_uri)["artifacts"] if a["kind"] == "checkpoint"]
    assert [a["path"] for a in ckpts] == ["checkpoints/best.weights.h5"]
    assert ckpts[0]["sha256"] == sha256(tmp_path / "best.weights.h5") and ckpts[0]["epoch"] == 2

    none = keras.callbacks.ModelCheckpoint(str(tmp_path / "none.keras"))
    make_model().fit(
        x, y, epochs=1, verbose=0, callbacks=[none, ModelTrackCallback("mcp", store=store_uri, checkpoints="none")]
    )
    assert (tmp_path / "none.keras").exists()
    assert [a for a in mt.show("mcp@v3", store=store_uri)["artifacts"] if a["kind"] == "checkpoint"] == []


@slow
def test_fitting_the_same_model_again_records_the_parent(store_uri: str) -> None:
    x, y = make_data()
    model = make_model()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("again", store=store_uri)])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("again", store=store_uri)])
    make_model().fit(x, y, epochs=1, verbose=0, callbacks=[ModelTrackCallback("again", store=store_uri)])
    assert mt.show("again@v1", store=store_uri).get("parent") is None
    assert mt.show("again@v2", store=store_uri)["parent"] == "again@v1"
    assert mt.show("again@v3", store=store_uri).get("parent") is None  # another model object


@slow
@pytest.mark.parametrize("style", ["callback", "autolog"])
def test_the_users_arrays_are_fingerprinted_as_given(style: str, store_uri: str, autologged: None) -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 3))  # float64: Keras trains on a float32 copy
    y = (x[:, 0] > 0).astype("float64")
    callbacks = [ModelTrackCallback("f64", store=store_uri, checkpoints="none")] if style == "callback" else []
    if style == "autolog":
        mtk.autolog(model="f64", store=store_uri, checkpoints="none")
    make_model().fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=callbacks)
    data = {d["name"]: d for d in mt.show("f64", store=store_uri)["data"]}
    assert data["train.x"]["dtype"] == "float64" and data["train.x"]["shape"] == [48, 3]
    assert data["train.x"]["fingerprint"] == fingerprint(x[:48])["fingerprint"]
    assert data["train.y"]["fingerprint"] == fingerprint(y[:48])["fingerprint"]
    assert data["val.x"]["fingerprint"] == fingerprint(x[48:])["fingerprint"]


@slow
def test_pydataset_generator_and_multi_output_inputs(store_uri: str) -> None:
    x, y = make_data()
    make_model().fit(
        Batches(x, y, workers=1),
        epochs=2,
        verbose=0,
        callbacks=[ModelTrackCallback("pyds", store=store_uri, checkpoints="none")],
    )
    rec = mt.show("pyds", store=store_uri)
    p = rec["params"]
    assert p["fit.batch_size"] is None and p["fit.steps_per_epoch"] == 4 and p["fit.x.workers"] == 1
    assert p["fit.x.use_multiprocessing"] is False
    (train,) = rec["data"]
    assert train["name"] == "train" and train["fingerprint"] is None and train["length"] == 4
    assert "Batches" in train["pytype"] and "pass data={...}" in train["reason"]

    def batches() -> Iterator[tuple[Any, Any]]:
        while True:
            yield from Batches(x, y)

    make_model().fit(
        batches(), steps_per_epoch=4, epochs=2, verbose=0, callbacks=[ModelTrackCallback("gen", store=store_uri)]
    )
    rec = mt.show("gen", store=store_uri)
    assert rec["params"]["fit.steps_per_epoch"] == 4 and rec["data"][0]["pytype"] == "builtins.generator"
    assert rec["data"][0]["fingerprint"] is None and rec["data"][0]["steps"] == 4

    keras.utils.set_random_seed(1)
    inputs = keras.Input((3,), name="features")
    hidden = keras.layers.Dense(4, activation="relu")(inputs)
    outputs = {
        "cls": keras.layers.Dense(1, activation="sigmoid", name="cls")(hidden),
        "reg": keras.layers.Dense(1, name="reg")(hidden),
    }
    multi = keras.Model(inputs, outputs)
    multi.compile(
        optimizer="adam",
        loss={"cls": "binary_crossentropy", "reg": "mse"},
        metrics={"cls": ["accuracy"], "reg": ["mae"]},
    )
    targets = {"cls": y, "reg": x[:, 1:2]}
    history = multi.fit(
        x, targets, epochs=2, verbose=0, validation_split=0.25, callbacks=[ModelTrackCallback("multi", store=store_uri)]
    )
    rec = mt.show("multi", store=store_uri)
    assert set(history.history) <= set(rec["metrics"])  # Keras's own per-output keys
    assert {"cls_loss", "reg_mae", "val_cls_accuracy", "val_reg_loss"} <= set(rec["metrics"])
    assert rec["params"]["compile.loss.cls"] == "binary_crossentropy" and rec["params"]["compile.loss.reg"] == "mse"
    data = {d["name"]: d for d in rec["data"]}
    assert set(data) == {"train.x", "train.y.cls", "train.y.reg", "val.x", "val.y.cls", "val.y.reg"}
    assert data["train.y.reg"]["fingerprint"] == fingerprint(x[:48, 1:2])["fingerprint"]
    assert data["val.y.cls"]["shape"] == [16]
    assert mt.load("multi", store=store_uri).predict(x[:4], verbose=0).keys() == {"cls", "reg"}


@slow
@pytest.mark.parametrize("style", ["callback", "autolog"])
def test_evaluate_after_fit_is_an_evaluation_of_its_version(style: str, store_uri: str, autologged: None) -> None:
    x, y = make_data()
    xt, yt = make_data(32, seed=9)
    model = make_model()
    callbacks = [ModelTrackCallback("ev", store=store_uri, checkpoints="none")] if style == "callback" else []
    if style == "autolog":
        mtk.autolog(model="ev", store=store_uri, checkpoints="none")
    model.fit(x, y, epochs=2, verbose=0, validation_data=(x[:16], y[:16]), callbacks=callbacks)
    as_list = model.evaluate(xt, yt, verbose=0)
    as_dict = model.evaluate(xt, yt, verbose=0, return_dict=True)
    untracked = keras.Model.evaluate.__modeltrack_original__(model, xt, yt, verbose=0)

    assert isinstance(as_list, list) and as_list == pytest.approx(untracked)  # the return value is Keras's
    assert set(as_dict) == {"loss", "accuracy"} and [as_dict["loss"], as_dict["accuracy"]] == pytest.approx(as_list)
    assert len(mt.versions("ev", store=store_uri)) == 1  # not a new version
    rec = mt.show("ev", store=store_uri)
    evals = rec["evaluations"]
    assert len(evals) == 2  # fit's own validation is the version's val_* series, not an evaluation
    for ev in evals:
        assert ev["name"] == "test" and ev["source"] == "keras model.evaluate"
        assert ev["metrics"] == pytest.approx(as_dict)
        data = {d["name"]: d["fingerprint"] for d in ev["data"]}
        assert data == {"test.x": fingerprint(xt)["fingerprint"], "test.y": fingerprint(yt)["fingerprint"]}
    assert rec["metrics"]["val_loss"]["series"]  # validation still recorded as training metrics

    with pytest.raises(ValueError):  # the user's error propagates; nothing is recorded for it
        model.evaluate(xt[:, :2], yt, verbose=0)
    assert len(mt.show("ev", store=store_uri)["evaluations"]) == 2
    if style == "callback":  # an untracked fit validates through evaluate too: not an evaluation of v1
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x[:16], y[:16]))
        assert len(mt.show("ev", store=store_uri)["evaluations"]) == 2
