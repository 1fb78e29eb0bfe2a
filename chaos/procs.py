"""Process facts from /proc (Linux): the tree under a pid, memory (RSS and PSS), CPU time.

Nothing here looks a process up by name: a tree is found from a pid we were given (a child the
supervisor started, recorded in its pid file) by following parent links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    start: str
    state: str
    cmdline: str


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text(errors="replace")
    except OSError:
        return None  # gone (or not readable): treated as absent
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2:].split()


def info(pid: int) -> ProcInfo | None:
    f = _stat_fields(pid)
    if not f or len(f) < 20:
        return None
    try:
        cmd = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    return ProcInfo(pid, int(f[1]), int(f[2]), f[19], f[0], cmd)


def start_token(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (identity together with the pid)."""
    f = _stat_fields(pid)
    return f[19] if f and len(f) > 19 else None


def alive(pid: int | None, start: str | None = None) -> bool:
    """The process exists, is not a zombie and (if given) started at `start`."""
    if not pid or pid <= 0:
        return False
    f = _stat_fields(pid)
    if not f or f[0] == "Z":
        return False
    return start is None or (len(f) > 19 and f[19] == start)


def table() -> dict[int, ProcInfo]:
    out: dict[int, ProcInfo] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            p = info(int(entry.name))
            if p is not None:
                out[p.pid] = p
    return out


def tree(root: int, tab: dict[int, ProcInfo] | None = None) -> list[ProcInfo]:
    """`root` and every descendant (root first); empty when root is gone."""
    tab = table() if tab is None else tab
    if root not in tab:
        return []
    kids: dict[int, list[int]] = {}
    for p in tab.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in tab:
            out.append(tab[pid])
            todo.extend(kids.get(pid, []))
    return out


def is_browser(p: ProcInfo) -> bool:
    """A Chromium/Chrome process (of a tree we own): its executable name, as the kernel reports it."""
    exe = p.cmdline.split(" ", 1)[0].rsplit("/", 1)[-1].lower()
    return "chrom" in exe or "headless_shell" in exe


def browser_main(tree_procs: list[ProcInfo]) -> ProcInfo | None:
    """The browser's main process in a tree: a Chromium process without --type= (helpers have one)."""
    mains = [p for p in tree_procs if is_browser(p) and "--type=" not in p.cmdline]
    return mains[0] if mains else None


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in kB; PSS falls back to RSS when smaps_rollup is unavailable."""
    rss = pss = None
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except (OSError, ValueError):
        pass  # smaps_rollup missing or unreadable: fall back to VmRSS below
    if rss is None:
        try:
            for line in (PROC / str(pid) / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                    break
        except (OSError, ValueError):
            return None
    if rss is None:
        return None
    return rss, pss if pss is not None else rss


def tree_memory_mb(root: int, tab: dict[int, ProcInfo] | None = None) -> dict:
    """Memory of root and its descendants: {'rss_mb', 'pss_mb', 'procs', 'browser_pss_mb'}."""
    rss = pss = bpss = 0
    n = 0
    for p in tree(root, tab):
        m = memory_kb(p.pid)
        if m is None:
            continue
        n += 1
        rss += m[0]
        pss += m[1]
        if is_browser(p):
            bpss += m[1]
    return {"rss_mb": round(rss / 1024, 2), "pss_mb": round(pss / 1024, 2), "procs": n,
            "browser_pss_mb": round(bpss / 1024, 2)}


def cpu_seconds(pid: int) -> float | None:
    f = _stat_fields(pid)
    if not f or len(f) < 15:
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int, tab: dict[int, ProcInfo] | None = None) -> float:
    total = 0.0
    for p in tree(root, tab):
        c = cpu_seconds(p.pid)
        total += c or 0.0
    return total
