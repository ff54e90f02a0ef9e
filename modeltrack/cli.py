"""The ``modeltrack`` command line. Every listing, ``show`` and ``diff`` take ``--json``.

Errors print one line (what, why, how to fix) and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ModelTrackError
from .output import fmt, print_json, sparkline, table
from .refs import check_alias_name, parse_ref

#: modules that add more sub-commands: each has ``add_commands(subparsers, common)``
EXTENSIONS = ("modeltrack.runner", "modeltrack.sync", "modeltrack.ui.cli")

Handler = Callable[[argparse.Namespace], int | None]


def _repo(args: argparse.Namespace) -> Any:
    from .repo import Repo

    return Repo(args.store)


# ---------------------------------------------------------------------- commands
def cmd_models(args: argparse.Namespace) -> None:
    data = _repo(args).models_summary()
    if args.json:
        return print_json(data)
    if not data:
        print("no models yet; train with modeltrack.start(...) or `modeltrack run -- python train.py`")
        return None
    rows = [
        [
            m["name"],
            m["versions"],
            f"v{m['latest']}" if m["latest"] else None,
            ", ".join(f"{a}=v{n}" for a, n in m["aliases"].items()),
            m["updated_at"],
        ]
        for m in data
    ]
    print(table(rows, ["MODEL", "VERSIONS", "LATEST", "ALIASES", "UPDATED"]))
    return None


def cmd_versions(args: argparse.Namespace) -> None:
    data = _repo(args).versions(args.name)
    if args.json:
        return print_json(data)
    names: list[str] = []
    for v in data:
        names += [k for k in v["metrics"] if k not in names]
    shown = names[:4]
    rows = []
    for v in data:
        tags = ", ".join(k if val is None else f"{k}={val}" for k, val in v["tags"].items())
        rows.append(
            [f"v{v['version']}", v["status"], (v["created_at"] or "")[:19], ", ".join(v["aliases"]), tags]
            + [v["metrics"].get(k) for k in shown]
        )
    print(table(rows, ["VERSION", "STATUS", "CREATED", "ALIASES", "TAGS", *shown]))
    return None


def cmd_show(args: argparse.Namespace) -> None:
    rec = _repo(args).version(args.ref)
    if args.json:
        return print_json(rec)
    print(
        f"{rec['model']}@v{rec['version']}  {rec['status']}  label {rec.get('label') or '-'}  framework {rec['framework'] or '-'}"
    )
    print(f"created {rec['created_at']}  finished {rec['finished_at'] or '-'}")
    if rec["aliases"]:
        print("aliases: " + ", ".join(rec["aliases"]))
    if rec["tags"]:
        print("tags: " + ", ".join(k if v is None else f"{k}={v}" for k, v in rec["tags"].items()))
    if rec.get("parent"):
        print(f"parent: {rec['parent']}")
    if rec["params"]:
        print("\nparams")
        print(table([[k, v] for k, v in rec["params"].items()], ["NAME", "VALUE"]))
    if rec["metrics"]:
        print("\nmetrics")
        rows = [
            [k, m["last"], m["best"], len(m["series"]), sparkline([p["value"] for p in m["series"]])]
            for k, m in rec["metrics"].items()
        ]
        print(table(rows, ["NAME", "LAST", "BEST", "POINTS", "CURVE"]))
    if rec["data"]:
        print("\ndata")
        print(
            table(
                [[d["name"], d.get("fingerprint"), d.get("shape"), d.get("dtype")] for d in rec["data"]],
                ["NAME", "FINGERPRINT", "SHAPE", "DTYPE"],
            )
        )
    if rec["artifacts"]:
        print("\nartifacts")
        print(
            table(
                [
                    [a["path"], a["kind"] + (" (best)" if a.get("best") else ""), a["size"], a["sha256"][:16]]
                    for a in rec["artifacts"]
                ],
                ["PATH", "KIND", "SIZE", "SHA256"],
            )
        )
    env = rec.get("environment") or {}
    if env:
        git = env.get("git") or {}
        print(
            f"\nenvironment: python {env.get('python')} on {env.get('platform')}, "
            f"{len(env.get('packages') or {})} packages, git {(git.get('commit') or '-')[:12]}"
            f"{' (dirty)' if git.get('dirty') else ''}"
        )
        print("command: " + " ".join(env.get("command") or []))
    if rec["notes"]:
        print("\nnotes:\n" + rec["notes"])
    if rec.get("error"):
        print("\nerror:\n" + rec["error"].rstrip())
    return None


def cmd_diff(args: argparse.Namespace) -> None:
    d = _repo(args).diff(args.a, args.b)
    if args.json:
        return print_json(d)
    print(f"{d['from']} -> {d['to']}")
    p = d["params"]
    rows = [[k, v["from"], v["to"]] for k, v in p["changed"].items()]
    rows += [[k, None, v] for k, v in p["added"].items()] + [[k, v, None] for k, v in p["removed"].items()]
    print("\nparams" + ("" if rows else ": unchanged"))
    if rows:
        print(table(rows, ["PARAM", "FROM", "TO"]))
    mrows = [[k, v["from"], v["to"], v["delta"]] for k, v in d["metrics"].items()]
    if mrows:
        print("\nmetrics (last values)")
        print(table(mrows, ["METRIC", "FROM", "TO", "DELTA"]))
    print("\ndata" + ("" if d["data"] else ": same fingerprints"))
    for k, v in d["data"].items():
        print(f"  {k}: {v['from']} -> {v['to']}")
    c = d["code"]
    print(
        f"\ncode: {'changed' if c['changed'] else 'unchanged'} (commit {fmt(c['commit']['from'])[:12]} -> {fmt(c['commit']['to'])[:12]})"
    )
    pk = d["packages"]
    n = len(pk["changed"]) + len(pk["added"]) + len(pk["removed"])
    print(
        f"packages: {n} changed"
        + "".join(f"\n  {k}: {v['from']} -> {v['to']}" for k, v in list(pk["changed"].items())[:20])
    )
    return None


def cmd_alias(args: argparse.Namespace) -> None:
    repo = _repo(args)
    if args.alias_cmd == "set":
        ev = repo.set_alias(args.ref, args.alias)
        model = parse_ref(args.ref).model
        if ev.get("noop"):
            print(f"{model}@{args.alias} already points at v{ev['to']}; nothing recorded")
        else:
            print(f"{model}@{args.alias} -> v{ev['to']}" + (f" (was v{ev['from']})" if ev["from"] else ""))
    elif args.alias_cmd == "rm":
        ev = repo.remove_alias(args.model, args.alias)
        print(f"removed {args.model}@{args.alias} (was v{ev['from']})")
    else:
        if args.alias is not None:
            check_alias_name(args.alias)
        hist = repo.alias_history(args.model, args.alias)
        if args.json:
            return print_json(hist)
        rows = [
            [
                e["seq"],
                e["time"][:19],
                e["alias"],
                e.get("action"),
                f"v{e['from']}" if e["from"] else None,
                f"v{e['to']}" if e["to"] else None,
                e.get("reason"),
            ]
            for e in hist
        ]
        print(table(rows, ["SEQ", "TIME", "ALIAS", "ACTION", "FROM", "TO", "REASON"]))
    return None


def cmd_promote(args: argparse.Namespace) -> None:
    repo = _repo(args)
    ev = repo.set_alias(
        args.ref,
        args.alias,
        action="promote",
        reason=args.reason,
        guard_metric=None if args.force else args.metric,
        goal=args.mode,
    )
    model = parse_ref(args.ref).model
    if ev.get("noop"):
        print(f"{model}@v{ev['to']} already holds {args.alias}; nothing recorded")
        return
    print(f"promoted {model}@v{ev['to']} to {args.alias}" + (f" (was v{ev['from']})" if ev["from"] else ""))


def cmd_rollback(args: argparse.Namespace) -> None:
    ev = _repo(args).rollback(args.model, args.alias)
    print(f"rolled back {args.model}@{args.alias}: v{ev['from']} -> v{ev['to']}")


def cmd_tag(args: argparse.Namespace) -> None:
    tags: dict[str, str | None] = {}
    for item in args.tags:
        key, sep, val = item.partition("=")
        tags[key] = val if sep else None
    now = _repo(args).set_tags(args.ref, tags, args.remove or ())
    print(", ".join(k if v is None else f"{k}={v}" for k, v in now.items()) or "(no tags)")


def read_text_file(path: str, option: str = "--file") -> str:
    """The UTF-8 text of ``path``, or a :class:`ModelTrackError` naming the problem and the fix."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ModelTrackError(f"{option} {path!r}: no such file; give the path of an existing text file") from None
    except IsADirectoryError:
        raise ModelTrackError(f"{option} {path!r} is a directory; give the path of a text file") from None
    except UnicodeDecodeError as exc:
        raise ModelTrackError(
            f"{option} {path!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            f"save it as UTF-8 or give the text on the command line"
        ) from None
    except OSError as exc:
        raise ModelTrackError(f"{option} {path!r}: cannot read it ({exc.strerror or exc}); check the path") from None


def cmd_notes(args: argparse.Namespace) -> None:
    given = [what for what, v in (("TEXT", args.text), ("--file", args.file), ("--clear", args.clear or None)) if v]
    if len(given) > 1:
        raise ModelTrackError(f"notes takes one of TEXT, --file or --clear, got {' and '.join(given)}; pick one")
    repo = _repo(args)
    if not given:
        model, n = repo.resolve(args.ref)
        print(repo.notes(model, n) or "")
        return
    text = None if args.clear else (read_text_file(args.file) if args.file is not None else args.text)
    repo.set_notes(args.ref, text)
    print("notes cleared" if text is None else "notes saved")


def cmd_artifacts(args: argparse.Namespace) -> None:
    rec = _repo(args).version(args.ref, series=False, environment=False)
    arts = rec["artifacts"]
    if args.json:
        return print_json(arts)
    print(
        table(
            [
                [a["path"], a["kind"] + (" (best)" if a.get("best") else ""), a["size"], a["sha256"], a.get("epoch")]
                for a in arts
            ],
            ["PATH", "KIND", "SIZE", "SHA256", "EPOCH"],
        )
    )
    return None


def cmd_get(args: argparse.Namespace) -> None:
    from .loading import artifact_file

    if args.output is not None and os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ModelTrackError(f"-o {args.output!r} is a file; give a directory to copy the artifact into")
    try:
        path = artifact_file(_repo(args), args.ref, path=args.path, kind=args.kind, dest=args.output)
    except OSError as exc:
        if args.output is None or not _is_under(exc.filename, args.output):
            raise
        raise ModelTrackError(
            f"cannot copy into -o {args.output!r} ({exc.strerror or exc}); give a directory you can write to"
        ) from None
    print(path)


def _is_under(filename: object, folder: str) -> bool:
    if not isinstance(filename, (str, os.PathLike)):
        return False
    file, top = os.path.abspath(filename), os.path.abspath(folder)
    return file == top or file.startswith(top.rstrip(os.sep) + os.sep)


def cmd_verify(args: argparse.Namespace) -> int:
    res = _repo(args).verify()
    if args.json:
        print_json(res)
    else:
        for p in res["problems"]:
            print(f"DAMAGED {p['key']}: {p['problem']}")
        print(
            f"{'ok' if res['ok'] else 'damaged'}: {res['artifacts_checked']} artifacts checked, {len(res['problems'])} problems"
        )
    return 0 if res["ok"] else 1


def cmd_gc(args: argparse.Namespace) -> None:
    if math.isnan(args.grace) or args.grace < 0:
        raise ModelTrackError(
            f"--grace must be a number of seconds >= 0, got {args.grace:g}; "
            f"0 deletes every unreferenced blob, the default 3600 keeps those of the last hour"
        )
    model = None
    nums: list[int] = []
    for ref in args.refs:
        r = parse_ref(ref)
        if r.version is None:
            raise ModelTrackError(f"gc takes explicit versions such as {r.model}@v3, got {ref!r}")
        if model not in (None, r.model):
            raise ModelTrackError("gc deletes versions of one model at a time; run it once per model")
        model = r.model
        nums.append(r.version)
    res = _repo(args).gc(model, nums, force=args.force, dry_run=args.dry_run, grace_seconds=args.grace)
    if args.json:
        return print_json(res)
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {len(res['deleted_versions'])} versions ({', '.join(res['deleted_versions']) or 'none'}), "
        f"{res['deleted_blobs']} unreferenced blobs, {res['freed_bytes']} bytes"
    )
    return None


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", default=argparse.SUPPRESS, help="store URI (default: $MODELTRACK_STORE or ./.modeltrack)"
    )
    jsonp = argparse.ArgumentParser(add_help=False)
    jsonp.add_argument("--json", action="store_true", help="print one JSON document")

    parser = argparse.ArgumentParser(prog="modeltrack", description="Versioned models for every training run.")
    parser.add_argument("--store", default=None, help="store URI (default: $MODELTRACK_STORE or ./.modeltrack)")
    parser.add_argument("--version", action="version", version=f"modeltrack {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(
        name: str, fn: Handler, help: str, parents: Sequence[argparse.ArgumentParser] = ()
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common, *parents])
        p.set_defaults(func=fn)
        return p

    add("models", cmd_models, "list models", [jsonp])
    p = add("versions", cmd_versions, "list the versions of a model", [jsonp])
    p.add_argument("name")
    p = add("show", cmd_show, "show one version (REF: NAME, NAME@v3, NAME@alias)", [jsonp])
    p.add_argument("ref")
    p = add("diff", cmd_diff, "what changed between two versions", [jsonp])
    p.add_argument("a")
    p.add_argument("b")
    p = add("alias", cmd_alias, "set, remove or list aliases")
    asub = p.add_subparsers(dest="alias_cmd", required=True)
    a = asub.add_parser("set", parents=[common], help="point ALIAS at REF")
    a.add_argument("ref")
    a.add_argument("alias")
    a = asub.add_parser("rm", parents=[common], help="remove ALIAS from MODEL")
    a.add_argument("model")
    a.add_argument("alias")
    a = asub.add_parser("history", parents=[common, jsonp], help="every move of MODEL's aliases")
    a.add_argument("model")
    a.add_argument("alias", nargs="?")
    p = add("promote", cmd_promote, "point an alias (default production) at REF, optionally guarded by a metric")
    p.add_argument("ref")
    p.add_argument("alias", nargs="?", default="production")
    p.add_argument("--metric", help="refuse unless REF is at least as good on this metric as the current holder")
    p.add_argument("--mode", choices=["min", "max"], help="whether lower or higher METRIC is better (default: guessed)")
    p.add_argument("--reason", help="why (kept in the alias history)")
    p.add_argument("--force", action="store_true", help="skip the metric guard")
    p = add("rollback", cmd_rollback, "point an alias back at its previous version")
    p.add_argument("model")
    p.add_argument("alias", nargs="?", default="production")
    p = add("tag", cmd_tag, "set tags (label or key=value) on a version")
    p.add_argument("ref")
    p.add_argument("tags", nargs="*")
    p.add_argument("--remove", action="append", metavar="KEY", help="remove a tag (repeatable)")
    p = add("notes", cmd_notes, "print or set the release notes of a version")
    p.add_argument("ref")
    p.add_argument("text", nargs="?")
    p.add_argument("--file", help="read the notes from a file")
    p.add_argument("--clear", action="store_true")
    p = add("artifacts", cmd_artifacts, "list the artifacts of a version", [jsonp])
    p.add_argument("ref")
    p = add("get", cmd_get, "copy an artifact of a version to a local file and print its path")
    p.add_argument("ref")
    p.add_argument("path", nargs="?", help="artifact path (default: the model file or best checkpoint)")
    p.add_argument("--kind")
    p.add_argument("-o", "--output", help="directory to copy into")
    p = add("verify", cmd_verify, "re-check every record and checksum; exit 1 on damage", [jsonp])
    p = add("gc", cmd_gc, "delete named versions and unreferenced blobs", [jsonp])
    p.add_argument("refs", nargs="*", metavar="NAME@vN")
    p.add_argument("--force", action="store_true", help="also delete versions holding an alias or running")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--grace", type=float, default=3600.0, help="keep unreferenced blobs younger than this many seconds")

    for module_name in EXTENSIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        module.add_commands(sub, common, jsonp)
    return parser


def _one_line(text: str) -> str:
    """An error message on one line (a multi-line message is joined with " | ")."""
    return " | ".join(line for line in text.splitlines() if line.strip()) if "\n" in text else text


def _version() -> str:
    from ._version import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if not hasattr(args, "store") or args.store is None:
        args.store = None
    try:
        rc = args.func(args)
    except ModelTrackError as exc:
        sys.stderr.write(f"modeltrack: error: {_one_line(str(exc))}\n")
        return 1
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a local file the command was given cannot be read or written
        where = f" {exc.filename!r}" if exc.filename else ""
        sys.stderr.write(
            f"modeltrack: error: cannot access{where}: {exc.strerror or exc}; check the path and its permissions\n"
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return int(rc or 0)
