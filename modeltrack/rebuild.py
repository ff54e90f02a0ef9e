"""Rebuilding a model object from what its version recorded, when its framework cannot save
the object itself (a subclassed ``keras.Model`` without ``get_config``: only its weights can
be saved).

An integration records the class (``"module:Qualname"``, see
:func:`modeltrack.loading.import_recorded_class`) and :func:`init_args` (the constructor
arguments the object still holds under their own names); its loader imports the class and
calls :func:`construct`, then puts the stored weights in.

Example:
    >>> class Net:
    ...     def __init__(self, hidden=8, rate=0.1):
    ...         self.hidden, self.rate = hidden, rate
    >>> init_args(Net(hidden=16))
    ({'hidden': 16, 'rate': 0.1}, [])
    >>> construct(Net, {"hidden": 16}, "net@v3").hidden
    16
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ModelTrackError

__all__ = ["construct", "init_args", "instance", "mismatch"]

_SIMPLE = (str, int, float, bool, type(None))


def _simple(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) <= 64 and all(isinstance(v, _SIMPLE) for v in value)
    return isinstance(value, _SIMPLE)


def init_args(obj: Any, *, skip: Iterable[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """The arguments ``type(obj).__init__`` takes that ``obj`` still holds as attributes of
    the same name (numbers, strings, booleans, None, short lists of them): the only record of
    how an object that does not serialise itself was constructed.

    Args:
        obj: the object.
        skip: parameter names to leave out (ones the framework sets itself, e.g. ``name``).

    Returns:
        ``(known, missing)``: the values found, and the required parameters (no default) whose
        value is not known.
    """
    try:
        params = list(inspect.signature(type(obj).__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}, []
    known: dict[str, Any] = {}
    missing: list[str] = []
    skipped = set(skip)
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in skipped:
            continue
        value = obj.__dict__.get(p.name, inspect.Parameter.empty) if hasattr(obj, "__dict__") else p.empty
        if value is not p.empty and _simple(value):
            known[p.name] = list(value) if isinstance(value, tuple) else value
        elif p.default is p.empty:
            missing.append(p.name)
    return known, missing


def construct(cls: type, init: Mapping[str, Any] | None, ref: str, *, what: str = "the model") -> Any:
    """``cls(**init)``, or a one-line error saying which version and how to build it yourself.

    Raises:
        ModelTrackError: the constructor raised (a required argument not recorded, a changed
            signature); the message names the class, the arguments tried and the error.
    """
    kwargs = dict(init or {})
    try:
        return cls(**kwargs)
    except Exception as exc:  # any constructor failure gets the same advice
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ModelTrackError(
            f"cannot construct {what} of {ref} as {cls.__qualname__}({args}): {type(exc).__name__}: {exc}; "
            f"build it yourself and load the weights: model = {cls.__qualname__}(...), call it on a batch, then "
            f"model.load_weights(modeltrack.load({ref!r}, kind='path'))"
        ) from exc


def instance(
    info: Mapping[str, Any],
    ref: str,
    *,
    cls: type | None = None,
    what: str = "the model",
    needs: Iterable[str] = (),
    file: str = "the file",
) -> Any:
    """A new object of the class a version recorded (``info["model_class"]``, imported: this
    runs its module's code) or of ``cls``, constructed with ``info["model_init"]``.

    Args:
        info: the version's info.
        ref: the version, for messages.
        cls: the class to use instead of the recorded one.
        what: what the object is, for messages.
        needs: other info keys the rebuild needs (an input shape), checked unless ``cls`` is given.
        file: the stored file (weights) to be put into it, for messages.

    Raises:
        ImportError: the recorded class cannot be imported (the message says how to fix it).
        ModelTrackError: it cannot be constructed (see :func:`construct`).
    """
    from .loading import import_recorded_class

    if cls is None and not all(info.get(k) for k in ("model_class", *needs)):
        raise ModelTrackError(
            f"{file} of {ref} holds weights only, and {ref} does not record the class and input shape to rebuild "
            f"{what} from; build it and call load_weights(path), with modeltrack.load({ref!r}, kind='path') giving "
            f"the path"
        )
    if cls is None:
        target = info.get("model_class")
        cls = import_recorded_class(str(target) if target else None, ref, what=what)
    return construct(cls, info.get("model_init"), ref, what=what)


def mismatch(obj: Any, ref: str, init: Mapping[str, Any] | None) -> ModelTrackError:
    """The error for a rebuilt object whose structure differs from the one trained: its
    constructor arguments were not all recorded."""
    name = type(obj).__qualname__
    args = ", ".join(f"{k}={v!r}" for k, v in (init or {}).items())
    return ModelTrackError(
        f"{name}({args}) built here has other layers or weight shapes than {ref} was trained with: its "
        f"constructor arguments are not all recorded (keep each as an attribute of the same name, "
        f"self.hidden = hidden, to have it recorded); build it as it was trained and load the weights from "
        f"modeltrack.load({ref!r}, kind='path')"
    )
