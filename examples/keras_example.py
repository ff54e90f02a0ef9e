"""Keras 3: every ``fit`` becomes a version, with one callback.

Trains a small classifier twice (two learning rates), then prints the versions, what changed
between them, and predictions from the model loaded back from the store. CPU, well under a
minute.

Run: python examples/keras_example.py   (store: $MODELTRACK_STORE or ./.modeltrack)
"""

from __future__ import annotations

import os

# Keras picks its backend at import time; this example needs no TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras
import numpy as np

import modeltrack as mt
from modeltrack.integrations.keras import ModelTrackCallback

MODEL = "keras-moons"


def make_data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles with noise: not linearly separable."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(
        label[:, None] == 0, np.stack([np.cos(t), np.sin(t)], 1), np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
    )
    x = x + rng.normal(scale=0.15, size=x.shape)
    return x.astype("float32"), label.astype("float32")


def train(lr: float, hidden: int) -> mt.Version:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"])
    x, y = make_data()
    tracker = ModelTrackCallback(model=MODEL, monitor="val_accuracy", params={"dataset": "moons-2000"})
    model.fit(
        x,
        y,
        epochs=8,
        batch_size=64,
        validation_split=0.2,
        verbose=0,
        callbacks=[
            tracker,
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
        ],
    )
    assert tracker.last_version is not None
    return tracker.last_version


def main() -> None:
    a = train(lr=0.003, hidden=16)
    b = train(lr=0.02, hidden=32)

    print(f"{'version':10s} {'status':9s} {'val_accuracy':>12s} {'val_loss':>9s}")
    for v in mt.versions(MODEL):
        m = v["metrics"]
        print(
            f"v{v['version']:<9d} {v['status']:9s} {m.get('val_accuracy', float('nan')):12.3f} "
            f"{m.get('val_loss', float('nan')):9.3f}"
        )

    d = mt.diff(a.ref, b.ref)
    print(f"\n{a.ref} -> {b.ref}:")
    for name, change in d["params"]["changed"].items():
        print(f"  {name}: {change['from']} -> {change['to']}")
    print(f"  architecture changed: {d['architecture']['changed']}")

    best = mt.show(b.ref)
    ckpt = next(x for x in best["artifacts"] if x["kind"] == "checkpoint")
    print(f"\nbest checkpoint of {b.ref}: {ckpt['path']} (val_accuracy {ckpt['metadata']['value']:.3f})")

    model = mt.load(b.ref)  # the final model.keras, as a keras.Model
    x, _ = make_data(5, seed=1)
    print("predictions of the loaded model:", np.round(model.predict(x, verbose=0).ravel(), 3))
    print(f"\nTry: modeltrack show {b.ref}    modeltrack diff {a.ref} {b.ref}")


if __name__ == "__main__":
    main()
