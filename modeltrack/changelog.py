"""What changed between two versions, and the semantic label a change implies."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from .capture.model import structure_changes
from .layout import vkey

if TYPE_CHECKING:
    from .repo import Repo


def _changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if a == b and not any(isinstance(v, float) and math.isnan(v) for v in a.values()):
        return {"added": {}, "removed": {}, "changed": {}}
    added = {k: b[k] for k in b if k not in a}
    removed = {k: a[k] for k in a if k not in b}
    changed = {k: {"from": a[k], "to": b[k]} for k in a if k in b and a[k] != b[k] and not _both_nan(a[k], b[k])}
    return {"added": added, "removed": removed, "changed": changed}


def _both_nan(x: Any, y: Any) -> bool:
    return isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)


def _deltas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        delta = y - x if isinstance(x, (int, float)) and isinstance(y, (int, float)) else None
        out[k] = {"from": x, "to": y, "delta": delta}
    return out


def _evaluated(v: dict[str, Any]) -> dict[str, Any]:
    """``{"EVAL.METRIC": value}`` of the newest evaluation of each name."""
    out: dict[str, Any] = {}
    for ev in v.get("evaluations") or []:
        out.update({f"{ev.get('name')}.{k}": x for k, x in (ev.get("metrics") or {}).items()})
    return out


def diff_records(va: dict[str, Any], vb: dict[str, Any]) -> dict[str, Any]:
    """Differences between two version records (as returned by :meth:`Repo.version`)."""
    ma = {k: v.get("last") for k, v in va["metrics"].items()}
    mb = {k: v.get("last") for k, v in vb["metrics"].items()}
    metrics = _deltas(ma, mb)
    evaluated = _deltas(_evaluated(va), _evaluated(vb))
    da = {d["name"]: d for d in va.get("data", [])}
    db = {d["name"]: d for d in vb.get("data", [])}
    data = {}
    for k in sorted(set(da) | set(db)):
        fa, fb = da.get(k, {}).get("fingerprint"), db.get(k, {}).get("fingerprint")
        if fa != fb:
            data[k] = {
                "from": fa,
                "to": fb,
                "shape_from": da.get(k, {}).get("shape"),
                "shape_to": db.get(k, {}).get("shape"),
            }
    ea, eb = va.get("environment") or {}, vb.get("environment") or {}
    ga, gb = ea.get("git") or {}, eb.get("git") or {}
    code = {
        "commit": {"from": ga.get("commit"), "to": gb.get("commit")},
        "dirty": {"from": ga.get("dirty"), "to": gb.get("dirty")},
        "diff_sha256": {"from": ea.get("diff_sha256"), "to": eb.get("diff_sha256")},
    }
    code_changed = any(v["from"] != v["to"] for v in code.values())
    packages = _changes(ea.get("packages") or {}, eb.get("packages") or {})
    info_a, info_b = va.get("info", {}), vb.get("info", {})
    arch_a, arch_b = info_a.get("architecture"), info_b.get("architecture")
    structure = structure_changes(info_a.get("structure"), info_b.get("structure")) if arch_a != arch_b else {}
    return {
        "from": f"{va['model']}@v{va['version']}",
        "to": f"{vb['model']}@v{vb['version']}",
        "params": _changes(va.get("params", {}), vb.get("params", {})),
        "metrics": metrics,
        "data": data,
        "code": {"changed": code_changed, **code},
        "packages": packages,
        "architecture": {"changed": arch_a != arch_b, "from": arch_a, "to": arch_b, **structure},
        "framework": {"from": va.get("framework"), "to": vb.get("framework")},
        "evaluations": evaluated,
    }


_SHAPES = re.compile(r"\s*\[[^\]]*\]")


def resized_only(arch: dict[str, Any]) -> bool:
    """Whether an architecture change only changed sizes (a wider hidden layer): the lines
    added and removed are the same once their ``[shapes]`` are left out."""
    added, removed = arch.get("added") or [], arch.get("removed") or []
    if not arch.get("changed") or not (added or removed):
        return False
    return sorted(_SHAPES.sub("", x) for x in added) == sorted(_SHAPES.sub("", x) for x in removed)


def semver_bump(d: dict[str, Any]) -> str | None:
    """The part of ``major.minor.patch`` a diff bumps; ``None`` if nothing changed.

    - major: other training data, or another architecture (layers, steps or modules added,
      removed or of another kind): what the model is has changed;
    - minor: the same architecture with other sizes (a wider hidden layer), or other code;
    - patch: only hyperparameters or package versions changed.
    """
    arch = d["architecture"]
    if d["data"] or (arch["changed"] and not resized_only(arch)):
        return "major"
    if d["code"]["changed"] or arch["changed"]:
        return "minor"
    p = d["params"]
    if p["added"] or p["removed"] or p["changed"] or d["packages"]["changed"]:
        return "patch"
    return None


def bump_label(label: str | None, part: str | None) -> str:
    if not label:
        return "1.0.0"
    try:
        major, minor, patch = (int(x) for x in label.split("."))
    except ValueError:
        return "1.0.0"
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def changelog_entry(
    repo: Repo, model: str, number: int, final: dict[str, Any], environment: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    """The changelog of a version that is finishing (``final`` is its record about to be
    written) against the previous finished version, and the semantic label it implies.

    Returns:
        ``(changes, label)``: ``(None, "1.0.0")`` for a first version; the label is None when
        the previous version has none (unknown rather than wrong).
    """
    key = (repo.store.uri, model)
    recent = _RECENT.get(key)
    if (
        recent is not None
        and recent[0] == number - 1
        and repo.store.exists(vkey(model, number - 1, "final.json"))
        and number - 1 not in repo.deleted(model)
    ):
        prev: int | None = number - 1  # finished by this process just before: no need to read it back
    else:
        prev = repo.previous_finished(model, number)
    if prev is None:
        _RECENT[key] = (number, _summary(model, number, final, environment, "1.0.0"))
        return None, "1.0.0"
    pv = recent[1] if recent is not None and recent[0] == prev else repo.version((model, prev), series=False)
    me = _summary(model, number, final, environment, None)
    d = diff_records(pv, me)
    part = semver_bump(d)
    changes = {
        "against": prev,
        "bump": part,
        **{k: d[k] for k in ("params", "data", "code", "architecture")},
        "packages": d["packages"],
    }
    label = bump_label(pv["label"], part) if pv.get("label") else None
    _RECENT[key] = (number, {**me, "label": label})
    return changes, label


#: per (store, model): the version this process last finished and what its changelog needs of
#: it, so the next version's changelog does not read it back (versions are immutable)
_RECENT: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}


def _summary(
    model: str, number: int, final: dict[str, Any], environment: dict[str, Any], label: str | None
) -> dict[str, Any]:
    return {
        "model": model,
        "version": number,
        "params": final["params"],
        "data": final["data"],
        "metrics": {k: {"last": v["last"]} for k, v in final["metrics"].items()},
        "environment": environment,
        "info": final.get("info", {}),
        "framework": final.get("framework"),
        "label": label,
    }


__all__ = ["bump_label", "changelog_entry", "diff_records", "semver_bump"]
