"""Schema checks for every record of the store, so that damage is reported, never trusted.

Each JSON file of the layout (see :mod:`modeltrack.repo`) has a *kind*; :func:`kind_of`
maps a store key to it, :func:`loads` parses a file's bytes safely and :func:`validate`
checks a parsed record against its kind's schema. Both raise
:class:`~modeltrack.errors.CorruptRecordError` naming the key, what is wrong and how to fix
it, so a reader never acts on a record of the wrong shape (say an artifact whose
``sha256`` is ``"../../etc"``)::

    obj = records.validate(records.kind_of(key), records.loads(data, key), key)

or in one call ``records.load(data, key)``.

Kinds (:data:`KINDS`): ``format``, ``claim``, ``final``, ``artifact``, ``records``,
``metrics``, ``series``, ``heartbeat``, ``environment``, ``notes``, ``alias``, ``tag``,
``deleted``. Unknown keys are allowed in every record (fields are checked, not listed), so
a newer writer of the same store format may add some.

Metric series can hold millions of points: each column is checked whole, in C (``sum``
over it, which refuses anything but numbers; an exact type scan only when that refuses),
at a few percent of the time ``json.loads`` takes for the same file.

Standard library only (besides :mod:`modeltrack.errors`): this module is imported by
every read path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .errors import CorruptRecordError

__all__ = ["DEPTH_SCAN_LIMIT", "KINDS", "MAX_DEPTH", "check_sha256", "kind_of", "load", "loads", "validate"]

MAX_DEPTH = 64
"""Deepest nesting of JSON arrays and objects :func:`loads` accepts."""
DEPTH_SCAN_LIMIT = 4 * 1024 * 1024
"""Inputs up to this size get the exact depth scan (about 1 ms per MiB, an eighth of
parsing); larger ones (metric series) rely on the parser's own recursion guard, about
1000 levels, which :func:`loads` also reports as damage."""

STATUSES = ("finished", "failed", "crashed", "running")
EVENT_TYPES = ("params", "data", "artifact", "release", "best", "framework", "info", "goal", "parent")
GOALS = ("min", "max")
COLUMNS = ("step", "epoch", "value", "time")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_NUM = frozenset({int, float})
# Metric columns tolerate JSON true/false as 1/0 (the fast check cannot tell them apart).
_COLUMN_TYPES = {
    "step": frozenset({int, bool}),
    "epoch": frozenset({int, bool, type(None)}),
    "value": frozenset({int, float, bool}),
    "time": frozenset({int, float, bool}),
}
_COLUMN_WANT = {"step": "an int", "epoch": "an int or null", "value": "a number", "time": "a number"}

# Depth scan: keep only brackets and quotes (after dropping escaped backslashes and quotes),
# drop strings, then peel one level of empty pairs per pass.
_KEEP = frozenset(b'[]{}"')
_DROP = bytes(b for b in range(256) if b not in _KEEP)
_STRINGS = re.compile(rb'"[^"]*"')
_PAIRS = re.compile(rb"\[\]|\{\}")

_FIX_VERSION = "run `modeltrack verify`; restore the file from a copy or remove the version with `modeltrack gc`"
_FIX_FORMAT = (
    "restore FORMAT from a copy of the store (it holds "
    '{"format": <number>, "id": <hex>, "created_at": <time>}) or use another store'
)
_FIX_EVENT = "run `modeltrack verify`; restore the file from a copy (deleting it drops that change from the history)"
_FIX_TOMBSTONE = 'restore the file from a copy or rewrite it as {"time": "<ISO-8601 time>"}; the version stays deleted'
_FIX_HEARTBEAT = "delete the file: it only holds the writer's last sign of life (a running writer rewrites it)"
_FIX_NOTES = "set the notes again with `modeltrack notes`, or delete the file to drop them"


class _Bad(Exception):
    """Internal: what is wrong with a record (turned into CorruptRecordError by validate)."""


# ---------------------------------------------------------------------- helpers
def check_sha256(s: object) -> bool:
    """True when ``s`` is a SHA-256 hex digest: exactly 64 lowercase hex characters."""
    return type(s) is str and len(s) == 64 and _SHA256.fullmatch(s) is not None


def _tname(v: object) -> str:
    if v is None:
        return "null"
    return {dict: "object", list: "list", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(v), type(v).__name__
    )


def _show(v: object) -> str:
    """A value for a message: scalars quoted and cut short, containers by type."""
    if isinstance(v, (dict, list)):
        return _tname(v)
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _got(v: object) -> str:
    return f"got {_show(v)}" if isinstance(v, (str, int, float)) and not isinstance(v, bool) else f"got {_tname(v)}"


def _obj(v: object, what: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise _Bad(f"{what} must be an object, {_got(v)}")
    return v


def _field(d: dict[str, Any], name: str, check: Callable[[Any, str], Any], where: str, *, required: bool) -> None:
    if name in d:
        check(d[name], f"{where}{name!r}")
    elif required:
        raise _Bad(f"{where}{name!r} is missing")


def _str(v: object, what: str) -> None:
    if type(v) is not str:
        raise _Bad(f"{what} must be a string, {_got(v)}")


def _str_or_none(v: object, what: str) -> None:
    if v is not None and type(v) is not str:
        raise _Bad(f"{what} must be a string or null, {_got(v)}")


def _int(v: object, what: str) -> None:
    if type(v) is not int:
        raise _Bad(f"{what} must be an integer, {_got(v)}")


def _count(v: object, what: str) -> None:
    if type(v) is not int or v < 0:
        raise _Bad(f"{what} must be an integer >= 0, {_got(v)}")


def _number(v: object, what: str) -> None:
    if v is not None and type(v) not in _NUM:
        raise _Bad(f"{what} must be a number or null, {_got(v)}")


def _vnum(v: object, what: str) -> None:
    if type(v) is not int or v < 1:
        raise _Bad(f"{what} must be a version number (an integer >= 1), {_got(v)}")


def _vnum_or_none(v: object, what: str) -> None:
    if v is not None:
        _vnum(v, what)


def _int_or_none(v: object, what: str) -> None:
    if v is not None and type(v) is not int:
        raise _Bad(f"{what} must be an integer or null, {_got(v)}")


def _bool(v: object, what: str) -> None:
    if type(v) is not bool:
        raise _Bad(f"{what} must be true or false, {_got(v)}")


def _dict(v: object, what: str) -> None:
    _obj(v, what)


def _dict_or_none(v: object, what: str) -> None:
    if v is not None:
        _obj(v, what)


def _list(v: object, what: str) -> list[Any]:
    if type(v) is not list:
        raise _Bad(f"{what} must be a list, {_got(v)}")
    return v


def _goal(v: object, what: str) -> None:
    if v not in GOALS or type(v) is not str:
        raise _Bad(f"{what} must be 'min' or 'max', {_got(v)}")


def _goal_or_none(v: object, what: str) -> None:
    if v is not None:
        _goal(v, what)


def _path(v: object, what: str) -> None:
    """A path inside a version: relative, no '..' or empty part, no drive, no NUL."""
    if type(v) is not str:
        raise _Bad(f"{what} must be a string, {_got(v)}")
    parts = v.replace("\\", "/").split("/")
    if not v or v[0] in "/\\" or "\x00" in v or ":" in parts[0] or any(p in ("", "..") for p in parts):
        raise _Bad(f"{what} must be a relative path inside the version (no '..', no leading '/'), {_got(v)}")


def _sha(v: object, what: str) -> None:
    if not check_sha256(v):
        raise _Bad(f"{what} must be 64 lowercase hex characters, {_got(v)}")


def _tag_map(v: object, what: str) -> None:
    for name, value in _obj(v, what).items():
        if value is not None and type(value) is not str:
            raise _Bad(f"{what}[{name!r}] must be a string or null, {_got(value)}")


def _str_list(v: object, what: str) -> None:
    for i, item in enumerate(_list(v, what)):
        if type(item) is not str:
            raise _Bad(f"{what}[{i}] must be a string, {_got(item)}")


def _status(v: object, what: str) -> None:
    if type(v) is not str or v not in STATUSES:
        raise _Bad(f"{what} must be one of {', '.join(STATUSES)}, {_got(v)}")


# ---------------------------------------------------------------------- kinds
def _format(obj: Any) -> None:
    d = _obj(obj, "FORMAT")
    _field(d, "format", _int, "", required=True)
    _field(d, "id", _str_or_none, "", required=False)
    _field(d, "created_at", _str_or_none, "", required=False)


def _claim(obj: Any) -> None:
    d = _obj(obj, "the claim")
    _field(d, "created_at", _str, "", required=True)
    _field(d, "writer", _dict, "", required=True)
    _field(d, "model", _str, "", required=True)
    _field(d, "version", _vnum, "", required=True)
    _field(d, "source", _dict_or_none, "", required=False)


def _artifact_fields(d: dict[str, Any], where: str) -> None:
    _field(d, "path", _path, where, required=True)
    _field(d, "sha256", _sha, where, required=True)
    _field(d, "size", _count, where, required=True)
    _field(d, "kind", _str, where, required=True)
    _field(d, "best", _bool, where, required=False)
    _field(d, "step", _int_or_none, where, required=False)
    _field(d, "epoch", _int_or_none, where, required=False)
    _field(d, "metadata", _dict, where, required=False)
    _field(d, "time", _str_or_none, where, required=False)


def _artifact_label(i: int, a: object) -> str:
    path = a.get("path") if type(a) is dict else None
    return f"artifact {i} ({_show(path)}): " if type(path) is str else f"artifact {i}: "


def _artifact(obj: Any, where: str = "") -> None:
    _artifact_fields(_obj(obj, where.rstrip(": ") or "the artifact record"), where)


def _artifacts(v: object, what: str) -> None:
    for i, a in enumerate(_list(v, what)):
        label = _artifact_label(i, a)
        _artifact_fields(_obj(a, label.rstrip(": ")), label)


def _data_list(v: object, what: str) -> None:
    for i, entry in enumerate(_list(v, what)):
        d = _obj(entry, f"data entry {i}")
        _field(d, "name", _str, f"data entry {i}: ", required=True)


def _goals(v: object, what: str) -> None:
    for name, goal in _obj(v, what).items():
        _goal(goal, f"{what}[{name!r}]")


def _metric_summaries(v: object, what: str) -> None:
    for name, m in _obj(v, what).items():
        where = f"metric {name!r}: "
        d = _obj(m, f"metric {name!r}")
        _field(d, "last", _number, where, required=False)
        _field(d, "best", _number, where, required=False)
        _field(d, "goal", _goal_or_none, where, required=False)
        _field(d, "count", _count, where, required=False)


def _final(obj: Any) -> None:
    d = _obj(obj, "final.json")
    _field(d, "status", _status, "", required=True)
    _field(d, "created_at", _str_or_none, "", required=True)
    _field(d, "finished_at", _str_or_none, "", required=True)
    _field(d, "error", _str_or_none, "", required=True)
    _field(d, "params", _dict, "", required=True)
    _field(d, "data", _data_list, "", required=True)
    _field(d, "artifacts", _artifacts, "", required=True)
    _field(d, "framework", _str_or_none, "", required=True)
    _field(d, "info", _dict, "", required=True)
    _field(d, "goals", _goals, "", required=True)
    _field(d, "parent", _str_or_none, "", required=True)
    _field(d, "metrics", _metric_summaries, "", required=True)
    _field(d, "changes", _dict_or_none, "", required=False)
    _field(d, "label", _str_or_none, "", required=False)


def _event(ev: Any, i: int) -> None:
    d = _obj(ev, f"event {i}")
    t = d.get("type")
    if type(t) is not str or t not in EVENT_TYPES:
        raise _Bad(f"event {i}: 'type' must be one of {', '.join(EVENT_TYPES)}, {_got(t)}")
    where = f"event {i} ({t}): "
    if t == "params":
        _field(d, "params", _dict, where, required=True)
    elif t == "data":
        _field(d, "name", _str, where, required=True)
    elif t == "artifact":
        _artifact_fields(d, where)
    elif t in ("release", "best"):
        _field(d, "path", _path, where, required=True)
        if t == "best":
            _field(d, "kind", _str_or_none, where, required=False)
    elif t == "framework":
        _field(d, "name", _str, where, required=True)
    elif t == "info":
        _field(d, "info", _dict, where, required=True)
    elif t == "goal":
        _field(d, "name", _str, where, required=True)
        _field(d, "goal", _goal, where, required=True)
    else:  # parent
        _field(d, "parent", _str_or_none, where, required=True)


def _records(obj: Any) -> None:
    for i, ev in enumerate(_list(obj, "a records file")):
        _event(ev, i)


def _column_ok(col: list[Any], name: str) -> bool:
    """Whether every entry of a metric column has the column's type.

    Fast path: ``sum`` runs in C at a few ns per entry and raises TypeError on anything
    that is not a number (strings, null, lists, objects); an int result proves every entry
    an int. It lets JSON ``true``/``false`` through as 1/0, so the exact scan below does
    too. Anything the fast path refuses (a null epoch, an int too big for a float) gets
    the exact type scan, which also finds the entry to blame.
    """
    try:
        if name == "step":
            return type(sum(col)) is int or _COLUMN_TYPES[name].issuperset(map(type, col))
        if name == "epoch":
            if not col or (col[0] is None and col.count(None) == len(col)):
                return True  # no epochs logged: all null
            return type(sum(col)) is int or _COLUMN_TYPES[name].issuperset(map(type, col))
        sum(col, 0.0)
        return True
    except (TypeError, OverflowError):
        return _COLUMN_TYPES[name].issuperset(map(type, col))


def _column_problem(col: list[Any], name: str) -> str:
    """Slow path, only once a column is known to be bad: say where."""
    allowed = _COLUMN_TYPES[name]
    for i, x in enumerate(col):
        if type(x) not in allowed:
            return f"{name}[{i}] must be {_COLUMN_WANT[name]}, {_got(x)}"
    return f"{name!r} holds a value of the wrong type"  # pragma: no cover - the fast check said so


def _series(obj: Any) -> None:
    for metric, cols in _obj(obj, "a metric series file").items():
        if type(cols) is not dict:
            raise _Bad(f"metric {metric!r} must be an object of step/epoch/value/time lists, {_got(cols)}")
        n = -1
        for name in COLUMNS:
            col = cols.get(name)
            if type(col) is not list:
                what = "is missing" if name not in cols else f"must be a list, {_got(col)}"
                raise _Bad(f"metric {metric!r}: {name!r} {what}")
            if n < 0:
                n = len(col)
            elif len(col) != n:
                raise _Bad(
                    f"metric {metric!r}: columns differ in length ({n} steps, {len(col)} {name} values); "
                    "every point needs a step, epoch, value and time"
                )
            if not _column_ok(col, name):
                raise _Bad(f"metric {metric!r}: {_column_problem(col, name)}")


def _heartbeat(obj: Any) -> None:
    _field(_obj(obj, "the heartbeat"), "time", _str, "", required=True)


def _code_record(v: object, what: str) -> None:
    if v is None:
        return
    d = _obj(v, what)
    for name in ("root", "script", "cwd"):
        _field(d, name, _str_or_none, f"{what}: ", required=False)
    for name in ("snapshot", "skipped"):
        for i, entry in enumerate(_list(d.get(name, []), f"{what}[{name!r}]")):
            _field(_obj(entry, f"{what}[{name!r}][{i}]"), "path", _path, f"{what}[{name!r}][{i}]: ", required=True)


def _environment(obj: Any) -> None:
    d = _obj(obj, "environment.json")
    # what `modeltrack reproduce` reads (all optional: older records have none of it)
    _field(d, "command", _str_list, "", required=False)
    _field(d, "env", _tag_map, "", required=False)
    _field(d, "code", _code_record, "", required=False)
    _field(d, "randomness", _dict_or_none, "", required=False)
    _field(d, "package_sources", _dict_or_none, "", required=False)
    _field(d, "packages_imported", _str_list, "", required=False)


def _notes(obj: Any) -> None:
    d = _obj(obj, "notes.json")
    _field(d, "text", _str, "", required=True)
    _field(d, "time", _str, "", required=True)
    _field(d, "actor", _str_or_none, "", required=False)


def _alias(obj: Any) -> None:
    d = _obj(obj, "an alias event")
    _field(d, "alias", _str, "", required=True)
    _field(d, "from", _vnum_or_none, "", required=True)
    _field(d, "to", _vnum_or_none, "", required=True)
    _field(d, "action", _str, "", required=True)
    _field(d, "reason", _str_or_none, "", required=False)
    _field(d, "seq", _int, "", required=True)
    _field(d, "time", _str, "", required=True)
    _field(d, "actor", _str_or_none, "", required=False)


def _tag(obj: Any) -> None:
    d = _obj(obj, "a tag event")
    _field(d, "version", _vnum, "", required=True)
    if "tags" not in d and "set" not in d and "remove" not in d:
        raise _Bad("a tag event needs 'tags' (the full set) or 'set'/'remove' (a change), and has neither")
    _field(d, "tags", _tag_map, "", required=False)
    _field(d, "set", _tag_map, "", required=False)
    _field(d, "remove", _str_list, "", required=False)
    _field(d, "seq", _int, "", required=False)
    _field(d, "time", _str, "", required=True)
    _field(d, "actor", _str_or_none, "", required=False)


def _evaluation(obj: Any) -> None:
    d = _obj(obj, "an evaluation")
    _field(d, "name", _str, "", required=True)
    if not isinstance(d.get("metrics"), dict):
        raise _Bad("'metrics' must be an object of name to number")
    for k, v in d["metrics"].items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise _Bad(f"metric {k!r} must be a number or null, got {type(v).__name__}")
    if not isinstance(d.get("data", []), list):
        raise _Bad("'data' must be a list")
    _field(d, "created_at", _str, "", required=True)
    _field(d, "actor", _str_or_none, "", required=False)
    _field(d, "source", _str_or_none, "", required=False)


def _deleted(obj: Any) -> None:
    _field(_obj(obj, "the tombstone"), "time", _str, "", required=True)


_VALIDATORS: dict[str, Callable[[Any], None]] = {
    "format": _format,
    "claim": _claim,
    "final": _final,
    "artifact": _artifact,
    "records": _records,
    "metrics": _series,
    "series": _series,
    "heartbeat": _heartbeat,
    "environment": _environment,
    "notes": _notes,
    "alias": _alias,
    "tag": _tag,
    "deleted": _deleted,
    "evaluation": _evaluation,
}
KINDS: tuple[str, ...] = tuple(_VALIDATORS)
"""Every record kind :func:`validate` knows."""

_FIXES = {
    "format": _FIX_FORMAT,
    "alias": _FIX_EVENT,
    "tag": _FIX_EVENT,
    "deleted": _FIX_TOMBSTONE,
    "heartbeat": _FIX_HEARTBEAT,
    "notes": _FIX_NOTES,
    "evaluation": "restore the file from a copy, or delete it to drop that evaluation (the version is unaffected)",
}


def fix_for(kind: str | None) -> str:
    """How to repair a damaged record of ``kind`` (one clause, for error messages)."""
    return _FIXES.get(kind or "", _FIX_VERSION)


# ---------------------------------------------------------------------- public API
def validate(kind: str, obj: Any, key: str) -> Any:
    """Check ``obj``, parsed from store key ``key``, against the schema of ``kind``.

    Returns:
        ``obj`` itself, unchanged.

    Raises:
        CorruptRecordError: ``obj`` does not have the shape of a ``kind`` record; the
            message names ``key``, what is wrong and how to repair it.
        ValueError: ``kind`` is not one of :data:`KINDS` (a programming error).
    """
    check = _VALIDATORS.get(kind)
    if check is None:
        raise ValueError(f"unknown record kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        check(obj)
    except _Bad as bad:
        raise CorruptRecordError(f"{key} is damaged: {bad}; {fix_for(kind)}", key=key) from None
    return obj


_VERSION_FILES = {
    "claim.json": "claim",
    "final.json": "final",
    "series.json": "series",
    "heartbeat.json": "heartbeat",
    "environment.json": "environment",
    "notes.json": "notes",
}


def kind_of(key: str) -> str | None:
    """The record kind of store key ``key`` by the layout, or None (blobs, ``code.diff``,
    anything not a record)."""
    if key == "FORMAT":
        return "format"
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != "models" or not parts[1]:
        return None
    area = parts[2]
    if len(parts) == 4:
        name = parts[3]
        if area in ("aliases", "tags"):
            return ("alias" if area == "aliases" else "tag") if name.endswith(".json") and len(name) > 5 else None
        if area == "deleted":
            return "deleted" if name.isdigit() else None
        return None
    if area != "versions" or not parts[3].isdigit():
        return None
    if len(parts) == 5:
        return _VERSION_FILES.get(parts[4])
    if len(parts) == 6 and parts[4] in ("records", "metrics") and parts[5].endswith(".json") and len(parts[5]) > 5:
        return parts[4]
    if len(parts) == 6 and parts[4] == "evaluations" and parts[5].endswith(".json") and len(parts[5]) > 5:
        return "evaluation"
    return None


def _too_deep(data: bytes, cap: int) -> bool:
    """Whether arrays/objects in JSON text ``data`` nest deeper than ``cap`` (C-speed scans)."""
    if data.count(b"[") + data.count(b"{") <= cap:
        return False  # cannot nest deeper than it has openings (the usual case: one scan)
    s = data.replace(b"\\\\", b"").replace(b'\\"', b"")  # escapes cannot end a string now
    s = _STRINGS.sub(b"", s.translate(None, _DROP))  # brackets inside strings do not count
    for _ in range(cap):
        if not s:
            return False
        peeled = _PAIRS.sub(b"", s)
        if len(peeled) == len(s):
            return False  # unbalanced: json.loads says where
        s = peeled
    return bool(s)


def loads(data: bytes | bytearray | memoryview | str, key: str) -> Any:
    """Parse the JSON record stored at ``key`` (UTF-8; NaN and infinities allowed).

    Raises:
        CorruptRecordError: not UTF-8, not JSON, or nested deeper than :data:`MAX_DEPTH`
            (inputs over :data:`DEPTH_SCAN_LIMIT` bytes: deeper than the parser's recursion
            guard); the message names ``key``.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    fix = fix_for(kind_of(key))
    if len(raw) <= DEPTH_SCAN_LIMIT and _too_deep(raw, MAX_DEPTH):
        raise CorruptRecordError(
            f"{key} is damaged (arrays or objects nested deeper than {MAX_DEPTH} levels); {fix}", key=key
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CorruptRecordError(f"{key} is damaged ({exc.__class__.__name__}: {exc}); {fix}", key=key) from exc


def load(data: bytes | bytearray | memoryview | str, key: str) -> Any:
    """:func:`loads` then, when the layout gives ``key`` a kind, :func:`validate`."""
    obj = loads(data, key)
    kind = kind_of(key)
    return obj if kind is None else validate(kind, obj, key)
