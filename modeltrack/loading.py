"""Loading versions back: ``load(REF)`` returns the framework object, ``kind="path"`` a file."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from . import config
from .blobs import fetch_verified
from .errors import ModelTrackError, UntrustedArtifactError, VersionNotFoundError
from .plugins import loader_for
from .refs import safe_artifact_path
from .repo import Repo
from .stores import Store


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
    """A local copy of the artifact, checked against its recorded SHA-256.

    The copy lives in the local cache (``MODELTRACK_CACHE``) unless ``dest`` is given; it is
    written whole and only after its content matched the record, so a damaged or replaced
    blob is never handed out.

    Raises:
        CorruptRecordError: the stored content does not match its checksum, or is a link.
        VersionNotFoundError: the version has no such artifact.
    """
    record = record or repo.version(ref, series=False, environment=False)
    art = pick_artifact(record, path, kind)
    sha = str(art["sha256"])  # checked when the record was read (modeltrack.records)
    name = Path(art["path"]).name
    if dest is not None:
        target = Path(dest) / name
    else:
        target = _cache_dir(repo) / sha[:16] / name
        if target.is_file() and not target.is_symlink() and target.stat().st_size == art.get("size", -1):
            return target  # verified when it was written into the cache
    fetch_verified(repo.store, sha, target, what=f"{art['path']} of {record['model']}@v{record['version']}")
    return target


def import_recorded_class(target: str | None, ref: str, *, what: str = "the class") -> type:
    """The class a version recorded as ``"module:Qualname"`` (e.g. its framework's
    ``info.module_class``), imported here.

    Args:
        target: ``"package.module:Outer.Inner"`` (``None`` or empty: the version recorded none).
        ref: the version, for messages (which suggest ``load(ref, trust=True, cls=...)``).
        what: what the class is, for messages (``"the LightningModule"``).

    Raises:
        ImportError: no class is recorded, the class is defined inside a function, its module
            or attribute cannot be imported, or it is not a class; the message says how to fix it.
    """
    if not target:
        raise ImportError(
            f"{ref} does not record {what} class; pass it: modeltrack.load({ref!r}, trust=True, cls=YourModule)"
        )
    module_name, _, qualname = target.partition(":")
    fix = (
        f"make it importable (run from the project directory, or pip install the package that defines it) "
        f"or pass the class: modeltrack.load({ref!r}, trust=True, cls={qualname.split('.')[-1] or 'YourModule'})"
    )
    if "<locals>" in qualname:
        raise ImportError(
            f"{ref} was trained with {target}, a class defined inside a function, which cannot be "
            f"imported; define it at module level, or pass it: modeltrack.load({ref!r}, trust=True, "
            f"cls=...)",
            name=module_name,
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"{ref} was trained with {what} {target}, which cannot be imported here ({exc}); {fix}",
            name=module_name,
        ) from exc
    if not isinstance(obj, type):
        raise ImportError(f"{target} recorded for {ref} is not a class; {fix}", name=module_name)
    return obj


def _cache_dir(repo: Repo) -> Path:
    import hashlib

    return Path(config.cache_dir()) / hashlib.sha256(repo.store.uri.encode()).hexdigest()[:12]


def _loader_module(framework: str | None, sniffed: Any, ref: str) -> Any:
    """The integration that loads this version: the recorded framework's, else the one the
    content calls for (a model file logged by hand)."""
    module_name = loader_for(framework, sniffed.name)
    if module_name is None:
        raise ModelTrackError(
            f"{ref} was recorded by framework {framework!r} and its file is {sniffed.description}, which modeltrack "
            f"cannot load; use load(..., kind='path') to get the file"
        )
    return importlib.import_module(module_name)


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

    Whether loading can execute code is decided from the file's content and the loader
    that will read it, never from the file's name: pickle, joblib and torch checkpoints
    always need ``trust``; a Keras archive loads in Keras's safe mode without it.

    Args:
        ref: ``NAME``, ``NAME@v3``, ``NAME@production``…
        kind: ``"model"`` (the framework object), ``"path"`` (a local file path), or
            ``"checkpoint"`` (the framework object from the best/last checkpoint).
        trust: allow formats that execute code on load (pickle, joblib, torch checkpoints).
            Default ``MODELTRACK_TRUST``; required for stores you did not write yourself.
        path: a specific artifact path inside the version.

    Raises:
        UntrustedArtifactError: the artifact can execute code and ``trust`` is not given.
        CorruptRecordError: the stored file does not match its recorded checksum.
        ImportError: the framework (or the model's class) cannot be imported.

    Example:
        >>> model = mt.load("churn@production", trust=True)  # doctest: +SKIP
    """
    repo = Repo(store)
    record = repo.version(ref, series=False, environment=False)
    if kind == "path":
        return str(artifact_file(repo, ref, path=path, record=record))
    art = pick_artifact(record, path, None if kind == "model" else kind)
    file = artifact_file(repo, ref, path=art["path"], record=record)
    label = f"{record['model']}@v{record['version']}"
    from .formats import sniff  # zipfile and friends: only when something is loaded

    sniffed = sniff(file)
    module = _loader_module(record.get("framework"), sniffed, label)
    needs_trust = getattr(module, "artifact_needs_trust", None)
    # A loader that does not say otherwise is assumed to be able to run code.
    unsafe = True if needs_trust is None else bool(needs_trust(sniffed, **kwargs))
    trusted = config.trust_store() if trust is None else trust
    if unsafe and not trusted:
        raise UntrustedArtifactError(
            f"{art['path']} of {label} is {sniffed.description}, which can run code when loaded; if you trust "
            f"this store pass trust=True (CLI: --trust) or set MODELTRACK_TRUST=1"
        )
    return module.load_artifact(file, record=record, artifact=art, sniffed=sniffed.name, **kwargs)
