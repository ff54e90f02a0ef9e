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
import sys
from collections.abc import Iterator
from typing import Any

from .errors import ModelTrackError
from .output import mb, print_json
from .repo import Repo
from .secrets import strip_credentials
from .stores import open_store
from .stores.spool import Spool
from .transfer import copy_versions


# ---------------------------------------------------------------------- CLI
def _stderr(msg: str) -> None:
    sys.stderr.write(f"modeltrack: {msg}\n")


def _print_results(results: list[dict[str, Any]], verb: str, dest: str, as_json: bool) -> None:
    if as_json:
        print_json(results)
        return
    for r in results:
        ref = f"{r['model']}@v{r['version']}"
        if "skipped" in r:
            print(f"skipped {ref}: {r['skipped']}")
        elif r["unchanged"]:
            print(f"{ref} is already in {dest} (as v{r['to']})")
        elif r.get("evaluations_copied"):  # copied before; only its new evaluations now
            print(f"{ref} is already in {dest} (as v{r['to']}); {r['evaluations_copied']} new evaluations copied")
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
            res = spool.sync(open_store(uri), progress=progress)
        except ModelTrackError as exc:
            failed += 1
            res = {"store": uri, "error": str(exc), "pending": sum(len(q.ops()) for q in spool.queues(uri))}
        results.append(res)
    if tty:
        sys.stderr.write("\r\033[K")
    if args.json:
        print_json(results)
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
        print_json(entries)
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


__all__ = ["add_commands", "iter_status_lines"]


def iter_status_lines(entries: list[dict[str, Any]]) -> Iterator[str]:
    """Human lines for ``modeltrack status``."""
    for e in entries:
        who = (
            f"uploading now by pid {e['pid']}" if e["uploading"] else f"left by pid {e['pid']} — run `modeltrack sync`"
        )
        vers = ", ".join(e["versions"]) or "-"
        line = f"{e['store']}  {e['operations']} operations, {mb(e['bytes'])}  versions {vers}  ({who})"
        if e.get("last_error"):
            line += f"\n    last error {e['last_error_at']}: {e['last_error']}"
        yield line
