"""Process identity and process-group signalling, Linux and macOS.

A pid alone is not an identity: pids are reused. A process is "ours" only when its pid, its
start time and its process group all match what we recorded when we started it. Nothing here
ever looks a process up by name. Linux facts come from core.procfs (the one /proc reader);
without /proc (macOS) from `ps`.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from core import procfs

PS_TIMEOUT_S = 5.0
_HAVE_PROC = procfs.HAVE_PROC  # a module attribute so that a test can take the macOS path


def start_time(pid: int) -> str | None:
    """An opaque, stable token for when `pid` started, or None when there is no such process."""
    if pid <= 0:
        return None
    if _HAVE_PROC:
        ticks = procfs.start_ticks(pid)  # None: gone, or unreadable (another user's): not ours
        return f"linux:{ticks}" if ticks is not None else None
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=PS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stdout.strip()
    return f"ps:{text}" if out.returncode == 0 and text else None


def pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None  # e.g. ESRCH variants on macOS: treat as gone


def is_zombie(pid: int) -> bool:
    return _HAVE_PROC and procfs.is_zombie(pid)


@dataclass(frozen=True)
class Ident:
    """What we recorded about a process we started (or found under one we started)."""

    pid: int
    start: str
    pgid: int

    def alive(self) -> bool:
        """True only if this very process still exists (same pid, start time and group)."""
        return start_time(self.pid) == self.start and pgid_of(self.pid) == self.pgid and not is_zombie(self.pid)

    def to_json(self) -> list:
        return [self.pid, self.start, self.pgid]

    @staticmethod
    def from_json(obj: object) -> Ident | None:
        if (isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], int) and not isinstance(obj[0], bool)
                and obj[0] > 1 and isinstance(obj[1], str) and isinstance(obj[2], int) and obj[2] > 1):
            return Ident(obj[0], obj[1], obj[2])
        return None


def ident_of(pid: int) -> Ident | None:
    st, pg = start_time(pid), pgid_of(pid)
    if st is None or pg is None:
        return None
    return Ident(pid, st, pg)


def process_table() -> list[tuple[int, int, int]]:
    """(pid, ppid, pgid) of every process we can see."""
    rows: list[tuple[int, int, int]] = []
    if _HAVE_PROC:
        return procfs.table()
    try:
        out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True,
                             timeout=PS_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return rows
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


def descendants(root: int, table: list[tuple[int, int, int]] | None = None) -> list[Ident]:
    """Every live process below `root` (children, grandchildren ...) with its identity.

    Chromium started by Playwright sits in a process group (and session) of its own, so
    signalling the child's group is not enough: these are recorded and signalled too.
    """
    table = process_table() if table is None else table
    kids: dict[int, list[int]] = {}
    for pid, ppid, _pg in table:
        kids.setdefault(ppid, []).append(pid)
    out: list[Ident] = []
    stack = list(kids.get(root, []))
    seen = {root}
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        ident = ident_of(pid)
        if ident is not None:
            out.append(ident)
        stack.extend(kids.get(pid, []))
    return out


def signal_group(ident: Ident, sig: int) -> bool:
    """Send `sig` to the process group led by `ident`, only if `ident` is still that process.

    When the leader is gone but its group lives on, the group is signalled only if one of the
    remaining members is a process we recorded (see `signal_members`).
    """
    if not ident.alive():
        return False
    try:
        os.killpg(ident.pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # not ours after all: never escalate


def signal_leader(ident: Ident, sig: int) -> bool:
    """Send `sig` to the process itself (not its group), only if it is still that process."""
    if not ident.alive():
        return False
    try:
        os.kill(ident.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def signal_members(idents: Iterable[Ident], sig: int) -> int:
    """Signal each recorded process that is still the same process, and its group if it leads one."""
    n = 0
    for ident in idents:
        if not ident.alive():
            continue
        try:
            if ident.pgid == ident.pid:
                os.killpg(ident.pgid, sig)
            else:
                os.kill(ident.pid, sig)
            n += 1
        except OSError as exc:
            if exc.errno not in (errno.ESRCH, errno.EPERM):
                raise
    return n


def any_alive(idents: Iterable[Ident]) -> bool:
    return any(i.alive() for i in idents)


TAG_VAR = "SUPERVISOR_RUN"


def run_tag(monitor: Ident) -> str:
    """The environment tag every child of one monitor run carries (and its descendants inherit)."""
    return f"{monitor.pid}-{monitor.start}"


def tagged(tag: str) -> list[Ident]:
    """Processes whose environment carries SUPERVISOR_RUN=<tag> (Linux: /proc/<pid>/environ; elsewhere
    nothing: macOS does not expose other processes' environments cheaply). Our own marker, never a name."""
    if not _HAVE_PROC:
        return []
    needle = f"{TAG_VAR}={tag}".encode()
    out = []
    me = os.getpid()
    for pid in procfs.pids():
        if pid == me:
            continue
        env = procfs.environ(pid)  # None: another user's process, or it exited: not ours
        if env is not None and needle in env:
            ident = ident_of(pid)
            if ident is not None and not is_zombie(ident.pid):
                out.append(ident)
    return out


def group_members(pgid: int, table: list[tuple[int, int, int]] | None = None) -> list[int]:
    table = process_table() if table is None else table
    return [pid for pid, _pp, pg in table if pg == pgid and not is_zombie(pid)]


SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "CONT": signal.SIGCONT}
