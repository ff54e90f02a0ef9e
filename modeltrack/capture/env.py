"""Environment capture: Python, OS, hardware, packages, command line, git state, and what a
re-run needs (``modeltrack reproduce``): where the code lives (:mod:`.code`), the seeds and
determinism settings (:mod:`.seeds`), where each package came from and which ones the run
imported.

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

_packages_cache: dict[str, Any] | None = None
_packages_key: list[list[Any]] | None = None
_imported_cache: tuple[int, list[str]] | None = None  # (len(sys.modules), result)
_static_cache: dict[str, Any] | None = None
_gpus_cache: list[dict[str, Any]] | None = None
_git_cache: dict[tuple[str, str], _GitState] = {}
_code_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
_git_generation = 0  # bumped whenever git is asked again: the code record depends on the index too
#: repositories with more tracked files than this are not stamped file by file: git runs for each version
_STAMP_LIMIT = 20_000


def _source(dist: Any) -> dict[str, Any] | None:
    """Where a distribution came from, by its ``direct_url.json`` (PEP 610): None for one
    installed from a package index (pip writes no such file then)."""
    import json

    try:
        text = dist.read_text("direct_url.json")
    except Exception:  # noqa: BLE001 - a broken dist must not fail capture
        return None
    if not text:
        return None
    try:
        info = json.loads(text)
        url = str(info["url"])
    except (ValueError, KeyError, TypeError):
        return {"kind": "unknown"}
    out: dict[str, Any] = {"url": scrub_text(url)}
    if isinstance(info.get("vcs_info"), dict):
        vcs = info["vcs_info"]
        out.update(kind="vcs", vcs=vcs.get("vcs"), commit=vcs.get("commit_id"))
    elif isinstance(info.get("dir_info"), dict):
        out["kind"] = "editable" if info["dir_info"].get("editable") else "local"
    elif isinstance(info.get("archive_info"), dict):
        out["kind"] = "local" if url.startswith("file:") else "url"
    else:
        out["kind"] = "unknown"
    return out


def _headers(dist: Any) -> dict[str, str]:
    """``Name`` and ``Version`` from a distribution's metadata header, read directly:
    ``importlib.metadata`` parses the whole file with the e-mail parser (~1 ms each; a
    machine learning environment has hundreds of distributions)."""
    text = None
    for name in ("METADATA", "PKG-INFO"):
        try:
            text = dist.read_text(name)
        except Exception:  # noqa: BLE001 - a broken dist must not fail capture
            text = None
        if text:
            break
    out: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not line.strip():
            break  # the end of the header: the description follows
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version") and key not in out:
            out[key] = value.strip()
            if len(out) == 2:
                break
    return out


def _top_level(dist: Any) -> list[str]:
    """The top-level modules a distribution provides, as ``packages_distributions`` finds
    them: ``top_level.txt`` when present, else the ``.py`` files listed in ``RECORD``."""
    try:
        declared = dist.read_text("top_level.txt")
    except Exception:  # noqa: BLE001
        declared = None
    if declared:
        return declared.split()
    try:
        record = dist.read_text("RECORD") or dist.read_text("SOURCES.txt") or ""
    except Exception:  # noqa: BLE001
        return []
    import csv

    out = set()
    for row in csv.reader(record.splitlines()):
        if not row or not row[0].endswith(".py"):
            continue
        parts = row[0].split("/")
        out.add(parts[0] if len(parts) > 1 else parts[0][:-3])
    return sorted(out)


def _scan_packages() -> dict[str, Any]:
    from importlib import metadata

    found: dict[str, str] = {}
    sources: dict[str, dict[str, Any]] = {}
    owners_sets: dict[str, set[str]] = {}
    for dist in metadata.distributions():
        head = _headers(dist)
        name, version = head.get("Name"), head.get("Version")
        if not name or version is None:
            continue
        key = name.lower().replace("_", "-")
        for mod in _top_level(dist):
            owners_sets.setdefault(mod, set()).add(key)
        if key in found and (key in sources or found[key] != version):
            continue
        found.setdefault(key, version)
        # An editable install can be seen twice (its .egg-info on sys.path, its
        # .dist-info in site-packages): the one with direct_url.json says where from.
        src = _source(dist)
        if src is not None:
            sources[key] = src
    owners = {mod: sorted(dists) for mod, dists in owners_sets.items()}
    return {"packages": dict(sorted(found.items())), "sources": dict(sorted(sources.items())), "owners": owners}


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


def _installed() -> dict[str, Any]:
    """Scanning the metadata of every distribution costs ~100-200 ms, so the result is
    cached for the process and on disk under ``MODELTRACK_CACHE``, keyed by ``sys.path`` and
    the modification times of its directories."""
    global _packages_cache, _packages_key
    key = _path_key()
    if _packages_cache is not None and key == _packages_key:
        return _packages_cache  # nothing installed or removed since: the cheap check each version
    _packages_key = key
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps([sys.executable, key]).encode()).hexdigest()[:16]
    path = os.path.join(config.cache_dir(), "packages", f"{digest}.json")
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
        if cached.get("key") == key and "sources" in cached and "owners" in cached:
            _packages_cache = {k: cached[k] for k in ("packages", "sources", "owners")}
            return _packages_cache
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    _packages_cache = _scan_packages()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, json.dumps({"key": key, **_packages_cache}).encode())
    except OSError:
        pass
    return _packages_cache


def packages() -> dict[str, str]:
    """Exact versions of every installed distribution (cached, see :func:`_installed`)."""
    return dict(_installed()["packages"])


def package_sources() -> dict[str, dict[str, Any]]:
    """Where each distribution not installed from a package index came from:
    ``{name: {"kind": "editable"|"local"|"vcs"|"url"|"unknown", "url": str, …}}`` (VCS ones
    also give ``vcs`` and ``commit``). A distribution not listed came from an index."""
    return {k: dict(v) for k, v in _installed()["sources"].items()}


def imported_packages() -> list[str]:
    """The distributions whose top-level modules this process has imported (what a fresh
    environment must install; their dependencies follow)."""
    global _imported_cache
    count = len(sys.modules)
    cached = _imported_cache
    if cached is not None and cached[0] == count:
        return list(cached[1])
    owners = _installed()["owners"]
    found: set[str] = set()
    for name in list(sys.modules):
        if "." in name or name.startswith("_"):
            continue
        for dist in owners.get(name, ()):
            found.add(dist)
    _imported_cache = (count, sorted(found))
    return sorted(found)


def command() -> list[str]:
    """The command line, passed through :func:`modeltrack.secrets.mask_argv` (values of
    secret-looking options and URL credentials replaced by ``***``)."""
    return mask_argv(list(getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]))


def _git(args: list[str], cwd: str) -> str | None:
    from .code import run_git

    return run_git(args, cwd)


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
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    info["root"] = root.strip() if root else None
    remote = _git(["remote", "get-url", "origin"], cwd)
    if remote is None:
        names = (_git(["remote"], cwd) or "").split()
        remote = _git(["remote", "get-url", names[0]], cwd) if names else None
    info["remote"] = scrub_text(remote.strip()) if remote else None
    return info, diff


class _GitState:
    """What :func:`git_info` said about one work tree, and what would tell that it changed."""

    __slots__ = ("diff", "files", "info", "key", "stamp")

    def __init__(self, key: tuple[Any, ...], files: list[str] | None, info: Any, diff: str | None) -> None:
        self.key, self.files, self.info, self.diff = key, files, info, diff
        self.stamp = _tree_stamp(files)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _git_key(gitdir: str) -> tuple[Any, ...]:
    """The modification times that move when the commit, the branch, the index (staging,
    committing, checking out) or the remotes change."""
    head = os.path.join(gitdir, "HEAD")
    ref = None
    try:
        with open(head, encoding="utf-8", errors="replace") as f:
            text = f.read(512).strip()
        if text.startswith("ref: "):
            ref = text[5:]
    except OSError:
        text = ""
    common = gitdir
    try:
        with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as f:
            common = os.path.normpath(os.path.join(gitdir, f.read().strip()))  # a linked worktree
    except OSError:
        pass
    return (
        text,
        _mtime(head),
        _mtime(os.path.join(gitdir, "index")),
        _mtime(os.path.join(common, ref)) if ref else None,
        _mtime(os.path.join(common, "packed-refs")),
        _mtime(os.path.join(common, "config")),
    )


def _tree_stamp(files: list[str] | None) -> tuple[Any, ...] | None:
    """Size and mtime of every tracked file: editing one changes the dirty state and the diff
    without touching the index."""
    if files is None:
        return None
    out: list[tuple[int, int, int] | None] = []
    for path in files:
        try:
            st = os.lstat(path)
            out.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


def _ancestry_key(cwd: str) -> tuple[int | None, ...]:
    """The mtimes of ``cwd`` and its parents: creating a repository (``.git``) in any of them
    moves one."""
    out = []
    path = os.path.abspath(cwd)
    while True:
        out.append(_mtime(path))
        parent = os.path.dirname(path)
        if parent == path:
            return tuple(out)
        path = parent


def git_info_cached(cwd: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
    """:func:`git_info`, captured once per process and work tree and reused while nothing
    changed: the commit, branch, index and remotes (the mtimes of ``HEAD``, the branch's ref,
    ``index``, ``packed-refs``, ``config``) and every tracked file (size, mtime, inode; so an
    edit renews the dirty flag and the diff). A work tree of more than ``_STAMP_LIMIT``
    tracked files, or one git cannot describe, runs git each time."""
    global _git_generation
    cwd = cwd or os.getcwd()
    slot = (cwd, "")
    state = _git_cache.get(slot)
    if state is not None and state.files is None:  # no repository here: until one appears
        if state.key == _ancestry_key(cwd):
            return None, None
        state = None
    if state is None:
        where = _git(["rev-parse", "--absolute-git-dir", "--show-toplevel"], cwd)
        _git_generation += 1
        if where is None:
            ancestry = _ancestry_key(cwd)
            info, diff = git_info(cwd)
            if info is None:
                _git_cache[slot] = _GitState(ancestry, None, None, None)
            return info, diff
        lines = where.splitlines()
        if len(lines) < 2:
            return git_info(cwd)
        gitdir, top = lines[0].strip(), lines[1].strip()
        key = (gitdir, top, _git_key(gitdir))
        listing = _git(["ls-files", "-z", "--full-name"], top)
        files = None
        if listing is not None:
            names = [n for n in listing.split("\0") if n]
            files = [os.path.join(top, n) for n in names] if len(names) <= _STAMP_LIMIT else None
        if files is None:
            return git_info(cwd)
        info, diff = git_info(cwd)
        _git_cache[slot] = _GitState(key, files, info, diff)
        return (dict(info) if info else info), diff
    gitdir, top = state.key[0], state.key[1]
    key = (gitdir, top, _git_key(gitdir))
    if key != state.key:
        _git_cache.pop(slot, None)  # the index or HEAD moved: list the tracked files again
        return git_info_cached(cwd)
    if _tree_stamp(state.files) != state.stamp:
        _git_generation += 1
        state.info, state.diff = git_info(cwd)
        state.stamp = _tree_stamp(state.files)
    return (dict(state.info) if state.info else state.info), state.diff


def _static() -> dict[str, Any]:
    """The parts of the record that do not change while the process runs (read once)."""
    global _static_cache
    if _static_cache is None:
        _static_cache = {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
            "platform": platform.platform(),
            "machine": platform.machine(),
            "hostname": socket.gethostname(),
            "cpu_count": os.cpu_count(),
            "ram_bytes": _ram_bytes(),
        }
    return dict(_static_cache)


def _describe_code(git: dict[str, Any] | None, cwd: str | None) -> dict[str, Any] | None:
    """:func:`.code.describe`, reused while the git state, the working directory, the set of
    imported modules and the snapshot files (size, mtime) stay the same."""
    from . import code

    key = (_git_generation, repr(git), cwd or os.getcwd(), repr(sys.argv[:1]), len(sys.modules))
    cached = _code_cache.get(key)
    if cached is not None:
        rec, stamp = cached["rec"], cached["stamp"]
        if _snapshot_stamp(rec) == stamp:
            return _copy_code(rec)
    rec = code.describe(git, cwd)
    if len(_code_cache) > 64:
        _code_cache.clear()
    _code_cache[key] = {"rec": rec, "stamp": _snapshot_stamp(rec)}
    return _copy_code(rec)


def _snapshot_stamp(rec: dict[str, Any]) -> tuple[Any, ...]:
    root = rec.get("root")
    if not root:
        return ()
    out: list[tuple[int, int] | None] = []
    for entry in rec.get("snapshot") or []:
        try:
            st = os.stat(os.path.join(root, entry["path"]))
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _copy_code(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    for k in ("snapshot", "skipped"):
        if isinstance(out.get(k), list):
            out[k] = [dict(e) if isinstance(e, dict) else e for e in out[k]]
    return out


def _ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gpus() -> list[dict[str, Any]] | None:
    """GPUs seen by torch, only if torch is already imported (never imports it); probed once
    per process."""
    global _gpus_cache
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if _gpus_cache is not None:
        return [dict(g) for g in _gpus_cache]
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append({"name": props.name, "memory": int(props.total_memory)})
        _gpus_cache = out
        return [dict(g) for g in out]
    except Exception:  # noqa: BLE001 - GPU probing must never fail a run
        return None


_ALLOWED = frozenset(ENV_ALLOWLIST)


def selected_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of :data:`ENV_ALLOWLIST` that are set, values scrubbed of URL
    credentials and secret ``name=value`` pairs."""
    environ = os.environ if environ is None else environ
    out = {}
    for name in _ALLOWED.intersection(environ):  # one pass over the names: ~70 look-ups cost more
        if not is_secret_name(name):
            out[name] = scrub_text(environ[name])
    return dict(sorted(out.items()))


def collect(
    cwd: str | None = None, *, with_git: bool = True, randomness: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """The environment record of a run and the dirty diff (or ``None``).

    Besides the machine and the packages, the record holds what ``modeltrack reproduce``
    needs: ``git`` (with ``root`` and ``remote``), ``code`` (:func:`.code.describe`: the
    script and working directory inside the code root, and the snapshot to store),
    ``randomness`` (:func:`.seeds.randomness`), ``package_sources`` and
    ``packages_imported``. ``randomness``: read beforehand on the training thread (Keras
    keeps its seed per thread), else read here.

    Captured once per process and reused (see :func:`git_info_cached`, :func:`_installed`):
    the machine, the packages (re-scanned when a ``sys.path`` directory changes), the git
    state (re-read when HEAD, a ref, the index, the remotes or a tracked file changes) and
    the code record; the command line, the selected environment variables and the seeds
    are read for every version."""
    env: dict[str, Any] = {
        **_static(),
        "gpus": gpus(),
        "cwd": cwd or os.getcwd(),
        "command": command(),
        "env": selected_env(),
    }
    try:
        installed = _installed()  # one check of sys.path for both
        env["packages"] = dict(installed["packages"])
        env["package_sources"] = {k: dict(v) for k, v in installed["sources"].items()}
        env["packages_imported"] = imported_packages()
    except Exception:  # noqa: BLE001
        env.setdefault("packages", {})
    diff = None
    env["git"] = None
    if with_git:
        try:
            env["git"], diff = git_info_cached(cwd)
            from .code import entry_script

            script = entry_script()
            if env["git"] is None and script is not None:
                # run from outside the repository (python ~/proj/train.py): the script's own
                env["git"], diff = git_info_cached(os.path.dirname(script))
        except Exception:  # noqa: BLE001
            pass
    from . import seeds

    try:
        env["code"] = _describe_code(env["git"], cwd)
    except Exception:  # noqa: BLE001
        env["code"] = None
    env["randomness"] = seeds.randomness() if randomness is None else randomness
    return env, diff
