"""Environment capture: Python, OS, hardware, packages, command line, git state.

Fast (no subprocess but git, no ``pip freeze``) and never raises: whatever cannot be read
is recorded as ``None``. Credentials never leave the process: only the environment
variables of :data:`ENV_ALLOWLIST` are read, and the command line goes through
:func:`modeltrack.secrets.mask_argv` (secret-looking option values and URL credentials
masked).
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from .. import config
from ..files import atomic_write
from ..secrets import is_secret_name, mask_argv, scrub_text

#: The environment variables recorded with a run: those that change its numbers or its
#: speed (seeds, thread counts, devices, determinism and collective-communication settings,
#: backend selection, distributed layout) and the modeltrack ones that change what is
#: tracked. Nothing else is read, so a credential in the environment cannot be written;
#: values are still passed through :func:`modeltrack.secrets.scrub_text`, and a name that
#: looks secret (:func:`modeltrack.secrets.is_secret_name`) is skipped even if listed here.
ENV_ALLOWLIST: tuple[str, ...] = (
    # seeds
    "PYTHONHASHSEED",
    "PL_GLOBAL_SEED",
    "PL_SEED_WORKERS",
    # thread counts and CPU placement
    "OMP_NUM_THREADS",
    "OMP_PROC_BIND",
    "OMP_PLACES",
    "MKL_NUM_THREADS",
    "MKL_THREADING_LAYER",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
    "TORCH_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TOKENIZERS_PARALLELISM",
    "KMP_AFFINITY",
    # devices, determinism, memory
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUDA_LAUNCH_BLOCKING",
    "CUDA_MODULE_LOADING",
    "CUBLAS_WORKSPACE_CONFIG",
    "NVIDIA_TF32_OVERRIDE",
    "HIP_VISIBLE_DEVICES",
    "ROCR_VISIBLE_DEVICES",
    "PYTORCH_CUDA_ALLOC_CONF",
    "TORCH_USE_CUDA_DSA",
    "TORCH_CUDNN_V8_API_ENABLED",
    "TF_DETERMINISTIC_OPS",
    "TF_CUDNN_DETERMINISTIC",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_GPU_ALLOCATOR",
    "TF_CPP_MIN_LOG_LEVEL",
    "XLA_FLAGS",
    "TF_XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
    # collective communication
    "NCCL_DEBUG",
    "NCCL_P2P_DISABLE",
    "NCCL_IB_DISABLE",
    "NCCL_SHM_DISABLE",
    "NCCL_SOCKET_IFNAME",
    "NCCL_ALGO",
    "NCCL_PROTO",
    "NCCL_NET_GDR_LEVEL",
    "NCCL_BLOCKING_WAIT",
    "NCCL_ASYNC_ERROR_HANDLING",
    "TORCH_NCCL_BLOCKING_WAIT",
    "TORCH_NCCL_ASYNC_ERROR_HANDLING",
    "TORCH_DISTRIBUTED_DEBUG",
    # backend selection
    "KERAS_BACKEND",
    "PYTORCH_ENABLE_MPS_FALLBACK",
    "PYTORCH_MPS_HIGH_WATERMARK_RATIO",
    "TF_ENABLE_ONEDNN_OPTS",
    "JAX_PLATFORMS",
    "JAX_ENABLE_X64",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "TORCHDYNAMO_DISABLE",
    "TORCH_COMPILE_DISABLE",
    # distributed layout
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "SLURM_NTASKS",
    "SLURM_NNODES",
    # modeltrack settings that change what is recorded
    "MODELTRACK_MODEL",
    "MODELTRACK_AUTOLOG",
    "MODELTRACK_STRICT",
)

_packages_cache: dict[str, str] | None = None


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
        atomic_write(path, json.dumps({"key": key, "packages": _packages_cache}).encode())
    except OSError:
        pass
    return dict(_packages_cache)


def command() -> list[str]:
    """The command line, passed through :func:`modeltrack.secrets.mask_argv` (values of
    secret-looking options and URL credentials replaced by ``***``)."""
    return mask_argv(list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]))


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


def selected_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of :data:`ENV_ALLOWLIST` that are set, values scrubbed of URL
    credentials and secret ``name=value`` pairs."""
    environ = os.environ if environ is None else environ
    out = {}
    for name in ENV_ALLOWLIST:
        value = environ.get(name)
        if value is not None and not is_secret_name(name):
            out[name] = scrub_text(value)
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
