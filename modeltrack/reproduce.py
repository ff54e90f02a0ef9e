"""Reproducing a version: plan, rebuild its code and environment, compare the re-run.

The steps of ``modeltrack reproduce REF`` that need no face (the command line in
:mod:`modeltrack.reproduce_cli` runs the re-run itself, tracked like ``modeltrack run``):

1. :func:`plan`: from the version's record alone, where the code comes from (the recorded
   commit in a local repository plus the recorded diff, and/or the code snapshot), which
   interpreter and packages, the command, its working directory, the allow-listed
   environment variables and seeds, the data to check, and what cannot be reproduced and
   why (``problems``; a blocking one stops the re-run);
2. :func:`prepare_code`: a fresh clone at the commit with the diff applied, and the snapshot
   unpacked, in a directory of its own: the user's working tree is never touched;
3. :func:`build_env`: a fresh virtual environment (the recorded interpreter version when one
   is on ``PATH``), this modeltrack copied in, the packages the run imported installed at
   their recorded versions with every recorded version as a constraint (pip, or ``uv``
   when present; the user's pip configuration applies);
4. :func:`child_environ` and :func:`run_argv`: the re-run's environment and command;
5. :func:`compare`: params, data fingerprints, code, packages and each metric's last and
   best value, original against re-run, within ``rtol``; :func:`record_result` tags the
   re-run (``reproduces``, ``reproduction``).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .blobs import fetch_verified
from .capture.code import REPRODUCES_VAR
from .capture.env import ENV_ALLOWLIST, packages
from .errors import ModelTrackError
from .repo import Repo

Say = Callable[[str], None]

#: never installed from the record: modeltrack itself is copied in (it does the tracking)
NOT_INSTALLED = frozenset({"modeltrack", "pip"})
#: the tags a re-run gets
TAG_REPRODUCES, TAG_RESULT = "reproduces", "reproduction"


class ReproduceError(ModelTrackError):
    """A version cannot be reproduced (the plan names why), or a step of the re-run failed."""


def _quiet(_: str) -> None:
    pass


def _git(args: Sequence[str], cwd: str | Path, *, check: bool = False) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"},
    )
    if check and res.returncode != 0:
        raise ReproduceError(f"git {' '.join(args[:2])} failed in {cwd}: {res.stderr.strip()[:300]}")
    return res


def _has_commit(path: str | Path | None, commit: str) -> bool:
    if not path or not Path(path).is_dir():
        return False
    try:
        return _git(["cat-file", "-e", f"{commit}^{{commit}}"], path).returncode == 0
    except OSError:
        return False


def _toplevel(cwd: str | Path) -> str | None:
    try:
        res = _git(["rev-parse", "--show-toplevel"], cwd)
    except OSError:
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _problem(problems: list[dict[str, Any]], what: str, reason: str, *, blocking: bool = True) -> None:
    problems.append({"what": what, "reason": reason, "blocking": blocking})


def _python_version(exe: str) -> str | None:
    if os.path.realpath(exe) == os.path.realpath(sys.executable):
        import platform

        return platform.python_version()
    try:
        res = subprocess.run(
            [exe, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def find_python(recorded: str | None) -> dict[str, Any]:
    """The interpreter for a fresh environment: ``{"recorded", "using", "executable",
    "note"}``: this one when its version is the recorded one, else a ``pythonX.Y`` on
    ``PATH`` of the recorded version (exact, then same minor), else this one with a note."""
    import platform

    here = platform.python_version()
    out = {"recorded": recorded, "using": here, "executable": sys.executable, "note": None}
    if not recorded or recorded == here:
        if not recorded:
            out["note"] = f"no interpreter version recorded; using python {here}"
        return out
    major_minor = ".".join(recorded.split(".")[:2])
    seen: dict[str, str] = {}
    for name in (f"python{major_minor}", "python3", "python"):
        exe = shutil.which(name)
        if exe and exe not in seen:
            version = _python_version(exe)
            if version:
                seen[exe] = version
    exact = [e for e, v in seen.items() if v == recorded]
    minor = [e for e, v in seen.items() if ".".join(v.split(".")[:2]) == major_minor]
    if exact:
        out.update(using=recorded, executable=exact[0])
    elif minor:
        out.update(using=seen[minor[0]], executable=minor[0])
        out["note"] = f"python {recorded} is not on PATH; using python {seen[minor[0]]} (same minor version)"
    elif ".".join(here.split(".")[:2]) == major_minor:
        out["note"] = f"python {recorded} is not on PATH; using python {here} (same minor version)"
    else:
        out["note"] = f"python {major_minor} is not on PATH; using python {here}: results may differ"
    return out


def _file_path(url: str) -> Path | None:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def _requirements(
    env: Mapping[str, Any], code_root: str | None, problems: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    """What a fresh environment installs (``[{"name", "version", "source", "spec",
    "in_code"}]``) and the constraint lines (every recorded index version)."""
    recorded: dict[str, str] = env.get("packages") or {}
    sources: dict[str, dict[str, Any]] = env.get("package_sources") or {}
    wanted = env.get("packages_imported")
    if wanted is None:
        wanted = sorted(recorded)  # a record from before imports were captured: all of them
    install: list[dict[str, Any]] = []
    for name in wanted:
        if name in NOT_INSTALLED or name not in recorded:
            continue
        version = recorded[name]
        src = sources.get(name)
        item: dict[str, Any] = {"name": name, "version": version, "source": (src or {}).get("kind", "index")}
        if src is None:
            item["spec"] = f"{name}=={version}"
        elif src.get("kind") == "vcs" and src.get("url") and "***" not in src["url"]:
            item["spec"] = f"{name} @ {src.get('vcs') or 'git'}+{src['url']}@{src.get('commit') or ''}".rstrip("@")
        elif src.get("kind") in ("editable", "local") and src.get("url"):
            path = _file_path(src["url"])
            if path is not None and code_root and _inside(path, Path(code_root)):
                item["spec"] = path.relative_to(code_root).as_posix()
                item["in_code"] = True  # installed from the rebuilt code
            elif path is not None and path.exists():
                item["spec"] = str(path)
            else:
                _problem(
                    problems,
                    f"package {name} {version}",
                    f"it was installed from the local path {path or src['url']}, which is gone; "
                    f"restore it or use --reuse-env in an environment that has it",
                )
                continue
            item["editable"] = src.get("kind") == "editable"
        elif src.get("kind") == "url" and src.get("url") and "***" not in src["url"]:
            item["spec"] = f"{name} @ {src['url']}"
        else:
            _problem(
                problems,
                f"package {name} {version}",
                "where it was installed from is not known (or its URL held a credential); "
                "use --reuse-env in an environment that has it",
            )
            continue
        install.append(item)
    constraints = [f"{n}=={v}" for n, v in sorted(recorded.items()) if n not in sources and n not in NOT_INSTALLED]
    return install, constraints


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def package_differences(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[dict[str, Any]]:
    """``[{"name", "recorded", "current"}]`` for every package whose version differs (None:
    not installed)."""
    out = []
    for name in sorted(set(recorded) | set(current)):
        if name in NOT_INSTALLED:
            continue
        a, b = recorded.get(name), current.get(name)
        if a != b:
            out.append({"name": name, "recorded": a, "current": b})
    return out


def plan(repo: Repo, ref: str, *, reuse_env: bool = False, cwd: str | None = None) -> dict[str, Any]:
    """What reproducing ``ref`` takes, from its record (see docs/json.md for the shape).

    Never raises for a version that cannot be reproduced: ``problems`` says why, and
    ``ok`` is False when one of them blocks the re-run.
    """
    model, number = repo.resolve(ref)
    rec = repo.version((model, number), series=False)
    env: dict[str, Any] = rec.get("environment") or {}
    problems: list[dict[str, Any]] = []
    if not env:
        _problem(
            problems,
            "environment",
            "the version has no environment record (it is written in the background at start; "
            "the run may have ended first), so its code and command are unknown",
        )
    git = env.get("git") or {}
    code = env.get("code") or {}
    snapshot = sorted(
        (a for a in rec.get("artifacts", []) if a.get("kind") == "code" and a["path"].startswith("code/")),
        key=lambda a: a["path"],
    )
    commit = git.get("commit")
    root = code.get("root") or git.get("root")
    repository = None
    if commit:
        candidates = [git.get("root"), _toplevel(cwd or os.getcwd())]
        repository = next((c for c in candidates if _has_commit(c, commit)), None)
        if repository is None:
            where = " or ".join(dict.fromkeys(str(c) for c in candidates if c)) or "no repository"
            remote = f" (`git fetch {git['remote']}`)" if git.get("remote") else ""
            _problem(
                problems,
                f"commit {commit[:12]}",
                f"the commit is not in the repository at {where}; fetch it there{remote}, or run "
                f"reproduce inside a clone that has it",
            )
        if git.get("dirty") and not env.get("diff_sha256"):
            _problem(problems, "uncommitted changes", "the run had uncommitted changes but no diff was stored")
        if git.get("diff_truncated"):
            _problem(
                problems,
                "uncommitted changes",
                "the diff was cut at MODELTRACK_DIFF_LIMIT bytes when it was captured, so it cannot be applied",
            )
        source = "git+snapshot" if snapshot else "git"
    elif snapshot:
        source = "snapshot"
    else:
        source = None
        if env:
            _problem(
                problems,
                "code",
                "no commit and no code snapshot were recorded (a run outside git whose script was not a "
                ".py file: python -c, a notebook?)",
            )
    for skipped in code.get("skipped") or ():
        _problem(
            problems,
            f"code file {skipped.get('path')}",
            f"not in the snapshot: {skipped.get('reason')}",
            blocking=False,
        )
    command = list(env.get("command") or [])
    if env and not command:
        _problem(problems, "command", "no command line was recorded")
    if any("***" in arg for arg in command[1:]):
        _problem(
            problems,
            "command",
            "the command line held a secret, which was masked (***) and not recorded; re-run it by hand",
        )
    python = find_python(env.get("python")) if not reuse_env else None
    environment: dict[str, Any] = {"mode": "reuse" if reuse_env else "fresh"}
    if reuse_env:
        import platform

        environment["python"] = {
            "recorded": env.get("python"),
            "using": platform.python_version(),
            "executable": sys.executable,
            "note": None
            if env.get("python") in (None, platform.python_version())
            else f"python {env.get('python')} recorded, {platform.python_version()} used (--reuse-env)",
        }
        environment["differs"] = package_differences(env.get("packages") or {}, packages())
    else:
        install, constraints = _requirements(env, root if source in ("git", "git+snapshot") else None, problems)
        environment.update(python=python, install=install, constraints=len(constraints))
        environment["_constraints"] = constraints
    data = [{"name": d["name"], "fingerprint": d.get("fingerprint")} for d in rec.get("data", [])]
    out = {
        "ref": f"{model}@v{number}",
        "model": model,
        "version": number,
        "status": rec.get("status"),
        "ok": not any(p["blocking"] for p in problems),
        "code": {
            "source": source,
            "root": root,
            "repository": repository,
            "commit": commit,
            "remote": git.get("remote"),
            "diff": bool(env.get("diff_sha256")),
            "snapshot": [{"path": a["path"][len("code/") :], "sha256": a["sha256"]} for a in snapshot],
            "script": code.get("script"),
        },
        "environment": environment,
        "command": {"argv": command, "cwd": code.get("cwd"), "env": dict(env.get("env") or {})},
        "seeds": dict(env.get("randomness") or {}),
        "data": data,
        "problems": problems,
    }
    return out


def public(p: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as printed (``--json``): without the internal constraint list."""
    env = {k: v for k, v in p["environment"].items() if not k.startswith("_")}
    return {**p, "environment": env}


def check(p: Mapping[str, Any]) -> None:
    """Raise :class:`ReproduceError` naming the first blocking problem of plan ``p``."""
    for prob in p["problems"]:
        if prob["blocking"]:
            raise ReproduceError(f"cannot reproduce {p['ref']}: {prob['what']}: {prob['reason']}")


# ---------------------------------------------------------------------- code
def prepare_code(repo: Repo, p: Mapping[str, Any], target: Path, say: Say = _quiet) -> Path:
    """Rebuild the code of plan ``p`` in ``target`` (a new or empty directory): a clone at
    the commit with the recorded diff applied, then the snapshot files. Returns ``target``."""
    check(p)
    code = p["code"]
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ReproduceError(f"{target} is not empty; give reproduce a new or empty directory")
    if code["source"] in ("git", "git+snapshot"):
        say(f"code: cloning {code['repository']} at {code['commit'][:12]}")
        _git(["clone", "--quiet", "--no-checkout", "--shared", str(code["repository"]), str(target)], ".", check=True)
        _git(["checkout", "--quiet", "--detach", code["commit"]], target, check=True)
        if code.get("remote"):
            _git(["remote", "set-url", "origin", code["remote"]], target)
        if code["diff"]:
            model, number = p["model"], p["version"]
            diff = repo.code_diff(model, number)
            if diff is None:
                raise ReproduceError(
                    f"the diff of {p['ref']} (code.diff) is missing from the store; run `modeltrack verify`"
                )
            patch = target / ".git" / "modeltrack-reproduce.diff"
            patch.write_text(diff, encoding="utf-8")
            res = _git(["apply", "--binary", "--whitespace=nowarn", str(patch)], target)
            if res.returncode != 0:
                raise ReproduceError(
                    f"the recorded diff of {p['ref']} does not apply at {code['commit'][:12]}: {res.stderr.strip()[:300]}"
                )
            say("code: applied the recorded uncommitted changes")
    for f in code["snapshot"]:
        fetch_verified(repo.store, f["sha256"], target / f["path"], what=f"code file {f['path']} of {p['ref']}")
    if code["snapshot"]:
        say(f"code: unpacked {len(code['snapshot'])} file(s) of the code snapshot")
    return target


# ---------------------------------------------------------------------- environment
def _site_packages(python: str) -> Path:
    res = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise ReproduceError(f"cannot ask {python} for its site-packages: {res.stderr.strip()[:300]}")
    return Path(res.stdout.strip())


def install_self(python: str) -> None:
    """Put this modeltrack into the environment of ``python`` (the one tracking the re-run):
    the files of its installed distribution are copied (an editable install copies its
    path hook), else a ``.pth`` names the directory it is imported from."""
    from importlib import metadata

    site = _site_packages(python)
    site.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    for dist in metadata.distributions(name="modeltrack"):
        files = dist.files or []
        base = Path(str(dist.locate_file(""))).resolve()
        if not any(str(f).endswith("direct_url.json") or str(f).startswith("modeltrack/") for f in files):
            continue  # an .egg-info of a source tree: no installed files to copy
        for f in files:
            rel = Path(str(f))
            if rel.parts and (rel.parts[0] == ".." or "__pycache__" in rel.parts):
                continue
            src = base / rel
            if src.is_file():
                (site / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, site / rel)
        return
    (site / "modeltrack-reproduce.pth").write_text(str(here.parent) + "\n", encoding="utf-8")


_UV_OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "-c",
}


def uv_options(pip_config: str) -> list[str]:
    """The index settings of ``pip config list`` output as ``uv pip install`` options (uv
    does not read pip's configuration): index and extra index URLs, find-links, constraints."""
    import shlex

    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line in pip_config.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        option = _UV_OPTIONS.get(key.rpartition(".")[2].strip())
        if option is None:
            continue
        try:
            values = shlex.split(raw.strip().strip("'\"").replace("\\n", " "))
        except ValueError:
            continue
        for value in values:
            if (option, value) not in seen and not (option == "--index-url" and any(o == option for o, _ in seen)):
                seen.add((option, value))
                out += [option, value]
    return out


def _pip_config() -> str:
    try:
        res = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return res.stdout if res.returncode == 0 else ""


def build_env(
    p: Mapping[str, Any],
    env_dir: Path,
    code_dir: Path,
    *,
    constraints: Iterable[str] = (),
    say: Say = _quiet,
    log: Any = None,
) -> str:
    """Create a virtual environment in ``env_dir`` for plan ``p`` and install its packages;
    returns its interpreter. ``constraints``: more constraint files (``--constraint``).
    Installer output goes to ``log`` (a file object; default stderr)."""
    log = log if log is not None else sys.stderr
    env = p["environment"]
    python = env["python"]
    if python.get("note"):
        say(f"environment: {python['note']}")
    uv = shutil.which("uv")
    say(f"environment: creating a virtual environment with python {python['using']} in {env_dir}")
    if uv:
        cmd = [uv, "venv", "--quiet", "--python", python["executable"], str(env_dir)]
    else:
        cmd = [python["executable"], "-m", "venv", str(env_dir)]
    res = subprocess.run(cmd, stdout=log, stderr=log, check=False)
    if res.returncode != 0:
        raise ReproduceError(
            f"cannot create a virtual environment in {env_dir} (exit {res.returncode}); see the output above"
        )
    exe = str(env_dir / ("Scripts" if os.name == "nt" else "bin") / ("python.exe" if os.name == "nt" else "python"))
    install_self(exe)
    items = env["install"]
    if not items:
        say("environment: no packages to install")
        return exe
    cfile = env_dir / "modeltrack-recorded-constraints.txt"
    cfile.write_text("\n".join(env.get("_constraints") or []) + "\n", encoding="utf-8")
    args: list[str] = []
    for item in items:
        spec = item["spec"]
        if item.get("in_code"):
            spec = str(code_dir / spec)
        args += ["-e", spec] if item.get("editable") else [spec]
    extra = ["-c", str(cfile)]
    for c in constraints:
        extra += ["-c", str(c)]
    say(f"environment: installing {len(items)} package(s) the run imported, pinned to the recorded versions")
    if uv:
        cmd = [uv, "pip", "install", "--python", exe, *uv_options(_pip_config()), *extra, *args]
    else:
        cmd = [exe, "-m", "pip", "install", "--no-input", "--progress-bar", "off", *extra, *args]
    res = subprocess.run(cmd, stdout=log, stderr=log, check=False)
    if res.returncode != 0:
        raise ReproduceError(
            f"installing the recorded packages failed (exit {res.returncode}; see the installer's output above); "
            f"fix the index settings of your pip configuration, pass --constraint FILE, or use --reuse-env"
        )
    return exe


# ---------------------------------------------------------------------- run
def child_environ(p: Mapping[str, Any], store_uri: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The re-run's environment: ``base`` (default this process's) without any variable of
    the allow-list, then the recorded ones, the store, and ``MODELTRACK_REPRODUCES``."""
    base = os.environ if base is None else base
    out = {k: v for k, v in base.items() if k not in ENV_ALLOWLIST and k not in (REPRODUCES_VAR, "VIRTUAL_ENV")}
    out.update(p["command"]["env"])
    out["MODELTRACK_STORE"] = store_uri
    out[REPRODUCES_VAR] = p["ref"]
    return out


def autologged(p: Mapping[str, Any]) -> bool:
    """Whether the original run had autologging switched on (``modeltrack run`` does)."""
    value = p["command"]["env"].get("MODELTRACK_AUTOLOG", "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def run_argv(p: Mapping[str, Any], python: str, code_dir: Path) -> tuple[list[str], Path]:
    """The re-run's command (the interpreter replaced by ``python``; absolute paths into the
    original code root moved into ``code_dir``) and its working directory."""
    argv = list(p["command"]["argv"])
    root = p["code"]["root"]
    cwd = p["command"]["cwd"]

    def moved(arg: str) -> str:
        name, eq, value = arg.partition("=") if arg.startswith("-") and "=" in arg else ("", "", arg)
        if root and os.path.isabs(value) and _inside(Path(value), Path(root)):
            value = str(code_dir / Path(value).resolve().relative_to(Path(root).resolve()))
        return f"{name}{eq}{value}"

    return [python, *(moved(a) for a in argv[1:])], code_dir / cwd if cwd is not None else code_dir


# ---------------------------------------------------------------------- compare
def _same(a: Any, b: Any, rtol: float) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if rtol == 0:
        return bool(a == b)
    return math.isclose(float(a), float(b), rel_tol=rtol, abs_tol=0.0)


def _code_identity(rec: Mapping[str, Any]) -> dict[str, Any]:
    env = rec.get("environment") or {}
    git = env.get("git") or {}
    snap = {a["path"]: a["sha256"] for a in rec.get("artifacts", []) if a.get("kind") == "code"}
    return {"commit": git.get("commit"), "diff_sha256": env.get("diff_sha256"), "snapshot": snap}


def compare(original: Mapping[str, Any], rerun: Mapping[str, Any], *, rtol: float = 0.0) -> dict[str, Any]:
    """The report of a re-run (records in the shape of ``show --json``): each section says
    ``same`` and what differs; ``result`` is ``match`` or ``differs`` (``differs`` names the
    sections)."""
    po, pr = original.get("params", {}), rerun.get("params", {})
    params = {
        "same": po == pr,
        "count": len(po),
        "changed": {k: {"from": po[k], "to": pr[k]} for k in po if k in pr and po[k] != pr[k]},
        "added": sorted(set(pr) - set(po)),
        "removed": sorted(set(po) - set(pr)),
    }
    do = {d["name"]: d.get("fingerprint") for d in original.get("data", [])}
    dr = {d["name"]: d.get("fingerprint") for d in rerun.get("data", [])}
    changed = sorted(n for n in do if n in dr and do[n] != dr[n])
    data = {
        "same": not changed and set(do) == set(dr),
        "names": sorted(do),
        "changed": changed,
        "missing": sorted(set(do) - set(dr)),
        "added": sorted(set(dr) - set(do)),
        "unfingerprinted": sorted(n for n in do if do[n] is None and dr.get(n) is None),
    }
    co, cr = _code_identity(original), _code_identity(rerun)
    code = {"same": co == cr, "original": co, "rerun": cr}
    eo, er = original.get("environment") or {}, rerun.get("environment") or {}
    names = eo.get("packages_imported") or sorted(eo.get("packages") or {})
    ko, kr = eo.get("packages") or {}, er.get("packages") or {}
    pkg_diff = [
        {"name": n, "recorded": ko.get(n), "rerun": kr.get(n)}
        for n in names
        if n not in NOT_INSTALLED and ko.get(n) != kr.get(n)
    ]
    pkgs = {"same": not pkg_diff, "count": len([n for n in names if n not in NOT_INSTALLED]), "differ": pkg_diff}
    metrics: dict[str, Any] = {}
    for name, m in original.get("metrics", {}).items():
        r = rerun.get("metrics", {}).get(name)
        entry: dict[str, Any] = {}
        for field in ("last", "best"):
            a, b = m.get(field), (r or {}).get(field)
            entry[field] = {"original": a, "rerun": b, "same": r is not None and _same(a, b, rtol)}
        entry["same"] = entry["last"]["same"] and entry["best"]["same"]
        metrics[name] = entry
    sections = {"params": params, "data": data, "code": code, "packages": pkgs}
    differs = [k for k, v in sections.items() if not v["same"]]
    if any(not m["same"] for m in metrics.values()):
        differs.append("metrics")
    if rerun.get("status") != "finished":
        differs.append("status")
    return {
        "original": f"{original['model']}@v{original['version']}",
        "rerun": f"{rerun['model']}@v{rerun['version']}",
        "status": rerun.get("status"),
        "rtol": rtol,
        "result": "differs" if differs else "match",
        "differs": differs,
        **sections,
        "metrics": metrics,
    }


def result_text(report: Mapping[str, Any]) -> str:
    """The ``reproduction`` tag value: ``match`` or ``differs: data, metrics``."""
    return "match" if report["result"] == "match" else "differs: " + ", ".join(report["differs"])


def record_result(repo: Repo, report: Mapping[str, Any]) -> None:
    """Tag the re-run with the version it reproduces and the outcome."""
    model, number = repo.resolve(report["rerun"])
    repo.write_tags(model, number, {TAG_REPRODUCES: report["original"], TAG_RESULT: result_text(report)})


def reproductions(repo: Repo, model: str, number: int) -> dict[str, Any]:
    """What the registry knows of ``model@vN`` and reproduction, from the tags (one read):
    ``{"reproduces": {"ref", "result"}|None, "reproduced_by": [{"ref", "result"}]}``."""
    me = f"{model}@v{number}"
    tags = repo.all_tags(model)
    own = tags.get(number, {})
    out: dict[str, Any] = {"reproduces": None, "reproduced_by": []}
    if own.get(TAG_REPRODUCES):
        out["reproduces"] = {"ref": own[TAG_REPRODUCES], "result": own.get(TAG_RESULT)}
    for n, t in sorted(tags.items()):
        if t.get(TAG_REPRODUCES) == me:
            out["reproduced_by"].append({"ref": f"{model}@v{n}", "result": t.get(TAG_RESULT)})
    return out


__all__ = [
    "ReproduceError",
    "autologged",
    "build_env",
    "check",
    "child_environ",
    "compare",
    "find_python",
    "install_self",
    "package_differences",
    "plan",
    "prepare_code",
    "public",
    "record_result",
    "reproductions",
    "result_text",
    "run_argv",
    "uv_options",
]
