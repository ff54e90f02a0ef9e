"""Classes that derive from a framework base class shipped by several packages at once.

PyTorch Lightning is installed as ``lightning`` (``lightning.pytorch.Callback``) and as
``pytorch-lightning`` (``pytorch_lightning.Callback``): distinct classes, and a ``Trainer``
accepts only its own package's. A :class:`ClassFamily` makes, on first use, the class of a
*role* (``"Callback"``, ``"Logger"``) that derives from the integration's implementation and
from that role's base of each package in use, so one object is accepted by either
``Trainer``; nothing of the framework is imported until a class is asked for.

The classes are module attributes of the integration (by name, created on demand), so they
pickle into a fresh process (``ddp_spawn``) and class paths such as
``modeltrack.integrations.lightning.ModelTrackCallback`` resolve (LightningCLI). Constructing
the public class picks the class for the packages in use at that moment (or ``package=``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import InvalidValueError


class ClassFamily:
    """The classes of each role, for each set of packages.

    Args:
        module: the integration module the classes live in (``__name__``).
        packages: the modules that hold the bases, in preference order
            (``("lightning.pytorch", "pytorch_lightning")``).
        labels: a short label of each package, for class names.
        aliases: names users may pass as ``package=`` (``"lightning"``) and the package each means.
        bases: per role, how to get that role's base class from a package.
        impls: per role, the integration's implementation (a :class:`Member` subclass).
        install_hint: what to install when no package is there.
        marker: an attribute a package has once fully imported (``"Trainer"``).
    """

    def __init__(
        self,
        module: str,
        packages: tuple[str, ...],
        *,
        labels: Mapping[str, str],
        aliases: Mapping[str, str],
        bases: Mapping[str, Callable[[str], type]],
        impls: Mapping[str, type],
        install_hint: str,
        marker: str,
    ) -> None:
        self.module, self.packages, self.labels, self.aliases = module, packages, dict(labels), dict(aliases)
        self.bases, self.impls, self.install_hint, self.marker = dict(bases), dict(impls), install_hint, marker
        self._classes: dict[tuple[str, tuple[str, ...]], type] = {}
        for impl in impls.values():
            impl._family = self  # type: ignore[attr-defined]

    def name(self, role: str, packages: tuple[str, ...]) -> str:
        return f"ModelTrack{role}_" + "_and_".join(self.labels[p] for p in packages)

    def concrete(self, role: str, packages: Iterable[str]) -> Any:
        """The class of ``role`` deriving from that base of each of ``packages``."""
        wanted = set(packages)
        key = tuple(p for p in self.packages if p in wanted)
        if not key:
            raise InvalidValueError(f"no package among {sorted(wanted)!r}; use {self.packages}", value=packages)
        cls = self._classes.get((role, key))
        if cls is None:
            name = self.name(role, key)
            impl = self.impls[role]
            ns = {"__module__": self.module, "__qualname__": name, "__doc__": impl.__doc__}
            bases = (impl, *(self.bases[role](p) for p in key))
            cls = types.new_class(name, bases, exec_body=lambda body: body.update(ns))
            self._classes[(role, key)] = cls
            setattr(sys.modules[self.module], name, cls)
        return cls

    def attribute(self, name: str) -> Any:
        """What the integration's module ``__getattr__`` answers: ``ModelTrackRole`` is the
        class for the packages in use; ``ModelTrackRole_label…`` a given class (pickle).

        Raises:
            AttributeError: no such class.
        """
        for role in self.impls:
            if name == f"ModelTrack{role}":
                return self.concrete(role, self.resolve(None))
            for n in range(1, len(self.packages) + 1):
                for key in (self.packages[:n], self.packages[n - 1 : n]):
                    if self.name(role, key) == name:
                        return self.concrete(role, key)
        raise AttributeError(f"module {self.module!r} has no attribute {name!r}")

    def imported(self) -> list[str]:
        """The packages this process has imported (fully: the marker attribute is defined)."""
        return [p for p in self.packages if hasattr(sys.modules.get(p), self.marker)]

    def installed(self) -> list[str]:
        found = []
        for p in self.packages:
            try:
                if importlib.util.find_spec(p.split(".")[0]) is not None:
                    found.append(p)
            except (ImportError, ValueError):
                continue
        return found

    def resolve(self, package: str | None) -> list[str]:
        """``[package]`` for a name users may pass, else the packages imported, else installed.

        Raises:
            InvalidValueError: an unknown ``package``.
            ImportError: none is installed.
        """
        if package is not None:
            wanted = self.aliases.get(package)
            if wanted is None:
                names = " or ".join(repr(a) for a in list(self.aliases)[:2])
                raise InvalidValueError(f"package={package!r} is not one of the supported packages; use {names}",
                                        value=package)  # fmt: skip
            return [wanted]
        packages = self.imported() or self.installed()
        if not packages:
            raise ImportError(self.install_hint)
        return packages

    def package_of(self, obj: Any) -> str:
        """The package an object's class comes from (the first one by default)."""
        module = type(obj).__module__
        return next((p for p in self.packages if module.startswith(p.split(".")[0] + ".")), self.packages[0])

    def owns(self, cls: type) -> bool:
        return cls in self._classes.values()


class Member:
    """Base of a family's implementations: constructing the public class builds the class for
    the packages in use (or ``package=``); unpickling keeps the pickled class."""

    _role = ""
    _family: ClassFamily

    def __new__(cls, *args: Any, _unpickling: bool = False, **kwargs: Any) -> Any:
        family = cls._family
        if not _unpickling and family.owns(cls):  # ours, not a user's subclass
            wanted = family.concrete(cls._role, family.resolve(kwargs.get("package")))
            if wanted is not cls:
                obj = object.__new__(wanted)
                obj.__init__(*args, **kwargs)  # type.__call__ skips __init__ for another class
                return obj
        return object.__new__(cls)

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (), {"_unpickling": True}


__all__ = ["ClassFamily", "Member"]
