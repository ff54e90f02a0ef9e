"""Metric series as the UI and ``modeltrack plot`` draw them: x axis choice and downsampling.

A chart never needs more points than it has pixels, so long series are reduced to at most
``max_points`` by keeping, in each bucket of consecutive points, the lowest and the highest
value (in their original order): spikes and dips survive, unlike with plain striding.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from .._util import json_number, metric_goal
from ..repo import Repo

#: default number of points per series sent to the browser
DEFAULT_MAX_POINTS = 2000


def per_epoch(epochs: list[Any]) -> bool:
    """Whether a series holds exactly one point per epoch (then it is drawn against epochs).

    Example:
        >>> per_epoch([0, 1, 2]), per_epoch([0, 0, 1]), per_epoch([None, 1])
        (True, False, False)
    """
    if not epochs or any(e is None for e in epochs):
        return False
    return all(b > a for a, b in itertools.pairwise(epochs))


def downsample_indices(values: list[Any], max_points: int) -> list[int]:
    """Indices of the points to keep so that at most ``max_points`` remain.

    Keeps the first and last point and, per bucket, the minimum and maximum finite value.

    Example:
        >>> downsample_indices([0, 5, 1, 2, 9, 3], 4)
        [0, 1, 4, 5]
    """
    n = len(values)
    if max_points <= 0 or n <= max_points:
        return list(range(n))
    buckets = max(1, (max_points - 2) // 2)
    keep = [0]
    inner = n - 2
    for b in range(buckets):
        lo = 1 + b * inner // buckets
        hi = 1 + (b + 1) * inner // buckets
        if hi <= lo:
            continue
        i_min = i_max = -1
        v_min = math.inf
        v_max = -math.inf
        for i in range(lo, hi):
            v = values[i]
            if v is None or v != v:
                continue
            if v < v_min:
                v_min, i_min = v, i
            if v > v_max:
                v_max, i_max = v, i
        if i_min < 0:
            keep.append(lo)  # an all-NaN bucket: keep one point so the gap shows
        elif i_min == i_max:
            keep.append(i_min)
        else:
            keep.extend(sorted((i_min, i_max)))
    keep.append(n - 1)
    return keep


def version_series(
    repo: Repo, model: str, number: int, *, max_points: int = DEFAULT_MAX_POINTS, names: list[str] | None = None
) -> dict[str, Any]:
    """The metric series of one version, ready to draw.

    Args:
        repo: the store.
        model: model name.
        number: version number.
        max_points: most points kept per metric (``0``: keep all).
        names: only these metrics (default: all).

    Returns:
        ``{"status": str, "metrics": {name: {"step": [...], "epoch": [...], "value": [...],
        "per_epoch": bool, "count": int, "goal": "min"|"max"|None}}}``; NaN and infinities
        become ``None`` (a gap in the line).
    """
    final = repo.final(model, number)
    status = repo.status(model, number, final)
    raw = repo.series(model, number, final)
    goals = (final or {}).get("goals") or {}
    out: dict[str, Any] = {}
    for name, cols in raw.items():
        if names is not None and name not in names:
            continue
        values = [json_number(v) for v in cols.get("value", [])]
        steps = list(cols.get("step", []))
        epochs = list(cols.get("epoch", []))
        keep = downsample_indices(values, max_points)
        if len(keep) != len(values):
            values = [values[i] for i in keep]
            steps = [steps[i] for i in keep]
            epochs = [epochs[i] for i in keep]
        out[name] = {
            "step": steps,
            "epoch": epochs,
            "value": values,
            "per_epoch": per_epoch(list(cols.get("epoch", []))),
            "count": len(cols.get("value", [])),
            "goal": goals.get(name) or metric_goal(name),
        }
    return {"model": model, "version": number, "status": status, "metrics": out}
