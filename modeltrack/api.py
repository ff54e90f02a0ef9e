"""Registry functions mirroring the CLI: list, show, diff, aliases, tags, notes, gc, verify.

Each takes ``store=`` (a URI or :class:`~modeltrack.stores.Store`); the default is
``MODELTRACK_STORE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .repo import Repo
from .stores import Store

StoreArg = Store | str | None


def models(store: StoreArg = None) -> list[dict[str, Any]]:
    """Every model: ``[{"name", "versions", "latest", "aliases", "updated_at"}]``."""
    return Repo(store).models_summary()


def versions(model: str, store: StoreArg = None) -> list[dict[str, Any]]:
    """Every version of ``model``, oldest first (see ``versions --json`` in DESIGN.md)."""
    return Repo(store).versions(model)


def show(ref: str, store: StoreArg = None) -> dict[str, Any]:
    """The full record of a version (``show --json``)."""
    return Repo(store).version(ref)


def diff(a: str, b: str, store: StoreArg = None) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: params, metrics, data, code, packages."""
    return Repo(store).diff(a, b)


def resolve(ref: str, store: StoreArg = None) -> tuple[str, int]:
    """``(model, number)`` for a reference such as ``churn@production``."""
    return Repo(store).resolve(ref)


def set_alias(ref: str, alias: str, store: StoreArg = None) -> dict[str, Any]:
    """Point ``alias`` at ``ref`` (recorded in the alias history)."""
    return Repo(store).set_alias(ref, alias)


def remove_alias(model: str, alias: str, store: StoreArg = None) -> dict[str, Any]:
    """Remove ``alias`` from ``model`` (recorded in the alias history)."""
    return Repo(store).remove_alias(model, alias)


def alias_history(model: str, alias: str | None = None, store: StoreArg = None) -> list[dict[str, Any]]:
    """Every move of ``model``'s aliases (or of one alias), oldest first."""
    return Repo(store).alias_history(model, alias)


def promote(
    ref: str,
    alias: str = "production",
    *,
    metric: str | None = None,
    mode: str | None = None,
    reason: str | None = None,
    store: StoreArg = None,
) -> dict[str, Any]:
    """Move ``alias`` to ``ref``; with ``metric``, refuse if ``ref`` is worse than the holder.

    Raises:
        PromotionRefusedError: the guard found ``ref`` worse on ``metric``.
    """
    return Repo(store).set_alias(ref, alias, action="promote", reason=reason, guard_metric=metric, goal=mode)


def rollback(model: str, alias: str = "production", store: StoreArg = None) -> dict[str, Any]:
    """Point ``alias`` back at the version it held before its last move."""
    return Repo(store).rollback(model, alias)


def tag(
    ref: str,
    tags: Mapping[str, Any] | None = None,
    *,
    remove: Iterable[str] = (),
    store: StoreArg = None,
    **kwargs: Any,
) -> dict[str, str | None]:
    """Set (and remove) tags on a version; returns the tags now."""
    return Repo(store).set_tags(ref, {**(tags or {}), **kwargs}, remove)


def set_notes(ref: str, text: str | None, store: StoreArg = None) -> None:
    """Set (or with ``None`` clear) the release notes of a version."""
    Repo(store).set_notes(ref, text)


def changelog(ref: str, against: str | None = None, store: StoreArg = None) -> dict[str, Any] | None:
    """The automatic changelog of ``ref`` against ``against`` (default: the previous finished
    version), or ``None`` for a first version."""
    repo = Repo(store)
    model, number = repo.resolve(ref)
    if against is None:
        prev = repo.previous_finished(model, number)
        return None if prev is None else repo.diff((model, prev), (model, number))
    return repo.diff(against, (model, number))


def gc(
    model: str | None = None,
    versions: Iterable[int] = (),
    *,
    force: bool = False,
    dry_run: bool = False,
    grace_seconds: float = 3600.0,
    store: StoreArg = None,
) -> dict[str, Any]:
    """Delete named versions and unreferenced blobs (see :meth:`Repo.gc`)."""
    return Repo(store).gc(model, list(versions), force=force, dry_run=dry_run, grace_seconds=grace_seconds)


def verify(store: StoreArg = None) -> dict[str, Any]:
    """Re-check every record and artifact checksum: ``{"ok", "artifacts_checked", "problems"}``."""
    return Repo(store).verify()


def artifact_path(
    ref: str, path: str | None = None, *, kind: str | None = None, dest: str | None = None, store: StoreArg = None
) -> str:
    """A local file holding an artifact of ``ref`` (the named path, else the best/last of
    ``kind``); remote stores download it into ``dest`` or a cache directory."""
    from .loading import artifact_file

    return str(artifact_file(Repo(store), ref, path=path, kind=kind, dest=dest))
