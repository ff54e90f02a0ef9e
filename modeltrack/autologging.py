"""``modeltrack.autolog()``: switch on every installed framework integration at once."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

#: integration module → the top-level framework packages it needs (any one suffices)
INTEGRATIONS: dict[str, tuple[str, ...]] = {
    "modeltrack.integrations.lightning": ("lightning", "pytorch_lightning"),
    "modeltrack.integrations.keras": ("keras",),
    "modeltrack.integrations.sklearn": ("sklearn",),
}


def _installed(names: tuple[str, ...]) -> bool:
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def autolog(disable: bool = False, **kwargs: Any) -> list[str]:
    """Switch on (or with ``disable=True`` off) autologging for every installed framework.

    Keyword arguments (``model=``, ``store=``, …) are passed to each integration's
    ``autolog``. Enabling twice never patches twice.

    Returns:
        the integration modules switched on (or off).
    """
    done = []
    for module_name, frameworks in INTEGRATIONS.items():
        if not _installed(frameworks):
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        fn = getattr(module, "autolog", None)
        if fn is None:
            continue
        fn(disable=disable, **kwargs)
        done.append(module_name)
    return done
