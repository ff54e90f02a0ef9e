"""Environment capture: Python, OS, hardware, packages, command line, git state.

Fast (no subprocess but git, no ``pip freeze``) and never raises: whatever cannot be read
is recorded as ``None``. Credentials never leave the process: environment variables whose
names look like secrets are skipped, and so are command-line values given to options
that look like secrets.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from typing import Any

from .. import config

SECRET_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSW|PWD|CREDENTIAL|AUTH|PRIVATE|SESSION|COOKIE|SIGNATURE|CERT)",
    re.IGNORECASE,
)
ENV_PREFIXES = (
    "CUDA_",
    "CUBLAS_",
    "NCCL_",
    "OMP_",
    "MKL_",
    "PYTHONHASHSEED",
    "KERAS_",
    "TF_",
    "PL_",
    "LIGHTNING_",
    "TORCH_",
    "PYTORCH_",
    "SLURM_JOB",
    "SLURM_NTASKS",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "MODELTRACK_",
    "HOSTNAME",
    "VIRTUAL_ENV",
    "CONDA_DEFAULT_ENV",
    "CI",
    "GITHUB_SHA",
    "GITHUB_REF",
    "GITHUB_RUN_ID",
)

_packages_cache: dict[str, str] | None = None


def is_secret_name(name: str) -> bool:
    """Whether an environment variable or option name looks like it holds a credential."""
    return bool(SECRET_NAME.search(name)) or name.upper().startswith("AWS_")


def _scan_packages() -> dict[str, str]:
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except Exception:  # noqa: BLE001 - a broken dist must not fail capture
            continue
        if name:
            found.setdefault(name.lower().replace("_", "-"), dist.version)
    return dict(sorted(found.items()))


def _path_key() -> list[list[Any]]:
    """What decides the installed set: each ``sys.path`` directory and its mtime (installing
    or removing a distribution adds or removes entries, which changes the mtime)."""
    key: list[list[Any]] = []
    # The script's directory and the working directory change all the time and almost
    # never hold installed distributions: leave them out of the key.
    skip = {"", os.getcwd(), os.path.dirname(os.path.abspath(sys.argv[0])) if sys.argv and sys.argv[0] else ""}
    for entry in sys.path:
        if entry in skip:
            continue
        try:
            key.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            key.append([entry, None])
    return key


def packages() -> dict[str, str]:
    """Exact versions of every installed distribution.

    Scanning the metadata of every distribution costs ~100 ms, so the result is cached for
    the process and on disk under ``MODELTRACK_CACHE``, keyed by ``sys.path`` and the
    modification times of its directories.
    """
    global _packages_cache
    if _packages_cache is not None:
        return dict(_packages_cache)
    import hashlib
    import json

    key = _path_key()
    digest = hashlib.sha256(json.dumps([sys.executable, key]).encode()).hexdigest()[:16]
    path = os.path.join(config.cache_dir(), "packages", f"{digest}.json")
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        if cached.get("key") == key:
            _packages_cache = cached["packages"]
            return dict(cached["packages"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    _packages_cache = _scan_packages()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"key": key, "packages": _packages_cache}, f)
        os.replace(tmp, path)
    except OSError:
        pass
    return dict(_packages_cache)


def command() -> list[str]:
    """The command line, with values of secret-looking options replaced by ``***``."""
    argv = list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv])
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        if arg.startswith("-") and is_secret_name(arg.lstrip("-").split("=", 1)[0]):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def _git(args: list[str], cwd: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=10,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    return res.stdout.decode("utf-8", "replace")


def git_info(cwd: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """Commit, branch and dirty flag of the git work tree around ``cwd``, and the diff of
    tracked files against HEAD (capped at ``MODELTRACK_DIFF_LIMIT`` bytes). Untracked and
    ignored files are never read."""
    cwd = cwd or os.getcwd()
    # One call gives commit, branch and the dirty state (porcelain v2 headers).
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd)
    if status is None:
        return None, None
    commit = branch = None
    dirty = False
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            branch = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    diff = None
    if dirty and commit:
        diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff", "--binary"], cwd)
    limit = config.diff_limit()
    truncated = False
    if diff is not None and len(diff) > limit:
        diff = diff[:limit] + "\n# modeltrack: diff truncated at MODELTRACK_DIFF_LIMIT bytes\n"
        truncated = True
    info = {"commit": commit, "branch": branch, "dirty": dirty, "diff_truncated": truncated}
    return info, diff


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gpus() -> list[dict[str, Any]] | None:
    """GPUs seen by torch, only if torch is already imported (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append({"name": props.name, "memory": int(props.total_memory)})
        return out
    except Exception:  # noqa: BLE001 - GPU probing must never fail a run
        return None


def selected_env() -> dict[str, str]:
    """Environment variables that explain a run (threads, devices, ranks), secrets excluded."""
    out = {}
    for name, value in os.environ.items():
        if not name.startswith(ENV_PREFIXES) or is_secret_name(name):
            continue
        if "://" in value and "@" in value:  # URLs with user:password@
            value = re.sub(r"//[^/@]*@", "//***@", value)
        out[name] = value
    return dict(sorted(out.items()))


def collect(cwd: str | None = None, *, with_git: bool = True) -> tuple[dict[str, Any], str | None]:
    """The environment record of a run and the dirty diff (or ``None``)."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": _ram_bytes(),
        "gpus": gpus(),
        "cwd": cwd or os.getcwd(),
        "command": command(),
        "env": selected_env(),
    }
    try:
        env["packages"] = packages()
    except Exception:  # noqa: BLE001
        env["packages"] = {}
    diff = None
    env["git"] = None
    if with_git:
        try:
            env["git"], diff = git_info(cwd)
        except Exception:  # noqa: BLE001
            pass
    return env, diff
