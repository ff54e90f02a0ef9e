"""Turn arbitrary params into flat JSON.

Rule: nested mappings are flattened with ``.`` (``{"opt": {"lr": 0.1}}`` becomes
``{"opt.lr": 0.1}``); lists and tuples stay lists; values that are not JSON are recorded
as a readable stand-in (a class or function by its qualified name, a set as a sorted list,
an array or tensor as its values when small, else ``<ndarray shape=(…) dtype=…>``, any
other object by its ``repr``); strings longer than :data:`MAX_STR` are cut, saying so.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Mapping
from typing import Any

from ..errors import ParamConflictError

MAX_STR = 10_000
MAX_ITEMS = 1_000
SMALL_ARRAY = 64
SEP = "."


def _cut(text: str) -> str:
    if len(text) <= MAX_STR:
        return text
    return text[:MAX_STR] + f"…[truncated {len(text) - MAX_STR} characters]"


def _qualname(obj: Any) -> str:
    mod = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(obj)
    return f"{mod}.{name}" if mod and mod != "builtins" else str(name)


def to_json_value(value: Any, _depth: int = 0) -> Any:
    """A JSON-serialisable stand-in for ``value`` (never raises)."""
    if value is None or isinstance(value, (bool, str)):
        return _cut(value) if isinstance(value, str) else value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > 20:
        return _cut(repr(value))
    if isinstance(value, enum.Enum):
        return to_json_value(value.value, _depth + 1)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v, _depth + 1) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v, _depth + 1) for v in value[:MAX_ITEMS]]
    if isinstance(value, (set, frozenset)):
        items = [to_json_value(v, _depth + 1) for v in value]
        return sorted(items, key=repr)[:MAX_ITEMS]
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        return _qualname(value)
    # numpy scalars / arrays and torch tensors, recognised without importing them.
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):
        try:
            size = 1
            for d in shape:
                size *= int(d)
            if size <= SMALL_ARRAY:
                data = value.tolist() if hasattr(value, "tolist") else list(value)
                return to_json_value(data, _depth + 1)
            kind = type(value).__name__
            return f"<{kind} shape={tuple(int(d) for d in shape)} dtype={value.dtype}>"
        except Exception:  # noqa: BLE001 - a stand-in must never fail
            return _cut(repr(value))
    if hasattr(value, "item") and callable(value.item):
        try:
            return to_json_value(value.item(), _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    try:
        return _cut(repr(value))
    except Exception:  # noqa: BLE001
        return f"<{type(value).__name__}>"


def is_simple(value: Any, max_items: int = 16) -> bool:
    """Whether ``value`` is worth recording as a setting as it is: None, a bool, number or
    string, or a short list/tuple of those (a framework object's other attributes are not)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) <= max_items
        and all(v is None or isinstance(v, (bool, int, float, str)) for v in value)
    )


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested mappings with ``.`` and convert every value with :func:`to_json_value`.

    Raises:
        ParamConflictError: two keys flatten to the same name with different values.
    """
    out: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in out and out[key] != value:
            raise ParamConflictError(
                f"param {key!r} is given twice with different values ({out[key]!r} and "
                f"{value!r}), e.g. as 'a.b' and as {{'a': {{'b': …}}}}; keep one of them",
                value=key,
            )
        out[key] = value

    def walk(obj: Mapping[Any, Any], pre: str) -> None:
        for k, v in obj.items():
            key = f"{pre}{k}"
            if isinstance(v, Mapping) and v:
                walk(v, key + SEP)
            else:
                put(key, to_json_value(v))

    walk(params, prefix)
    return out
