"""Inputs and targets as frameworks take them: an array, or a dict / list / tuple of arrays
(multi-input and multi-output models), nested. Split by rows, named by part, described by
shape; nothing is copied (slices of numpy arrays and tensors are views).

Example:
    >>> import numpy as np
    >>> y = {"cls": np.zeros(10), "reg": np.ones((10, 2))}
    >>> [name for name, _ in parts("train.y", y)]
    ['train.y.cls', 'train.y.reg']
    >>> head, tail = split_rows(y, 8); rows(tail)
    2
    >>> spec(np.zeros((10, 3), dtype="float64"))
    {'shape': [None, 3], 'dtype': 'float64'}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .data import can_fingerprint

__all__ = ["arrays", "parts", "rows", "spec", "split_rows", "zeros"]


def _leaves(data: Any) -> list[Any]:
    if isinstance(data, Mapping):
        return [leaf for v in data.values() for leaf in _leaves(v)]
    if isinstance(data, (list, tuple)):
        return [leaf for v in data for leaf in _leaves(v)]
    return [] if data is None else [data]


def rows(data: Any) -> int | None:
    """The number of rows (first dimension) of the first array in ``data``; None without one."""
    leaves = _leaves(data)
    shape = getattr(leaves[0], "shape", None) if leaves else None
    return int(shape[0]) if shape else None


def split_rows(data: Any, n: int) -> tuple[Any, Any]:
    """``(data[:n], data[n:])`` for every array in ``data``, the nesting kept (``None`` stays None)."""
    if data is None:
        return None, None
    if isinstance(data, Mapping):
        halves = {k: split_rows(v, n) for k, v in data.items()}
        return {k: a for k, (a, _) in halves.items()}, {k: b for k, (_, b) in halves.items()}
    if isinstance(data, (list, tuple)):
        pairs = [split_rows(v, n) for v in data]
        return type(data)(a for a, _ in pairs), type(data)(b for _, b in pairs)
    return data[:n], data[n:]


def parts(name: str, data: Any) -> list[tuple[str, Any]]:
    """``data`` as named datasets: a dict of several arrays as ``NAME.KEY`` each, a list or
    tuple of several as ``NAME.0``, ``NAME.1``…, anything else as ``NAME``."""
    if isinstance(data, Mapping) and len(data) > 1:
        return [(f"{name}.{k}", v) for k, v in data.items()]
    if isinstance(data, (list, tuple)) and len(data) > 1:
        return [(f"{name}.{i}", v) for i, v in enumerate(data)]
    return [(name, data)]


def arrays(named: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`parts` of each named dataset that can be fingerprinted (``None`` and
    generators left out): ``{"test.x": x, "test.y": {"a": ya, "b": yb}}`` gives ``test.x``,
    ``test.y.a`` and ``test.y.b``."""
    return {n: part for name, data in named.items() for n, part in parts(name, data) if can_fingerprint(part)}


def spec(data: Any) -> Any:
    """``{"shape": [None, ...], "dtype": ...}`` of a batch of inputs (the first dimension, the
    batch, left open), nested as ``data`` is; None where a part is not an array."""
    if isinstance(data, Mapping):
        return {str(k): spec(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [spec(v) for v in data]
    if not can_fingerprint(data):
        return None
    dtype = str(getattr(data, "dtype", "float32")).replace("torch.", "")
    return {"shape": [None, *(int(d) for d in data.shape[1:])], "dtype": dtype}


def zeros(recorded: Any) -> Any:
    """A batch of one row of zeros for a :func:`spec` (numpy arrays, the nesting kept)."""
    import numpy as np

    if isinstance(recorded, Mapping) and "shape" not in recorded:
        return {k: zeros(v) for k, v in recorded.items()}
    if isinstance(recorded, list):
        return [zeros(v) for v in recorded]
    return np.zeros([1 if d is None else d for d in recorded["shape"]], dtype=recorded["dtype"])
