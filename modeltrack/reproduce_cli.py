"""``modeltrack reproduce REF``: rebuild a version's code and environment, re-run it tracked
like ``modeltrack run``, and say whether the re-run matches (exit 0), differs (exit 4), or
could not be done (exit 1). The steps are in :mod:`modeltrack.reproduce`; this face runs
them, shows progress on stderr and prints the plan and the report.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import reproduce as rp
from .output import print_json, table

#: exit status when the re-run differs from the original
EXIT_DIFFERS = 4


def add_commands(sub: Any, common: argparse.ArgumentParser, jsonp: argparse.ArgumentParser) -> None:
    """Add ``reproduce`` to the CLI (see :data:`modeltrack.cli.EXTENSIONS`)."""
    p = sub.add_parser(
        "reproduce",
        parents=[common, jsonp],
        help="rebuild a version's code and environment, re-run it and compare",
        description="Rebuild the code (recorded commit + diff, or the code snapshot) and the environment of a "
        "version, re-run its command as a new version of the same model, and compare params, data, code, "
        "packages and metrics. Exit 0: everything matches; 4: the re-run differs; 1: error. "
        "Example: modeltrack reproduce churn@v2 --reuse-env",
    )
    p.add_argument("ref", help="the version to reproduce, e.g. churn@v2 or churn@production")
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--dir", help="where to rebuild the code and environment (default: a temporary directory)")
    p.add_argument(
        "--reuse-env",
        action="store_true",
        help="run in this interpreter instead of a fresh virtual environment (lists the packages that differ)",
    )
    p.add_argument(
        "--constraint",
        action="append",
        default=[],
        metavar="FILE",
        help="a pip constraints file for the fresh environment (repeatable)",
    )
    p.add_argument(
        "--rtol", type=float, default=0.0, help="relative tolerance for metric values (default 0: bit-identical)"
    )
    p.set_defaults(func=cmd_reproduce)


def _say(msg: str) -> None:
    sys.stderr.write(f"modeltrack reproduce: {msg}\n")
    sys.stderr.flush()


def plan_text(p: Mapping[str, Any]) -> str:
    """The plan as ``--dry-run`` prints it."""
    code, env, cmd = p["code"], p["environment"], p["command"]
    lines = [f"plan to reproduce {p['ref']} ({p['status']})"]
    if code["source"] is None:
        lines.append("  code:        unknown")
    else:
        parts = []
        if code["commit"]:
            parts.append(f"commit {code['commit'][:12]} of {code['repository'] or code['root']}")
            if code["diff"]:
                parts.append("the recorded uncommitted changes")
        if code["snapshot"]:
            parts.append(f"{len(code['snapshot'])} snapshot file(s)")
        lines.append("  code:        " + " + ".join(parts))
    py = env.get("python") or {}
    if env["mode"] == "reuse":
        lines.append(f"  environment: this interpreter (python {py.get('using')}, --reuse-env)")
        for d in env["differs"]:
            lines.append(f"    differs: {d['name']} recorded {d['recorded'] or '-'}, here {d['current'] or '-'}")
        if not env["differs"]:
            lines.append("    every recorded package has its recorded version here")
    else:
        lines.append(
            f"  environment: fresh venv, python {py.get('using')} (recorded {py.get('recorded')}), "
            f"{len(env['install'])} package(s) to install, {env['constraints']} recorded version(s) as constraints"
        )
        if env["install"]:
            lines.append("    install: " + ", ".join(i["spec"] for i in env["install"]))
    if py.get("note"):
        lines.append(f"    note: {py['note']}")
    lines.append(f"  command:     {' '.join(cmd['argv'][1:]) or '-'}  (from {cmd['cwd'] or 'the code root'})")
    if cmd["env"]:
        lines.append("  variables:   " + " ".join(f"{k}={v}" for k, v in cmd["env"].items()))
    if p["seeds"]:
        lines.append("  seeds:       " + ", ".join(f"{k}={v}" for k, v in p["seeds"].items()))
    if p["data"]:
        lines.append(
            "  data:        " + ", ".join(d["name"] for d in p["data"]) + " (fingerprints checked after the run)"
        )
    for prob in p["problems"]:
        lines.append(f"  {'cannot reproduce' if prob['blocking'] else 'note'}: {prob['what']}: {prob['reason']}")
    return "\n".join(lines)


def _value(v: Any) -> str:
    return "-" if v is None else repr(v)


def report_text(r: Mapping[str, Any]) -> str:
    """The report as ``reproduce`` prints it."""
    lines = [f"reproduced {r['original']} as {r['rerun']}: {rp.result_text(r)}"]
    code = r["code"]
    co = code["original"]
    what = f"commit {co['commit'][:12]}" if co["commit"] else "code snapshot"
    if co["diff_sha256"]:
        what += " + diff"
    if co["commit"] and co["snapshot"]:
        what += f" + {len(co['snapshot'])} snapshot file(s)"
    lines.append(f"code:      {'same' if code['same'] else 'changed'} ({what})")
    par = r["params"]
    if par["same"]:
        lines.append(f"params:    same ({par['count']})")
    else:
        bits = [f"{k} {v['from']!r} -> {v['to']!r}" for k, v in par["changed"].items()]
        bits += [f"+{k}" for k in par["added"]] + [f"-{k}" for k in par["removed"]]
        lines.append("params:    differ: " + ", ".join(bits))
    data = r["data"]
    if data["same"]:
        lines.append("data:      same" + (f": {', '.join(data['names'])}" if data["names"] else " (none recorded)"))
    else:
        if data["changed"]:
            lines.append(f"data changed: {', '.join(data['changed'])}")
        if data["missing"]:
            lines.append(f"data missing from the re-run: {', '.join(data['missing'])}")
        if data["added"]:
            lines.append(f"data new in the re-run: {', '.join(data['added'])}")
    pk = r["packages"]
    if pk["same"]:
        lines.append(f"packages:  same ({pk['count']} imported)")
    else:
        lines.append(
            "packages:  differ: "
            + ", ".join(f"{d['name']} {d['recorded']} -> {d['rerun'] or '-'}" for d in pk["differ"])
        )
    if r["status"] != "finished":
        lines.append(f"status:    the re-run is {r['status']}")
    if r["metrics"]:
        rows = []
        for name, m in r["metrics"].items():
            for field in ("last", "best"):
                f = m[field]
                rows.append(
                    [name, field, _value(f["original"]), _value(f["rerun"]), "same" if f["same"] else "DIFFERS"]
                )
        tol = "exact" if r["rtol"] == 0 else f"rtol {r['rtol']:g}"
        lines.append(f"metrics ({tol}):")
        lines.append(table(rows, ["METRIC", "VALUE", "ORIGINAL", "RE-RUN", ""]))
    return "\n".join(lines)


def reproduce(
    ref: str,
    *,
    store: str | None = None,
    directory: str | None = None,
    reuse_env: bool = False,
    constraints: list[str] | None = None,
    rtol: float = 0.0,
    say: Any = _say,
) -> dict[str, Any]:
    """Reproduce ``ref``: returns ``{"plan", "report", "exit_code", "rerun_exit_code",
    "seconds"}``. Raises :class:`~modeltrack.reproduce.ReproduceError` when it cannot."""
    from . import runner
    from .repo import Repo

    t0 = time.monotonic()
    uri = runner._absolute_store(store)
    repo = Repo(uri)
    p = rp.plan(repo, ref, reuse_env=reuse_env)
    rp.check(p)
    for c in constraints or ():
        if not Path(c).is_file():
            raise rp.ReproduceError(f"--constraint {c!r}: no such file; give the path of a pip constraints file")
    if rtol < 0 or rtol != rtol:
        raise rp.ReproduceError(f"--rtol {rtol}: give a tolerance >= 0 (0: bit-identical)")
    temp = directory is None
    base = Path(tempfile.mkdtemp(prefix="modeltrack-reproduce-")) if temp else Path(directory).resolve()  # type: ignore[arg-type]
    if not temp and base.exists() and any(base.iterdir()):
        raise rp.ReproduceError(f"--dir {directory}: the directory is not empty; give a new or empty directory")
    try:
        say(f"step 1/4: rebuilding the code in {base / 'code'}")
        code_dir = rp.prepare_code(repo, p, base / "code", say)
        if reuse_env:
            python = sys.executable
            differs = p["environment"]["differs"]
            say(
                f"step 2/4: using this interpreter ({python}); "
                + (f"{len(differs)} package(s) differ from the record:" if differs else "every package as recorded")
            )
            for d in differs:
                say(f"  {d['name']}: recorded {d['recorded'] or '-'}, here {d['current'] or '-'}")
        else:
            say("step 2/4: building a fresh environment (this can take minutes)")
            python = rp.build_env(p, base / "env", code_dir, constraints=constraints or [], say=say)
        argv, cwd = rp.run_argv(p, python, code_dir)
        environ = rp.child_environ(p, uri)
        if rp.autologged(p):
            environ = runner.child_env(None, uri, base=environ)
        say(f"step 3/4: running {' '.join(argv[1:])} in {cwd}")
        rc, versions = runner.run(argv, store=uri, cwd=cwd, env=environ)
        mine = [v for v in versions if v["model"] == p["model"]]
        if not mine:
            raise rp.ReproduceError(
                f"the re-run exited with {rc} and recorded no version of {p['model']}; see its output above"
            )
        new_ref = mine[-1]["ref"]
        say(f"step 4/4: comparing {p['ref']} with {new_ref}")
        report = rp.compare(repo.version(p["ref"], series=False), repo.version(new_ref, series=False), rtol=rtol)
        rp.record_result(repo, report)
    finally:
        if temp:
            shutil.rmtree(base, ignore_errors=True)
    code = 0 if report["result"] == "match" and rc == 0 else EXIT_DIFFERS
    return {
        "plan": rp.public(p),
        "report": report,
        "exit_code": code,
        "rerun_exit_code": rc,
        "seconds": round(time.monotonic() - t0, 3),
    }


def _finite(obj: Any) -> Any:
    """``obj`` with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.dry_run:
        from .repo import Repo
        from .runner import _absolute_store

        p = rp.plan(Repo(_absolute_store(args.store)), args.ref, reuse_env=args.reuse_env)
        if args.json:
            print_json(_finite(rp.public(p)))
        else:
            print(plan_text(p))
        return 0 if p["ok"] else 1
    out = reproduce(
        args.ref,
        store=args.store,
        directory=args.dir,
        reuse_env=args.reuse_env,
        constraints=args.constraint,
        rtol=args.rtol,
    )
    if args.json:
        print_json(_finite(out))
    else:
        print(report_text(out["report"]))
    return int(out["exit_code"])


__all__ = ["EXIT_DIFFERS", "add_commands", "cmd_reproduce", "plan_text", "report_text", "reproduce"]
