"""The store layout and every read and registry operation on it.

Layout (identical on every backend, so stores can be copied key by key)::

    FORMAT                                   {"format": 1}
    blobs/sha256/ab/abcdef…                  artifact contents, by content hash
    models/NAME/aliases/00000001.json        append-only alias history (create-if-absent)
    models/NAME/tags/00000001.json           append-only tag changes {version, tags}
    models/NAME/deleted/N                    tombstone left by gc (numbers are never reused)
    models/NAME/versions/N/claim.json        allocates N (create-if-absent), who and when
    models/NAME/versions/N/environment.json  python, packages, git, …
    models/NAME/versions/N/code.diff         dirty diff of tracked files, if any
    models/NAME/versions/N/records/K.json    params, data, artifact events while running
    models/NAME/versions/N/metrics/K.json    metric chunks as flushed while running
    models/NAME/versions/N/heartbeat.json    last sign of life of the writer
    models/NAME/versions/N/series.json       all metric points, written at the end
    models/NAME/versions/N/final.json        status and the consolidated record (immutable)
    models/NAME/versions/N/notes.json        mutable: release notes
    summaries/NAME/000000.json               remote stores: listing summaries of ended versions
                                             1-1000 (a cache, rewritten by listings)

Finished versions never change (tags, notes and aliases live outside ``final.json``), so
their summaries are cached in a local SQLite index (:mod:`modeltrack.index`) that can be
deleted at any time and is rebuilt from the files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from . import config, evaluations, maintenance, records
from ._util import best_of, json_number, metric_goal, now_iso, parse_iso, process_alive
from .changelog import diff_records
from .errors import (
    AliasNotFoundError,
    CorruptRecordError,
    GuardMetricError,
    InvalidValueError,
    KeyNotFound,
    ModelNotFoundError,
    PromotionRefusedError,
    StoreError,
    StoreFormatError,
    StoreNotFoundError,
    VersionNotFinishedError,
    VersionNotFoundError,
)
from .layout import (
    _EVENT_NAME,
    CRASHED,
    FINISHED,
    MAX_NOTES,
    RUNNING,
    SKIPPED,
    _num,
    _unique_name,
    check_tag,
    check_tag_value,
    consolidate,
    fold_aliases,
    fold_tags,
    vkey,
)
from .refs import Ref, check_alias_name, check_model_name, parse_ref
from .secrets import scrub_text
from .stores import FORMAT_KEY, FORMAT_VERSION, Store, open_store

#: per (store, model): the number after the last one this process claimed. Claims are never
#: removed and a new number is always above every claimed one, so it is the next free number
#: unless another writer took it (then the claim fails and the numbers above are tried).
_NEXT_NUMBER: dict[tuple[str, str], int] = {}
#: per store URI: the stamp of the FORMAT file this process found acceptable, and the store's id
_FORMATS: dict[str, tuple[str, str | None]] = {}


class Repo:
    """A store seen as models, versions and aliases.

    Args:
        store: a :class:`~modeltrack.stores.Store` or a URI; default ``MODELTRACK_STORE``.
    """

    def __init__(self, store: Store | str | None = None) -> None:
        self.store = open_store(store if store is not None else config.store_uri())
        self._format_ok = False
        self.store_id: str | None = None

    # ------------------------------------------------------------------ reading records
    def read_json(self, key: str) -> Any:
        """Read one record, parsed safely and checked against its kind's schema.

        Raises:
            KeyNotFound: the key is absent.
            CorruptRecordError: not JSON, too deeply nested, or of the wrong shape (the
                message names the key and the fix).
        """
        return records.load(self.store.read(key), key)

    def read_json_or(self, key: str, default: Any) -> Any:
        """:meth:`read_json`, or ``default`` when the key is absent."""
        try:
            return self.read_json(key)
        except KeyNotFound:
            return default

    # ------------------------------------------------------------------ format
    def check_format(self, *, create: bool = False) -> None:
        """Refuse stores of a newer format; write ``FORMAT`` on first write."""
        if self._format_ok:
            return
        # A local store's FORMAT is read once per process while its stat stays the same.
        stamp = self.store.stamp(FORMAT_KEY) if self.store.has_stamps else None
        known = _FORMATS.get(self.store.uri) if stamp is not None else None
        if known is not None and known[0] == stamp:
            self.store_id = known[1]
            self._format_ok = True
            return
        try:
            fmt = self.read_json(FORMAT_KEY)
        except KeyNotFound:
            fmt = None
        except CorruptRecordError as exc:
            raise StoreFormatError(
                f"{self.store.uri}/FORMAT is damaged, so modeltrack cannot tell which format this "
                f'store has; restore it (it holds {{"format": {FORMAT_VERSION}}}) or use another store',
                uri=self.store.uri,
            ) from exc
        if fmt is None:
            other = [n for n in self.store.list("") if n not in ("models", "blobs", PACKS, FORMAT_KEY)]
            if other:
                raise StoreFormatError(
                    f"{self.store.uri} is not a modeltrack store (no FORMAT file) and holds other "
                    f"files ({', '.join(other[:3])}…); point MODELTRACK_STORE at an empty or new directory",
                    uri=self.store.uri,
                )
            if not create:
                if not other and not self.store.list("models"):
                    raise StoreNotFoundError(
                        f"no modeltrack store at {self.store.uri}: nothing has been recorded there; check "
                        f"MODELTRACK_STORE / --store, or train a model to create it",
                        uri=self.store.uri,
                    )
                return

            import uuid

            self.store.check_writable()
            if not self.store.create_json(
                FORMAT_KEY, {"format": FORMAT_VERSION, "id": uuid.uuid4().hex, "created_at": now_iso()}
            ):
                return self.check_format(create=create)  # another process created it first
            fmt = self.read_json(FORMAT_KEY)
        version = fmt.get("format") if isinstance(fmt, dict) else None
        self.store_id = fmt.get("id") if isinstance(fmt, dict) else None
        if not isinstance(version, int):
            raise StoreFormatError(f"{self.store.uri}/FORMAT has no format number; restore it", uri=self.store.uri)
        if version > FORMAT_VERSION:
            raise StoreFormatError(
                f"store {self.store.uri} has format {version}, written by a newer modeltrack; this "
                f"one reads format {FORMAT_VERSION}: upgrade with `pip install -U modeltrack`",
                uri=self.store.uri,
            )
        self._format_ok = True
        if stamp is not None:
            _FORMATS[self.store.uri] = (stamp, self.store_id)

    # ------------------------------------------------------------------ models and versions
    def models(self) -> list[str]:
        self.check_format()
        return [m for m in self.store.list("models") if self.version_numbers(m, include_deleted=True)]

    def version_numbers(self, model: str, *, include_deleted: bool = False) -> list[int]:
        nums = sorted(n for n in (_num(x) for x in self.store.list(f"models/{model}/versions")) if n is not None)
        if include_deleted:
            return nums
        gone = self.deleted(model)
        return [n for n in nums if n not in gone] if gone else nums

    def deleted(self, model: str) -> set[int]:
        """Numbers of versions of ``model`` deleted by gc."""
        return {n for n in (_num(x) for x in self.store.list(f"models/{model}/deleted")) if n is not None}

    def allocate(self, model: str, claim: dict[str, Any]) -> int:
        """Claim the next version number atomically (create-if-absent, retry on conflict)."""
        check_model_name(model)
        self.check_format(create=True)
        key = (self.store.uri, model)
        number = _NEXT_NUMBER.get(key, 0)
        if (
            not number
            or not self.store.exists(vkey(model, number - 1, "claim.json"))
            or self.store.occupied(vkey(model, number))
        ):
            # No hint, our last claim is gone (a new store at the same place), or the hint's folder
            # is taken (a half-claimed number is never reused): list them all.
            existing = self.version_numbers(model, include_deleted=True)
            number = (existing[-1] if existing else 0) + 1
        while True:
            if self.store.create_json(vkey(model, number, "claim.json"), {**claim, "version": number}):
                _NEXT_NUMBER[key] = number + 1  # this process's next try: no listing while it stays free
                return number
            number += 1

    def _require_model(self, model: str) -> list[int]:
        check_model_name(model)
        self.check_format()
        nums = self.version_numbers(model)
        if not nums:
            known = self.store.list("models")
            hint = f"; known models: {', '.join(known[:10])}" if known else "; the store has no models yet"
            raise ModelNotFoundError(f"no model {model!r} in store {self.store.uri}{hint}", ref=model)
        return nums

    def resolve(self, ref: str | Ref) -> tuple[str, int]:
        """Resolve a reference to ``(model, number)``.

        Raises:
            ModelNotFoundError, VersionNotFoundError, AliasNotFoundError
        """
        r = ref if isinstance(ref, Ref) else parse_ref(ref)
        nums = self._require_model(r.model)
        if r.version is not None:
            if r.version not in nums:
                raise VersionNotFoundError(
                    f"{r.model} has no version {r.version} (versions: {_ranges(nums)}); "
                    f"run `modeltrack versions {r.model}`",
                    ref=str(r),
                )
            return r.model, r.version
        if r.alias is not None:
            aliases = self.aliases(r.model)
            if r.alias not in aliases:
                have = ", ".join(sorted(aliases)) or "none"
                raise AliasNotFoundError(
                    f"{r.model} has no alias {r.alias!r} (aliases: {have}); set one with "
                    f"`modeltrack alias set {r.model}@vN {r.alias}`",
                    ref=str(r),
                )
            return r.model, aliases[r.alias]
        if r.latest:
            for n in reversed(nums):
                if self._claim_or_none(r.model, n) is not None:  # a half-claimed number is no version
                    return r.model, n
            raise VersionNotFoundError(f"{r.model} has no version yet", ref=str(r))
        for n in reversed(nums):
            if self.status(r.model, n) == FINISHED:
                return r.model, n
        raise VersionNotFoundError(
            f"{r.model} has no finished version yet (the newest is v{nums[-1]}, "
            f"{self.status(r.model, nums[-1])}); refer to it as {r.model}@v{nums[-1]} or {r.model}@latest",
            ref=str(r),
        )

    # ------------------------------------------------------------------ reading one version
    def final(self, model: str, number: int) -> dict[str, Any] | None:
        return self.read_json_or(vkey(model, number, "final.json"), None)

    def claim(self, model: str, number: int) -> dict[str, Any]:
        try:
            return self.read_json(vkey(model, number, "claim.json"))
        except KeyNotFound:
            raise VersionNotFoundError(f"{model} has no version {number}", ref=f"{model}@v{number}") from None

    def _claim_or_none(self, model: str, number: int) -> dict[str, Any] | None:
        """The claim, or None for a number whose claim was never published (a process killed
        inside ``start()``): such a number is skipped, never reused, and never breaks a listing."""
        try:
            return self.claim(model, number)
        except VersionNotFoundError:
            return None

    def status(self, model: str, number: int, final: dict[str, Any] | None = None) -> str:
        """``finished``, ``failed``, ``running`` or ``crashed`` (``skipped`` for a number whose
        claim was never published)."""
        final = final if final is not None else self.final(model, number)
        if final is not None:
            return str(final.get("status", FINISHED))
        claim = self._claim_or_none(model, number)
        if claim is None:
            return SKIPPED
        return self._live_status(model, number, claim)

    def _live_status(self, model: str, number: int, claim: dict[str, Any] | None = None) -> str:
        claim = claim if claim is not None else self.claim(model, number)
        alive = process_alive(claim.get("writer", {}))
        if alive is True:
            return RUNNING
        if alive is False:
            return CRASHED
        beat = self.read_json_or(vkey(model, number, "heartbeat.json"), {})
        last = parse_iso(beat.get("time") or claim.get("created_at"))
        if last is None:
            return CRASHED
        age = (datetime.now(timezone.utc) - last).total_seconds()
        return RUNNING if age < config.crash_timeout() else CRASHED

    def records(self, model: str, number: int) -> list[dict[str, Any]]:
        """Events written while the version ran, in order."""
        prefix = vkey(model, number, "records")
        events: list[dict[str, Any]] = []
        for name in self.store.list(prefix):
            events.extend(self.read_json(f"{prefix}/{name}"))
        return events

    def series(self, model: str, number: int, final: dict[str, Any] | None = None) -> dict[str, dict[str, list[Any]]]:
        """Metric series ``{name: {"step": [...], "epoch": [...], "value": [...], "time": [...]}}``."""
        if final is not None:
            data = self.read_json_or(vkey(model, number, "series.json"), None)
            if data is not None:
                return data
        out: dict[str, dict[str, list[Any]]] = {}
        prefix = vkey(model, number, "metrics")
        names = self.store.list(prefix)
        if not names and final is None:
            # Killed between series.json and final.json, or final.json lost: series.json has it all.
            data = self.read_json_or(vkey(model, number, "series.json"), None)
            if data:
                return data
        for name in names:
            try:
                chunk = self.read_json(f"{prefix}/{name}")
            except KeyNotFound:
                continue  # consolidated and removed meanwhile
            for metric, cols in chunk.items():
                dst = out.setdefault(metric, {"step": [], "epoch": [], "value": [], "time": []})
                for col in dst:
                    dst[col].extend(cols.get(col, []))
        return out

    def version(
        self, ref: str | Ref | tuple[str, int], *, series: bool = True, environment: bool = True
    ) -> dict[str, Any]:
        """The full record of a version, in the shape of ``show --json``."""
        model, number = ref if isinstance(ref, tuple) else self.resolve(ref)
        claim = self.claim(model, number)
        if self.store.exists(f"models/{model}/deleted/{number}"):
            raise VersionNotFoundError(f"{model}@v{number} was deleted by gc", ref=f"{model}@v{number}")
        final = self.final(model, number)
        if final is not None:
            rec = dict(final)
            status = rec.get("status", FINISHED)
        else:
            rec = consolidate(self.records(model, number))
            status = self._live_status(model, number, claim)
            rec["finished_at"] = None
            rec["error"] = None
        raw_series = self.series(model, number, final) if series else {}
        goals = rec.get("goals", {})
        metrics: dict[str, Any] = {}
        if raw_series:
            for name, cols in raw_series.items():
                vals = cols["value"]
                goal = goals.get(name, metric_goal(name))
                metrics[name] = {
                    "last": json_number(vals[-1]) if vals else None,
                    "best": best_of(vals, goal),
                    "goal": goal,
                    "series": [
                        {"step": s, "epoch": e, "value": json_number(v)}
                        for s, e, v in zip(cols["step"], cols["epoch"], vals)
                    ],
                }
        else:
            metrics = {k: {**v, "series": []} for k, v in rec.get("metrics", {}).items()}
        env = None
        if environment:
            env = self.read_json_or(vkey(model, number, "environment.json"), None)
        aliases = self.aliases(model)
        return {
            "model": model,
            "version": number,
            "status": status,
            "created_at": claim.get("created_at"),
            "finished_at": rec.get("finished_at"),
            "aliases": sorted(a for a, n in aliases.items() if n == number),
            "tags": self.tags(model, number),
            "params": rec.get("params", {}),
            "metrics": metrics,
            "environment": env,
            "data": rec.get("data", []),
            "artifacts": rec.get("artifacts", []),
            "framework": rec.get("framework"),
            "notes": self.notes(model, number),
            "error": rec.get("error"),
            "label": rec.get("label"),
            "changes": rec.get("changes"),
            "info": rec.get("info", {}),
            "parent": rec.get("parent"),
            "source": claim.get("source"),
            "actor": claim.get("actor"),
            "evaluations": evaluations.read(self, model, number),
        }

    def summary(self, model: str, number: int, final: dict[str, Any]) -> dict[str, Any]:
        """The listing row of a version that has ended (immutable, so cacheable)."""
        return {
            "status": final.get("status", FINISHED),
            "created_at": final.get("created_at"),
            "finished_at": final.get("finished_at"),
            "metrics": {k: json_number(v.get("last")) for k, v in final.get("metrics", {}).items()},
            "label": final.get("label"),
        }

    def versions(self, model: str) -> list[dict[str, Any]]:
        """Summaries of every version of ``model``, oldest first (``versions --json``).

        Ended versions never change, so their rows come from caches when they can: the local
        SQLite index first, then (remote stores) the summary packs kept in the store
        (``summaries/MODEL/BLOCK.json``, one per 1,000 numbers); what is left is read from
        each version's files, on a remote store ``MODELTRACK_LIST_CONCURRENCY`` at a time. A
        listing that read many ended versions from their files refreshes their pack (best
        effort: a store this process may not write is simply not updated).
        """
        from . import index

        nums = self._require_model(model)
        aliases = self.aliases(model)
        all_tags = self.all_tags(model)
        by_version: dict[int, list[str]] = {}
        for a, n in aliases.items():
            by_version.setdefault(n, []).append(a)
        cache = index.open_index(f"{self.store.uri}#{self.store_id}") if self.store_id else None
        # Where the store can fingerprint files cheaply, a cached row is used only while its
        # final.json is the one it was made from: the index never contradicts the files.
        stamps = self.final_stamps(model, nums) if cache and self.store.has_stamps else None
        cached = cache.get_model(model, stamps=stamps) if cache else {}
        remote = self.store.is_remote
        packs_on = remote and config.summary_packs()
        missing = [n for n in nums if n not in cached]
        packs = self._read_packs(model, missing) if packs_on and missing else {}
        from_packs: dict[int, dict[str, Any]] = {}
        for block in packs.values():
            from_packs.update(block)
        todo = [n for n in missing if n not in from_packs]
        rows: dict[int, dict[str, Any] | None] = {}
        if remote and len(todo) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(config.list_concurrency(), len(todo)), "modeltrack-list") as pool:
                rows.update(zip(todo, pool.map(lambda n: self._listing_row(model, n), todo)))
        else:
            rows.update((n, self._listing_row(model, n)) for n in todo)
        fresh = [(n, r) for n, r in rows.items() if r is not None and r.get("_ended")]
        for _, r in fresh:
            del r["_ended"]
        out = []
        for n in nums:
            row = cached.get(n) or from_packs.get(n) or rows.get(n)
            if row is None:
                continue  # half-claimed number: not a version
            out.append(
                {
                    "version": n,
                    "status": row["status"],
                    "created_at": row["created_at"],
                    "finished_at": row["finished_at"],
                    "aliases": sorted(by_version.get(n, [])),
                    "tags": all_tags.get(n, {}),
                    "metrics": row["metrics"],
                    "label": row["label"],
                }
            )
        if cache and (fresh or from_packs):
            cache.put_many(model, [*fresh, *from_packs.items()], stamps=stamps)
        if packs_on and fresh:
            self._refresh_packs(model, packs, fresh, cached)
        return out

    def _listing_row(self, model: str, n: int) -> dict[str, Any] | None:
        """The listing row of version ``n`` read from its files (``_ended`` set on the row of
        an ended version, which caches may keep); None for a half-claimed number."""
        try:
            final = self.final(model, n)
            if final is not None:
                return {**self.summary(model, n, final), "_ended": True}
            claim = self._claim_or_none(model, n)
            if claim is None:
                return None
            last = {k: json_number(c["value"][-1]) for k, c in self.series(model, n).items() if c["value"]}
            return {
                "status": self._live_status(model, n, claim),
                "created_at": claim.get("created_at"),
                "finished_at": None,
                "metrics": last,
                "label": None,
            }
        except CorruptRecordError as exc:
            _warn(f"{model}@v{n}: {exc}")
            return {"status": "corrupt", "created_at": None, "finished_at": None, "metrics": {}, "label": None}

    def _read_packs(self, model: str, nums: list[int]) -> dict[int, dict[int, dict[str, Any]]]:
        """The summary packs of the blocks holding ``nums``: block -> {version: summary}.
        Packs are caches: one that is absent, unreadable or damaged counts as empty, and only
        rows of the block's own numbers that are well-formed summaries are taken."""
        from .index import valid_summary

        blocks = sorted({_block(n) for n in nums})

        def read(block: int) -> dict[int, dict[str, Any]]:
            try:
                data = self.store.read_json(pack_key(model, block))
            except (KeyNotFound, CorruptRecordError, StoreError):
                return {}
            rows = data.get("versions") if isinstance(data, dict) and data.get("model") == model else None
            if not isinstance(rows, dict):
                return {}
            out = {}
            for name, row in rows.items():
                n = _num(name) if isinstance(name, str) else None
                if n is not None and _block(n) == block and valid_summary(row):
                    out[n] = row
            return out

        if len(blocks) == 1:
            return {blocks[0]: read(blocks[0])}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(config.list_concurrency(), len(blocks)), "modeltrack-list") as pool:
            return dict(zip(blocks, pool.map(read, blocks)))

    def pack_problems(self) -> list[dict[str, str]]:
        """What ``verify`` reports of the summary packs (``summaries/MODEL/BLOCK.json``): a
        pack that cannot be read, and every row that disagrees with the version's own
        ``final.json``. Listings trust a well-formed row, so a row damaged by hand would show
        wrong values; packs are caches, so the fix is always to delete the pack."""
        from .index import valid_summary

        out: list[dict[str, str]] = []
        fix = "it is a cache: delete it and the next listing rebuilds it"

        def bad(key: str, problem: str) -> None:
            out.append({"key": key, "problem": f"{problem}; {fix}"})

        for model in self.store.list(PACKS):
            gone = self.deleted(model)
            for name in self.store.list(f"{PACKS}/{model}"):
                key = f"{PACKS}/{model}/{name}"
                block = _num(name[:-5]) if name.endswith(".json") else None
                if block is None:
                    bad(key, "unexpected file among the summary packs")
                    continue
                try:
                    data = self.store.read_json(key)
                except (CorruptRecordError, KeyNotFound) as exc:
                    bad(key, f"summary pack cannot be read ({exc})")
                    continue
                rows = data.get("versions") if isinstance(data, dict) and data.get("model") == model else None
                if not isinstance(rows, dict):
                    bad(key, f"not a summary pack of {model}")
                    continue
                for vname, row in sorted(rows.items()):
                    n = _num(vname) if isinstance(vname, str) else None
                    if n is None or _block(n) != block:
                        bad(key, f"holds a row {vname!r} outside its block of versions")
                        continue
                    if n in gone:
                        continue  # deleted by gc: listings skip the number
                    try:
                        final = self.final(model, n)
                    except CorruptRecordError:
                        continue  # reported with the version's own files
                    if final is None:
                        bad(key, f"holds a row for {model}@v{n}, which has no final record")
                    elif not valid_summary(row) or json.dumps(row, sort_keys=True) != json.dumps(
                        self.summary(model, n, final), sort_keys=True
                    ):
                        bad(key, f"its row for {model}@v{n} disagrees with that version's final.json")
        return out

    def _refresh_packs(
        self,
        model: str,
        packs: dict[int, dict[int, dict[str, Any]]],
        fresh: list[tuple[int, dict[str, Any]]],
        cached: dict[int, dict[str, Any]],
    ) -> None:
        """Rewrite the pack of each block in which this listing read at least
        :data:`PACK_MIN_FRESH` ended versions from their files (or its last ones). Racing
        listers may overwrite each other's packs: every pack only ever holds correct rows,
        so a lost row is just read from its files again."""
        by_block: dict[int, dict[int, dict[str, Any]]] = {}
        for n, row in fresh:
            by_block.setdefault(_block(n), {})[n] = row
        for block, rows in by_block.items():
            if len(rows) < PACK_MIN_FRESH and len(packs.get(block, {})) + len(rows) < PACK_SIZE:  # not worth it
                continue
            # Rows of the local index are of ended versions too (this process may have made them).
            known = {n: r for n, r in cached.items() if _block(n) == block}
            merged = {**known, **packs.get(block, {}), **rows}
            body = {"model": model, "block": block, "versions": {str(n): merged[n] for n in sorted(merged)}}
            try:
                self.store.write_json(pack_key(model, block), body)
            except StoreError:
                return  # read-only credentials, an outage: the packs are only a cache

    def remember_ended(self, model: str, number: int, final: dict[str, Any]) -> None:
        """Put the summary of a version that just ended into the listing index (a cache)."""
        if not self.store_id:
            return
        from . import index

        cache = index.open_index(f"{self.store.uri}#{self.store_id}")
        if cache is not None:
            stamp = self.store.stamp(vkey(model, number, "final.json")) if self.store.has_stamps else None
            cache.put_later(model, number, self.summary(model, number, final), stamp)

    def final_stamps(self, model: str, nums: Iterable[int]) -> dict[int, str]:
        """Fingerprints of the ``final.json`` of each version that has one (see ``Store.stamp``)."""
        out = {}
        for n in nums:
            st = self.store.stamp(vkey(model, n, "final.json"))
            if st is not None:
                out[n] = st
        return out

    def models_summary(self) -> list[dict[str, Any]]:
        """``models --json``: one entry per model."""
        self.check_format()
        out = []
        for model in self.store.list("models"):
            nums = self.version_numbers(model)
            if not nums:
                continue
            events = self.alias_events(model)
            latest, newest_final = None, None
            for n in reversed(nums):
                try:
                    final = self.final(model, n)
                except CorruptRecordError:
                    continue
                if n == nums[-1]:
                    newest_final = final
                if self.status(model, n, final) == FINISHED:
                    latest = n
                    break
            stamps = [
                newest_final.get("finished_at") if newest_final else None,
                (self._claim_or_none(model, nums[-1]) or {}).get("created_at"),
                events[-1].get("time") if events else None,
            ]
            known = [s for s in stamps if s]
            out.append(
                {
                    "name": model,
                    "versions": len(nums),
                    "latest": latest,
                    "aliases": fold_aliases(events),
                    "updated_at": max(known) if known else None,
                }
            )
        return out

    def previous_finished(self, model: str, number: int) -> int | None:
        """The newest finished version of ``model`` older than ``number`` (the changelog's base)."""
        if number <= 1:
            return None
        gone = self.deleted(model)
        for n in range(number - 1, 0, -1):
            if n in gone or not self.store.exists(vkey(model, n, "claim.json")):
                continue
            if self.status(model, n) == FINISHED:
                return n
        return None

    # ------------------------------------------------------------------ tags and notes
    def tag_events(self, model: str) -> list[dict[str, Any]]:
        """Every tag change of ``model``'s versions, oldest first."""
        prefix = f"models/{model}/tags"
        return [self.read_json(f"{prefix}/{name}") for name in self.store.list(prefix) if name.endswith(".json")]

    def all_tags(self, model: str) -> dict[int, dict[str, str | None]]:
        """Current tags of every tagged version of ``model`` (one read per tag change)."""
        return fold_tags(self.tag_events(model))

    def tags(self, model: str, number: int) -> dict[str, str | None]:
        return self.all_tags(model).get(number, {})

    def set_tags(
        self, ref: str | tuple[str, int], tags: dict[str, Any], remove: Iterable[str] = ()
    ) -> dict[str, str | None]:
        """Add/replace tags (``None`` value = a bare label) and remove others (see
        :meth:`write_tags`).

        Returns:
            the version's tags after the change.
        """
        model, number = ref if isinstance(ref, tuple) else self.resolve(ref)
        self.write_tags(model, number, tags, remove)
        return self.tags(model, number)

    def write_tags(
        self, model: str, number: int, tags: dict[str, Any], remove: Iterable[str] = (), *, writer: Store | None = None
    ) -> None:
        """Append one tag event naming only the keys it sets and removes, under a name no
        other writer can take, so concurrent writers never lose each other's keys (no
        read-modify-write). ``writer``: the store to append through (a running version's
        spooling writer); default this store.

        Raises:
            InvalidNameError, InvalidValueError: a tag name or value breaks the rules.
        """
        changes = {check_tag(k): check_tag_value(k, v) for k, v in tags.items()}
        changes = {k: None if v is None else scrub_text(v) for k, v in changes.items()}
        gone = sorted({check_tag(k) for k in remove} - set(changes))
        if not changes and not gone:
            return
        event = {"version": number, "set": changes, "remove": gone, "time": now_iso(), "actor": config.actor()}
        (writer or self.store).write_json(f"models/{model}/tags/{_unique_name()}.json", event)

    def code_diff(self, model: str, number: int) -> str | None:
        """The dirty diff of tracked files captured with the version, if there was one."""
        try:
            return self.store.read(vkey(model, number, "code.diff")).decode("utf-8", errors="replace")
        except KeyNotFound:
            return None

    def notes(self, model: str, number: int) -> str | None:
        data = self.read_json_or(vkey(model, number, "notes.json"), None)
        return data.get("text") if isinstance(data, dict) else None

    def notes_record(self, model: str, number: int) -> dict[str, Any] | None:
        """The notes with who wrote them and when: ``{"text", "time", "actor"}``, or None."""
        data = self.read_json_or(vkey(model, number, "notes.json"), None)
        if not isinstance(data, dict):
            return None
        return {"text": data.get("text"), "time": data.get("time"), "actor": data.get("actor")}

    def tag_history(self, model: str, number: int) -> list[dict[str, Any]]:
        """Every tag change of one version, oldest first: ``{"time", "actor", "set", "remove"}``
        (events of the first format, which hold the whole set, show it as ``set``)."""
        out = []
        for ev in self.tag_events(model):
            if int(ev.get("version", -1)) != number:
                continue
            changed = ev.get("set") if "tags" not in ev else ev.get("tags")
            out.append(
                {
                    "time": ev.get("time"),
                    "actor": ev.get("actor"),
                    "set": dict(changed or {}),
                    "remove": list(ev.get("remove") or []),
                }
            )
        return sorted(out, key=lambda e: e["time"] or "")

    def set_notes(self, ref: str | tuple[str, int], text: str | None, *, writer: Store | None = None) -> None:
        """Set (or with ``None`` clear) the release notes of a version."""
        model, number = ref if isinstance(ref, tuple) else self.resolve(ref)
        store = writer or self.store
        if text is None:
            store.delete(vkey(model, number, "notes.json"))
        else:
            text = str(text)
            if len(text) > MAX_NOTES:
                raise InvalidValueError(
                    f"notes of {model}@v{number} are {len(text):,} characters; the limit is {MAX_NOTES:,}: "
                    f"store long documents as an artifact instead",
                    value=len(text),
                )
            store.write_json(
                vkey(model, number, "notes.json"), {"text": text, "time": now_iso(), "actor": config.actor()}
            )

    # ------------------------------------------------------------------ aliases
    def alias_events(self, model: str) -> list[dict[str, Any]]:
        """The alias history of ``model``, oldest first."""
        prefix = f"models/{model}/aliases"
        return [self.read_json(f"{prefix}/{n}") for n in self.store.list(prefix) if _EVENT_NAME.fullmatch(n)]

    def aliases(self, model: str) -> dict[str, int]:
        """Current alias → version of ``model``."""
        return fold_aliases(self.alias_events(model))

    def _append_alias_event(
        self, model: str, alias: str, decide: Callable[[int | None, list[dict[str, Any]]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        """Append one alias event, decided against the newest event: ``decide(current,
        history)`` sees the alias's holder as of event N and returns the event (or None: no
        change); it is claimed as event N+1 create-if-absent. If another writer claimed N+1
        first, the decision is made again against the new state, so no event records a stale
        ``from`` and no guard is checked against an old holder."""
        prefix = f"models/{model}/aliases"
        for _ in range(1000):
            names = [n for n in self.store.list(prefix) if _EVENT_NAME.fullmatch(n)]
            events = [self.read_json(f"{prefix}/{name}") for name in names]
            seq = int(names[-1][:-5]) + 1 if names else 1
            history = [e for e in events if e.get("alias") == alias]
            current = fold_aliases(events).get(alias)
            event = decide(current, history)
            if event is None:
                return {"alias": alias, "from": current, "to": current, "action": "none", "seq": None, "noop": True}
            event = {**event, "alias": alias, "from": current, "seq": seq, "time": now_iso(), "actor": config.actor()}
            if self.store.create_json(f"{prefix}/{seq:08d}.json", event):
                return event
        raise StoreError(f"could not record a move of {model}@{alias}: too many concurrent writers; try again")

    def set_alias(
        self,
        ref: str,
        alias: str,
        *,
        action: str = "set",
        reason: str | None = None,
        guard_metric: str | None = None,
        goal: str | None = None,
        compare: str = "last",
        require_finished: bool = False,
    ) -> dict[str, Any]:
        """Point ``alias`` at the version ``ref`` names (recorded in the alias history).

        With ``require_finished``, refuse a version that is not finished (running, failed,
        crashed). With ``guard_metric``, refuse unless the candidate's metric is at least as
        good as the current holder's: ``compare`` says which value of each version is
        compared (``"last"`` or ``"best"``), ``goal`` "min"/"max" which direction is better
        (default: as recorded with the metric, else guessed from its name). The guard is
        checked against the holder at the moment the move is recorded: a concurrent
        promotion makes this one check again. Pointing an alias at the version that already
        holds it records nothing (the result has ``"noop": True``).

        The result is the recorded event plus ``"noop"`` and ``"guard"`` (what the guard
        compared: ``{"metric", "goal", "compare", "candidate": {"version", "value"},
        "holder": {"version", "value"}|None}``, or None without a guard).

        Raises:
            PromotionRefusedError: the guard found the candidate worse (``exc.guard`` says
                what it compared), or the candidate is not finished.
            GuardMetricError: the guard cannot compare (a version lacks the metric, or
                which direction is better is unknown).
        """
        check_alias_name(alias)
        if compare not in ("last", "best"):
            raise InvalidValueError(f"compare must be 'last' or 'best', got {compare!r}", value=compare)
        model, number = self.resolve(ref)
        if require_finished:
            status = self.status(model, number)
            if status != FINISHED:
                raise VersionNotFinishedError(
                    f"refused to move {alias!r} to {model}@v{number}: it is {status}, not finished; promote a "
                    f"finished version, or pass force=True (CLI --force) to promote it anyway",
                    ref=f"{model}@v{number}",
                    status=status,
                )
        cand = self._guard_input(model, number, guard_metric) if guard_metric is not None else None
        if guard_metric is not None and cand is not None:
            goal = goal or cand[1] or metric_goal(guard_metric)
            if goal not in ("min", "max"):
                raise GuardMetricError(
                    f"cannot tell whether higher or lower {guard_metric!r} is better; pass --mode min or --mode max "
                    f"(API: mode='min' or mode='max')",
                    value=guard_metric,
                )
        guard_info: dict[str, Any] | None = None

        def decide(current: int | None, history: list[dict[str, Any]]) -> dict[str, Any] | None:
            nonlocal guard_info
            if current == number:
                return None
            if guard_metric is None or cand is None:
                return {"to": number, "action": action, "reason": reason}
            new = _pick(cand[0], compare, goal)
            guard_info = {
                "metric": guard_metric,
                "goal": goal,
                "compare": compare,
                "candidate": {"version": number, "value": new},
                "holder": None,
            }
            if current is not None:
                held = self._guard_input(model, current, guard_metric, role=f"the holder of {alias!r}")
                old = _pick(held[0], compare, goal) if held is not None else None
                guard_info["holder"] = {"version": current, "value": old}
                if new is None or old is None:
                    who, vals = (number, cand[0]) if new is None else (current, held[0] if held else [])
                    raise GuardMetricError(
                        f"the guard cannot compare {guard_metric!r}: {model}@v{who} has no finite value of it "
                        f"({len(vals)} points); promote without a guard or pass force=True (CLI --force)",
                        value=guard_metric,
                    )
                if (goal == "min" and new > old) or (goal == "max" and new < old):
                    raise PromotionRefusedError(
                        f"refused to move {alias!r} to {model}@v{number}: its {guard_metric} ({compare}) = {new:g} is "
                        f"worse than {old:g} ({compare}) of v{current}, which holds {alias!r} now ({goal} is better); "
                        f"pass force=True (CLI --force) to promote anyway",
                        guard=dict(guard_info),
                    )
            return {"to": number, "action": action, "reason": reason}

        event = self._append_alias_event(model, alias, decide)
        return {**event, "noop": bool(event.get("noop")), "guard": guard_info}

    def _guard_input(
        self, model: str, number: int, name: str, *, role: str = "the candidate"
    ) -> tuple[list[float], str | None] | None:
        """The values of metric ``name`` of a version and the goal recorded with it.

        Raises:
            GuardMetricError: the version has no such metric (the message lists those it has).
        """
        final = self.final(model, number)
        series = self.series(model, number, final)
        recorded = (final or {}).get("metrics", {})
        if name not in series and name not in recorded:
            evaluated = evaluations.metric_values(evaluations.read(self, model, number))
            if name in evaluated:
                value = evaluated[name]
                return ([value] if value is not None and math.isfinite(value) else []), None
            have = sorted(set(series) | set(recorded) | {k for k in evaluated if "." in k})
            listed = ", ".join(have[:30]) + (" …" if len(have) > 30 else "") if have else "none"
            raise GuardMetricError(
                f"the guard cannot compare {name!r}: {model}@v{number} ({role}) has no metric {name!r}; its "
                f"metrics: {listed}; pass one of them to --metric (API metric=), or promote without a guard",
                value=name,
            )
        if name in series:
            values = [v for v in series[name]["value"] if isinstance(v, (int, float)) and math.isfinite(v)]
        else:
            last = recorded[name].get("last")
            values = [last] if isinstance(last, (int, float)) and math.isfinite(last) else []
        goals = (final or {}).get("goals") or {}
        goal = goals.get(name) or (recorded.get(name) or {}).get("goal")
        return values, goal if goal in ("min", "max") else None

    def remove_alias(self, model: str, alias: str) -> dict[str, Any]:
        check_model_name(model)

        def decide(current: int | None, history: list[dict[str, Any]]) -> dict[str, Any]:
            if current is None:
                raise AliasNotFoundError(f"{model} has no alias {alias!r}", ref=f"{model}@{alias}")
            return {"to": None, "action": "remove", "reason": None}

        return self._append_alias_event(model, alias, decide)

    def alias_history(self, model: str, alias: str | None = None) -> list[dict[str, Any]]:
        self._require_model(model)
        return [e for e in self.alias_events(model) if alias is None or e["alias"] == alias]

    def rollback(self, model: str, alias: str, *, to: int | None = None) -> dict[str, Any]:
        """Point ``alias`` back at the holder before the current one, walking back through
        its history (v4 → v3 → v2 on repeated calls: a rollback undoes a move, it is not
        itself undone by the next one). ``to``: a past holder to go back to instead; a
        version that never held the alias is refused, naming those that did.

        Raises:
            AliasNotFoundError: ``alias`` was never set on ``model``.
            StoreError: no earlier holder to go back to.
            VersionNotFoundError: the version to go back to was deleted, or ``to`` never
                held the alias.
        """
        check_alias_name(alias)
        self._require_model(model)

        def decide(current: int | None, history: list[dict[str, Any]]) -> dict[str, Any] | None:
            if not history:
                raise AliasNotFoundError(f"{model} has no alias {alias!r} to roll back", ref=f"{model}@{alias}")
            stack = holder_stack(history)
            last = history[-1]
            if to is not None:
                past = sorted({int(e["to"]) for e in history if e.get("to") is not None})
                if to not in past:
                    raise VersionNotFoundError(
                        f"{model}@v{to} never held {alias!r}; its past holders: "
                        f"{', '.join(f'v{n}' for n in past)}; pick one of them with --to (API to=)",
                        ref=f"{model}@v{to}",
                    )
                if to == current:
                    return None
                target = to
            elif current is None:
                if not stack:
                    raise StoreError(f"{model}@{alias} has no earlier holder to roll back to")
                target = stack[-1]  # restore the holder that was removed
            elif len(stack) < 2:
                raise StoreError(
                    f"{model}@{alias} has no earlier holder to roll back to (v{current} is the first it held); "
                    f"use `modeltrack alias rm {model} {alias}` to remove it"
                )
            else:
                target = stack[-2]
            if not self.store.exists(vkey(model, target, "claim.json")) or target in self.deleted(model):
                raise VersionNotFoundError(
                    f"{model}@v{target}, the holder of {alias!r} to go back to, was deleted; pick another past "
                    f"holder with --to vN (see `modeltrack alias history {model} {alias}`)",
                    ref=f"{model}@v{target}",
                )
            return {"to": target, "action": "rollback", "reason": f"rollback of seq {last['seq']}"}

        event = self._append_alias_event(model, alias, decide)
        return {**event, "noop": bool(event.get("noop"))}

    # ------------------------------------------------------------------ diff and changelog
    def diff(self, a: str | tuple[str, int], b: str | tuple[str, int]) -> dict[str, Any]:
        """What changed from version ``a`` to version ``b``."""
        va = self.version(a if isinstance(a, tuple) else self.resolve(a), series=False)
        vb = self.version(b if isinstance(b, tuple) else self.resolve(b), series=False)
        return diff_records(va, vb)

    # ------------------------------------------------------------------ gc and verify
    def referenced_blobs(self) -> set[str]:
        """See :func:`modeltrack.maintenance.referenced_blobs`."""
        return maintenance.referenced_blobs(self)

    def gc(
        self,
        model: str | None = None,
        versions: Iterable[int] = (),
        *,
        force: bool = False,
        dry_run: bool = False,
        grace_seconds: float = 3600.0,
    ) -> dict[str, Any]:
        """See :func:`modeltrack.maintenance.gc`."""
        return maintenance.gc(self, model, versions, force=force, dry_run=dry_run, grace_seconds=grace_seconds)

    def verify(self) -> dict[str, Any]:
        """See :func:`modeltrack.maintenance.verify`."""
        return maintenance.verify(self)


#: version numbers per summary pack, and the ended versions a listing must have read from
#: their files before it rewrites their block's pack
PACK_SIZE = 1000
PACK_MIN_FRESH = 20
PACKS = "summaries"


def _block(n: int) -> int:
    return (n - 1) // PACK_SIZE


def pack_key(model: str, block: int) -> str:
    """Store key of the summary pack of ``model``'s versions ``block * 1000 + 1`` to
    ``(block + 1) * 1000``."""
    return f"{PACKS}/{model}/{block:06d}.json"


def holder_stack(history: list[dict[str, Any]]) -> list[int]:
    """The holders a rollback walks back through, oldest first, replayed from one alias's
    events: a move pushes its version, a rollback to a version goes back to its last place
    on the stack (dropping the holders after it), a removal keeps the stack (a rollback
    restores the removed holder)."""
    stack: list[int] = []
    for ev in history:
        to = ev.get("to")
        if to is None:
            continue
        to = int(to)
        if ev.get("action") == "rollback" and to in stack:
            del stack[len(stack) - stack[::-1].index(to) :]
        elif not stack or stack[-1] != to:
            stack.append(to)
    return stack


def _pick(values: list[float], compare: str, goal: str | None) -> float | None:
    """The last or the best of ``values`` (None when there is none)."""
    if not values:
        return None
    if compare == "last":
        return values[-1]
    return best_of(values, goal)


def _ranges(nums: list[int]) -> str:
    if not nums:
        return "none"
    if len(nums) <= 5:
        return ", ".join(map(str, nums))
    return f"{nums[0]}..{nums[-1]} ({len(nums)} in all)"


def _warn(message: str) -> None:
    import warnings

    from .errors import ModelTrackWarning

    warnings.warn(message, ModelTrackWarning, stacklevel=3)
