"""Small helpers shared by the core: time, process identity, metric goals."""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone
from typing import Any

from .goals import best_of, metric_goal  # noqa: F401 - kept importable from here


def now_iso() -> str:
    """The current UTC time as ISO-8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def json_number(value: Any) -> Any:
    """NaN and infinities as ``None`` for strict JSON output."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def hostname() -> str:
    """This machine's host name (``os.uname``; importing ``socket`` costs import time)."""
    return os.uname().nodename


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if fields and fields[0] == b"Z":
        return "zombie"
    return fields[19].decode() if len(fields) > 19 else None


def process_identity() -> dict[str, Any]:
    """Who is writing: host, boot, pid and the pid's start time (guards against pid reuse).
    Read once per process (a fork is a new process: the pid tells)."""
    global _IDENTITY
    pid = os.getpid()
    if _IDENTITY is None or _IDENTITY["pid"] != pid:
        _IDENTITY = {"host": hostname(), "boot_id": _boot_id(), "pid": pid, "pid_start": _proc_start(pid)}
    return dict(_IDENTITY)


_IDENTITY: dict[str, Any] | None = None


def process_alive(ident: dict[str, Any]) -> bool | None:
    """True/False when ``ident`` is a process of this machine (same boot), else None."""
    if ident.get("host") != hostname():
        return None
    boot = _boot_id()
    if boot is not None and ident.get("boot_id") not in (None, boot):
        return False  # same host name, but rebooted since: the writer is gone
    pid = ident.get("pid")
    if not isinstance(pid, int):
        return None
    start = _proc_start(pid)
    if start is None or start == "zombie":
        if start is None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return ident.get("pid_start") is None
        return False
    want = ident.get("pid_start")
    return want is None or want == start
