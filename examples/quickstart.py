"""Quickstart: track a small training loop with the core API (numpy only).

Run: python examples/quickstart.py   (store: $MODELTRACK_STORE or ./.modeltrack)
"""

from __future__ import annotations

import numpy as np

import modeltrack as mt


def train(lr: float, epochs: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(512, 4))
    w_true = np.array([1.5, -2.0, 0.5, 0.0])
    y = (X @ w_true + 0.1 * rng.normal(size=512) > 0).astype(np.float64)
    X_train, X_val, y_train, y_val = X[:400], X[400:], y[:400], y[400:]

    with mt.start(
        "quickstart-logreg", params={"lr": lr, "epochs": epochs, "model": {"kind": "logreg", "features": 4}}
    ) as v:
        v.log_data("train", X_train)
        v.log_data("val", X_val)
        w = np.zeros(4)
        step = 0
        for epoch in range(epochs):
            for i in range(0, len(X_train), 32):
                xb, yb = X_train[i : i + 32], y_train[i : i + 32]
                p = 1 / (1 + np.exp(-(xb @ w)))
                w -= lr * xb.T @ (p - yb) / len(xb)
                step += 1
            p_tr = 1 / (1 + np.exp(-(X_train @ w)))
            p_va = 1 / (1 + np.exp(-(X_val @ w)))
            eps = 1e-9
            v.log_metrics(
                {
                    "train_loss": float(
                        -np.mean(y_train * np.log(p_tr + eps) + (1 - y_train) * np.log(1 - p_tr + eps))
                    ),
                    "val_loss": float(-np.mean(y_val * np.log(p_va + eps) + (1 - y_val) * np.log(1 - p_va + eps))),
                    "val_acc": float(np.mean((p_va > 0.5) == y_val)),
                },
                step=step,
                epoch=epoch,
            )
        weights = v.scratch_dir() / "weights.npy"  # a temporary directory removed when v ends
        np.save(weights, w)
        v.log_artifact(weights, kind="model")
    print(f"trained {v.ref}")


if __name__ == "__main__":
    train(lr=0.1)
    train(lr=0.5)
    for row in mt.versions("quickstart-logreg"):
        print(f"v{row['version']}  {row['status']:9s}  label {row['label']}  val_acc={row['metrics'].get('val_acc')}")
