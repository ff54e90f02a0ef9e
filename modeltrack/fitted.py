"""A model object around its tracked fits, for integrations whose framework keeps training
state in the model itself (Keras): which version the object was last fitted into (the parent
of its next fit, and where an evaluation after the fit goes), its later ``evaluate`` calls,
and the files its own save methods write while it trains (a framework's checkpoint callback
calling ``model.save(path)``: the only write seam such a framework has).

Example:
    >>> FITTED = Fitted()
    >>> FITTED.started(model, version)          # at the start of each tracked fit
    >>> follow_calls("keras.evaluate", keras.Model, "evaluate", FITTED, record)  # once
    >>> watch = SaveWatch(on_saved)             # while the framework's callbacks may save
    >>> watch.watch(model, "save", "save_weights"); ...; watch.stop()
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import patching
from .errors import ModelTrackWarning

if TYPE_CHECKING:
    from .tracking import Version

__all__ = ["Fitted", "SaveWatch", "call_arguments", "caller_self", "follow_calls", "inside", "patch_outermost"]


class Fitted:
    """The version each model object was last fitted into (objects held weakly)."""

    def __init__(self, max_size: int = 256) -> None:
        self._versions: patching.IdentityMap[Version] = patching.IdentityMap(max_size=max_size)

    def started(self, model: Any, version: Version, *, owned: bool = True) -> str | None:
        """``version`` now trains ``model``; a version that ``model`` was fitted into before is
        recorded as its parent (``owned``: the integration started ``version``). Returns the parent."""
        before = self._versions.get(model)
        parent = before.ref if before is not None and before is not version and owned else None
        if parent is not None:
            version.set_parent(parent)
        self._versions.put(model, version)
        return parent

    def ended(self, model: Any) -> Version | None:
        """The version ``model`` was last fitted into, once that fit has ended (else None)."""
        v = self._versions.get(model)
        return v if v is not None and v.closed else None


def caller_self(cls: type, *, where: Callable[[Any], bool] | None = None, limit: int = 8) -> Any:
    """The ``self`` of the innermost caller that is an instance of ``cls`` (and satisfies
    ``where``), or None: which framework object is calling a hook (Keras's ``CallbackList``, the
    ``ModelCheckpoint`` that is saving)."""
    for _, local in patching.callers(limit):
        obj = local.get("self")
        if isinstance(obj, cls) and (where is None or where(obj)):
            return obj
    return None


def inside(function: str, obj: Any, limit: int = 16) -> bool:
    """Whether a call of ``obj.<function>`` is running below the caller (``fit`` validating
    through ``evaluate``)."""
    return any(name == function and local.get("self") is obj for name, local in patching.callers(limit))


def follow_calls(
    key: str,
    owner: type,
    attr: str,
    fitted: Fitted,
    record: Callable[[Version, Any, Mapping[str, Any], Any], None],
    *,
    not_inside: str = "fit",
) -> None:
    """Patch ``owner.attr`` (once; reversibly, as patching key ``key``) so that a call on an
    object whose tracked fit has ended runs as it would and then calls
    ``record(version, obj, arguments, result)``: ``arguments`` bound by name, ``result`` what the
    call returned, which the caller gets unchanged (exceptions too). Calls made inside
    ``obj.<not_inside>`` are not recorded, nor are failures of ``record`` (a warning)."""
    if patching.enabled(key):
        return

    def install(patcher: patching.Patcher) -> None:
        original = getattr(owner, attr)
        original = getattr(original, "__modeltrack_original__", original)
        signature = inspect.signature(original)

        def around(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            result = call(*args, **kwargs)
            obj = args[0] if args else None
            v = fitted.ended(obj)
            if v is not None and not inside(not_inside, obj):
                arguments = signature.bind(*args, **kwargs).arguments
                patching.safe_call(f"recording {attr}", record, v, obj, arguments, result)
            return result

        patcher.setattr(owner, attr, patching.wrap(original, around))

    patching.enable(key, install)


def call_arguments(function: str, obj: Any, limit: int = 12) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The locals of the running ``obj.<function>`` above the caller, and the arguments it was
    called with as its wrapper (a decorator's ``args`` / ``kwargs``, one frame up) still holds
    them, bound by name: the values the user passed, which the function may have reassigned
    since (``({}, None)`` / ``(locals, None)`` when not found)."""
    found: dict[str, Any] | None = None
    for name, local in patching.callers(limit):
        if found is None:
            if name == function and local.get("self") is obj:
                found = dict(local)
            continue
        args, kwargs = local.get("args"), local.get("kwargs")
        if isinstance(args, tuple) and args and args[0] is obj and isinstance(kwargs, dict):
            bound = inspect.signature(getattr(type(obj), function)).bind(*args, **kwargs)
            return found, dict(bound.arguments)
        break
    return found or {}, None


class SaveWatch:
    """Reports each file written by an object's save methods (``model.save(path)``) while
    watched: ``on_saved(path)`` runs after the write, its failures only warn.

    The integration's own writes go through the class (``type(model).save(model, path)``),
    which the instance's watched methods do not see.
    """

    def __init__(self, on_saved: Callable[[str], None]) -> None:
        self._on_saved = on_saved
        self._patcher = patching.Patcher()

    def watch(self, obj: Any, *methods: str) -> None:
        """Watch ``obj``'s ``methods`` (their first argument, or ``filepath=``, is the path)."""
        for name in methods:
            self._patcher.setattr(obj, name, patching.wrap(getattr(obj, name), self._saving))

    def _saving(self, save: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        result = save(*args, **kwargs)
        path = args[0] if args else kwargs.get("filepath")
        if path is not None:
            patching.safe_call("storing a checkpoint the framework wrote", self._on_saved, os.fspath(path))
        return result

    def stop(self) -> None:
        """Put the methods back."""
        self._patcher.undo()


def patch_outermost(
    key: str,
    owner: type,
    attr: str,
    prepare: Callable[[inspect.Signature, tuple[Any, ...], dict[str, Any]], Any],
) -> None:
    """Patch ``owner.attr`` (reversibly, as patching key ``key``; enabling again replaces the
    patch) so that its outermost call on a thread runs ``prepare(signature, args, kwargs)``
    first: ``None`` (call as given) or ``(args, kwargs, ended)``, the arguments to call with and
    ``ended(exception or None)``, run once the call returned or raised. The call runs exactly
    once and its result and exceptions reach the caller unchanged; failures of ``prepare`` and
    ``ended`` only warn."""

    def install(patcher: patching.Patcher) -> None:
        original = getattr(owner, attr)
        original = getattr(original, "__modeltrack_original__", original)
        signature = inspect.signature(original)

        def around(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            with patching.outermost(f"{key}:{attr}") as top:
                prepared = (
                    patching.safe_call(f"preparing {key} {attr}", prepare, signature, args, kwargs) if top else None
                )
                if prepared is None:
                    return call(*args, **kwargs)
                call_args, call_kwargs, ended = prepared
                try:
                    result = call(*call_args, **call_kwargs)
                except BaseException as exc:
                    _run_ended(ended, exc, key)
                    raise
                _run_ended(ended, None, key)
                return result

        patcher.setattr(owner, attr, patching.wrap(original, around))

    patching.enable(key, install)


def _run_ended(ended: Callable[[BaseException | None], None], exc: BaseException | None, key: str) -> None:
    try:
        ended(exc)
    except Exception as err:  # noqa: BLE001 - warn even in strict mode: the user's exception must win
        warnings.warn(f"modeltrack: ending the {key} call failed: {err}", ModelTrackWarning, stacklevel=3)
