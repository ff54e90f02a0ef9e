"""Data fingerprints: an exact content hash, shape and dtype of what a model was fed.

The hash covers the type, dtype, shape and every byte of the values, so "same data?" is a
string comparison. Frameworks are recognised by module name and never imported here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidValueError


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def _hash_ndarray(h: Any, arr: Any) -> None:
    import numpy as np

    if arr.dtype.hasobject:
        h.update(json.dumps(arr.tolist(), default=repr, sort_keys=True).encode())
        return
    arr = np.ascontiguousarray(arr)
    h.update(memoryview(arr).cast("B"))


def fingerprint(data: Any) -> dict[str, Any]:
    """Fingerprint ``data``: numpy arrays, torch tensors, pandas frames and series, scipy
    sparse matrices, lists and tuples of numbers or of such arrays, dicts of them, bytes.

    Returns:
        ``{"fingerprint": "sha256:…", "shape": [...] | None, "dtype": str | None,
        "type": str}``.

    Raises:
        InvalidValueError: ``data`` is of a kind that cannot be hashed exactly.
    """
    h = hashlib.sha256()
    info = _feed(h, data)
    info["fingerprint"] = "sha256:" + h.hexdigest()
    return info


def _feed(h: Any, data: Any) -> dict[str, Any]:
    mod = _module(data)
    kind = f"{type(data).__module__}.{type(data).__qualname__}"
    if mod == "numpy" and hasattr(data, "dtype") and hasattr(data, "shape"):
        import numpy as np

        arr = np.asarray(data)
        h.update(f"ndarray|{arr.dtype.str}|{arr.shape}|".encode())
        _hash_ndarray(h, arr)
        return {"shape": list(arr.shape), "dtype": str(arr.dtype), "pytype": kind}
    if mod == "torch" and hasattr(data, "detach"):
        t = data.detach()
        dtype = str(t.dtype)
        if t.dtype.is_floating_point and t.element_size() == 2 and "bfloat16" in dtype:
            t = t.float()
        arr = t.cpu().contiguous().numpy()
        h.update(f"tensor|{dtype}|{tuple(arr.shape)}|".encode())
        _hash_ndarray(h, arr)
        return {"shape": list(arr.shape), "dtype": dtype, "pytype": kind}
    if mod == "pandas" and hasattr(data, "dtypes"):
        import pandas as pd

        frame = data.to_frame() if hasattr(data, "to_frame") and not hasattr(data, "columns") else data
        h.update(f"pandas|{type(data).__name__}|{frame.shape}|".encode())
        for col in frame.columns:
            series = frame[col]
            h.update(f"|{col!r}:{series.dtype}|".encode())
            values = series.to_numpy()
            if values.dtype.hasobject or isinstance(series.dtype, pd.CategoricalDtype):
                values = pd.util.hash_pandas_object(series, index=False).to_numpy()
            _hash_ndarray(h, values)
        dtypes = sorted({str(t) for t in (frame.dtypes if hasattr(frame, "dtypes") else [])})
        return {"shape": list(data.shape), "dtype": ",".join(dtypes), "pytype": kind}
    if mod == "scipy" and hasattr(data, "tocsr"):
        csr = data.tocsr()
        h.update(f"sparse|{csr.dtype.str}|{csr.shape}|".encode())
        for part in (csr.indptr, csr.indices, csr.data):
            _hash_ndarray(h, part)
        return {"shape": list(csr.shape), "dtype": str(csr.dtype), "pytype": kind}
    if isinstance(data, (bytes, bytearray, memoryview)):
        h.update(b"bytes|")
        h.update(data)
        return {"shape": [len(data)], "dtype": "bytes", "pytype": kind}
    if isinstance(data, str):
        h.update(b"str|" + data.encode())
        return {"shape": None, "dtype": "str", "pytype": kind}
    if isinstance(data, Mapping):
        h.update(f"mapping|{len(data)}|".encode())
        for key in sorted(data, key=str):
            h.update(f"|{key!s}|".encode())
            _feed(h, data[key])
        return {"shape": [len(data)], "dtype": None, "pytype": kind}
    if isinstance(data, (list, tuple)):
        if data and all(_module(x) in ("numpy", "torch", "pandas", "scipy") for x in data):
            h.update(f"seq|{len(data)}|".encode())
            shapes = [_feed(h, x).get("shape") for x in data]
            # "shape" is the first array's (the inputs of an (x, y) pair); "parts" has each one's
            return {"shape": shapes[0], "dtype": None, "pytype": kind, "parts": shapes}
        try:
            import numpy as np

            arr = np.asarray(data)
            if not arr.dtype.hasobject:
                h.update(f"list|{arr.dtype.str}|{arr.shape}|".encode())
                _hash_ndarray(h, arr)
                return {"shape": list(arr.shape), "dtype": str(arr.dtype), "pytype": kind}
        except (ImportError, ValueError):
            pass
        try:
            text = json.dumps(data, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(
                f"cannot fingerprint a {kind} holding non-JSON items ({exc}); pass a numpy "
                f"array, tensor, DataFrame, or list of numbers/strings",
                value=data,
            ) from exc
        h.update(b"json|" + text.encode())
        return {"shape": [len(data)], "dtype": None, "pytype": kind}
    raise InvalidValueError(
        f"cannot fingerprint a {kind}: pass a numpy array, torch tensor, pandas DataFrame or "
        f"Series, scipy sparse matrix, list, dict or bytes",
        value=data,
    )


#: modules whose array types :func:`can_fingerprint` accepts (anything of theirs with a ``shape``)
ARRAY_MODULES = ("numpy", "torch", "pandas", "scipy", "jax", "jaxlib", "tensorflow")
#: array modules :func:`fingerprint` does not read natively: :func:`to_host` converts them to numpy
_FOREIGN_ARRAY_MODULES = ("jax", "jaxlib", "tensorflow")


def data_kind(obj: Any) -> str:
    """The qualified type name of ``obj`` (``"numpy.ndarray"``), as data records name it."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def can_fingerprint(obj: Any) -> bool:
    """Whether ``obj`` is an array or tensor (or a non-empty list, tuple or dict of them, nested)
    that can be fingerprinted exactly without consuming anything.

    Arrays of numpy, torch, pandas, scipy, JAX and TensorFlow count (anything of theirs with a
    ``shape``); generators, datasets, loaders, plain numbers, empty containers and ``None`` do not.
    Frameworks are recognised by module name and never imported.
    """
    if _module(obj) in ARRAY_MODULES and hasattr(obj, "shape"):
        return True
    if isinstance(obj, Mapping):
        return bool(obj) and all(can_fingerprint(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return bool(obj) and all(can_fingerprint(v) for v in obj)
    return False


def to_host(obj: Any, convert: Any = None) -> Any:
    """``obj`` with its JAX and TensorFlow arrays converted to numpy, nested in lists, tuples
    and dicts (their types kept); everything else, numpy and torch included, is left as is:
    :func:`fingerprint` reads those natively.

    Args:
        obj: what to convert.
        convert: ``array -> numpy array`` (a framework's own converter, e.g.
            ``keras.ops.convert_to_numpy``); default :func:`numpy.asarray` (numpy is imported
            only when there is something to convert).
    """
    if _module(obj) in _FOREIGN_ARRAY_MODULES:
        if convert is None:
            import numpy as np

            convert = np.asarray
        return convert(obj)
    if isinstance(obj, Mapping):
        return {k: to_host(v, convert) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(v, convert) for v in obj)
    return obj


def split_xy(validation_data: Any) -> tuple[Any, Any]:
    """Inputs and targets of a validation argument: ``(x, y)`` and ``(x, y, sample_weight)``
    tuples or lists give ``(x, y)``; anything else (a dataset, a generator, ``None``) is inputs
    alone: ``(validation_data, None)``."""
    if isinstance(validation_data, (list, tuple)) and 2 <= len(validation_data) <= 3:
        return validation_data[0], validation_data[1]
    return validation_data, None


def unfingerprinted(obj: Any, *, hint: str = "", **sizes: Any) -> dict[str, Any]:
    """The record of data that is not fingerprinted: its type, its length (``None`` without
    ``len``) and why, for :meth:`~modeltrack.Version.log_data_info`.

    Args:
        obj: the data (a generator, dataset, loader, …).
        hint: appended to the reason: how the user can get a fingerprint instead.
        **sizes: more sizes to record (``steps=``, ``batch_size=``).

    Returns:
        ``{"fingerprint": None, "pytype": str, "length": int | None, "reason": str, **sizes}``.
    """
    try:
        length: int | None = len(obj)
    except TypeError:
        length = None
    kind = data_kind(obj)
    reason = f"{kind} is not an array or tensor: its content cannot be fingerprinted without reading it again"
    return {
        "fingerprint": None,
        "pytype": kind,
        "length": length,
        **sizes,
        "reason": f"{reason}; {hint}" if hint else reason,
    }


def fingerprint_or_reason(obj: Any, *, convert: Any = None, hint: str = "", **sizes: Any) -> dict[str, Any]:
    """Fingerprint ``obj`` when :func:`can_fingerprint` says it can be, else say why not.

    Both results go to a version with ``v.log_data_info(name, **record)``.

    Args:
        obj: the data.
        convert: passed to :func:`to_host`.
        hint, **sizes: passed to :func:`unfingerprinted`.

    Returns:
        :func:`fingerprint` of ``to_host(obj, convert)``, or :func:`unfingerprinted` of ``obj``.
    """
    if can_fingerprint(obj):
        return fingerprint(to_host(obj, convert))
    return unfingerprinted(obj, hint=hint, **sizes)
