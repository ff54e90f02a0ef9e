"""Copying versions between any two stores (the engine behind ``push`` and ``pull``).

A version keeps its number when that number is free at the destination; ``renumber``
gives it the next free number instead. The copy's ``claim.json`` records where it came
from (``source``: store URI without credentials, model, version). Aliases are not copied:
which version is ``production`` is a decision of each store (and its audit trail).

Example:
    >>> copy_version(Repo("./.modeltrack"), Repo("s3://ml/team"), "churn", 3)  # doctest: +SKIP
    {'model': 'churn', 'version': 3, 'to': 3, 'blobs_copied': 1, ...}
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._util import now_iso
from .blobs import fetch_verified
from .errors import StoreError, VersionStateError
from .evaluations import FOLDER as EVALUATIONS
from .layout import RUNNING, blob_key, consolidate, vkey
from .repo import Repo
from .secrets import strip_credentials
from .stores import Store

_RAW_SKIP = ("claim.json", "final.json")


# ---------------------------------------------------------------------- copying versions
def copy_blob(src: Store, dst: Store, key: str) -> None:
    """Copy one blob through a local file, checked against its name on the way: a damaged
    blob, or one replaced by a link, never reaches the destination.

    Raises:
        CorruptRecordError: the blob does not hash to its name (nothing is copied).
    """
    with tempfile.TemporaryDirectory(prefix="modeltrack-copy-") as tmp:
        local = Path(tmp) / "blob"
        fetch_verified(src, key.rsplit("/", 1)[-1], local, what=f"{key} being copied")
        dst.put_file(key, local)


def _same_source(claim: dict[str, Any] | None, source: dict[str, Any]) -> bool:
    got = (claim or {}).get("source") or {}
    return all(got.get(k) == source[k] for k in ("store", "model", "version"))


def copy_version(
    src: Repo, dst: Repo, model: str, number: int, *, renumber: bool = False, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Copy version ``number`` of ``model`` from ``src`` to ``dst``.

    Order matters for readers of ``dst``: the claim first (it reserves the number), then
    the blobs, then the records, and ``final.json`` last, so a finished version is never
    visible with parts missing. Running again after an interruption completes the copy.

    Args:
        src: the store to read.
        dst: the store to write.
        model: model name.
        number: version number at ``src``.
        renumber: when ``dst`` has another version under that number, copy as the next free
            number instead of failing.
        log: called with progress messages (blob uploads).

    Returns:
        ``{"model", "version", "to", "status", "blobs_copied", "blobs_skipped", "files", "unchanged"}``;
        a version copied before also gives ``evaluations_copied`` (the evaluations appended to
        it since, which are copied).

    Raises:
        VersionStateError: the version is still running.
        StoreError: ``dst`` holds a different version under the same number (without ``renumber``).
    """
    src.check_format()
    claim = src.claim(model, number)
    final = src.final(model, number)
    status = src.status(model, number, final)
    if status == RUNNING:
        raise VersionStateError(
            f"{model}@v{number} in {strip_credentials(src.store.uri)} is still running; copy it when it has ended"
        )
    source: dict[str, Any] = {"store": strip_credentials(src.store.uri), "model": model, "version": number}
    if claim.get("source"):
        source["origin"] = claim["source"].get("origin") or {
            k: claim["source"].get(k) for k in ("store", "model", "version")
        }
    new_claim = {k: v for k, v in claim.items() if k not in ("version", "source")}
    new_claim["source"] = {**source, "copied_at": now_iso()}
    dst.check_format(create=True)

    target = number
    if not dst.store.create_json(vkey(model, number, "claim.json"), {**new_claim, "version": number}):
        existing = dst.store.read_json_or(vkey(model, number, "claim.json"), None)
        if _same_source(existing, source):
            pass  # copied before (maybe partly): complete it
        elif renumber:
            target = _find_copy(dst, model, source) or dst.allocate(model, new_claim)
        else:
            raise StoreError(
                f"{strip_credentials(dst.store.uri)} already has a different {model}@v{number}; pass --renumber "
                f"to copy it as the next free version number",
                uri=strip_credentials(dst.store.uri),
            )
    if final is not None and dst.store.exists(vkey(model, target, "final.json")):
        # Copied before: the version is immutable, but evaluations are appended to it later.
        added = _copy_new_evaluations(src, dst, model, number, target)
        return {
            "model": model,
            "version": number,
            "to": target,
            "status": status,
            "blobs_copied": 0,
            "blobs_skipped": 0,
            "files": added,
            "evaluations_copied": added,
            "unchanged": not added,
        }

    arts = (
        final.get("artifacts", [])
        if final
        else consolidate(src.records(model, number), keep_released=True).get("artifacts", [])
    )
    copied = skipped = 0
    for sha in dict.fromkeys(a["sha256"] for a in arts):
        key = blob_key(sha)
        if dst.store.exists(key):
            skipped += 1
            continue
        if log is not None:
            log(f"copying {key} ({next(a['size'] for a in arts if a['sha256'] == sha)} bytes)")
        copy_blob(src.store, dst.store, key)
        copied += 1

    prefix = vkey(model, number) + "/"
    files = 0
    for key in sorted(src.store.walk(vkey(model, number))):
        rel = key[len(prefix) :]
        if rel in _RAW_SKIP:
            continue
        dst.store.write(vkey(model, target, rel), src.store.read(key))
        files += 1
    tags = src.tags(model, number)
    if tags and dst.tags(model, target) != tags:
        dst.set_tags((model, target), tags)
    if final is not None:
        dst.store.create(vkey(model, target, "final.json"), src.store.read(vkey(model, number, "final.json")))
        files += 1
    return {
        "model": model,
        "version": number,
        "to": target,
        "status": status,
        "blobs_copied": copied,
        "blobs_skipped": skipped,
        "files": files,
        "unchanged": False,
    }


def _copy_new_evaluations(src: Repo, dst: Repo, model: str, number: int, target: int) -> int:
    """Copy the evaluation records of ``src``'s version that ``dst``'s copy lacks (each has a
    name no other writer takes, so a name present at ``dst`` is that same record)."""
    have = set(dst.store.list(vkey(model, target, EVALUATIONS)))
    added = 0
    for name in src.store.list(vkey(model, number, EVALUATIONS)):
        if name in have or not name.endswith(".json"):
            continue
        rel = f"{EVALUATIONS}/{name}"
        dst.store.write(vkey(model, target, rel), src.store.read(vkey(model, number, rel)))
        added += 1
    return added


def _find_copy(dst: Repo, model: str, source: dict[str, Any]) -> int | None:
    """The number under which ``dst`` already holds a copy of ``source`` (renumbered before)."""
    for n in dst.version_numbers(model, include_deleted=True):
        if _same_source(dst.store.read_json_or(vkey(model, n, "claim.json"), None), source):
            return n
    return None


def copy_versions(
    src: Repo, dst: Repo, refs: list[str] | None, *, renumber: bool = False, log: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Copy the versions ``refs`` name (``None``: every version of every model; running
    versions are then skipped with a note)."""
    results: list[dict[str, Any]] = []
    if refs is None:
        for model in src.models():
            for n in src.version_numbers(model):
                try:
                    results.append(copy_version(src, dst, model, n, renumber=renumber, log=log))
                except VersionStateError as exc:
                    results.append({"model": model, "version": n, "skipped": str(exc)})
        return results
    for ref in refs:
        model, n = src.resolve(ref)
        results.append(copy_version(src, dst, model, n, renumber=renumber, log=log))
    return results


__all__ = ["copy_blob", "copy_version", "copy_versions"]
