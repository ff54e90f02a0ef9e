"""``modeltrack run [--model NAME] [--store URI] -- python train.py ARGS``.

Runs an unmodified script with autologging on: the child gets ``MODELTRACK_AUTOLOG=1``
(plus ``MODELTRACK_MODEL`` and ``MODELTRACK_STORE``), and :mod:`modeltrack._boot` on its
``PYTHONPATH``, whose ``sitecustomize`` calls
:func:`modeltrack.autologging.autolog_from_env` at start-up (the installed
``modeltrack_autolog.pth`` does the same for any process with ``MODELTRACK_AUTOLOG=1``).
When the child ends, the versions it produced (the store's versions before and after) are
printed on stderr, and the child's exit status is returned.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ModelTrackError

BOOT_DIR = Path(__file__).resolve().parent / "_boot"
#: names of an interpreter that ``run`` replaces by the one modeltrack runs in
PYTHON_NAMES = ("python", "python3", f"python3.{sys.version_info.minor}")


def add_commands(sub: Any, common: argparse.ArgumentParser, jsonp: argparse.ArgumentParser) -> None:
    """Add ``run`` to the CLI (see :data:`modeltrack.cli.EXTENSIONS`)."""
    p = sub.add_parser(
        "run",
        parents=[common, jsonp],
        help="run a training script with autologging on",
        description="Run an unmodified training script with autologging on, then print the versions it produced. "
        "Example: modeltrack run --model churn -- python train.py --epochs 3",
    )
    p.add_argument("--model", help="model name for the versions (default: the script's name)")
    p.add_argument(
        "cmd",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND",
        help="the command to run, e.g. `python train.py ARGS` (a leading `python` means this interpreter)",
    )
    p.set_defaults(func=cmd_run)


def child_command(cmd: Sequence[str]) -> list[str]:
    """The command to run: ``python``/``python3`` become this interpreter (so that the child
    sees the installed modeltrack), and a bare ``script.py`` is run with it."""
    cmd = list(cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ModelTrackError("modeltrack run needs a command, e.g. `modeltrack run -- python train.py`")
    if cmd[0] in PYTHON_NAMES:
        cmd[0] = sys.executable
    elif cmd[0].endswith(".py") and not os.access(cmd[0], os.X_OK):
        cmd.insert(0, sys.executable)
    elif shutil.which(cmd[0]) is None and not os.path.exists(cmd[0]):
        raise ModelTrackError(f"modeltrack run: command {cmd[0]!r} not found; give a path or a program on PATH")
    return cmd


def child_env(model: str | None, store: str | None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: autologging on, model and store named, the bootstrap
    directory first on ``PYTHONPATH``."""
    env = dict(os.environ if base is None else base)
    env["MODELTRACK_AUTOLOG"] = "1"
    if model:
        env["MODELTRACK_MODEL"] = model
    if store:
        env["MODELTRACK_STORE"] = store
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != BOOT_DIR]
    env["PYTHONPATH"] = os.pathsep.join([str(BOOT_DIR), *paths])
    return env


def _absolute_store(store: str | None) -> str:
    from . import config

    uri = store or config.store_uri()
    if "://" in uri:
        return uri
    # The child may chdir: give it (and the before/after listing) one absolute directory.
    return str(Path(uri).expanduser().resolve())


def _snapshot(store: str) -> dict[str, int]:
    from .repo import Repo

    try:
        return {m["name"]: int(m.get("latest") or 0) for m in _all_models(Repo(store))}
    except ModelTrackError:
        return {}


def _all_models(repo: Any) -> list[dict[str, Any]]:
    try:
        return list(repo.models_summary())
    except ModelTrackError:
        return []


def new_versions(store: str, before: Mapping[str, int]) -> list[dict[str, Any]]:
    """Versions that appeared in ``store`` since ``before`` (``{model: highest number}``)."""
    from .repo import Repo

    repo = Repo(store)
    out = []
    for m in _all_models(repo):
        if int(m.get("latest") or 0) <= before.get(m["name"], 0) and m["name"] in before:
            continue
        try:
            listed = repo.versions(m["name"])
        except ModelTrackError:
            continue
        for v in listed:
            if v["version"] > before.get(m["name"], 0):
                out.append({"model": m["name"], "ref": f"{m['name']}@v{v['version']}", **v})
    return out


def run(
    cmd: Sequence[str],
    *,
    model: str | None = None,
    store: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Run ``cmd`` with autologging on; returns its exit status and the new versions.

    ``cwd``: the child's working directory; ``env``: its whole environment instead of
    :func:`child_env` (``modeltrack reproduce`` restores a recorded one). A child killed by
    a signal gives ``128 + signal`` (as shells do).
    """
    argv = child_command(cmd)
    uri = _absolute_store(store)
    before = _snapshot(uri)
    env = dict(env) if env is not None else child_env(model, uri)
    # Ctrl-C reaches the child (same process group): let it end and record what it did.
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        try:
            proc = subprocess.Popen(argv, env=env, cwd=cwd)
        except OSError as exc:
            raise ModelTrackError(f"modeltrack run: cannot start {argv[0]!r}: {exc}") from exc
        rc = proc.wait()
    finally:
        signal.signal(signal.SIGINT, old)
    if rc < 0:
        rc = 128 - rc
    return rc, new_versions(uri, before)


def cmd_run(args: argparse.Namespace) -> int:
    rc, versions = run(args.cmd, model=args.model, store=args.store)
    if args.json:
        import json

        sys.stdout.write(json.dumps({"exit_code": rc, "versions": versions}, default=str) + "\n")
        return rc
    err = sys.stderr
    if not versions:
        err.write(f"modeltrack: the command exited with {rc} and recorded no version\n")
        return rc
    err.write(f"modeltrack: {len(versions)} version{'s' if len(versions) != 1 else ''} recorded (exit status {rc}):\n")
    for v in versions:
        shown = ", ".join(
            f"{k}={v['metrics'][k]:.4g}" for k in list(v["metrics"])[:4] if isinstance(v["metrics"][k], (int, float))
        )
        err.write(f"  {v['ref']:<30} {v['status']:<9} {shown}\n")
    err.write(f"  see: modeltrack show {versions[-1]['ref']}\n")
    return rc


__all__ = ["BOOT_DIR", "add_commands", "child_command", "child_env", "cmd_run", "new_versions", "run"]
