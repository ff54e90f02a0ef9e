"""What the command line prints: JSON documents, plain tables, sparklines (the faces' one
output module)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any


def print_json(obj: Any) -> None:
    """One JSON document on stdout (non-finite numbers refused: callers pass them as null)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str, allow_nan=False) + "\n")


def fmt(value: Any, width: int = 60) -> str:
    """One table cell: ``-`` for None, short floats, long text cut with an ellipsis."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain text table, columns padded to their widest cell."""
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def md_cell(value: Any, width: int = 200) -> str:
    """One Markdown table cell: :func:`fmt`, with ``|`` escaped and newlines as spaces."""
    return (
        fmt(value, width)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def md_table(rows: list[list[Any]], headers: list[str]) -> str:
    """A GitHub-flavoured Markdown table (for a CI job summary)."""
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[Any], width: int = 40) -> str:
    """A one-line chart of ``values`` (downsampled to ``width`` points)."""
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not vals:
        return ""
    if len(vals) > width:
        step = len(vals) / width
        vals = [vals[int(i * step)] for i in range(width - 1)] + [vals[-1]]
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(SPARKS[min(len(SPARKS) - 1, int((v - lo) / span * (len(SPARKS) - 1) + 0.5))] for v in vals)


def mb(n: int) -> str:
    """A byte count in megabytes, for humans."""
    return f"{n / 1e6:.1f} MB"


__all__ = ["SPARKS", "fmt", "mb", "md_cell", "md_table", "print_json", "sparkline", "table"]
