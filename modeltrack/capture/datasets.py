"""Dataset fingerprints: what a data loader or dataset holds, hashed exactly when it can be.

A framework hands training data over as a loader (``torch.utils.data.DataLoader`` and
look-alikes: anything with a ``dataset`` attribute) or as a dataset. This module turns either
into the record :meth:`~modeltrack.Version.log_data` writes (:func:`~modeltrack.capture.data.
fingerprint` of the dataset's columns), or, when the content cannot be hashed exactly and
cheaply, into the record :meth:`~modeltrack.Version.log_data_info` writes: sizes and the
reason. Both go to a version with ``v.log_data_info(name, **record)``.

Datasets backed by tensors (``TensorDataset``, and ``Subset``/``ConcatDataset`` of them) are
hashed whole. Other map-style datasets are read item by item and their fields stacked into
columns, within :data:`MAX_HASH_ITEMS` items and :data:`MAX_HASH_SECONDS` seconds.
Iterable-style datasets are never consumed.

Torch is used only when the process has imported it already (a torch dataset cannot exist
otherwise): importing this module imports no framework.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

from .data import fingerprint

#: item-by-item hashing of a generic map-style dataset gives up beyond this many items
MAX_HASH_ITEMS = 100_000
#: ... or after this many seconds
MAX_HASH_SECONDS = 2.0

Columns = tuple[Any, ...]


def _torch() -> Any:
    """The ``torch`` module if this process imported it, else ``None`` (never imported here)."""
    if "torch" not in sys.modules:
        return None
    import torch

    return torch


def flatten_loaders(name: str, loaders: Any) -> list[tuple[str, Any]]:
    """Name each loader of a loader collection.

    Args:
        name: the collection's name (``"train"``, ``"val"``).
        loaders: one loader, a sequence of them or a mapping of names to them.

    Returns:
        ``[(name, loader)]`` for one loader (or a sequence of one), ``name/i`` for a
        sequence, ``name/key`` for a mapping.
    """
    if isinstance(loaders, Mapping):
        return [(f"{name}/{k}", dl) for k, dl in loaders.items()]
    if isinstance(loaders, (list, tuple)):
        if len(loaders) == 1:
            return [(name, loaders[0])]
        return [(f"{name}/{i}", dl) for i, dl in enumerate(loaders)]
    return [(name, loaders)]


def fingerprint_loader(
    loader: Any, *, max_items: int | None = None, max_seconds: float | None = None
) -> dict[str, Any]:
    """Fingerprint the dataset behind a data loader.

    Args:
        loader: a ``DataLoader`` or anything with a ``dataset`` attribute.
        max_items: item-by-item limit (default :data:`MAX_HASH_ITEMS`).
        max_seconds: item-by-item time limit (default :data:`MAX_HASH_SECONDS`).

    Returns:
        what :func:`fingerprint_dataset` returns; when there is no fingerprint, the
        record also holds the loader's ``batches`` and ``batch_size`` where known.
    """
    sizes: dict[str, Any] = {}
    try:
        sizes["batches"] = len(loader)
    except TypeError:
        pass
    if getattr(loader, "batch_size", None) is not None:
        sizes["batch_size"] = loader.batch_size
    ds = getattr(loader, "dataset", None)
    if ds is None:
        return {"fingerprint": None, "reason": f"{type(loader).__name__} has no dataset to fingerprint", **sizes}
    record = fingerprint_dataset(ds, max_items=max_items, max_seconds=max_seconds)
    if record.get("fingerprint") is None:
        record.update(sizes)
    return record


def fingerprint_dataset(ds: Any, *, max_items: int | None = None, max_seconds: float | None = None) -> dict[str, Any]:
    """Fingerprint a dataset, or say why not.

    Args:
        ds: a map-style dataset (``TensorDataset``, ``Subset``, ``ConcatDataset``, any object
            with ``__len__`` and ``__getitem__`` whose items are tensors, arrays or numbers,
            or tuples of them) or an iterable-style one (never hashed).
        max_items: item-by-item limit (default :data:`MAX_HASH_ITEMS`).
        max_seconds: item-by-item time limit (default :data:`MAX_HASH_SECONDS`).

    Returns:
        ``fingerprint(columns)`` (``{"fingerprint": "sha256:…", "shape", "dtype", "pytype",
        "parts"}``, one part per field) when it can be hashed; else ``{"fingerprint": None,
        "reason": str, "dataset": class name}`` and ``"size"`` where ``len`` works.
    """
    columns, why = dataset_arrays(ds, max_items=max_items, max_seconds=max_seconds)
    if columns is not None:
        return fingerprint(columns)
    record: dict[str, Any] = {"fingerprint": None, "reason": why, "dataset": type(ds).__name__}
    try:
        record["size"] = len(ds)
    except TypeError:
        pass
    return record


def dataset_arrays(
    ds: Any, *, max_items: int | None = None, max_seconds: float | None = None
) -> tuple[Columns | None, str]:
    """The columns behind a map-style dataset: one stacked tensor (or array) per field.

    Args:
        ds: the dataset (see :func:`fingerprint_dataset`).
        max_items: item-by-item limit (default :data:`MAX_HASH_ITEMS`).
        max_seconds: item-by-item time limit (default :data:`MAX_HASH_SECONDS`).

    Returns:
        ``(columns, "")``, or ``(None, why)`` when the dataset cannot be hashed exactly
        within the limits.
    """
    torch = _torch()
    if torch is not None:
        from torch.utils.data import ConcatDataset, IterableDataset, Subset

        if isinstance(ds, IterableDataset):
            return None, "iterable-style dataset: it cannot be hashed without consuming it"
        tensors = getattr(ds, "tensors", None)
        if isinstance(tensors, (tuple, list)) and tensors and all(isinstance(t, torch.Tensor) for t in tensors):
            return tuple(tensors), ""
        if isinstance(ds, Subset):
            base, why = dataset_arrays(ds.dataset, max_items=max_items, max_seconds=max_seconds)
            if base is None:
                return None, why
            idx = torch.as_tensor(list(ds.indices), dtype=torch.long)
            return tuple(t[idx] for t in base), ""
        if isinstance(ds, ConcatDataset):
            parts = [dataset_arrays(d, max_items=max_items, max_seconds=max_seconds) for d in ds.datasets]
            for p, why in parts:
                if p is None:
                    return None, why
            widths = {len(p) for p, _ in parts if p is not None}
            if len(widths) != 1:
                return None, "concatenated datasets with different fields"
            return tuple(torch.cat([p[i] for p, _ in parts if p is not None]) for i in range(widths.pop())), ""
    if not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__"):
        return None, f"{type(ds).__name__} is not a map-style dataset"
    limit = MAX_HASH_ITEMS if max_items is None else max_items
    return _stack_items(ds, torch, limit, MAX_HASH_SECONDS if max_seconds is None else max_seconds)


def _stack_items(ds: Any, torch: Any, max_items: int, max_seconds: float) -> tuple[Columns | None, str]:
    """Read a map-style dataset item by item and stack each field (torch when imported, else numpy)."""
    n = len(ds)
    if n > max_items:
        return None, f"{n} items: more than {max_items} to hash item by item"
    stack_error: type[Exception]
    if torch is not None:
        as_column, stack, stack_error = torch.as_tensor, torch.stack, RuntimeError
        numeric: tuple[type, ...] = (torch.Tensor,)
    else:
        import numpy as np

        as_column, stack, stack_error = np.asarray, np.stack, ValueError
        numeric = (np.ndarray, np.generic)
    deadline = time.monotonic() + max_seconds
    columns: list[list[Any]] | None = None
    for i in range(n):
        item = ds[i]
        fields = item if isinstance(item, (tuple, list)) else (item,)
        fields = tuple(as_column(f) if isinstance(f, (int, float, bool)) else f for f in fields)
        if not all(isinstance(f, numeric) or type(f).__module__ == "numpy" for f in fields):
            kinds = ", ".join(sorted({type(f).__name__ for f in fields}))
            return None, f"items hold {kinds}, not only tensors or arrays"
        if columns is None:
            columns = [[] for _ in fields]
        if len(fields) != len(columns):
            return None, "items have a varying number of fields"
        for col, f in zip(columns, fields, strict=True):
            col.append(as_column(f))
        if time.monotonic() > deadline:
            return None, f"hashing item by item took over {max_seconds:g} s (stopped at item {i} of {n})"
    if not columns:
        return None, "empty dataset"
    try:
        return tuple(stack(col) for col in columns), ""
    except stack_error:
        return None, "items have varying shapes"


__all__ = [
    "MAX_HASH_ITEMS",
    "MAX_HASH_SECONDS",
    "dataset_arrays",
    "fingerprint_dataset",
    "fingerprint_loader",
    "flatten_loaders",
]
