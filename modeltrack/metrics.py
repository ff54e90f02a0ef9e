"""Standard metrics of a model's predictions, in plain numpy (no scikit-learn needed).

Integrations use them for training metrics (``train_accuracy``, ``train_mse``, …); they
follow scikit-learn's definitions, so the numbers match ``sklearn.metrics``::

    from modeltrack.metrics import classification_metrics, regression_metrics

    classification_metrics(y, model.predict(X), proba=model.predict_proba(X), prefix="train_")
    # {"train_accuracy": …, "train_precision": …, "train_recall": …, "train_f1": …,
    #  "train_log_loss": …, "train_roc_auc": …}
    regression_metrics(y, y_pred, sample_weight=w)  # {"mse": …, "rmse": …, "mae": …, "r2": …}

numpy is imported when a function is called, never by ``import modeltrack``.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["binary_auc", "classification_metrics", "regression_metrics"]


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    *,
    classes: Any = None,
    proba: Any = None,
    decision: Any = None,
    sample_weight: Any = None,
    prefix: str = "",
) -> dict[str, float] | None:
    """Accuracy, precision, recall and F1 (binary, positive class ``classes[1]``, for two
    classes; support-weighted averages otherwise; 0 where undefined, as
    ``zero_division=0``), plus log loss and ROC-AUC (one-vs-rest, support-weighted, for more
    classes) when probabilities are given, or ROC-AUC from binary decision scores.

    Args:
        y_true: the true labels (1-d).
        y_pred: the predicted labels, same shape.
        classes: the labels in order (a classifier's ``classes_``); default: the sorted
            labels seen in ``y_true`` and ``y_pred``.
        proba: class probabilities, shape ``(n, len(classes))``.
        decision: decision scores of the positive class (binary only; ignored with ``proba``).
        sample_weight: per-sample weights.
        prefix: put before every key (``"train_"``).

    Returns:
        the metrics by name (``log_loss`` and ``roc_auc`` only where defined: ROC-AUC needs
        every class present in ``y_true``), or None when the targets are not 1-d labels
        (multilabel, multi-output): compute those with scikit-learn.
    """
    import numpy as np

    try:
        yt = np.asarray(y_true)
        yp = np.asarray(y_pred)
        if classes is None and yt.ndim == 1 and yp.shape == yt.shape:
            classes = np.unique(np.concatenate([yt, yp]))
        if not (yt.ndim == 1 and yp.shape == yt.shape and classes is not None and np.ndim(classes) == 1):
            return None
    except Exception:  # noqa: BLE001 - odd targets: not ours to judge
        return None
    out: dict[str, float] = {}
    w = np.ones(len(yt)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    out[prefix + "accuracy"] = float(w[yt == yp].sum() / w.sum())
    binary = len(classes) == 2
    labels = [classes[1]] if binary else list(classes)
    tp = np.array([w[(yt == c) & (yp == c)].sum() for c in labels])
    pred = np.array([w[yp == c].sum() for c in labels])
    true = np.array([w[yt == c].sum() for c in labels])
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(pred > 0, tp / pred, 0.0)
        rec = np.where(true > 0, tp / true, 0.0)
        f1 = np.where(pred + true > 0, 2 * tp / (pred + true), 0.0)
    if binary:
        prec_v, rec_v, f1_v = float(prec[0]), float(rec[0]), float(f1[0])
    elif true.sum() > 0:
        prec_v, rec_v, f1_v = (float(np.average(a, weights=true)) for a in (prec, rec, f1))
    else:
        return out
    out.update({prefix + "precision": prec_v, prefix + "recall": rec_v, prefix + "f1": f1_v})
    scores = proba if proba is not None else decision
    if scores is None:
        return out
    s = np.asarray(scores, dtype=float)
    index = {c: i for i, c in enumerate(classes.tolist() if hasattr(classes, "tolist") else classes)}
    try:
        idx = np.array([index[c] for c in yt.tolist()])
    except KeyError:
        return out  # a label outside ``classes``
    if proba is not None and s.ndim == 2 and s.shape[1] == len(classes):
        eps = np.finfo(s.dtype).eps
        p = np.clip(s[np.arange(len(idx)), idx], eps, 1 - eps)
        out[prefix + "log_loss"] = float(np.average(-np.log(p), weights=w))
        aucs, support = [], []
        for i in [1] if binary else range(len(classes)):
            auc = binary_auc(idx == i, s[:, i], sample_weight=w)
            if auc is None:
                return out  # a class absent from y_true: sklearn refuses too
            aucs.append(auc)
            support.append(w[idx == i].sum())
        out[prefix + "roc_auc"] = aucs[0] if binary else float(np.average(aucs, weights=support))
    elif binary and s.ndim == 1:
        auc = binary_auc(idx == 1, s, sample_weight=w)
        if auc is not None:
            out[prefix + "roc_auc"] = auc
    return out


def binary_auc(positive: Any, score: Any, *, sample_weight: Any = None) -> float | None:
    """ROC-AUC of ``score`` for the boolean labels ``positive``: the (weighted) chance that
    a positive scores above a negative, ties counting half (the area under the ROC curve,
    as ``sklearn.metrics.roc_auc_score``). None when one of the two classes is absent."""
    import numpy as np

    pos = np.asarray(positive, dtype=bool).reshape(-1)
    w = np.ones(len(pos)) if sample_weight is None else np.asarray(sample_weight, dtype=float).reshape(-1)
    w_pos, w_neg = w[pos].sum(), w[~pos].sum()
    if not pos.any() or pos.all() or w_pos <= 0 or w_neg <= 0:
        return None
    _, group = np.unique(np.asarray(score, dtype=float).reshape(-1), return_inverse=True)
    group = group.reshape(-1)
    pos_g = np.bincount(group, weights=np.where(pos, w, 0.0))
    neg_g = np.bincount(group, weights=np.where(pos, 0.0, w))
    below = np.cumsum(neg_g) - neg_g  # negative weight scoring strictly lower
    return float((pos_g * (below + neg_g / 2)).sum() / (w_pos * w_neg))


def regression_metrics(y_true: Any, y_pred: Any, *, sample_weight: Any = None, prefix: str = "") -> dict[str, float]:
    """MSE, RMSE, MAE and R² (several outputs averaged uniformly, as scikit-learn's defaults;
    R² of a constant target is 1 for a perfect fit, else 0). A NaN in the data gives NaN.

    Args:
        y_true: the targets, shape ``(n,)`` or ``(n, outputs)``.
        y_pred: the predictions (reshaped to ``y_true``'s shape).
        sample_weight: per-sample weights.
        prefix: put before every key (``"train_"``).

    Returns:
        ``{"mse", "rmse", "mae", "r2"}`` (with ``prefix``) as floats.
    """
    import numpy as np

    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float).reshape(yt.shape)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    err = yt - yp
    mse = float(np.average(err**2, axis=0, weights=w).mean())
    mae = float(np.average(np.abs(err), axis=0, weights=w).mean())
    ww = np.ones(len(yt)) if w is None else w
    ss_res = (ww[:, None] * err**2).sum(axis=0)
    ss_tot = (ww[:, None] * (yt - np.average(yt, axis=0, weights=ww)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
    r2 = np.where(np.isnan(ss_tot) | np.isnan(ss_res), np.nan, r2)
    names = ("mse", "rmse", "mae", "r2")
    return dict(zip((prefix + n for n in names), (mse, math.sqrt(mse), mae, float(r2.mean())), strict=True))
