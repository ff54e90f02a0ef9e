"""Registry functions mirroring the CLI: list, show, diff, aliases, tags, notes, gc, verify.

Each takes ``store=`` (a URI or :class:`~modeltrack.stores.Store`); the default is
``MODELTRACK_STORE``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidValueError, MissingDependencyError, ModelTrackError
from .refs import MAX_VERSION_DIGITS, Ref, check_alias_name, parse_ref
from .repo import Repo
from .stores import Store

StoreArg = Store | str | None


# ---------------------------------------------------------------------- notebook display
def _cell(value: Any, limit: int = 200) -> str:
    """One HTML table cell's text, escaped (values are user data: never markup)."""
    import html
    import json

    if value is None:
        text = ""
    elif isinstance(value, float):
        text = f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    if len(text) > limit:
        return f'<span title="{html.escape(text)}">{html.escape(text[: limit - 1])}…</span>'
    return html.escape(text)


def html_table(rows: list[list[Any]], headers: list[str]) -> str:
    """A plain HTML table, every header and cell escaped."""
    head = "".join(f"<th>{_cell(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class Listing(list):  # type: ignore[type-arg]
    """A list of dicts (``versions``, ``models``, ``alias_history``) that a notebook shows as
    a table: one column per key, a ``metrics`` dict spread into one column per metric."""

    def _repr_html_(self) -> str:
        headers: dict[str, None] = {}
        metric_names: dict[str, None] = {}
        for row in self:
            if isinstance(row, dict):
                headers.update(dict.fromkeys(k for k in row if k != "metrics"))
                if isinstance(row.get("metrics"), dict):
                    metric_names.update(dict.fromkeys(row["metrics"]))
        cols = list(headers)
        rows = []
        for row in self:
            if not isinstance(row, dict):
                continue
            cells = []
            for k in cols:
                v = row.get(k)
                if isinstance(v, list) and all(isinstance(x, str) for x in v):
                    v = ", ".join(v)
                elif isinstance(v, dict) and k == "tags":
                    v = ", ".join(t if x is None else f"{t}={x}" for t, x in v.items())
                cells.append(v)
            cells += [(row.get("metrics") or {}).get(m) for m in metric_names]
            rows.append(cells)
        return html_table(rows, cols + list(metric_names))


class VersionRecord(dict):  # type: ignore[type-arg]
    """The record of one version (a dict, exactly ``show --json``) that a notebook shows as
    a summary, its metrics (last, best) and its params."""

    def _repr_html_(self) -> str:
        import html

        tags = self.get("tags") or {}
        facts: list[list[Any]] = [
            ["status", self.get("status")],
            ["label", self.get("label")],
            ["framework", self.get("framework")],
            ["created", self.get("created_at")],
            ["finished", self.get("finished_at")],
            ["by", self.get("actor")],
            ["aliases", ", ".join(self.get("aliases") or [])],
            ["tags", ", ".join(k if v is None else f"{k}={v}" for k, v in tags.items())],
        ]
        src = self.get("source")
        if src:
            facts.append(["source", f"{src.get('model')}@v{src.get('version')} in {src.get('store')}"])
        parts = [
            f"<h4>{html.escape(str(self.get('model')))}@v{html.escape(str(self.get('version')))}</h4>",
            html_table([f for f in facts if f[1]], ["", ""]),
        ]
        metrics = self.get("metrics") or {}
        if metrics:
            rows = [
                [k, m.get("last"), m.get("best"), m.get("goal"), len(m.get("series") or [])] for k, m in metrics.items()
            ]
            parts.append(html_table(rows, ["metric", "last", "best", "goal", "points"]))
        params = self.get("params") or {}
        if params:
            parts.append(html_table([[k, v] for k, v in params.items()], ["param", "value"]))
        return "".join(parts)


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
    """Every model: ``[{"name", "versions", "latest", "aliases", "updated_at"}]`` (a list that
    a notebook shows as a table)."""
    return Listing(Repo(store).models_summary())


STATUSES = ("running", "finished", "failed", "crashed", "corrupt")


def versions(
    model: str,
    store: StoreArg = None,
    *,
    tag: str | Iterable[str] | Mapping[str, str | None] | None = None,
    alias: str | None = None,
    status: str | Iterable[str] | None = None,
    as_frame: bool = False,
) -> Any:
    """Every version of ``model``, oldest first (``versions --json``, see docs/json.md).

    Args:
        tag: only versions with these tags: ``"reviewed"`` (the key, any value),
            ``"dataset=v2"`` (that value), a list of them, or ``{"dataset": "v2"}``.
        alias: only the version holding this alias.
        status: only versions of this status (or any of these).
        as_frame: a pandas DataFrame instead, one row per version, with columns
            ``version``, ``status``, ``created_at``, ``finished_at``, ``aliases``, ``label``,
            ``tags.KEY``, ``params.KEY`` and ``metrics.NAME`` (the last value). Needs pandas.

    Raises:
        MissingDependencyError: ``as_frame=True`` without pandas installed.
    """
    if not isinstance(as_frame, bool):
        raise InvalidValueError(f"as_frame must be True or False, got {as_frame!r}", value=as_frame)
    if as_frame:
        try:
            import pandas as pd
        except ImportError:
            raise MissingDependencyError(
                "versions(..., as_frame=True) needs pandas, which is not installed; `pip install pandas`, or call "
                "versions() without as_frame for a list of dicts"
            ) from None
    repo = Repo(store)
    rows = filter_versions(repo.versions(model), tag=tag, alias=alias, status=status)
    if not as_frame:
        return Listing(rows)
    records = []
    for row in rows:
        flat: dict[str, Any] = {
            "version": row["version"],
            "status": row["status"],
            "created_at": row["created_at"],
            "finished_at": row["finished_at"],
            "aliases": ", ".join(row["aliases"]),
            "label": row["label"],
        }
        flat.update({f"tags.{k}": v for k, v in row["tags"].items()})
        try:
            params = repo.version((model, row["version"]), series=False, environment=False)["params"]
        except ModelTrackError:
            params = {}  # a damaged version lists as "corrupt" and has no params to show
        flat.update({f"params.{k}": v for k, v in params.items()})
        flat.update({f"metrics.{k}": v for k, v in row["metrics"].items()})
        records.append(flat)
    columns = ["version", "status", "created_at", "finished_at", "aliases", "label"]
    for prefix in ("tags.", "params.", "metrics."):
        seen: dict[str, None] = {}
        for r in records:
            seen.update(dict.fromkeys(k for k in r if k.startswith(prefix)))
        columns += list(seen)
    return pd.DataFrame.from_records(records, columns=columns)


def filter_versions(
    rows: list[dict[str, Any]],
    *,
    tag: str | Iterable[str] | Mapping[str, str | None] | None = None,
    alias: str | None = None,
    status: str | Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """The rows of :func:`versions` that have every tag in ``tag``, hold ``alias`` and have
    one of the ``status`` values (see :func:`versions` for the spellings)."""
    wanted_tags: dict[str, tuple[bool, str | None]] = {}
    if tag is not None:
        items: list[tuple[Any, Any]]
        if isinstance(tag, Mapping):
            items = list(tag.items())
        else:
            specs: list[Any] = [tag] if isinstance(tag, str) else list(tag)
            items = []
            for spec in specs:
                if not isinstance(spec, str):
                    raise InvalidValueError(
                        f"tag filters are 'KEY' or 'KEY=VALUE' strings, got {type(spec).__name__} {spec!r}", value=spec
                    )
                key, sep, val = spec.partition("=")
                items.append((key, val if sep else None))
        for key, val in items:
            wanted_tags[str(key)] = (val is not None, None if val is None else str(val))
    statuses: set[str] | None = None
    if status is not None:
        statuses = {status} if isinstance(status, str) else set(status)
        unknown = sorted(str(x) for x in statuses - set(STATUSES))
        if unknown:
            raise InvalidValueError(
                f"unknown status {', '.join(map(repr, unknown))}; a version is one of {', '.join(STATUSES)}",
                value=status,
            )
    if alias is not None:
        check_alias_name(alias)
    out = []
    for row in rows:
        if statuses is not None and row["status"] not in statuses:
            continue
        if alias is not None and alias not in row["aliases"]:
            continue
        tags = row["tags"]
        if any(k not in tags or (exact and tags[k] != v) for k, (exact, v) in wanted_tags.items()):
            continue
        out.append(row)
    return out


def show(ref: str, store: StoreArg = None) -> dict[str, Any]:
    """The full record of a version (``show --json``): a dict that a notebook shows as a
    summary with its metrics and params."""
    return VersionRecord(Repo(store).version(_ref(ref)))


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
    """Every move of ``model``'s aliases (or of one alias), oldest first, with who made it
    (``actor``)."""
    if alias is not None:
        check_alias_name(alias)
    return Listing(Repo(store).alias_history(model, alias))


def evaluate(
    ref: str,
    metrics: Mapping[str, Any],
    *,
    name: str = "eval",
    data: Mapping[str, Any] | None = None,
    source: str | None = None,
    store: StoreArg = None,
) -> dict[str, Any]:
    """Record metrics computed on a version after its training ended, from any process: an
    append-only evaluation beside the version's immutable record, shown by ``show`` (under
    ``evaluations``), compared by ``diff`` and usable by the promotion guard as
    ``metric="NAME.METRIC"`` (or ``"METRIC"`` when training recorded no metric of that name).

    Args:
        ref: the version (``churn@v3``, ``churn@production``).
        metrics: ``{name: number}``.
        name: what was evaluated: ``"test"``, ``"holdout"``, ``"nightly"``.
        data: ``{name: array}`` (numpy, torch, pandas…) of the data evaluated on, fingerprinted.
        source: what computed it (default ``"api"``).

    Returns:
        the record written: ``{"name", "metrics", "data", "created_at", "actor", "source", …}``.

    Raises:
        ModelTrackError: the version is still running; a bad name, metric or dataset.

    Example:
        >>> mt.evaluate("churn@production", {"auc": 0.91}, name="holdout", data={"holdout": X})
    """
    from . import evaluations

    repo = Repo(store)
    model, number = repo.resolve(_ref(ref))
    return evaluations.add(repo, model, number, evaluations.make_record(name, metrics, data=data, source=source))


def promote(
    ref: str,
    alias: str = "production",
    *,
    metric: str | None = None,
    mode: str | None = None,
    compare: str = "last",
    reason: str | None = None,
    force: bool = False,
    store: StoreArg = None,
) -> dict[str, Any]:
    """Move ``alias`` to ``ref``, which must be a finished version; with ``metric``, refuse
    if ``ref`` is worse than the holder on it.

    Args:
        metric: the guard: a metric both versions recorded.
        mode: ``"min"`` or ``"max"``: which direction is better (default: as recorded with
            the metric, else guessed from its name).
        compare: which value of each version the guard compares, ``"last"`` or ``"best"``.
        force: promote even a version that is not finished, and skip the guard.

    Returns:
        the alias event (``noop`` True when ``ref`` already held ``alias``: nothing is
        recorded), with ``guard``: what the guard compared, or None.

    Raises:
        PromotionRefusedError: the guard found ``ref`` worse on ``metric`` (``exc.guard``
            says which values it compared), or ``ref`` is not finished
            (:class:`~modeltrack.errors.VersionNotFinishedError`).
        GuardMetricError: a version lacks ``metric`` (the message lists those it has), or
            which direction is better cannot be told.
    """
    if metric is not None and not isinstance(metric, str):
        raise InvalidValueError(f"metric must be a metric name such as 'val_loss', got {metric!r}", value=metric)
    if mode not in (None, "min", "max"):
        raise InvalidValueError(f"mode must be 'min', 'max' or None (guessed from the name), got {mode!r}", value=mode)
    if compare not in ("last", "best"):
        raise InvalidValueError(f"compare must be 'last' or 'best', got {compare!r}", value=compare)
    if not isinstance(force, bool):
        raise InvalidValueError(f"force must be True or False, got {force!r}", value=force)
    return Repo(store).set_alias(
        _ref(ref),
        alias,
        action="promote",
        reason=reason,
        guard_metric=None if force else metric,
        goal=mode,
        compare=compare,
        require_finished=not force,
    )


def rollback(
    model: str, alias: str = "production", *, to: int | str | None = None, store: StoreArg = None
) -> dict[str, Any]:
    """Point ``alias`` back at the holder before the current one; repeated calls walk back
    through its history (v4 → v3 → v2). ``to``: a past holder (``3`` or ``"v3"``) instead."""
    return Repo(store).rollback(model, alias, to=_version_number(to, "to") if to is not None else None)


def _version_number(value: Any, what: str) -> int:
    """A version number from ``3``, ``"3"`` or ``"v3"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str):
        text = value[1:] if value[:1] in ("v", "V") else value
        if text.isascii() and text.isdigit() and len(text) <= MAX_VERSION_DIGITS and int(text) >= 1:
            return int(text)
    raise InvalidValueError(f"{what} must be a version number such as 3 or 'v3', got {value!r}", value=value)


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
