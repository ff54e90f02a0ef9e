"""Code capture: where the code of a run lives and what a re-run needs to rebuild it.

Inside a git work tree the commit and the diff of tracked files (see
:func:`modeltrack.capture.env.git_info`) rebuild the code; what they miss is the entry
script and the local modules it imported when git does not track them (untracked files).
Outside git there is no commit, so those files are all there is. Either way, that set is
the *snapshot*: the entry script and the ``.py`` files of the modules it imported from the
code root, stored content-addressed as artifacts of kind ``code`` (``code/<path>``) by the
version. Never in a snapshot:

* git-ignored files (git decides: only ``git ls-files --others --exclude-standard``);
* files in hidden directories (``.venv``, ``.git``…) or under the interpreter's prefix
  (installed packages), and modeltrack's own modules;
* files whose name looks like a credential (:func:`modeltrack.secrets.is_secret_name`:
  ``secrets.py``, ``api_key.py``…), and files that assign a string literal to such a name
  (``API_KEY = "sk-…"``, :func:`holds_credential`);
* anything beyond ``MODELTRACK_DIFF_LIMIT`` bytes in all (the cap of captured code),
  listed as ``skipped`` with the reason.

Standard library only; never raises.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import sysconfig
from pathlib import Path
from typing import Any

from .. import config
from ..secrets import is_secret_name

#: set by ``modeltrack reproduce`` in the re-run's environment: the version it reproduces
REPRODUCES_VAR = "MODELTRACK_REPRODUCES"


def reproduces(model: str) -> str | None:
    """The reference this process reproduces (``MODEL@vN``, from ``MODELTRACK_REPRODUCES``)
    when it names ``model``, else None."""
    ref = os.environ.get(REPRODUCES_VAR, "").strip()
    if not ref or ref.rpartition("@")[0] != model:
        return None
    return ref[:300]


@functools.lru_cache(maxsize=1)
def _excluded_prefixes() -> list[Path]:
    """The interpreter's and modeltrack's own directories (fixed for the process)."""
    out = set()
    for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        out.add(Path(p).resolve())
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        try:
            out.add(Path(sysconfig.get_paths()[key]).resolve())
        except (KeyError, OSError):
            pass
    out.add(Path(__file__).resolve().parents[1])  # the modeltrack package (its modules are skipped by name)
    return sorted(out)


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def entry_script() -> Path | None:
    """The running script (``__main__``'s file) when it is a ``.py`` file outside the
    interpreter's prefix (not ``pytest``, not ``python -c``), else None."""
    main = sys.modules.get("__main__")
    name = getattr(main, "__file__", None)
    if not name or not str(name).endswith(".py"):
        return None
    key = (str(name), os.getcwd())
    known = _ENTRY.get(key)
    if known is None:
        path = Path(name).resolve()
        known = _ENTRY[key] = (path, not any(_under(path, p) for p in _excluded_prefixes()))
    path, outside = known
    return path if outside and path.is_file() else None


#: (``__main__.__file__``, working directory) -> (resolved path, whether it lies outside the
#: interpreter's prefixes): resolved once, as each version of a process asks again
_ENTRY: dict[tuple[str, str], tuple[Path, bool]] = {}


def code_root(git_root: str | None, cwd: str, script: Path | None) -> Path | None:
    """The directory the code lives in: the git work tree, else the working directory when
    the script lies under it, else the script's directory."""
    if git_root:
        return Path(git_root).resolve()
    if script is None:
        return None
    here = Path(cwd).resolve()
    return here if _under(script, here) else script.parent


#: ``NAME = "literal"`` (or ``NAME: str = '...'``) at the start of a line: checked with
#: :func:`modeltrack.secrets.is_secret_name` to keep hard-coded credentials out of snapshots
_ASSIGNED_STRING = re.compile(r"""(?m)^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=\n]*)?=\s*[rbuRBU]?(["'])([^"'\n]{8,})\2""")


def holds_credential(text: str) -> bool:
    """Whether source ``text`` assigns a string literal of 8+ characters to a name that
    looks like a credential (``API_KEY = "sk-…"``, ``db_password = '…'``)."""
    return any(is_secret_name(m.group(1)) for m in _ASSIGNED_STRING.finditer(text))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part == "__pycache__" for part in rel.parts[:-1])


#: module name -> (its __file__, resolved): later code records resolve only new modules
#: (root, module name) -> (its __file__, its path when it is local code under root, else None):
#: a framework imports thousands of modules; each is looked at once per process
_LOCAL: dict[tuple[Path, str], tuple[str, Path | None]] = {}


def _local_modules(root: Path) -> list[Path]:
    excluded = [p for p in _excluded_prefixes() if not _under(root, p) or p == root]
    found: set[Path] = set()
    for name, module in list(sys.modules.items()):
        if name == "__main__" or name.startswith("modeltrack"):
            continue
        f = getattr(module, "__file__", None)
        if not f or not str(f).endswith(".py"):
            continue
        seen = _LOCAL.get((root, name))
        if seen is None or seen[0] != f:
            try:
                resolved = Path(f).resolve()
            except (OSError, RuntimeError):
                continue
            local = _under(resolved, root) and not any(_under(resolved, p) and p != root for p in excluded)
            seen = _LOCAL[(root, name)] = (f, resolved if local else None)
        if seen[1] is not None:
            found.add(seen[1])
    return sorted(found)


def run_git(args: list[str], cwd: str | os.PathLike[str]) -> str | None:
    """``git ARGS`` in ``cwd``: its output, or None when git is missing, fails or hangs (10 s).
    Never takes optional locks (a capture must not disturb the user's own git commands)."""
    import subprocess

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


def _untracked(root: Path) -> set[Path] | None:
    """Untracked, not ignored files of the work tree at ``root`` (None if git fails)."""
    out = run_git(["ls-files", "--others", "--exclude-standard", "-z"], root)
    if out is None:
        return None
    return {(root / p).resolve() for p in out.split("\0") if p}


def describe(git: dict[str, Any] | None, cwd: str | None = None) -> dict[str, Any]:
    """The code record of this process: ``{"root", "script", "cwd", "snapshot", "skipped",
    "snapshot_bytes"}`` (paths relative to ``root``; ``snapshot``: ``[{"path", "size"}]``,
    the files to store as ``code/<path>`` artifacts)."""
    cwd = cwd or os.getcwd()
    script = entry_script()
    root = code_root((git or {}).get("root"), cwd, script)
    rec: dict[str, Any] = {"root": str(root) if root else None, "script": None, "cwd": None}
    if root is None:
        rec.update(snapshot=[], skipped=[], snapshot_bytes=0)
        return rec
    here = Path(cwd).resolve()
    if _under(here, root):
        rec["cwd"] = here.relative_to(root).as_posix()
    if script is not None and _under(script, root):
        rec["script"] = script.relative_to(root).as_posix()
    candidates = ([script] if script is not None and _under(script, root) else []) + _local_modules(root)
    if git is not None:
        untracked = _untracked(root)
        candidates = [p for p in candidates if untracked is not None and p in untracked]
    limit = config.diff_limit()
    total = 0
    chosen: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for path in candidates:
        if path in seen:
            continue
        seen.add(path)
        rel = path.relative_to(root)
        if _hidden(rel):
            continue
        if is_secret_name(path.stem):
            skipped.append({"path": rel.as_posix(), "reason": "the name looks like a credential"})
            continue
        try:
            size = path.stat().st_size
        except OSError:
            continue
        try:
            secret = holds_credential(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        if secret:
            skipped.append({"path": rel.as_posix(), "reason": "it assigns what looks like a credential"})
            continue
        if total + size > limit:
            skipped.append({"path": rel.as_posix(), "reason": "over MODELTRACK_DIFF_LIMIT (the cap of captured code)"})
            continue
        total += size
        chosen.append({"path": rel.as_posix(), "size": size})
    rec.update(snapshot=chosen, skipped=skipped, snapshot_bytes=total)
    return rec


__all__ = ["REPRODUCES_VAR", "code_root", "describe", "entry_script", "holds_credential", "reproduces"]
