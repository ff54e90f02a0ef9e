"""Finding the integrations: package entry points, as pytest finds its plugins.

Three groups (see ``pyproject.toml``), each mapping a name to an integration module:

* ``modeltrack_autolog``: a framework module (``keras``, ``lightning.pytorch``) whose import
  switches the integration on;
* ``modeltrack_loaders``: the framework recorded on a version (``sklearn``) → the module
  whose ``load_artifact`` loads it;
* ``modeltrack_formats``: the content format of a model file logged by hand (``pickle``) →
  its loader.

The core names no integration: a fourth framework, in this distribution or another,
registers itself here. Entry points are read once per process.
"""

from __future__ import annotations

import functools

AUTOLOG, LOADERS, FORMATS = "modeltrack_autolog", "modeltrack_loaders", "modeltrack_formats"


@functools.cache
def registered(group: str) -> dict[str, str]:
    """``{name: module}`` of the entry points of ``group`` (empty if none is installed)."""
    from importlib.metadata import entry_points  # 15 ms: only when an integration is wanted

    return {ep.name: ep.value.partition(":")[0] for ep in entry_points(group=group)}


def integrations_by_trigger() -> dict[str, tuple[str, ...]]:
    """Integration module → the framework modules whose import switches it on."""
    out: dict[str, list[str]] = {}
    for trigger, module in registered(AUTOLOG).items():
        out.setdefault(module, []).append(trigger)
    return {m: tuple(sorted(t)) for m, t in sorted(out.items())}


def loader_for(framework: str | None, content_format: str | None) -> str | None:
    """The loader module for a version: by its recorded framework, else (none recorded) by
    the content of its file. None if no installed integration loads it."""
    if framework:
        return registered(LOADERS).get(framework)
    return registered(FORMATS).get(content_format or "")


__all__ = ["AUTOLOG", "FORMATS", "LOADERS", "integrations_by_trigger", "loader_for", "registered"]
