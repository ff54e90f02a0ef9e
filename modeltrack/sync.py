"""Moving versions between stores: ``sync`` and ``status`` (the spool), ``push`` and ``pull``.

* ``modeltrack sync`` publishes what training runs left in the local spool (a process that
  was killed, or whose ``finish()`` stopped waiting); idempotent and resumable.
* ``modeltrack status`` lists what the spool still holds, per store and version.
* ``modeltrack push REF|--all DEST`` and ``modeltrack pull SRC REF`` copy versions between
  any two stores (local, S3, memory), skipping blobs the destination already has. A
  version keeps its number when that number is free at the destination; ``--renumber``
  gives it the next free number instead. The copy's ``claim.json`` records where it came
  from (``source``: store URI without credentials, model, version). Aliases are not
  copied: which version is ``production`` is a decision of each store (and its audit
  trail); set them at the destination with ``modeltrack alias set`` / ``promote``.

Example:
    >>> copy_version(Repo("./.modeltrack"), Repo("s3://ml/team"), "churn", 3)  # doctest: +SKIP
    {'model': 'churn', 'version': 3, 'to': 3, 'blobs_copied': 1, ...}
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._util import now_iso
from .blobs import fetch_verified
from .errors import ModelTrackError, StoreError, VersionStateError
from .repo import RUNNING, Repo, blob_key, consolidate, vkey
from .spool import Spool, iter_status_lines
from .stores import Store

_RAW_SKIP = ("claim.json", "final.json")


def strip_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part (provenance is read by others)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", uri)


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
        ``{"model", "version", "to", "status", "blobs_copied", "blobs_skipped", "files", "unchanged"}``.

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
        return {
            "model": model,
            "version": number,
            "to": target,
            "status": status,
            "blobs_copied": 0,
            "blobs_skipped": 0,
            "files": 0,
            "unchanged": True,
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


# ---------------------------------------------------------------------- CLI
def _stderr(msg: str) -> None:
    sys.stderr.write(f"modeltrack: {msg}\n")


def _print_results(results: list[dict[str, Any]], verb: str, dest: str, as_json: bool) -> None:
    if as_json:
        from .cli import _print_json

        _print_json(results)
        return
    for r in results:
        ref = f"{r['model']}@v{r['version']}"
        if "skipped" in r:
            print(f"skipped {ref}: {r['skipped']}")
        elif r["unchanged"]:
            print(f"{ref} is already in {dest} (as v{r['to']})")
        else:
            print(
                f"{verb} {ref} -> {dest} as {r['model']}@v{r['to']} ({r['status']}; {r['blobs_copied']} blobs copied, "
                f"{r['blobs_skipped']} already there, {r['files']} files)"
            )
    if not results:
        print("nothing to copy")


def cmd_push(args: argparse.Namespace) -> None:
    if bool(args.ref) == bool(args.all):
        raise ModelTrackError("push needs either a REF or --all (e.g. `modeltrack push churn@v3 s3://bucket/team`)")
    src, dst = Repo(args.store), Repo(args.dest)
    results = copy_versions(
        src, dst, None if args.all else [args.ref], renumber=args.renumber, log=None if args.json else _stderr
    )
    _print_results(results, "pushed", strip_credentials(dst.store.uri), args.json)


def cmd_pull(args: argparse.Namespace) -> None:
    if bool(args.ref) == bool(args.all):
        raise ModelTrackError(
            "pull needs either a REF or --all (e.g. `modeltrack pull s3://bucket/team churn@production`)"
        )
    src, dst = Repo(args.src), Repo(args.store)
    results = copy_versions(
        src, dst, None if args.all else [args.ref], renumber=args.renumber, log=None if args.json else _stderr
    )
    _print_results(results, "pulled", strip_credentials(dst.store.uri), args.json)


def _spool_uris(args: argparse.Namespace, spool: Spool) -> list[str]:
    if args.store:
        from .stores import open_store

        return [open_store(args.store).uri]
    return spool.stores()


def cmd_sync(args: argparse.Namespace) -> int:
    spool = Spool()
    uris = _spool_uris(args, spool)
    results: list[dict[str, Any]] = []
    failed = 0
    tty = sys.stderr.isatty()

    def progress(key: str, n: int, total: int) -> None:
        if tty and total >= 16 * 1024 * 1024:
            sys.stderr.write(f"\r  uploading {key.rsplit('/', 1)[-1][:16]}… ({total / 1e6:.1f} MB)")
            sys.stderr.flush()

    for uri in uris:
        try:
            res = spool.sync(uri, progress=progress)
        except ModelTrackError as exc:
            failed += 1
            res = {"store": uri, "error": str(exc), "pending": sum(len(q.ops()) for q in spool.queues(uri))}
        results.append(res)
    if tty:
        sys.stderr.write("\r\033[K")
    if args.json:
        from .cli import _print_json

        _print_json(results)
    else:
        if not results:
            print("nothing to sync: the spool is empty")
        for r in results:
            if "error" in r:
                print(f"{r['store']}: sync failed, {r['pending']} operations stay in the spool: {r['error']}")
                continue
            line = f"{r['store']}: uploaded {r['uploaded']} operations ({r['bytes'] / 1e6:.1f} MB)"
            line += f", {r['pending']} pending" if r["pending"] else ", nothing pending"
            if r["skipped_queues"]:
                line += f" ({len(r['skipped_queues'])} queue(s) being uploaded by running processes)"
            print(line)
    return 1 if failed else 0


def cmd_status(args: argparse.Namespace) -> None:
    spool = Spool()
    entries: list[dict[str, Any]] = []
    for uri in _spool_uris(args, spool):
        entries.extend(spool.status(uri))
    if args.json:
        from .cli import _print_json

        _print_json(entries)
        return
    if not entries:
        print(f"nothing pending: every spooled write has been uploaded (spool: {spool.root})")
        return
    for line in iter_status_lines(entries):
        print(line)


def add_commands(sub: Any, common: argparse.ArgumentParser, jsonp: argparse.ArgumentParser) -> None:
    """Add ``sync``, ``status``, ``push`` and ``pull`` to the ``modeltrack`` sub-commands."""
    h = "upload what training runs left in the local spool (all stores, or --store); safe to repeat"
    p = sub.add_parser("sync", help=h, description=h, parents=[common, jsonp])
    p.set_defaults(func=cmd_sync)
    h = "list writes still waiting in the local spool for upload to a remote store"
    p = sub.add_parser("status", help=h, description=h, parents=[common, jsonp])
    p.set_defaults(func=cmd_status)
    h = "copy versions from the store (--store / $MODELTRACK_STORE) to DEST, e.g. push churn@v3 s3://bucket/team"
    p = sub.add_parser("push", help=h, description=h, parents=[common, jsonp])
    p.add_argument("ref", nargs="?", metavar="REF", help="version to copy (NAME, NAME@v3, NAME@alias)")
    p.add_argument("dest", metavar="DEST", help="destination store URI or directory")
    p.add_argument("--all", action="store_true", help="copy every version of every model")
    p.add_argument(
        "--renumber",
        action="store_true",
        help="if DEST has another version under the same number, use the next free number",
    )
    p.set_defaults(func=cmd_push)
    h = "copy versions from SRC into the store (--store / $MODELTRACK_STORE), e.g. pull s3://bucket/team churn@production"
    p = sub.add_parser("pull", help=h, description=h, parents=[common, jsonp])
    p.add_argument("src", metavar="SRC", help="source store URI or directory")
    p.add_argument("ref", nargs="?", metavar="REF", help="version to copy")
    p.add_argument("--all", action="store_true", help="copy every version of every model")
    p.add_argument(
        "--renumber",
        action="store_true",
        help="if the store has another version under the same number, use the next free number",
    )
    p.set_defaults(func=cmd_pull)


__all__ = ["add_commands", "copy_blob", "copy_version", "copy_versions", "strip_credentials"]
