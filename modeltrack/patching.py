"""Safe, reversible patching for autologging.

Mechanics follow pytest's ``MonkeyPatch``: the old value is read from ``owner.__dict__``
(absent when inherited) and undo restores it, or deletes the attribute when it was absent,
in reverse order. The contract follows MLflow's autologging safety rules: the user's
function runs exactly once, its result and exceptions reach the caller untouched, and
tracking failures before or after it become warnings (errors in strict mode).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import InvalidOptionError
from .failures import report

_MISSING = object()


class Patcher:
    """Records attribute replacements so that :meth:`undo` can revert them exactly."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def setattr(self, owner: Any, name: str, value: Any) -> None:
        """Replace ``owner.name`` by ``value``, remembering what ``owner`` itself held."""
        old = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else getattr(owner, name, _MISSING)
        self._saved.append((owner, name, old))
        setattr(owner, name, value)

    def undo(self) -> None:
        """Restore every patched attribute, newest first."""
        while self._saved:
            owner, name, old = self._saved.pop()
            if old is _MISSING:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
            else:
                setattr(owner, name, old)

    def __bool__(self) -> bool:
        return bool(self._saved)


_REGISTRY: dict[str, Patcher] = {}
_REGISTRY_LOCK = threading.Lock()


def enable(key: str, install: Callable[[Patcher], None]) -> None:
    """(Re)install the patches of integration ``key``: old ones are undone first, so that
    enabling twice never patches twice."""
    with _REGISTRY_LOCK:
        old = _REGISTRY.pop(key, None)
        if old is not None:
            old.undo()
        patcher = Patcher()
        try:
            install(patcher)
        except BaseException:
            patcher.undo()
            raise
        _REGISTRY[key] = patcher


def disable(key: str) -> None:
    """Undo the patches of integration ``key`` (no-op when not enabled)."""
    with _REGISTRY_LOCK:
        old = _REGISTRY.pop(key, None)
        if old is not None:
            old.undo()


def enabled(key: str) -> bool:
    """Whether integration ``key`` has patches installed."""
    with _REGISTRY_LOCK:
        return key in _REGISTRY


_depth = threading.local()


@contextmanager
def outermost(key: str) -> Iterator[bool]:
    """Yield True only for the outermost call of ``key`` on this thread (so a ``Pipeline``
    or ``GridSearchCV`` logs once, not once per inner ``fit``)."""
    level = getattr(_depth, key, 0)
    setattr(_depth, key, level + 1)
    try:
        yield level == 0
    finally:
        setattr(_depth, key, level)


def safe_call(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a tracking step; on failure warn (strict mode: raise) and return ``None``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - tracking must never break training
        report(exc, what)
        return None


def wrap(original: Callable[..., Any], around: Callable[..., Any]) -> Callable[..., Any]:
    """``functools.wraps``-preserving wrapper calling ``around(original, *args, **kwargs)``."""

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return around(original, *args, **kwargs)

    wrapper.__modeltrack_original__ = original  # type: ignore[attr-defined]
    return wrapper


def refuse_unknown_options(framework: str, given: Iterable[str], known: Iterable[str]) -> None:
    """The one policy for an option an integration does not take: a clear error naming it
    and the options there are (never silently ignored).

    Raises:
        InvalidOptionError: some of ``given`` are not in ``known`` (also a ``TypeError``).
    """
    known = sorted(set(known))
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidOptionError(
            f"{framework} autolog() got unexpected option(s) {', '.join(unknown)}; it takes {', '.join(known)}",
            value=unknown,
        )
