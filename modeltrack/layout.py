"""The store layout: key names, record folding and the naming rules of the registry (used by
the registry, gc/verify, tracking and the transfer engine alike)."""

from __future__ import annotations

import re
import time
from typing import Any

from .blobs import blob_key
from .errors import InvalidValueError

FINISHED, FAILED, RUNNING, CRASHED = "finished", "failed", "running", "crashed"
SKIPPED = "skipped"  # a number whose claim was never published: not a version
#: shortest gc grace period while any version of the store is running (seconds)
RUNNING_GRACE_SECONDS = 900.0


def vkey(model: str, number: int, name: str = "") -> str:
    base = f"models/{model}/versions/{number}"
    return f"{base}/{name}" if name else base


_DIGITS = re.compile(r"[0-9]{1,18}")
_EVENT_NAME = re.compile(r"[0-9]{8,18}\.json")
_CHUNK = re.compile(r"metrics/[0-9]{6,18}\.json")
#: longest tag value, in characters (names: 256)
MAX_TAG_VALUE = 4096
#: longest release notes, in characters
MAX_NOTES = 1_000_000


def _num(name: str) -> int | None:
    return int(name) if _DIGITS.fullmatch(name) else None


def _unique_name() -> str:
    """A name for an event that no other writer can take: time-ordered, then random."""
    import uuid

    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


def fold_aliases(events: list[dict[str, Any]]) -> dict[str, int]:
    """Replay alias events into the current alias → version map."""
    current: dict[str, int] = {}
    for ev in events:
        if ev.get("to") is None:
            current.pop(ev["alias"], None)
        else:
            current[ev["alias"]] = int(ev["to"])
    return dict(sorted(current.items()))


def fold_tags(events: list[dict[str, Any]]) -> dict[int, dict[str, str | None]]:
    """Replay tag events (oldest first) into each version's current tags. An event names
    the keys it sets and removes; events of the first format hold the whole set."""
    out: dict[int, dict[str, str | None]] = {}
    for ev in events:
        number = int(ev["version"])
        if "tags" in ev:
            out[number] = dict(ev["tags"])
            continue
        current = out.setdefault(number, {})
        current.update(ev.get("set") or {})
        for key in ev.get("remove") or ():
            current.pop(key, None)
    return {n: t for n, t in out.items() if t}


def check_tag_value(key: str, value: object) -> str | None:
    """A tag value as stored: ``None`` (a bare label) or a string of at most ``MAX_TAG_VALUE``."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE:
        raise InvalidValueError(
            f"tag {key!r} has a value of {len(text):,} characters; the limit is {MAX_TAG_VALUE:,}: store "
            f"large values as notes or an artifact",
            value=key,
        )
    return text


def check_tag(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > 256 or any(c in key for c in "\n\r\t"):
        from .errors import InvalidNameError

        raise InvalidNameError(f"invalid tag name {key!r}: use 1-256 characters without newlines or tabs", name=key)
    return key


def consolidate(events: list[dict[str, Any]], *, keep_released: bool = False) -> dict[str, Any]:
    """Fold the events of a running version into params, data, artifacts, framework, info."""
    params: dict[str, Any] = {}
    data: dict[str, dict[str, Any]] = {}
    artifacts: dict[str, dict[str, Any]] = {}
    released: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    goals: dict[str, str] = {}
    framework = None
    parent = None
    for ev in events:
        t = ev.get("type")
        if t == "params":
            params.update(ev["params"])
        elif t == "data":
            data[ev["name"]] = {k: v for k, v in ev.items() if k != "type"}
        elif t == "artifact":
            art = {k: v for k, v in ev.items() if k != "type"}
            if art.get("best"):
                for other in artifacts.values():
                    if other.get("kind") == art.get("kind"):
                        other.pop("best", None)
            artifacts[art["path"]] = art
        elif t == "release":
            gone = artifacts.pop(ev["path"], None)
            if gone is not None:
                released.append(gone)
        elif t == "best":
            for path, art in artifacts.items():
                if art.get("kind") == ev.get("kind", art.get("kind")):
                    art.pop("best", None)
                if path == ev["path"]:
                    art["best"] = True
        elif t == "framework":
            framework = ev["name"]
        elif t == "info":
            info.update(ev["info"])
        elif t == "goal":
            goals[ev["name"]] = ev["goal"]
        elif t == "parent":
            parent = ev["parent"]
    out: dict[str, Any] = {
        "params": params,
        "data": list(data.values()),
        "artifacts": list(artifacts.values()) + (released if keep_released else []),
        "framework": framework,
        "info": info,
        "goals": goals,
        "parent": parent,
    }
    return out


__all__ = [
    "CRASHED",
    "FAILED",
    "FINISHED",
    "MAX_NOTES",
    "MAX_TAG_VALUE",
    "RUNNING",
    "RUNNING_GRACE_SECONDS",
    "SKIPPED",
    "blob_key",
    "check_tag",
    "check_tag_value",
    "consolidate",
    "fold_aliases",
    "fold_tags",
    "vkey",
]
