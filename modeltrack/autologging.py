"""``modeltrack.autolog()``: switch on every installed framework integration at once.

A framework that is already imported is patched now. One that is not is *not* imported
(importing torch or keras costs seconds): a ``sys.meta_path`` hook applies the integration
right after the framework module finishes importing, so the import order never matters.

``MODELTRACK_AUTOLOG=1`` does the same for any Python process: the
``modeltrack_autolog.pth`` file installed into site-packages calls
:func:`autolog_from_env` at interpreter start-up when the variable is set, and
``modeltrack run`` also puts :mod:`modeltrack._boot` (a chaining ``sitecustomize``) on the
child's ``PYTHONPATH`` so that it works even without the ``.pth`` file.

The post-import hook (:func:`when_imported`) is generic: integrations use it to patch
classes of framework submodules imported later (on demand, instead of importing every
submodule up front).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from .errors import InvalidOptionError
from .patching import refuse_unknown_options
from .plugins import integrations_by_trigger

#: the single line of ``modeltrack_autolog.pth``: cheap when the variable is unset
PTH_LINE = (
    "import os; os.environ.get('MODELTRACK_AUTOLOG', '').strip().lower() not in ('', '0', 'false', 'no', 'off') "
    "and __import__('modeltrack.autologging', fromlist=['_']).autolog_from_env()"
)

Callback = Callable[[ModuleType], None]


# ---------------------------------------------------------------------- post-import hooks
class _ChainedLoader:
    """Delegates to the real loader and runs the hooks once the module has executed."""

    def __init__(self, loader: Any, finder: _PostImportFinder) -> None:
        self._loader = loader
        self._finder = finder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # Give the module its real loader back: importlib.resources and friends ask it.
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader
        self._loader.exec_module(module)
        self._finder.fire(module)


class _PostImportFinder:
    """A ``sys.meta_path`` finder that never finds anything itself: it asks the finders
    behind it, and wraps the loader of watched modules to run callbacks after import."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Callback]] = {}
        self.prefixes: dict[str, dict[str, Callback]] = {}
        self._busy = threading.local()

    def watched(self, fullname: str) -> bool:
        return fullname in self.exact or (bool(self.prefixes) and fullname.startswith(tuple(self.prefixes)))

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not self.watched(fullname):
            return None
        busy: set[str] = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = None
            for finder in list(sys.meta_path):
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        spec.loader = _ChainedLoader(spec.loader, self)  # type: ignore[assignment]
        return spec

    def callbacks(self, name: str) -> list[Callback]:
        found = list(self.exact.get(name, {}).values())
        for prefix, cbs in self.prefixes.items():
            if name.startswith(prefix):
                found += cbs.values()
        return found

    def fire(self, module: ModuleType) -> None:
        for cb in self.callbacks(module.__name__):
            _run_hook(cb, module)


def _run_hook(cb: Callback, module: ModuleType) -> None:
    from .failures import report

    try:
        cb(module)
    except Exception as exc:  # noqa: BLE001 - a hook must never break the user's import
        report(exc, f"autologging after importing {module.__name__}")


_finder: _PostImportFinder | None = None
_finder_lock = threading.RLock()


def when_imported(
    names: Sequence[str], key: str, callback: Callback, *, prefix: bool = False, now: bool = True
) -> list[str]:
    """Call ``callback(module)`` after each module in ``names`` is imported.

    Modules already imported get the callback now (returned); later imports get it right
    after the module body has run. Registering the same ``key`` again replaces it.

    Args:
        names: module names (``"sklearn"``, ``"lightning.pytorch"``) or, with ``prefix``,
            name prefixes (``"sklearn."`` matches every submodule).
        key: who registers (used by :func:`cancel_import_hook`).
        callback: called with the module object.
        now: also call it for the matching modules already imported (else the caller does).

    Returns:
        the names of modules that were already imported and got the callback at once.
    """
    global _finder
    with _finder_lock:
        if _finder is None:
            _finder = _PostImportFinder()
        table = _finder.prefixes if prefix else _finder.exact
        for name in names:
            table.setdefault(name, {})[key] = callback
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    done: list[str] = []
    if not now:
        return done
    starts = tuple(names)
    for mod_name, module in list(sys.modules.items()):
        if module is None:
            continue
        hit = mod_name.startswith(starts) if prefix else mod_name in starts
        if hit and _fully_imported(module):
            _run_hook(callback, module)
            done.append(mod_name)
    return done


def _fully_imported(module: ModuleType) -> bool:
    spec = getattr(module, "__spec__", None)
    return not getattr(spec, "_initializing", False)


def cancel_import_hook(key: str) -> None:
    """Forget every callback registered under ``key``; the finder leaves ``sys.meta_path``
    when nothing is watched any more."""
    global _finder
    with _finder_lock:
        if _finder is None:
            return
        for table in (_finder.exact, _finder.prefixes):
            for name in list(table):
                table[name].pop(key, None)
                if not table[name]:
                    del table[name]
        if not _finder.exact and not _finder.prefixes:
            try:
                sys.meta_path.remove(_finder)
            except ValueError:
                pass
            _finder = None


def import_hooks() -> dict[str, list[str]]:
    """What the post-import hook watches now: ``{key: [module names or prefixes]}``."""
    out: dict[str, list[str]] = {}
    with _finder_lock:
        if _finder is not None:
            for table in (_finder.exact, _finder.prefixes):
                for name, cbs in table.items():
                    for key in cbs:
                        out.setdefault(key, []).append(name)
    return out


# ---------------------------------------------------------------------- the dispatcher
_state_lock = threading.RLock()
_armed: dict[str, dict[str, Any]] = {}  # integration module -> kwargs it is switched on with


def _installed(names: tuple[str, ...]) -> bool:
    for name in names:
        top = name.split(".", 1)[0]
        if top in sys.modules:
            return True
        try:
            if importlib.util.find_spec(top) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


#: options ``autolog`` passes to every integration; the others go under an integration's name
SHARED_OPTIONS = ("model", "store")


def _framework_keys() -> set[str]:
    return {m.rsplit(".", 1)[-1] for m in integrations_by_trigger()}


def _apply(module_name: str, kwargs: dict[str, Any]) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return  # this modeltrack has no such integration (yet)
        raise
    fn = getattr(module, "autolog", None)
    if fn is not None:
        # Shared options (model=, store=) go to every integration; options of one framework
        # come in a dict under its name: autolog(model="m", lightning={"checkpoints": "all"}).
        short = module_name.rsplit(".", 1)[-1]
        shared = {k: v for k, v in kwargs.items() if k in SHARED_OPTIONS}
        fn(disable=False, **shared, **dict(kwargs.get(short) or {}))


def autolog(disable: bool = False, **kwargs: Any) -> list[str]:
    """Switch on (or with ``disable=True`` off) autologging for every installed framework.

    Frameworks already imported are patched now; the others when (and if) they are imported
    later, without importing them here. Keyword arguments (``model=``, ``store=``, …) are
    passed to each integration's ``autolog``. Calling it twice never patches twice: the
    integration reverts its patches before applying them again.

    Args:
        disable: switch everything off again and remove the import hooks.
        **kwargs: ``model=NAME`` and ``store=URI`` for every integration, and options of one
            integration as a dict under its name (``lightning={"checkpoints": "all"}``,
            ``keras={...}``, ``sklearn={...}``).

    Returns:
        the integration modules switched on (or armed for a later import), or switched off.

    Example:
        >>> import modeltrack as mt
        >>> mt.autolog(model="churn")     # before or after `import sklearn`, both work
        >>> mt.autolog(disable=True)
    """
    if not disable:
        refuse_unknown_options("modeltrack", kwargs, (*SHARED_OPTIONS, *_framework_keys()))
        for name in _framework_keys():
            if kwargs.get(name) is not None and not isinstance(kwargs[name], dict):
                raise InvalidOptionError(
                    f"autolog({name}=...) takes a dict of {name} options, got {type(kwargs[name]).__name__}",
                    value=name,
                )
    done = []
    with _state_lock:
        for module_name, frameworks in integrations_by_trigger().items():
            key = f"autolog:{module_name}"
            if disable:
                cancel_import_hook(key)
                was = _armed.pop(module_name, None)
                module = sys.modules.get(module_name)
                if module is not None and hasattr(module, "autolog"):
                    module.autolog(disable=True)
                if was is not None or module is not None:
                    done.append(module_name)
                continue
            if not _installed(frameworks):
                continue
            _armed[module_name] = dict(kwargs)

            def hook(_module: ModuleType, _name: str = module_name) -> None:
                opts = _armed.get(_name)
                if opts is not None:
                    _apply(_name, opts)

            # One hook per integration: when it fires for two names (lightning.pytorch and
            # pytorch_lightning), the integration's autolog re-enables, never double-patches.
            when_imported(frameworks, key, hook)
            done.append(module_name)
    return done


def armed() -> dict[str, dict[str, Any]]:
    """Integrations switched on by :func:`autolog`, with their options."""
    with _state_lock:
        return {k: dict(v) for k, v in _armed.items()}


_from_env_done = False


def autolog_from_env() -> None:
    """Switch autologging on when ``MODELTRACK_AUTOLOG`` is true (``MODELTRACK_MODEL`` and
    ``MODELTRACK_STORE`` give the model name and the store). Called at interpreter start-up
    by ``modeltrack_autolog.pth`` and by ``modeltrack run``'s ``sitecustomize``; runs once
    per process and never raises (a problem is printed on stderr)."""
    global _from_env_done
    if _from_env_done:
        return
    _from_env_done = True
    try:
        from . import config

        if not config.autolog_enabled():
            return
        autolog(model=config.model_name())
    except Exception as exc:  # noqa: BLE001 - interpreter start-up must never fail
        warnings.warn(f"modeltrack: MODELTRACK_AUTOLOG could not switch autologging on: {exc}", stacklevel=2)


__all__ = [
    "PTH_LINE",
    "armed",
    "autolog",
    "autolog_from_env",
    "cancel_import_hook",
    "import_hooks",
    "when_imported",
]
