"""Loading versions back: ``load(REF)`` returns the framework object, ``kind="path"`` a file."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from . import config
from .errors import ModelTrackError, UntrustedArtifactError, VersionNotFoundError
from .repo import Repo, blob_key
from .stores import Store
from .tracking import safe_artifact_path

#: framework recorded on the version → integration module that knows how to load it
LOADERS = {
    "lightning": "modeltrack.integrations.lightning",
    "pytorch_lightning": "modeltrack.integrations.lightning",
    "keras": "modeltrack.integrations.keras",
    "sklearn": "modeltrack.integrations.sklearn",
}
#: file suffixes whose loading can execute code
UNSAFE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".ckpt", ".pt", ".pth", ".bin")


def pick_artifact(record: dict[str, Any], path: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """The artifact ``load`` would use: ``path`` if given, else the model file, else the best
    checkpoint, else the last checkpoint."""
    arts = record.get("artifacts", [])
    ref = f"{record['model']}@v{record['version']}"
    if path is not None:
        path = safe_artifact_path(path)
        for a in arts:
            if a["path"] == path:
                return a
        raise VersionNotFoundError(
            f"{ref} has no artifact {path!r}; it has: {', '.join(a['path'] for a in arts) or 'none'}", ref=ref
        )
    kinds = [kind] if kind else ["model", "checkpoint"]
    for k in kinds:
        of_kind = [a for a in arts if a.get("kind") == k]
        if of_kind:
            best = [a for a in of_kind if a.get("best")]
            return (best or of_kind)[-1]
    raise VersionNotFoundError(
        f"{ref} has no {' or '.join(kinds)} artifact to load; its artifacts: "
        f"{', '.join(a['path'] for a in arts) or 'none'}",
        ref=ref,
    )


def artifact_file(
    repo: Repo,
    ref: str,
    *,
    path: str | None = None,
    kind: str | None = None,
    dest: str | os.PathLike[str] | None = None,
    record: dict[str, Any] | None = None,
) -> Path:
    """A local file holding the artifact (the blob itself for local stores)."""
    record = record or repo.version(ref, series=False, environment=False)
    art = pick_artifact(record, path, kind)
    key = blob_key(art["sha256"])
    local = repo.store.local_path(key)
    name = Path(art["path"]).name
    if local is not None and dest is None:
        if not local.is_file():
            raise ModelTrackError(f"the content of {art['path']} is missing from the store; run `modeltrack verify`")
        # Frameworks pick the loader by suffix: expose the blob under its real name.
        view = _cache_dir(repo) / art["sha256"][:16] / name
        if not view.exists():
            view.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.symlink(local, view)
            except FileExistsError:
                pass
        return view
    target = Path(dest) / name if dest is not None else _cache_dir(repo) / art["sha256"][:16] / name
    if not target.exists():
        repo.store.get_file(key, target)
    return target


def _cache_dir(repo: Repo) -> Path:
    import hashlib

    return Path(config.cache_dir()) / hashlib.sha256(repo.store.uri.encode()).hexdigest()[:12]


def load(
    ref: str,
    kind: str = "model",
    *,
    store: Store | str | None = None,
    trust: bool | None = None,
    path: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load a version back.

    Args:
        ref: ``NAME``, ``NAME@v3``, ``NAME@production``…
        kind: ``"model"`` (the framework object), ``"path"`` (a local file path), or
            ``"checkpoint"`` (the framework object from the best/last checkpoint).
        trust: allow formats that execute code on load (pickle, joblib, torch checkpoints).
            Default ``MODELTRACK_TRUST``; required for stores you did not write yourself.
        path: a specific artifact path inside the version.

    Raises:
        UntrustedArtifactError: the artifact can execute code and ``trust`` is not given.
        ImportError: the framework (or the model's class) cannot be imported.
    """
    repo = Repo(store)
    record = repo.version(ref, series=False, environment=False)
    if kind == "path":
        return str(artifact_file(repo, ref, path=path, record=record))
    art = pick_artifact(record, path, None if kind == "model" else kind)
    file = artifact_file(repo, ref, path=art["path"], record=record)
    trusted = config.trust_store() if trust is None else trust
    if file.suffix in UNSAFE_SUFFIXES and not trusted:
        raise UntrustedArtifactError(
            f"{art['path']} of {record['model']}@v{record['version']} is a {file.suffix} file, which can "
            f"run code when loaded; if you trust this store pass trust=True (CLI: --trust) or set MODELTRACK_TRUST=1"
        )
    framework = record.get("framework")
    module_name = LOADERS.get(framework or "")
    if module_name is None:
        raise ModelTrackError(
            f"{record['model']}@v{record['version']} was recorded by framework {framework!r}, which modeltrack "
            f"cannot load; use load(..., kind='path') to get the file"
        )
    module = importlib.import_module(module_name)
    return module.load_artifact(file, record=record, artifact=art, **kwargs)
