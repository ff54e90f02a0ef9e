"""Keeping a store healthy: ``gc`` (delete versions and unreferenced blobs, never one in use)
and ``verify`` (re-check every record and blob, naming each damaged path)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import records
from ._util import now_iso
from .blobs import blob_key
from .errors import (
    CorruptRecordError,
    InvalidValueError,
    KeyNotFound,
    StoreError,
    StoreNotFoundError,
    VersionNotFoundError,
)
from .layout import _CHUNK, _EVENT_NAME, RUNNING, RUNNING_GRACE_SECONDS, _num, consolidate, vkey
from .refs import is_model_name
from .stores import FORMAT_KEY, FORMAT_VERSION

if TYPE_CHECKING:
    from .repo import Repo


def referenced_blobs(repo: Repo, skip: Iterable[tuple[str, int]] = ()) -> set[str]:
    """SHA-256 of every blob that any record may reference: the artifacts of finished and
    failed versions, and everything running and crashed versions logged (released
    checkpoints included), whatever state their directories are in. A checkpoint a finished
    version released is not referenced: freeing it is what releasing is for.

    Raises:
        CorruptRecordError: some records cannot be read; they might reference blobs, so
            nothing may be deleted until they are fixed. The message names each one.

    ``skip``: versions ``(model, number)`` to leave out (what a dry run would delete).
    """
    skipped = set(skip)
    refs: set[str] = set()
    unreadable: list[str] = []
    for model in repo.store.list("models"):
        for n in repo.version_numbers(model, include_deleted=True):
            if (model, n) in skipped:
                continue
            try:
                final = repo.final(model, n)
                arts = final.get("artifacts", []) if isinstance(final, dict) else None
                if not isinstance(arts, list):
                    if final is not None:
                        raise CorruptRecordError(f"{vkey(model, n, 'final.json')} has no artifact list")
                    # A version still running (or crashed) may yet keep what it released.
                    arts = consolidate(repo.records(model, n), keep_released=True).get("artifacts", [])
                for a in arts:
                    sha = a.get("sha256") if isinstance(a, dict) else None
                    if not isinstance(sha, str):
                        raise CorruptRecordError(f"an artifact of {model}@v{n} has no sha256")
                    refs.add(sha)
            except (CorruptRecordError, KeyError, TypeError, ValueError, AttributeError) as exc:
                key = getattr(exc, "key", None) or vkey(model, n)
                unreadable.append(str(key))
    if unreadable:
        raise CorruptRecordError(
            f"gc stopped before deleting anything: {len(unreadable)} record(s) cannot be read and might "
            f"reference blobs: {', '.join(unreadable[:10])}{' …' if len(unreadable) > 10 else ''}; restore them "
            f"from a copy, or delete the damaged versions' directories, then run gc again "
            f"(`modeltrack verify` lists all damage)",
            key=unreadable[0],
        )
    return refs


def _any_running(repo: Repo) -> bool:
    for model in repo.store.list("models"):
        gone = repo.deleted(model)
        for n in repo.version_numbers(model, include_deleted=True):
            if n in gone or repo.store.exists(vkey(model, n, "final.json")):
                continue
            claim = repo._claim_or_none(model, n)
            if claim is not None and repo._live_status(model, n, claim) == RUNNING:
                return True
    return False


def gc(
    repo: Repo,
    model: str | None = None,
    versions: Iterable[int] = (),
    *,
    force: bool = False,
    dry_run: bool = False,
    grace_seconds: float = 3600.0,
) -> dict[str, Any]:
    """Delete the named versions (never one holding an alias unless ``force``) and every
    blob no version references.

    Blobs written or re-used less than ``grace_seconds`` ago are kept (a running version
    may be about to reference them; while any version runs, at least
    ``RUNNING_GRACE_SECONDS``). References are read twice, before and after choosing
    what to delete, and a blob is deleted only if it is still old at that instant, so
    a version that re-uses a blob meanwhile keeps it.

    Raises:
        CorruptRecordError: some records cannot be read (nothing is deleted).
        StoreError: a version holds an alias or is running (without ``force``).
    """
    if not isinstance(grace_seconds, (int, float)) or not math.isfinite(grace_seconds) or grace_seconds < 0:
        raise InvalidValueError(
            f"gc grace period must be a number of seconds >= 0, got {grace_seconds!r}", value=grace_seconds
        )
    repo.check_format()
    versions = list(versions)
    refs = referenced_blobs(repo)  # first, so that damaged records stop gc before it deletes anything
    deleted: list[str] = []
    if model is not None:
        nums = set(repo._require_model(model))
        aliases = repo.aliases(model)
        for n in versions:
            if n not in nums:
                raise VersionNotFoundError(f"{model} has no version {n}", ref=f"{model}@v{n}")
            held = sorted(a for a, v in aliases.items() if v == n)
            if held and not force:
                raise StoreError(f"{model}@v{n} holds alias(es) {', '.join(held)}; move them first or pass --force")
            if repo.status(model, n) == RUNNING and not force:
                raise StoreError(f"{model}@v{n} is still running; wait for it or pass --force")
        for n in versions:
            if not dry_run:
                for a, v in aliases.items():
                    if v == n:
                        repo.remove_alias(model, a)
                repo.store.write_json(f"models/{model}/deleted/{n}", {"time": now_iso()})
                prefix = vkey(model, n)
                for key in list(repo.store.walk(prefix)):
                    if not key.endswith("/claim.json"):
                        repo.store.delete(key)
            deleted.append(f"{model}@v{n}")
    if _any_running(repo):
        grace_seconds = max(grace_seconds, RUNNING_GRACE_SECONDS)
    cutoff = time.time() - grace_seconds
    # The deleted versions no longer reference their blobs (a dry run leaves them out instead,
    # so that it reports what the real run would free).
    skip = [(model, n) for n in versions] if dry_run and model is not None else []
    if deleted:
        refs = referenced_blobs(repo, skip)
    candidates = []
    kept_young = 0
    for key in list(repo.store.walk("blobs")):
        sha = key.rsplit("/", 1)[-1]
        if sha in refs:
            continue
        when = repo.store.modified(key)
        if grace_seconds > 0 and (when is None or when >= cutoff):
            kept_young += 1
            continue
        candidates.append(key)
    refs = referenced_blobs(repo, skip) if candidates else refs
    removed, freed = [], 0
    for key in candidates:
        if key.rsplit("/", 1)[-1] in refs:
            continue
        try:
            size = repo.store.size(key)
        except KeyNotFound:
            continue
        if dry_run:
            ok = True
        elif grace_seconds > 0:
            ok = repo.store.delete_if_older(key, cutoff)
        else:
            repo.store.delete(key)
            ok = True
        if ok:
            removed.append(key)
            freed += size
    # Temporary files of killed writers (never named like a record or a blob), by the same grace.
    swept, swept_bytes = repo.store.sweep_temporaries(cutoff, dry_run=dry_run)
    return {
        "deleted_versions": deleted,
        "deleted_blobs": len(removed),
        "removed_temporaries": swept,
        "freed_bytes": freed + swept_bytes,
        "dry_run": dry_run,
        "kept_recent_blobs": kept_young,
        "grace_seconds": grace_seconds,
    }


def verify(repo: Repo) -> dict[str, Any]:
    """Re-check every record of the store and every artifact checksum.

    Checks what every other command reads: ``FORMAT``; every JSON record against its
    kind's schema (claims, records, metric chunks, series, final records, notes,
    heartbeats, environments, alias and tag logs, gc tombstones); that each version
    directory has its claim; that a finished version keeps its ``series.json`` and a
    running or crashed one has no gap in its metric chunks; that every referenced
    blob exists, is a regular file and hashes to its name; and that every row of the
    summary packs remote listings read agrees with its version's ``final.json``.

    Returns:
        ``{"ok", "records_checked", "artifacts_checked", "problems": [{"key", "problem"}],
        "notes": [{"key", "note"}]}``; ``notes`` are harmless leftovers (a number whose
        claim was never published because its process was killed inside ``start()``).
    """
    problems: list[dict[str, str]] = []
    notes: list[dict[str, str]] = []
    checked = records_checked = 0
    seen: dict[str, str | None] = {}

    def bad(key: str, problem: str, **extra: str) -> None:
        problems.append({"key": key, "problem": problem, **extra})

    try:
        raw = repo.store.read(FORMAT_KEY)
    except KeyNotFound:
        raw = None
        if repo.store.list("models") or repo.store.list("blobs"):
            bad(FORMAT_KEY, "missing: the store has models but no FORMAT file")
        else:
            raise StoreNotFoundError(
                f"no modeltrack store at {repo.store.uri}: nothing to verify; check MODELTRACK_STORE / --store",
                uri=repo.store.uri,
            ) from None
    if raw is not None:
        try:
            fmt = records.load(raw, FORMAT_KEY)
            if fmt["format"] > FORMAT_VERSION:
                bad(FORMAT_KEY, f"format {fmt['format']} is newer than this modeltrack reads ({FORMAT_VERSION})")
        except CorruptRecordError as exc:
            bad(FORMAT_KEY, str(exc))
    for model in repo.store.list("models"):
        if not is_model_name(model):
            bad(f"models/{model}", "not a valid model name: a stray file or directory")
            continue
        base_model = f"models/{model}"
        for area in repo.store.list(base_model):
            if area not in ("versions", "aliases", "tags", "deleted"):
                bad(f"{base_model}/{area}", "unexpected entry in the model's directory")
        for area in ("aliases", "tags", "deleted"):
            for name in repo.store.list(f"{base_model}/{area}"):
                key = f"{base_model}/{area}/{name}"
                records_checked += 1
                if records.kind_of(key) is None or (area == "aliases" and not _EVENT_NAME.fullmatch(name)):
                    bad(key, f"unexpected file in the {area} log")
                    continue
                try:
                    ev = repo.read_json(key)
                except (CorruptRecordError, KeyNotFound) as exc:
                    bad(key, str(exc))
                    continue
                if area == "aliases" and ev.get("seq") is not None and int(ev["seq"]) != int(name[:-5]):
                    bad(key, f"alias event numbered {ev['seq']} is stored as {name}: the history is out of order")
        gone = repo.deleted(model)
        for name in repo.store.list(f"{base_model}/versions"):
            n = _num(name)
            base = f"{base_model}/versions/{name}"
            if n is None:
                bad(base, "not a version number: a stray file or directory")
                continue
            keys = list(repo.store.walk(base))
            if n in gone:
                continue  # deleted by gc: only the claim stays, to keep the number taken
            has = {k[len(base) + 1 :] for k in keys}
            if "claim.json" not in has:
                if not has:
                    notes.append({"key": base, "note": "number never claimed (its process was killed in start())"})
                else:
                    bad(f"{base}/claim.json", "missing: the version has records but no claim")
            for key in keys:
                if records.kind_of(key) is None:
                    if key.endswith(".json"):
                        bad(key, "unexpected record in the version's directory")
                    continue
                records_checked += 1
                try:
                    rec = repo.read_json(key)
                except (CorruptRecordError, KeyNotFound) as exc:
                    bad(key, str(exc))
                    continue
                if key.endswith("/claim.json") and (
                    rec.get("version") not in (None, n) or rec.get("model") not in (None, model)
                ):
                    bad(key, f"claims {rec.get('model')}@v{rec.get('version')}, but is stored as {model}@v{n}")
            chunks = sorted(int(k.rsplit("/", 1)[-1][:-5]) for k in has if _CHUNK.fullmatch(k))
            if "final.json" in has:
                try:
                    final = repo.final(model, n)
                except CorruptRecordError:
                    continue
                counted = sum(int(m.get("count") or 0) for m in (final or {}).get("metrics", {}).values())
                if counted and "series.json" not in has:
                    bad(f"{base}/series.json", f"missing: {counted} metric points of this finished version are lost")
                arts = (final or {}).get("artifacts", [])
            else:
                if (
                    "series.json" in has
                    and not chunks
                    and "claim.json" in has
                    and repo.read_json_or(f"{base}/series.json", None)
                ):
                    bad(f"{base}/final.json", "missing: the version was finished (its metric chunks are gone)")
                missing = sorted(set(range(1, chunks[-1] + 1)) - set(chunks)) if chunks else []
                for k in missing:
                    bad(f"{base}/metrics/{k:06d}.json", "missing metric chunk: points are lost")
                try:
                    arts = consolidate(repo.records(model, n)).get("artifacts", [])
                except (CorruptRecordError, KeyError, TypeError, ValueError):
                    continue
            for art in arts:
                sha = art["sha256"]
                checked += 1
                if sha not in seen:
                    try:
                        got = repo.store.sha256(blob_key(sha))
                        seen[sha] = None if got == sha else f"checksum mismatch (content hashes to {got[:12]}…)"
                    except KeyNotFound:
                        seen[sha] = "blob missing"
                    except CorruptRecordError as exc:
                        seen[sha] = str(exc)
                if seen[sha]:
                    bad(f"{base}/artifacts/{art['path']}", str(seen[sha]), blob=blob_key(sha))
    problems.extend(repo.pack_problems())  # listing caches kept in the store
    return {
        "ok": not problems,
        "records_checked": records_checked,
        "artifacts_checked": checked,
        "problems": problems,
        "notes": notes,
    }


__all__ = ["gc", "referenced_blobs", "verify"]
