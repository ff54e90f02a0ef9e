"""Safe, reversible patching for autologging.

Mechanics follow pytest's ``MonkeyPatch``: the old value is read from ``owner.__dict__``
(absent when inherited) and undo restores it, or deletes the attribute when it was absent,
in reverse order. The contract follows MLflow's autologging safety rules: the user's
function runs exactly once, its result and exceptions reach the caller untouched, and
tracking failures before or after it become warnings (errors in strict mode).

Besides :class:`Patcher` and the per-integration registry (:func:`enable`/:func:`disable`),
the framework-free machinery autologging integrations share lives here: :class:`ClassPatcher`
(wrap chosen methods of every public class of a module, or of named classes), the
re-entrancy guards :class:`Outermost` (process-wide: only the outermost call is recorded)
and :class:`ThreadDepth` (per thread), :class:`Scopes` and :class:`ScopeHandle` (global,
decorator and ``with``-block switches), :class:`IdentityMap` (recognising an object later),
:func:`caller_variable`, :func:`callers` and :func:`caller_file` (caller introspection),
:class:`FailureWatch` (failures a framework has no hook for) and :func:`in_worker_process`.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from .errors import InvalidOptionError, ModelTrackWarning
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


def original(fn: Any) -> Any:
    """The function a patch wrapper (from :func:`wrap` or :class:`ClassPatcher`) replaced;
    ``fn`` itself when it is not one. Tracking code calls originals so as not to record itself."""
    return getattr(fn, "__modeltrack_original__", fn)


def in_worker_process() -> bool:
    """Whether this process is a worker started by ``multiprocessing`` (joblib/loky pools
    included): there, global autologging stays silent, since its fits are inner fits."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return False
    try:
        return bool(mp.current_process().name != "MainProcess")
    except Exception:  # noqa: BLE001 - a half-initialised multiprocessing: not a worker
        return False


# ---------------------------------------------------------------------- re-entrancy
class Outermost:
    """A process-wide claim that only one call holds at a time: the outermost tracked call
    claims it, and every call made while it is held (nested, or on another thread such as a
    ``n_jobs`` worker) sees :attr:`busy` and runs untracked.

    Example:
        >>> guard = Outermost()
        >>> guard.claim(), guard.claim()
        (True, False)
        >>> guard.release(); guard.busy
        False
    """

    def __init__(self) -> None:
        self._owner: int | None = None
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        """Whether some call (on any thread) holds the claim."""
        return self._owner is not None

    @property
    def owner(self) -> int | None:
        """The ``threading.get_ident()`` of the thread holding the claim, else None."""
        return self._owner

    def claim(self) -> bool:
        """Take the claim if nobody holds it.

        Returns:
            True when this call now holds it (it must :meth:`release` it), else False.
        """
        with self._lock:
            if self._owner is not None:
                return False
            self._owner = threading.get_ident()
            return True

    def release(self) -> None:
        """Give the claim back (called by the holder, once)."""
        with self._lock:
            self._owner = None


class ThreadDepth:
    """A per-thread nesting counter: ``with depth:`` marks this thread as inside (e.g. while
    a tracked model is being evaluated, so that its inner calls are not recorded again);
    other threads are unaffected."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def level(self) -> int:
        """How many ``with`` blocks of this counter this thread is inside."""
        return int(getattr(self._local, "level", 0))

    @property
    def active(self) -> bool:
        """Whether this thread is inside at least one ``with`` block."""
        return self.level > 0

    def __enter__(self) -> ThreadDepth:
        self._local.level = self.level + 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._local.level = self.level - 1


# ---------------------------------------------------------------------- recognising objects
V = TypeVar("V")


class IdentityMap(Generic[V]):
    """Values attached to objects by identity, to recognise an object later (a fitted model
    being scored, its predictions passed to a metric function). A lookup hits only the very
    object registered, never a new one that reuses its ``id``; objects are held weakly.

    Args:
        max_size: at most this many entries (None: no bound); when full, entries whose object
            is gone or whose value is ``stale`` are dropped first, then the oldest.
        stale: which values are of no more use (skipped by lookups; default: none).
        strong: keep objects that cannot be weakly referenced, strongly (default: such
            objects are not kept, since they could not be recognised safely).
    """

    def __init__(
        self, *, max_size: int | None = None, stale: Callable[[V], bool] | None = None, strong: bool = False
    ) -> None:
        self._items: dict[int, tuple[Callable[[], Any], V]] = {}
        self._max = max_size
        self._stale = stale or (lambda value: False)
        self._strong = strong

    def __len__(self) -> int:
        return len(self._items)

    def put(self, obj: Any, value: V) -> bool:
        """Attach ``value`` to ``obj`` (replacing what it had).

        Returns:
            False when ``obj`` cannot be weakly referenced (and ``strong`` is off): not kept.
        """
        ref: Callable[[], Any]
        try:
            ref = weakref.ref(obj)
        except TypeError:
            if not self._strong:
                return False
            ref = lambda: obj  # noqa: E731 - a strong reference, as asked
        items = self._items
        if self._max is not None and len(items) >= self._max:
            for key, (got, old) in list(items.items()):
                if got() is None or self._stale(old):
                    del items[key]
            while len(items) >= self._max:
                del items[next(iter(items))]
        items[id(obj)] = (ref, value)
        return True

    def get(self, obj: Any) -> V | None:
        """The value attached to ``obj`` itself (None when none, or stale)."""
        hit = self._items.get(id(obj))
        if hit is None or hit[0]() is not obj or self._stale(hit[1]):
            return None
        return hit[1]

    def first(self, objs: Iterable[Any]) -> V | None:
        """The value attached to the first of ``objs`` that has one (None when none does)."""
        for obj in objs:
            value = self.get(obj)
            if value is not None:
                return value
        return None

    def discard(self, where: Callable[[V], bool]) -> None:
        """Forget every object whose value ``where`` is true of."""
        for key in [k for k, (_, v) in self._items.items() if where(v)]:
            self._items.pop(key, None)


def caller_variable(value: Any, skip: Callable[[str], bool]) -> str | None:
    """The name of a variable holding ``value`` (by identity) in the user's code: walking out
    from the caller past the frames whose file name ``skip`` matches (the integration, the
    framework), the first other frame's locals are searched, then its globals.

    Returns:
        the variable's name, or None when no such frame or variable exists.
    """
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and skip(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return None
    name = next((k for k, v in frame.f_locals.items() if v is value and not k.startswith(".")), None)
    if name is None and frame.f_globals is not frame.f_locals:
        name = next((k for k, v in frame.f_globals.items() if v is value), None)
    return name


def caller_file(depth: int) -> str:
    """The file of the function ``depth`` frames above the caller (1: the caller's caller);
    ``""`` past the outermost frame. Cheap enough for a hot path."""
    try:
        return sys._getframe(depth + 1).f_code.co_filename
    except ValueError:
        return ""


def callers(limit: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(function name, locals)`` of the frames above the caller, innermost first, at most
    ``limit`` of them: how a framework hook finds what its framework did not pass it (the
    arguments of the ``fit`` that called it). Read, never written."""
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(limit):
        if frame is None:
            return
        yield frame.f_code.co_name, frame.f_locals
        frame = frame.f_back


class FailureWatch:
    """Notices failures a framework gives its callbacks no hook for.

    :meth:`wrap` replaces a callable attribute (Keras's ``model.train_function``) with one
    that reports any exception it raises, then re-raises it unchanged; :meth:`when_dropped`
    reports when an object (the framework's callback list) is freed while the watch still
    runs, which means the loop that owned it ended early. :meth:`stop` puts every attribute
    back and forgets the object. ``on_failure`` gets the exception (or a reason string); the
    wrappers hold the watch weakly, so a watched object never keeps it alive.

    Args:
        on_failure: called at most once per failure; must not raise.
        ignore: exceptions the framework raises on purpose to end a loop (``StopIteration``).
    """

    def __init__(
        self,
        on_failure: Callable[[BaseException | str | None], None],
        *,
        ignore: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        self._on_failure = on_failure
        self._ignore = ignore
        self._wrapped: list[tuple[Any, str, Any, Any]] = []
        self._finalizer: weakref.finalize | None = None

    def _report(self, failure: BaseException | str | None) -> None:
        # Warn even in strict mode: raising here would replace the user's exception.
        try:
            self._on_failure(failure)
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"modeltrack: recording a failure failed: {exc}", ModelTrackWarning, stacklevel=2)

    def watching(self, attr: str) -> bool:
        """Whether :meth:`wrap` already holds an attribute of this name."""
        return any(name == attr for _, name, _, _ in self._wrapped)

    def wrap(self, owner: Any, attr: str) -> None:
        """Watch ``owner.attr`` (a no-op when it is missing or already watched)."""
        fn = getattr(owner, attr, None)
        if fn is None or self.watching(attr):
            return
        fn = getattr(fn, "__modeltrack_original__", fn)
        watch = weakref.ref(self)

        def watched(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except BaseException as exc:
                me = watch()
                if me is not None and not me._ignore(exc):
                    me._report(exc)
                raise

        watched.__modeltrack_original__ = fn  # type: ignore[attr-defined]
        own = attr in getattr(owner, "__dict__", {})
        setattr(owner, attr, watched)
        self._wrapped.append((owner, attr, fn if own else _MISSING, watched))

    def when_dropped(self, obj: Any, reason: Callable[[], BaseException | str | None]) -> None:
        """Report ``reason()`` if ``obj`` is freed (or the interpreter exits) before :meth:`stop`."""
        if self._finalizer is None:
            self._finalizer = weakref.finalize(obj, self._dropped, reason)

    def _dropped(self, reason: Callable[[], BaseException | str | None]) -> None:
        try:
            failure = reason()
        except Exception as exc:  # noqa: BLE001 - runs from the garbage collector or at exit
            failure = f"the watched loop ended early ({exc})"
        self._report(failure)

    def stop(self) -> None:
        """Put every watched attribute back (unless someone replaced it since) and stop watching."""
        while self._wrapped:
            owner, attr, fn, watched = self._wrapped.pop()
            if getattr(owner, attr, None) is watched:
                if fn is _MISSING:
                    delattr(owner, attr)
                else:
                    setattr(owner, attr, fn)
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None


# ---------------------------------------------------------------------- class patching
#: ``(cls, method, original, wrapper, defined by cls itself)``
Target = tuple[type, str, Any, Any, bool]


class WrappedDescriptor:
    """Wraps a method descriptor that is not a plain function (scikit-learn's
    ``available_if``, for one) so that attribute access still raises ``AttributeError``
    when the descriptor says so (``hasattr`` keeps working); calls go through
    ``around(call, obj, *args, **kwargs)`` as with :func:`wrap`."""

    def __init__(self, raw: Any, around: Callable[..., Any]) -> None:
        self.__modeltrack_original__ = raw
        self._around = around
        self.__doc__ = getattr(raw, "__doc__", None)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        got = self.__modeltrack_original__.__get__(obj, owner)
        if obj is None:
            return got
        around = self._around

        def call(_obj: Any, *args: Any, **kwargs: Any) -> Any:
            return got(*args, **kwargs)

        call.__name__ = getattr(got, "__name__", "call")

        @functools.wraps(got)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return around(call, obj, *args, **kwargs)

        return bound


def _never(cls: type, name: str, owner: type) -> bool:
    return False


class ClassPatcher:
    """Wraps chosen methods of classes (every public class of a module, or classes named
    one by one) through a :class:`Patcher`, so that :meth:`Patcher.undo` reverts them.

    Each method ``name`` of ``arounds`` is wrapped with :func:`wrap` (or
    :class:`WrappedDescriptor` for other method descriptors) calling
    ``arounds[name](original, self_obj, *args, **kwargs)``. The contract of this module holds:
    the original is read from ``cls.__dict__``; a method is never wrapped twice (already
    wrapped, or already patched in this installation); a method changed by someone else
    since it was planned is left alone. What to patch is worked out once per class and per
    module, and wrappers are reused, so re-installing (each call of a decorated function)
    is a loop of ``setattr``.

    Args:
        arounds: method name → the ``around`` function of its wrapper.
        inherited: ``(cls, name, owner)`` → whether to wrap a method ``cls`` inherits from
            ``owner`` (patched on ``cls`` itself) when patching it unforced; by default
            only methods a class defines itself are wrapped.
        lock: the lock guarding the patch state (default: a private one).
    """

    def __init__(
        self,
        arounds: Mapping[str, Callable[..., Any]],
        *,
        inherited: Callable[[type, str, type], bool] = _never,
        lock: threading.RLock | None = None,
    ) -> None:
        self._arounds = dict(arounds)
        self._inherited = inherited
        self.lock = lock if lock is not None else threading.RLock()
        self._patcher: Patcher | None = None
        self._applied: set[tuple[Any, str]] = set()
        self._modules: dict[str, tuple[int, list[Target]]] = {}
        self._wrappers: dict[tuple[type, str], tuple[Any, Any]] = {}

    @property
    def active(self) -> bool:
        """Whether :meth:`start` bound a patcher (and :meth:`stop` has not been called)."""
        return self._patcher is not None

    def start(self, patcher: Patcher) -> None:
        """Record patches in ``patcher`` from now on (pass it to :func:`enable`'s install)."""
        with self.lock:
            self._patcher = patcher
            self._applied.clear()

    def stop(self) -> None:
        """Forget the patcher (after its patches were undone, e.g. by :func:`disable`):
        patch calls are no-ops until the next :meth:`start`."""
        with self.lock:
            self._patcher = None
            self._applied.clear()

    def plan(self, cls: type, *, force: bool = False) -> list[tuple[str, Any, bool]]:
        """``(method, function to wrap, defined by cls itself)`` for each method to patch on
        ``cls``: those it defines, and inherited ones when ``force`` or ``inherited`` says so
        (never those of ``object``)."""
        plan = []
        for name in self._arounds:
            raw = cls.__dict__.get(name)
            if raw is not None:
                plan.append((name, raw, True))
                continue
            owner = next((k for k in cls.__mro__ if name in k.__dict__), None)
            if owner is None or owner is object:
                continue
            if force or self._inherited(cls, name, owner):
                plan.append((name, owner.__dict__[name], False))
        return plan

    def targets(self, cls: type, *, force: bool = False) -> list[Target]:
        """The patches :meth:`plan` calls for, with their wrappers (made once, then reused);
        methods already wrapped, and descriptors that cannot be (``staticmethod``,
        ``classmethod``, ``property``, plain values), are left out."""
        out = []
        with self.lock:
            for name, raw, own in self.plan(cls, force=force):
                if hasattr(raw, "__modeltrack_original__"):
                    continue
                cached = self._wrappers.get((cls, name))
                if cached is not None and cached[0] is raw:
                    new = cached[1]
                elif isinstance(raw, types.FunctionType):
                    new = wrap(raw, self._arounds[name])
                elif hasattr(raw, "__get__") and not isinstance(raw, (staticmethod, classmethod, property)):
                    new = WrappedDescriptor(raw, self._arounds[name])
                else:
                    continue
                self._wrappers[(cls, name)] = (raw, new)
                out.append((cls, name, raw, new, own))
        return out

    def apply(self, target: Target) -> bool:
        """Install one target, unless inactive, already installed, or changed since planned.

        Returns:
            whether it was installed now.
        """
        cls, name, raw, new, own = target
        with self.lock:
            if self._patcher is None or (cls, name) in self._applied:
                return False
            current = cls.__dict__.get(name)
            if (current is not raw) if own else (current is not None):
                return False  # changed since planned (someone else patched it): leave it alone
            self._patcher.setattr(cls, name, new)
            self._applied.add((cls, name))
            return True

    def patch_class(self, cls: type, *, force: bool = False) -> None:
        """Patch ``cls``'s methods (``force``: inherited ones too, e.g. classes a user names)."""
        for target in self.targets(cls, force=force):
            self.apply(target)

    def patch_module(self, module: types.ModuleType, select: Callable[[type], bool]) -> None:
        """Patch the public classes defined in ``module`` for which ``select(cls)`` is true.
        The selection is made once per module object and cached."""
        name = module.__name__
        with self.lock:
            if self._patcher is None:
                return
            cached = self._modules.get(name)
            if cached is None or cached[0] != id(module):
                found: list[Target] = []
                for obj in list(vars(module).values()):
                    if (
                        isinstance(obj, type)
                        and obj.__module__ == name
                        and not obj.__name__.startswith("_")
                        and select(obj)
                    ):
                        found += self.targets(obj)
                cached = self._modules[name] = (id(module), found)
            for target in cached[1]:
                self.apply(target)

    def patch_function(self, owner: Any, name: str, around: Callable[..., Any]) -> bool:
        """Wrap the function ``owner.name`` (a module's, say) with :func:`wrap`, unless
        inactive, already wrapped or already patched in this installation.

        Returns:
            whether it was patched now.
        """
        with self.lock:
            fn = getattr(owner, name, None)
            if self._patcher is None or fn is None or (owner, name) in self._applied:
                return False
            if hasattr(fn, "__modeltrack_original__"):
                return False
            self._patcher.setattr(owner, name, wrap(fn, around))
            self._applied.add((owner, name))
            return True


# ---------------------------------------------------------------------- scopes
S = TypeVar("S")
F = TypeVar("F", bound=Callable[..., Any])


class Scopes(Generic[S]):
    """Where an integration's autologging is on: one global scope (``autolog()`` until
    undone) and a stack of block scopes (a decorated function's call, a ``with`` block).
    The active scope is the innermost block, else the global one. Scopes are process-wide,
    as the patches are: a fit on another thread inside a block belongs to that block.

    What a scope is (its options, its open versions) is the integration's; this class calls
    it back: ``install(scope)`` when a scope comes into force (make sure the patches are on),
    ``finish(scope)`` when it ends (finish its versions), and ``idle()`` once no scope is
    left (undo the patches).

    Args:
        install: called (under :attr:`lock`) when a scope comes into force.
        finish: called when a scope ends.
        idle: called (under :attr:`lock`) whenever no scope is left.
        what: what ``finish`` finishes, for the warning when it fails (e.g.
            ``"the sklearn versions"``).
        lock: the lock guarding the scopes (default: a private re-entrant one).
    """

    def __init__(
        self,
        *,
        install: Callable[[S], None],
        finish: Callable[[S], None],
        idle: Callable[[], None],
        what: str = "the versions",
        lock: threading.RLock | None = None,
    ) -> None:
        self.lock = lock if lock is not None else threading.RLock()
        self._install = install
        self._finish = finish
        self._idle = idle
        self._what = what
        self.global_scope: S | None = None
        self._blocks: list[S] = []

    def active(self) -> S | None:
        """The innermost block scope, else the global one, else None."""
        blocks = self._blocks
        if blocks:
            return blocks[-1]
        return self.global_scope

    def all(self) -> list[S]:
        """Every scope in force: the global one first, then the blocks, outermost first."""
        with self.lock:
            return [s for s in (self.global_scope, *self._blocks) if s is not None]

    @property
    def idle(self) -> bool:
        """Whether no scope is in force."""
        return self.global_scope is None and not self._blocks

    def _check_idle(self) -> None:
        with self.lock:
            if self.idle:
                self._idle()

    def set_global(self, scope: S) -> S | None:
        """Make ``scope`` the global scope, finishing the one it replaces.

        Returns:
            the replaced global scope (for :meth:`restore_global`), or None.
        """
        with self.lock:
            previous = self.global_scope
            if previous is not None:
                self._finish(previous)
            self.global_scope = scope
            self._install(scope)
            return previous

    def clear_global(self) -> None:
        """Switch the global scope off (finishing it); ``idle()`` follows when nothing is left."""
        with self.lock:
            if self.global_scope is not None:
                self._finish(self.global_scope)
            self.global_scope = None
            self._check_idle()

    def restore_global(self, mine: S, previous: S | None) -> None:
        """Undo one :meth:`set_global`: if ``mine`` is still the global scope, finish it and
        put ``previous`` back; a later switch is left as it is."""
        with self.lock:
            if self.global_scope is mine:
                self._finish(mine)
                self.global_scope = previous
                if previous is not None:
                    self._install(previous)
            self._check_idle()

    @contextmanager
    def block(self, scope: S) -> Iterator[S]:
        """Put ``scope`` in force for a ``with`` block, then finish it. A failure finishing it
        is reported (warning, or error in strict mode) after a clean block, and only warned
        about while the block's own exception propagates (which it never replaces)."""
        with self.lock:
            self._blocks.append(scope)
            try:
                self._install(scope)
            except BaseException:
                self._blocks.remove(scope)
                raise
        ok = False
        try:
            yield scope
            ok = True
        finally:
            with self.lock:
                if scope in self._blocks:
                    self._blocks.remove(scope)
            try:
                self._finish(scope)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                if ok:
                    report(exc, f"finishing {self._what}")
                else:
                    warnings.warn(f"modeltrack: finishing {self._what} failed: {exc}", ModelTrackWarning, stacklevel=3)
            finally:
                self._check_idle()

    def decorate(self, fn: F, new_scope: Callable[[], S]) -> F:
        """``fn`` wrapped so that each call runs in a fresh block scope from ``new_scope()``."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.block(new_scope()):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class ScopeHandle(Generic[S]):
    """What an ``autolog(...)`` call returns once it made ``mine`` the global scope: on until
    :meth:`undo`. Used as a decorator (``@autolog(...)``) or a ``with`` block, it gives the
    global switch back at once and scopes each call (or the block) instead, each in a fresh
    scope from ``new_scope()``.

    Args:
        scopes: the integration's :class:`Scopes`.
        previous: the global scope ``mine`` replaced (restored by :meth:`undo`).
        mine: the global scope this call put in force.
        new_scope: makes a block scope with the same options.
    """

    def __init__(self, scopes: Scopes[S], previous: S | None, mine: S, new_scope: Callable[[], S]) -> None:
        self._scopes = scopes
        self._previous = previous
        self._mine = mine
        self._new_scope = new_scope
        self._block: Any = None

    def undo(self) -> None:
        """Give back the global state that was in force before this ``autolog`` call."""
        self._scopes.restore_global(self._mine, self._previous)

    def __call__(self, fn: F) -> F:
        self.undo()
        return self._scopes.decorate(fn, self._new_scope)

    def __enter__(self) -> ScopeHandle[S]:
        self.undo()
        self._block = self._scopes.block(self._new_scope())
        self._block.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        block, self._block = self._block, None
        if block is not None:
            block.__exit__(*exc)
