"""The ``modeltrack`` command line. Every listing, ``show`` and ``diff`` take ``--json``.

Errors print one line (what, why, how to fix) and exit 1; usage errors exit 2; a promotion
refused by its guard (a worse metric, a version not finished) exits 3.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ModelTrackError, PromotionRefusedError
from .output import fmt, md_table, print_json, sparkline, table
from .refs import check_alias_name, parse_ref

#: modules that add more sub-commands: each has ``add_commands(subparsers, common)``
EXTENSIONS = ("modeltrack.runner", "modeltrack.sync", "modeltrack.ui.cli", "modeltrack.reproduce_cli")

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
    from .api import filter_versions

    data = filter_versions(_repo(args).versions(args.name), tag=args.tag, alias=args.alias, status=args.status)
    if args.json:
        return print_json(data)
    names: list[str] = []
    for v in data:
        names += [k for k in v["metrics"] if k not in names]
    if args.metrics is not None:
        shown = [m.strip() for m in args.metrics.split(",") if m.strip()]
        unknown = [m for m in shown if m not in names]
        if unknown:
            raise ModelTrackError(
                f"--metrics: {args.name} has no metric {', '.join(map(repr, unknown))}; its metrics: "
                f"{', '.join(names) or 'none'}"
            )
    else:
        shown = names  # every metric, under its full name; --metrics a,b picks and orders them
    rows = []
    for v in data:
        tags = ", ".join(k if val is None else f"{k}={val}" for k, val in v["tags"].items())
        rows.append(
            [f"v{v['version']}", v["status"], (v["created_at"] or "")[:19], ", ".join(v["aliases"]), tags]
            + [v["metrics"].get(k) for k in shown]
        )
    print(table(rows, ["VERSION", "STATUS", "CREATED", "ALIASES", "TAGS", *shown]))
    return None


def _by(actor: Any, time: Any) -> str:
    """`` (by ACTOR, TIME)``, or what of it is known."""
    parts = [f"by {actor}" if actor else "", str(time)[:19] if time else ""]
    shown = ", ".join(p for p in parts if p)
    return f" ({shown})" if shown else ""


def _source_line(src: dict[str, Any] | None) -> str | None:
    if not src:
        return None
    line = f"copied from {src.get('model')}@v{src.get('version')} in {src.get('store')}"
    if src.get("copied_at"):
        line += f" at {str(src['copied_at'])[:19]}"
    origin = src.get("origin")
    if isinstance(origin, dict) and origin:
        line += f"; first recorded as {origin.get('model')}@v{origin.get('version')} in {origin.get('store')}"
    return line


def cmd_show(args: argparse.Namespace) -> None:
    repo = _repo(args)
    rec = repo.version(args.ref)
    if args.json:
        return print_json(rec)
    if args.md:
        return print(_show_md(rec))
    print(
        f"{rec['model']}@v{rec['version']}  {rec['status']}  label {rec.get('label') or '-'}  framework {rec['framework'] or '-'}"
    )
    by = f" by {rec['actor']}" if rec.get("actor") else ""
    print(f"created {rec['created_at']}{by}  finished {rec['finished_at'] or '-'}")
    source = _source_line(rec.get("source"))
    if source:
        print(source)
    if rec["aliases"]:
        print("aliases: " + ", ".join(rec["aliases"]))
    if rec["tags"]:
        changes = repo.tag_history(rec["model"], rec["version"])
        last = changes[-1] if changes else {}
        print(
            "tags: "
            + ", ".join(k if v is None else f"{k}={v}" for k, v in rec["tags"].items())
            + (_by(last.get("actor"), last.get("time")).replace(" (", " (last change ", 1) if last else "")
        )
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
    if rec.get("evaluations"):
        print("\nevaluations")
        rows = [
            [e["name"], k, v, str(e.get("created_at") or "")[:19], e.get("actor") or "-", e.get("source") or "-"]
            for e in rec["evaluations"]
            for k, v in (e.get("metrics") or {}).items()
        ]
        print(table(rows, ["EVALUATION", "METRIC", "VALUE", "WHEN", "BY", "SOURCE"]))
    if rec["data"]:
        print("\ndata")
        print(
            table(
                [[d["name"], d.get("fingerprint"), _shape(d), d.get("dtype")] for d in rec["data"]],
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
        nrec = repo.notes_record(rec["model"], rec["version"]) or {}
        print(f"\nnotes{_by(nrec.get('actor'), nrec.get('time'))}:\n" + rec["notes"])
    if rec.get("error"):
        print("\nerror:\n" + rec["error"].rstrip())
    return None


def _shape(d: dict[str, Any]) -> Any:
    """A dataset's shape; for an (x, y) pair of arrays each one's: ``[48, 4] + [48, 1]``."""
    parts = d.get("parts")
    if isinstance(parts, list) and len(parts) > 1:
        return " + ".join(str(p) for p in parts)
    return d.get("shape")


def _show_md(rec: dict[str, Any]) -> str:
    """``show --md``: the version as Markdown, for a CI job summary."""
    out = [f"### {rec['model']}@v{rec['version']}", ""]
    facts = [
        ["status", rec["status"]],
        ["label", rec.get("label")],
        ["framework", rec.get("framework")],
        ["created", rec["created_at"]],
        ["finished", rec["finished_at"]],
        ["by", rec.get("actor")],
        ["aliases", ", ".join(rec["aliases"]) or None],
        ["tags", ", ".join(k if v is None else f"{k}={v}" for k, v in rec["tags"].items()) or None],
    ]
    if rec.get("parent"):
        facts.append(["parent", rec["parent"]])
    source = _source_line(rec.get("source"))
    if source:
        facts.append(["source", source])
    out.append(md_table(facts, ["field", "value"]))
    if rec["metrics"]:
        rows = [[k, m["last"], m["best"], m.get("goal"), len(m["series"])] for k, m in rec["metrics"].items()]
        out += ["", "**Metrics**", "", md_table(rows, ["metric", "last", "best", "goal", "points"])]
    if rec["params"]:
        out += ["", "**Params**", "", md_table([[k, v] for k, v in rec["params"].items()], ["param", "value"])]
    if rec["artifacts"]:
        rows = [[a["path"], a["kind"], a["size"], a["sha256"][:16]] for a in rec["artifacts"]]
        out += ["", "**Artifacts**", "", md_table(rows, ["path", "kind", "size", "sha256"])]
    return "\n".join(out)


def _param_rows(d: dict[str, Any]) -> list[list[Any]]:
    p = d["params"]
    rows = [[k, v["from"], v["to"]] for k, v in p["changed"].items()]
    return rows + [[k, None, v] for k, v in p["added"].items()] + [[k, v, None] for k, v in p["removed"].items()]


def _arch_lines(arch: dict[str, Any], limit: int = 20) -> list[str]:
    """What changed in the architecture: the fingerprints, then the layers only one side has."""
    if not arch.get("changed"):
        return []
    lines = [f"{fmt(arch.get('from'))[:16]} -> {fmt(arch.get('to'))[:16]}"]
    added, removed = list(arch.get("added") or []), list(arch.get("removed") or [])
    lines += [f"- {x}" for x in removed[:limit]] + [f"+ {x}" for x in added[:limit]]
    more = max(0, len(added) - limit) + max(0, len(removed) - limit)
    if more:
        lines.append(f"… {more} more (diff --json has them all)")
    return lines


def cmd_diff(args: argparse.Namespace) -> None:
    d = _repo(args).diff(args.a, args.b)
    if args.json:
        return print_json(d)
    if args.md:
        return print(_diff_md(d))
    print(f"{d['from']} -> {d['to']}")
    rows = _param_rows(d)
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
    arch = d.get("architecture") or {}
    lines = _arch_lines(arch)
    if lines:
        print("\narchitecture: changed " + lines[0] + "".join(f"\n  {x}" for x in lines[1:]))
    elif arch.get("from") or arch.get("to"):
        print(f"\narchitecture: unchanged ({fmt(arch.get('to'))[:16]})")
    fw = d.get("framework") or {}
    if fw.get("from") != fw.get("to"):
        print(f"framework: {fmt(fw.get('from'))} -> {fmt(fw.get('to'))}")
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


def _diff_md(d: dict[str, Any]) -> str:
    """``diff --md``: the diff as Markdown tables, for a CI job summary."""
    out = [f"### {d['from']} → {d['to']}", ""]
    mrows = [[k, v["from"], v["to"], v["delta"]] for k, v in d["metrics"].items()]
    if mrows:
        out += ["**Metrics** (last values)", "", md_table(mrows, ["metric", "from", "to", "delta"]), ""]
    rows = _param_rows(d)
    out += ["**Params**", "", md_table(rows, ["param", "from", "to"]) if rows else "unchanged", ""]
    other = [[k, v["from"], v["to"]] for k, v in d["data"].items()]
    arch = d.get("architecture") or {}
    if arch.get("changed"):
        other.append(["architecture", arch.get("from"), arch.get("to")])
    c = d["code"]
    if c["changed"]:
        other.append(["code (commit)", c["commit"]["from"], c["commit"]["to"]])
    pk = d["packages"]
    other += [[f"package {k}", v["from"], v["to"]] for k, v in pk["changed"].items()]
    other += [[f"package {k}", None, v] for k, v in pk["added"].items()]
    other += [[f"package {k}", v, None] for k, v in pk["removed"].items()]
    out += ["**Data, architecture, code, packages**", ""]
    out.append(md_table(other, ["what", "from", "to"]) if other else "unchanged")
    return "\n".join(out)


def _event_json(model: str, ev: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The ``--json`` result of ``promote``, ``rollback`` and ``alias set``/``rm``."""
    keys = ("alias", "from", "to", "action", "reason", "seq", "time", "actor")
    return {"model": model, **{k: ev.get(k) for k in keys}, "noop": bool(ev.get("noop")), **extra}


def cmd_alias(args: argparse.Namespace) -> None:
    repo = _repo(args)
    if args.alias_cmd == "set":
        ev = repo.set_alias(args.ref, args.alias)
        model = parse_ref(args.ref).model
        if args.json:
            return print_json(_event_json(model, ev))
        if ev.get("noop"):
            print(f"{model}@{args.alias} already points at v{ev['to']}; nothing recorded")
        else:
            print(f"{model}@{args.alias} -> v{ev['to']}" + (f" (was v{ev['from']})" if ev["from"] else ""))
    elif args.alias_cmd == "rm":
        ev = repo.remove_alias(args.model, args.alias)
        if args.json:
            return print_json(_event_json(args.model, ev))
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
                e.get("actor"),
                e.get("reason"),
            ]
            for e in hist
        ]
        print(table(rows, ["SEQ", "TIME", "ALIAS", "ACTION", "FROM", "TO", "BY", "REASON"]))
    return None


def _guard_text(guard: dict[str, Any] | None) -> str:
    """``; guard val_loss (last, min is better): v3 0.21 vs v2 0.25`` for human output."""
    if not guard:
        return ""
    cand, holder = guard["candidate"], guard.get("holder")
    against = f" vs v{holder['version']} {fmt(holder['value'])}" if holder else " (no holder to compare with)"
    return (
        f"; guard {guard['metric']} ({guard['compare']}, {guard['goal']} is better): "
        f"v{cand['version']} {fmt(cand['value'])}{against}"
    )


def cmd_promote(args: argparse.Namespace) -> int | None:
    from .api import promote

    model = parse_ref(args.ref).model
    if args.force and args.metric:
        sys.stderr.write(f"modeltrack: --force: promoting without the {args.metric} guard\n")
    try:
        ev = promote(
            args.ref,
            args.alias,
            metric=args.metric,
            mode=args.mode,
            compare=args.compare,
            reason=args.reason,
            force=args.force,
            store=args.store,
        )
    except PromotionRefusedError as exc:
        if args.json:
            holder = (exc.guard or {}).get("holder") or {}
            current = holder.get("version") if holder else _repo(args).aliases(model).get(args.alias)
            refused = {
                "alias": args.alias,
                "from": current,
                "to": _refused_version(exc),
                "action": "promote",
                "reason": args.reason,
            }
            print_json(
                _event_json(
                    model,
                    refused,
                    refused=True,
                    error=str(exc),
                    status=getattr(exc, "status", None),
                    guard=exc.guard,
                )
            )
        raise
    if args.json:
        print_json(_event_json(model, ev, refused=False, error=None, status=None, guard=ev.get("guard")))
        return None
    if ev.get("noop"):
        print(f"{model}@v{ev['to']} already holds {args.alias}; nothing recorded")
        return None
    print(
        f"promoted {model}@v{ev['to']} to {args.alias}"
        + (f" (was v{ev['from']})" if ev["from"] else "")
        + _guard_text(ev.get("guard"))
    )
    return None


def _refused_version(exc: Any) -> int | None:
    """The version number a refused promotion would have moved the alias to."""
    guard = getattr(exc, "guard", None)
    if guard:
        return int(guard["candidate"]["version"])
    ref = getattr(exc, "ref", None)
    return parse_ref(ref).version if isinstance(ref, str) else None


def cmd_rollback(args: argparse.Namespace) -> None:
    from .api import rollback

    ev = rollback(args.model, args.alias, to=args.to, store=args.store)
    if args.json:
        return print_json(_event_json(args.model, ev))
    if ev.get("noop"):
        print(f"{args.model}@{args.alias} is v{ev['to']} already; nothing recorded")
    else:
        print(f"rolled back {args.model}@{args.alias}: v{ev['from']} -> v{ev['to']}")
    return None


def cmd_tag(args: argparse.Namespace) -> None:
    repo = _repo(args)
    if args.history:
        if args.tags or args.remove:
            raise ModelTrackError("tag --history lists the changes; give no tags and no --remove with it")
        model, number = repo.resolve(args.ref)
        hist = repo.tag_history(model, number)
        if args.json:
            return print_json(hist)
        rows = [
            [
                (e["time"] or "")[:19],
                e["actor"],
                ", ".join(k if v is None else f"{k}={v}" for k, v in e["set"].items()),
                ", ".join(e["remove"]),
            ]
            for e in hist
        ]
        print(table(rows, ["TIME", "BY", "SET", "REMOVED"]))
        return None
    tags: dict[str, str | None] = {}
    for item in args.tags:
        key, sep, val = item.partition("=")
        tags[key] = val if sep else None
    now = repo.set_tags(args.ref, tags, args.remove or ())
    if args.json:
        return print_json(now)
    print(", ".join(k if v is None else f"{k}={v}" for k, v in now.items()) or "(no tags)")
    return None


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


def cmd_evaluate(args: argparse.Namespace) -> None:
    from . import evaluations

    metrics: dict[str, float] = {}
    for item in args.metrics:
        key, sep, value = item.partition("=")
        try:
            metrics[key] = float(value)
        except ValueError:
            raise ModelTrackError(f"{item!r} is not NAME=NUMBER; write e.g. accuracy=0.93") from None
        if not sep or not key:
            raise ModelTrackError(f"{item!r} is not NAME=NUMBER; write e.g. accuracy=0.93")
    repo = _repo(args)
    model, number = repo.resolve(args.ref)
    rec = evaluations.add(repo, model, number, evaluations.make_record(args.name, metrics, source=args.source or "cli"))
    if args.json:
        return print_json(rec)
    print(f"{model}@v{number}: evaluation {rec['name']!r} recorded ({len(metrics)} metrics)")
    return None


def cmd_notes(args: argparse.Namespace) -> None:
    given = [what for what, v in (("TEXT", args.text), ("--file", args.file), ("--clear", args.clear or None)) if v]
    if len(given) > 1:
        raise ModelTrackError(f"notes takes one of TEXT, --file or --clear, got {' and '.join(given)}; pick one")
    repo = _repo(args)
    if not given:
        model, n = repo.resolve(args.ref)
        rec = repo.notes_record(model, n)
        if args.json:
            print_json(rec)
            return
        print((rec or {}).get("text") or "")
        if rec and sys.stderr.isatty():  # who wrote them, where it cannot end up in a redirected file
            sys.stderr.write(f"(notes{_by(rec.get('actor'), rec.get('time'))})\n")
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
    from .loading import artifact_file, pick_artifact

    if args.output is not None and os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ModelTrackError(f"-o {args.output!r} is a file; give a directory to copy the artifact into")
    repo = _repo(args)
    dest = args.output
    if dest is None:
        # Without -o the user gets their own copy in the current directory, never a file the
        # store or its cache hands to `load` (appending to that would damage what others load).
        dest = "."
        record = repo.version(args.ref, series=False, environment=False)
        art = pick_artifact(record, args.path, args.kind)
        target = os.path.join(dest, os.path.basename(art["path"]))
        if os.path.lexists(target):
            from .stores.base import file_sha256

            if os.path.isfile(target) and not os.path.islink(target) and file_sha256(target)[0] == art["sha256"]:
                print(target)
                return
            raise ModelTrackError(
                f"{target} already exists here and is not this artifact; pass -o DIR to copy it elsewhere, or "
                f"move the existing file away"
            )
    try:
        path = artifact_file(repo, args.ref, path=args.path, kind=args.kind, dest=dest)
    except OSError as exc:
        if not _is_under(exc.filename, dest):
            raise
        raise ModelTrackError(
            f"cannot copy into {'-o ' if args.output else 'the current directory '}{dest!r} "
            f"({exc.strerror or exc}); give a directory you can write to with -o DIR"
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
        f"{res['deleted_blobs']} unreferenced blobs"
        + (
            f", {res['removed_temporaries']} temporary files of killed writers"
            if res.get("removed_temporaries")
            else ""
        )
        + f", {res['freed_bytes']} bytes"
    )
    kept = res.get("kept_recent_blobs") or 0
    if kept:
        grace = res.get("grace_seconds") or 0
        why = " (at least 15 min while a version runs)" if grace > args.grace else ""
        print(
            f"kept {kept} unreferenced blobs younger than the grace period of {grace:g} s{why}: a running version "
            f"may be about to use them; `--grace 0` frees them now, when nothing is training"
        )
    return None


def cmd_completion(args: argparse.Namespace) -> None:
    """The completion script shtab generates from this very parser (every sub-command and
    option, extensions included), so it never drifts from the commands."""
    try:
        import shtab
    except ImportError:
        raise ModelTrackError(
            "shell completion needs the shtab package, which is not installed; `pip install shtab`"
        ) from None
    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    sys.stdout.write("\n")


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", default=argparse.SUPPRESS, help="store URI (default: $MODELTRACK_STORE or ./.modeltrack)"
    )
    jsonp = argparse.ArgumentParser(add_help=False)
    jsonp.add_argument("--json", action="store_true", help="print one JSON document")
    mdp = argparse.ArgumentParser(add_help=False)
    mdp.add_argument("--md", action="store_true", help="print Markdown tables (for a CI job summary)")

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
    p.add_argument("--metrics", metavar="A,B", help="metric columns to show, in this order (default: every metric)")
    p.add_argument("--status", help="only versions of this status (finished, failed, running, crashed)")
    p.add_argument("--tag", action="append", metavar="KEY[=VALUE]", help="only versions with this tag (repeatable)")
    p.add_argument("--alias", help="only the version holding this alias")
    p = add("show", cmd_show, "show one version (REF: NAME, NAME@v3, NAME@alias, NAME@latest)", [jsonp, mdp])
    p.add_argument("ref")
    p = add("diff", cmd_diff, "what changed between two versions", [jsonp, mdp])
    p.add_argument("a")
    p.add_argument("b")
    p = add("alias", cmd_alias, "set, remove or list aliases")
    asub = p.add_subparsers(dest="alias_cmd", required=True)
    a = asub.add_parser("set", parents=[common, jsonp], help="point ALIAS at REF")
    a.add_argument("ref")
    a.add_argument("alias")
    a = asub.add_parser("rm", parents=[common, jsonp], help="remove ALIAS from MODEL")
    a.add_argument("model")
    a.add_argument("alias")
    a = asub.add_parser("history", parents=[common, jsonp], help="every move of MODEL's aliases")
    a.add_argument("model")
    a.add_argument("alias", nargs="?")
    p = add(
        "promote",
        cmd_promote,
        "point an alias (default production) at a finished REF, optionally guarded by a metric; "
        "exit 0 done, 3 refused, 1 error",
        [jsonp],
    )
    p.add_argument("ref")
    p.add_argument("alias", nargs="?", default="production")
    p.add_argument("--metric", help="refuse unless REF is at least as good on this metric as the current holder")
    p.add_argument(
        "--mode", choices=["min", "max"], help="whether lower or higher METRIC is better (default: as recorded/guessed)"
    )
    p.add_argument("--compare", choices=["last", "best"], default="last", help="which value of each version to compare")
    p.add_argument("--reason", help="why (kept in the alias history)")
    p.add_argument("--force", action="store_true", help="promote even a version not finished; skip the metric guard")
    p = add("rollback", cmd_rollback, "point an alias back at the holder before the current one", [jsonp])
    p.add_argument("model")
    p.add_argument("alias", nargs="?", default="production")
    p.add_argument("--to", metavar="vN", help="go back to this past holder instead")
    p = add("tag", cmd_tag, "set tags (label or key=value) on a version, or list its changes", [jsonp])
    p.add_argument("ref")
    p.add_argument("tags", nargs="*")
    p.add_argument("--remove", action="append", metavar="KEY", help="remove a tag (repeatable)")
    p.add_argument("--history", action="store_true", help="list every tag change of the version and who made it")
    p = add("notes", cmd_notes, "print or set the release notes of a version", [jsonp])
    p.add_argument("ref")
    p.add_argument("text", nargs="?")
    p.add_argument("--file", help="read the notes from a file")
    p.add_argument("--clear", action="store_true")
    p = add("evaluate", cmd_evaluate, "record metrics computed on a version after training (an evaluation)", [jsonp])
    p.add_argument("ref")
    p.add_argument("metrics", nargs="+", metavar="NAME=VALUE", help="metric values, e.g. accuracy=0.93")
    p.add_argument("--name", default="eval", help="what was evaluated: test, holdout, nightly (default: eval)")
    p.add_argument("--source", help="what computed it (default: cli)")
    p = add("artifacts", cmd_artifacts, "list the artifacts of a version", [jsonp])
    p.add_argument("ref")
    p = add("get", cmd_get, "copy an artifact of a version to a local file and print its path")
    p.add_argument("ref")
    p.add_argument("path", nargs="?", help="artifact path (default: the model file or best checkpoint)")
    p.add_argument("--kind")
    p.add_argument("-o", "--output", help="directory to copy into (default: the current directory)")
    p = add("verify", cmd_verify, "re-check every record and checksum; exit 1 on damage", [jsonp])
    p = add("gc", cmd_gc, "delete named versions and unreferenced blobs", [jsonp])
    p.add_argument("refs", nargs="*", metavar="NAME@vN")
    p.add_argument("--force", action="store_true", help="also delete versions holding an alias or running")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--grace", type=float, default=3600.0, help="keep unreferenced blobs younger than this many seconds")
    p = add("completion", cmd_completion, "print a shell completion script (bash or zsh)")
    p.add_argument("shell", choices=["bash", "zsh"])

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
    except PromotionRefusedError as exc:  # refused by a guard: CI tells this from an error
        sys.stderr.write(f"modeltrack: {_one_line(str(exc))}\n")  # the message starts "refused to …"
        return 3
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
