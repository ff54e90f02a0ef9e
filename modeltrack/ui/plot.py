"""``modeltrack plot``: the UI's overlay chart as a PNG, for machines without a browser.

matplotlib is imported here, lazily, and only its Agg canvas is used (no pyplot, no display).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ModelTrackError
from ..repo import Repo
from .palette import PALETTE
from .series import version_series

__all__ = ["PALETTE", "plot_curves"]


def plot_curves(
    repo: Repo,
    refs: list[str],
    metrics: list[str],
    output: str | os.PathLike[str],
    *,
    x: str = "auto",
    title: str | None = None,
    width: float = 8.0,
    height: float = 4.5,
    dpi: int = 120,
) -> tuple[Path, list[str]]:
    """Draw each metric of ``metrics`` for every version of ``refs`` overlaid, one panel per metric.

    Args:
        repo: the store.
        refs: version references (``NAME``, ``NAME@v3``, ``NAME@production``…).
        metrics: metric names; one panel each.
        output: PNG file to write (its folder is created).
        x: ``"epoch"``, ``"step"`` or ``"auto"`` (epochs when every drawn series has one
            point per epoch).
        title: figure title (default: the metric names).
        width: figure width in inches (height grows per panel).
        height: height of one panel in inches.
        dpi: resolution.

    Returns:
        the PNG path and warnings (a version without one of the metrics).

    Raises:
        ModelTrackError: no version has any of the metrics, an unknown ``x``, or ``output``
            cannot be written.
        ImportError: matplotlib is not installed.

    Example:
        >>> plot_curves(Repo(), ["churn@v1", "churn@v2"], ["val_loss"], "curves.png")  # doctest: +SKIP
    """
    if x not in ("auto", "epoch", "step"):
        raise ModelTrackError(f"x must be auto, epoch or step, got {x!r}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("modeltrack plot needs matplotlib: pip install 'modeltrack[ui]'") from exc

    out = Path(output)
    if out.is_dir():
        raise ModelTrackError(f"{str(out)!r} is a directory; give -o a file name such as {str(out / 'curves.png')!r}")
    resolved = [repo.resolve(r) for r in refs]
    data = [version_series(repo, m, n, max_points=20_000, names=metrics) for m, n in resolved]
    warnings: list[str] = []
    fig = Figure(figsize=(width, height * len(metrics)), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    drawn = 0
    for ax, metric in zip(axes, metrics):
        present = [(i, d["metrics"][metric]) for i, d in enumerate(data) if metric in d["metrics"]]
        for d in data:
            if metric not in d["metrics"]:
                warnings.append(f"{d['model']}@v{d['version']} has no metric {metric!r}")
        use_epoch = x == "epoch" or (x == "auto" and bool(present) and all(s["per_epoch"] for _, s in present))
        for i, s in present:
            d = data[i]
            xs = _x_values(s, use_epoch)
            ys = [float("nan") if v is None else v for v in s["value"]]
            label = f"{d['model']}@v{d['version']}" + ("" if d["status"] == "finished" else f" ({d['status']})")
            style: dict[str, Any] = {"marker": "o", "markersize": 3} if len(xs) <= 50 else {}
            ax.plot(xs, ys, color=PALETTE[i % len(PALETTE)], linewidth=1.6, label=label, **style)
            drawn += 1
        ax.set_title(metric)
        ax.set_xlabel("epoch" if use_epoch else "step")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        if present:
            ax.legend(loc="best", fontsize="small")
    if drawn == 0:
        known = sorted({name for m, n in resolved for name in repo.series(m, n, repo.final(m, n))})
        raise ModelTrackError(
            f"none of {', '.join(refs)} has metric {' or '.join(map(repr, metrics))}; "
            f"metrics they have: {', '.join(known) or 'none'}"
        )
    if title:
        fig.suptitle(title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    except OSError as exc:
        raise ModelTrackError(
            f"cannot write the chart to {str(out)!r} ({exc.strerror or exc}); "
            f"give -o a file in a folder you can write to, e.g. -o curves.png"
        ) from None
    return out, warnings


def _x_values(series: dict[str, Any], use_epoch: bool) -> list[float]:
    if use_epoch:
        epochs = series["epoch"]
        if all(e is not None for e in epochs):
            return [float(e) for e in epochs]
    return [float(s) for s in series["step"]]
