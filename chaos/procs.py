"""Process facts from /proc (Linux): the tree under a pid, memory (RSS and PSS), CPU time.

Nothing here looks a process up by name: a tree is found from a pid we were given (a child the
supervisor started, recorded in its pid file) by following parent links. The reading itself is
core.procfs's (the one /proc reader).
"""

from __future__ import annotations

from dataclasses import dataclass

from core import procfs


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    start: str
    state: str
    cmdline: str


def info(pid: int) -> ProcInfo | None:
    f = procfs.stat_fields(pid)  # None: gone (or not readable): treated as absent
    if not f or len(f) <= procfs.STARTTIME:
        return None
    return ProcInfo(pid, int(f[procfs.PPID]), int(f[procfs.PGRP]), f[procfs.STARTTIME], f[procfs.STATE],
                    procfs.cmdline(pid))


def start_token(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (identity together with the pid)."""
    return procfs.start_ticks(pid)


def alive(pid: int | None, start: str | None = None) -> bool:
    """The process exists, is not a zombie and (if given) started at `start`."""
    if not pid or pid <= 0:
        return False
    f = procfs.stat_fields(pid)
    if not f or f[procfs.STATE] == "Z":
        return False
    return start is None or (len(f) > procfs.STARTTIME and f[procfs.STARTTIME] == start)


def table() -> dict[int, ProcInfo]:
    out: dict[int, ProcInfo] = {}
    for pid in procfs.pids():
        p = info(pid)
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


memory_kb = procfs.memory_kb  # (RSS, PSS) in kB; PSS falls back to RSS without smaps_rollup


def tree_memory_mb(root: int, tab: dict[int, ProcInfo] | None = None) -> dict:
    """Memory of root and its descendants: {'rss_mb', 'pss_mb', 'uss_mb', 'procs', 'browser_pss_mb',
    'browser_uss_mb'}; USS (private memory) is None where smaps_rollup is unavailable."""
    rss = pss = bpss = 0
    uss: int | None = 0
    buss = 0
    n = 0
    for p in tree(root, tab):
        m = memory_kb(p.pid)
        if m is None:
            continue
        n += 1
        rss += m[0]
        pss += m[1]
        u = procfs.private_kb(p.pid)
        uss = None if u is None or uss is None else uss + u
        if is_browser(p):
            bpss += m[1]
            buss += u or 0
    return {"rss_mb": round(rss / 1024, 2), "pss_mb": round(pss / 1024, 2), "procs": n,
            "uss_mb": round(uss / 1024, 2) if uss is not None else None,
            "browser_pss_mb": round(bpss / 1024, 2), "browser_uss_mb": round(buss / 1024, 2)}


cpu_seconds = procfs.cpu_seconds


def tree_cpu_seconds(root: int, tab: dict[int, ProcInfo] | None = None) -> float:
    total = 0.0
    for p in tree(root, tab):
        c = cpu_seconds(p.pid)
        total += c or 0.0
    return total
