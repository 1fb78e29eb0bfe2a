"""The one reader of Linux's /proc: process stat fields, command line, environment, memory, CPU.

Every function takes a pid and returns None (or an empty value) when the process is gone or not
readable: a process can exit between any two reads, so callers treat "absent" as a normal
answer. Nothing here looks a process up by name. On a system without /proc (macOS), HAVE_PROC is
False and every reader answers "absent"; monitor/procs.py then falls back to `ps`.

`stat` fields are numbered as in proc(5) minus 3: field 3 (state) is index 0 of `stat_fields`,
because field 2 (comm, in parentheses) may hold spaces and parentheses and is skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
HAVE_PROC = os.path.isdir("/proc/self")

# Indices into stat_fields() (proc(5) field number - 3).
STATE, PPID, PGRP = 0, 1, 2
UTIME, STIME = 11, 12
STARTTIME = 19


def pids() -> list[int]:
    """Every pid listed in /proc now (some may be gone by the time they are read)."""
    if not HAVE_PROC:
        return []
    try:
        return [int(e) for e in os.listdir(PROC) if e.isdigit()]
    except OSError:
        return []


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (index 0 = state), or None when gone or unreadable."""
    if pid <= 0:
        return None
    try:
        raw = (PROC / str(pid) / "stat").read_bytes().decode("ascii", "replace")
    except OSError:
        return None  # gone, never existed, another user's, or vanished mid-read
    rest = raw[raw.rfind(")") + 2:].split()
    return rest or None


def start_ticks(pid: int) -> str | None:
    """When `pid` started, in clock ticks since boot (an identity token together with the pid)."""
    f = stat_fields(pid)
    return f[STARTTIME] if f and len(f) > STARTTIME else None


def state(pid: int) -> str | None:
    """One-letter process state (R, S, D, Z, T ...), or None when gone."""
    f = stat_fields(pid)
    return f[STATE] if f else None


def is_zombie(pid: int) -> bool:
    return state(pid) == "Z"


def parent_and_group(pid: int) -> tuple[int, int] | None:
    """(ppid, pgid) of `pid`, or None when gone."""
    f = stat_fields(pid)
    if not f or len(f) <= PGRP:
        return None
    return int(f[PPID]), int(f[PGRP])


def table() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every process we can see."""
    rows = []
    for pid in pids():
        pg = parent_and_group(pid)
        if pg is not None:
            rows.append((pid, pg[0], pg[1]))
    return rows


def children_map(rows: list[tuple[int, int, int]] | None = None) -> dict[int, list[int]]:
    """ppid -> the pids of its children."""
    kids: dict[int, list[int]] = {}
    for pid, ppid, _pg in table() if rows is None else rows:
        kids.setdefault(ppid, []).append(pid)
    return kids


def descendant_pids(root: int, rows: list[tuple[int, int, int]] | None = None) -> list[int]:
    """Every pid below `root` (children, grandchildren ...), not `root` itself."""
    kids = children_map(rows)
    out, todo, seen = [], [root], {root}
    while todo:
        for c in kids.get(todo.pop(), []):
            if c not in seen:
                seen.add(c)
                out.append(c)
                todo.append(c)
    return out


def cmdline(pid: int) -> str:
    """The command line with spaces between the arguments; "" when gone or unreadable."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def environ(pid: int) -> list[bytes] | None:
    """The environment as NAME=value byte strings, or None when gone or not ours to read."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    return raw.split(b"\0")


def _kb_field(pid: int, name: str, key: str) -> int | None:
    try:
        text = (PROC / str(pid) / name).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(key + ":"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def status_kb(pid: int, key: str = "VmRSS") -> int | None:
    """A kB line of /proc/<pid>/status (VmRSS, VmHWM ...), or None."""
    return _kb_field(pid, "status", key)


def smaps_rollup_kb(pid: int, key: str = "Pss") -> int | None:
    """A kB line of /proc/<pid>/smaps_rollup (Pss, Rss ...; Linux >= 4.14), or None."""
    return _kb_field(pid, "smaps_rollup", key)


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in kB; PSS falls back to RSS when smaps_rollup is unavailable. None when gone."""
    rss = smaps_rollup_kb(pid, "Rss")
    pss = smaps_rollup_kb(pid, "Pss")
    if rss is None:
        rss = status_kb(pid, "VmRSS")
    if rss is None:
        return None
    return rss, pss if pss is not None else rss


def private_kb(pid: int) -> int | None:
    """USS in kB: Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup (memory no other process
    shares; unlike PSS it does not fall when another program maps the same libraries). None if unknown."""
    clean, dirty = smaps_rollup_kb(pid, "Private_Clean"), smaps_rollup_kb(pid, "Private_Dirty")
    return None if clean is None or dirty is None else clean + dirty


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of `pid` in seconds, or None when gone."""
    f = stat_fields(pid)
    if not f or len(f) <= STIME:
        return None
    return (int(f[UTIME]) + int(f[STIME])) / os.sysconf("SC_CLK_TCK")


__all__ = ["HAVE_PROC", "PROC", "children_map", "cmdline", "cpu_seconds", "descendant_pids", "environ",
           "is_zombie", "memory_kb", "parent_and_group", "pids", "smaps_rollup_kb",
           "start_ticks", "stat_fields", "state", "status_kb", "table"]
