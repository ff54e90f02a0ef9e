"""Which direction of a metric is better: guessed from its name, or as the user says."""

from __future__ import annotations

import math

_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "mape", "perplexity", "wer", "cer", "time")
_HIGHER_IS_BETTER = ("acc", "accuracy", "f1", "auc", "precision", "recall", "r2", "score", "iou", "map", "bleu", "dice")


def metric_goal(name: str) -> str | None:
    """``"min"``, ``"max"`` or ``None``, guessed from a metric name (``val_loss`` → min)."""
    low = name.lower()
    parts = [p for p in low.replace("/", "_").replace("-", "_").replace(".", "_").split("_") if p]
    for p in reversed(parts):
        if p in _LOWER_IS_BETTER or p.endswith("loss"):
            return "min"
        if p in _HIGHER_IS_BETTER:
            return "max"
    return None


def best_of(values: list[float], goal: str | None) -> float | None:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not finite or goal is None:
        return None
    return min(finite) if goal == "min" else max(finite)


__all__ = ["best_of", "metric_goal"]
