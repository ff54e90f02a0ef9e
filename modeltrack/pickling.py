"""Pickled models whose code lives in the training script (core).

Plain pickle (and joblib) store a function or class *by name*: ``__main__.double`` for a
function defined in the script being run. Saving succeeds, but loading in any other process
fails with ``AttributeError: Can't get attribute 'double' on <module '__main__'>``; lambdas
and functions defined inside functions do not pickle at all. :func:`by_value_reference` finds
the first such reference in an object (a callable ``refit``, a ``FunctionTransformer(func)``,
a class defined in the script); :func:`dump_by_value` then writes the object with cloudpickle,
which serializes those functions and classes by value, as MLflow's default serializer does,
and :func:`load_by_value` reads it back (cloudpickle must be importable there too).

Example:
    >>> ref = by_value_reference(model)  # doctest: +SKIP
    >>> fmt = dump_by_value(model, path) if ref else joblib.dump(model, path)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import pickle
import types
from typing import Any

from .errors import ModelTrackError

#: the ``format`` an artifact written by :func:`dump_by_value` records
FORMAT = "cloudpickle"


class _Found(Exception):
    pass


class _Sink:
    def write(self, data: Any) -> int:
        return len(data)


def _by_value(obj: Any) -> bool:
    qualname = getattr(obj, "__qualname__", "")
    return (
        getattr(obj, "__module__", None) in ("__main__", "__mp_main__")
        or "<locals>" in qualname
        or (qualname == "<lambda>")
    )


class _Finder(pickle.Pickler):
    def __init__(self) -> None:
        super().__init__(_Sink(), protocol=pickle.HIGHEST_PROTOCOL)
        self.found: str | None = None

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (types.FunctionType, type)) and _by_value(obj):
            self.found = f"{obj.__module__}.{obj.__qualname__}"
            raise _Found
        dtype = getattr(obj, "dtype", None)
        if type(obj).__module__ == "numpy" and getattr(dtype, "hasobject", True) is False:
            return (int, ())  # an array of plain numbers refers to no code: skip its bytes
        return NotImplemented


def by_value_reference(obj: Any) -> str | None:
    """The first function or class ``obj`` refers to that only loads back when stored by value
    (defined in ``__main__``, inside a function, or a lambda), as ``"module.qualname"``.

    Returns:
        the reference, or None when plain pickle stores ``obj`` faithfully (or cannot
        pickle it for another reason: the caller's own save then says why).
    """
    finder = _Finder()
    try:
        finder.dump(obj)
    except _Found:
        return finder.found
    except Exception:  # noqa: BLE001 - not picklable at all: the real save reports it
        return None
    return None


def dump_by_value(obj: Any, path: str | os.PathLike[str], *, reference: str = "a function of the script") -> str:
    """Write ``obj`` to ``path`` with cloudpickle (functions of the script by value).

    Returns:
        :data:`FORMAT`, for the artifact's metadata.

    Raises:
        ModelTrackError: cloudpickle is not installed (the message names ``reference`` and the fixes).
    """
    try:
        import cloudpickle
    except ImportError:
        name = reference.rsplit(".", 1)[-1]
        raise ModelTrackError(
            f"cannot store the model: it refers to {reference} (defined in the running script, inside a function, "
            f"or a lambda), which plain pickle stores by a name no other process can import; pip install "
            f"cloudpickle to store it by value, or define {name} at module level in an importable module"
        ) from None
    with open(path, "wb") as f:
        cloudpickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    return FORMAT


def load_by_value(path: str | os.PathLike[str]) -> Any:
    """Read a file written by :func:`dump_by_value` (runs code: the caller checks trust).

    Raises:
        ImportError: cloudpickle is not installed (the message says how to install it).
    """
    try:
        import cloudpickle
    except ImportError as exc:
        raise ImportError(
            "this model was stored with cloudpickle (it holds functions of its training script); "
            "pip install cloudpickle to load it",
            name="cloudpickle",
        ) from exc
    with open(path, "rb") as f:
        return cloudpickle.load(f)


__all__ = ["FORMAT", "by_value_reference", "dump_by_value", "load_by_value"]
