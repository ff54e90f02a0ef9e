"""Registry functions mirroring the CLI: list, show, diff, aliases, tags, notes, gc, verify.

Each takes ``store=`` (a URI or :class:`~modeltrack.stores.Store`); the default is
``MODELTRACK_STORE``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidValueError
from .refs import Ref, check_alias_name, parse_ref
from .repo import Repo
from .stores import Store

StoreArg = Store | str | None


def _ref(ref: Any) -> str:
    """``ref`` if it is a reference string (a parsed :class:`Ref` is spelled back out);
    anything else raises :class:`~modeltrack.errors.InvalidNameError` ("a reference must
    be a string like 'churn@v3', got int 42")."""
    if isinstance(ref, str):
        return ref
    if isinstance(ref, Ref):
        return str(ref)
    parse_ref(ref)  # not a string: raises InvalidNameError naming the type
    raise AssertionError("unreachable")


def models(store: StoreArg = None) -> list[dict[str, Any]]:
    """Every model: ``[{"name", "versions", "latest", "aliases", "updated_at"}]``."""
    return Repo(store).models_summary()


def versions(model: str, store: StoreArg = None) -> list[dict[str, Any]]:
    """Every version of ``model``, oldest first (see ``versions --json`` in DESIGN.md)."""
    return Repo(store).versions(model)


def show(ref: str, store: StoreArg = None) -> dict[str, Any]:
    """The full record of a version (``show --json``)."""
    return Repo(store).version(_ref(ref))


def diff(a: str, b: str, store: StoreArg = None) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: params, metrics, data, code, packages."""
    return Repo(store).diff(_ref(a), _ref(b))


def resolve(ref: str, store: StoreArg = None) -> tuple[str, int]:
    """``(model, number)`` for a reference such as ``churn@production``."""
    return Repo(store).resolve(_ref(ref))


def set_alias(ref: str, alias: str, store: StoreArg = None) -> dict[str, Any]:
    """Point ``alias`` at ``ref`` (recorded in the alias history)."""
    return Repo(store).set_alias(_ref(ref), alias)


def remove_alias(model: str, alias: str, store: StoreArg = None) -> dict[str, Any]:
    """Remove ``alias`` from ``model`` (recorded in the alias history)."""
    return Repo(store).remove_alias(model, alias)


def alias_history(model: str, alias: str | None = None, store: StoreArg = None) -> list[dict[str, Any]]:
    """Every move of ``model``'s aliases (or of one alias), oldest first."""
    if alias is not None:
        check_alias_name(alias)
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
    if metric is not None and not isinstance(metric, str):
        raise InvalidValueError(f"metric must be a metric name such as 'val_loss', got {metric!r}", value=metric)
    if mode not in (None, "min", "max"):
        raise InvalidValueError(f"mode must be 'min', 'max' or None (guessed from the name), got {mode!r}", value=mode)
    return Repo(store).set_alias(_ref(ref), alias, action="promote", reason=reason, guard_metric=metric, goal=mode)


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
    return Repo(store).set_tags(_ref(ref), {**(tags or {}), **kwargs}, remove)


def set_notes(ref: str, text: str | None, store: StoreArg = None) -> None:
    """Set (or with ``None`` clear) the release notes of a version."""
    if text is not None and not isinstance(text, str):
        raise InvalidValueError(
            f"notes must be a string (or None to clear them), got {type(text).__name__}; pass str(...) if you mean it",
            value=text,
        )
    Repo(store).set_notes(_ref(ref), text)


def changelog(ref: str, against: str | None = None, store: StoreArg = None) -> dict[str, Any] | None:
    """The automatic changelog of ``ref`` against ``against`` (default: the previous finished
    version), or ``None`` for a first version."""
    repo = Repo(store)
    model, number = repo.resolve(_ref(ref))
    if against is None:
        prev = repo.previous_finished(model, number)
        return None if prev is None else repo.diff((model, prev), (model, number))
    return repo.diff(_ref(against), (model, number))


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
    if isinstance(versions, (str, bytes)):
        raise InvalidValueError(f"versions must be version numbers such as [1, 3], got {versions!r}", value=versions)
    numbers = list(versions)
    for n in numbers:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidValueError(
                f"versions must be version numbers (int >= 1) such as [1, 3], got {type(n).__name__} {n!r}", value=n
            )
    if (
        isinstance(grace_seconds, bool)
        or not isinstance(grace_seconds, (int, float))
        or math.isnan(grace_seconds)
        or grace_seconds < 0
    ):
        raise InvalidValueError(
            f"grace_seconds must be a number of seconds >= 0, got {grace_seconds!r}; 0 deletes every unreferenced blob",
            value=grace_seconds,
        )
    return Repo(store).gc(model, numbers, force=force, dry_run=dry_run, grace_seconds=grace_seconds)


def verify(store: StoreArg = None) -> dict[str, Any]:
    """Re-check every record and artifact checksum: ``{"ok", "artifacts_checked", "problems"}``."""
    return Repo(store).verify()


def artifact_path(
    ref: str, path: str | None = None, *, kind: str | None = None, dest: str | None = None, store: StoreArg = None
) -> str:
    """A local file holding an artifact of ``ref`` (the named path, else the best/last of
    ``kind``); remote stores download it into ``dest`` or a cache directory."""
    from .loading import artifact_file

    return str(artifact_file(Repo(store), _ref(ref), path=path, kind=kind, dest=dest))
