"""Helpers for the supervisor tests: run supervisor.sh, describe stub children, read pid records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from core import procfs
from tests.waiting import wait_for

__all__ = ["wait_for"]   # re-exported for test modules that import it from here (test_risk_e2e.py)

REPO = Path(__file__).resolve().parent.parent
STUB = REPO / "tests" / "supervisor_stub.py"
SUPERVISOR = REPO / "supervisor.sh"

# Short limits so the faults play out in seconds.
FAST_KNOBS = {
    "SUPERVISOR_BACKOFF_BASE": "0.1",
    "SUPERVISOR_BACKOFF_MAX": "2",
    "SUPERVISOR_MIN_UPTIME": "1",
    "SUPERVISOR_STOP_TIMEOUT": "2",
    "SUPERVISOR_TICK": "0.05",
}


def stub_child(name: str, *extra: str, stale_after: float = 30.0, beat: bool = True) -> dict:
    hb = f"{{state_dir}}/heartbeat/{name}"
    return {"name": name, "argv": ["{python}", str(STUB), "--beat", hb, *extra],
            "heartbeat": [hb] if beat else [], "stale_after": stale_after}


def write_children(tmp: Path, children: list[dict]) -> Path:
    path = tmp / "children.json"
    path.write_text(json.dumps({"children": children}))
    return path


def run_sup(env: dict, *args: str, stdin: str | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([str(SUPERVISOR), *args], cwd=REPO, env=env, input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=timeout)


def pid_record(state_dir: Path, name: str) -> dict | None:
    try:
        return json.loads((state_dir / "pids" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return procfs.state(pid) != "Z"  # None without /proc (macOS): kill(0) said it exists


def group_alive(pgid: int) -> bool:
    """True if any non-zombie process is in process group `pgid`."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not procfs.HAVE_PROC:
        return True
    return any(pg == pgid and not procfs.is_zombie(pid) for pid, _pp, pg in procfs.table())


class Tracker:
    """Remembers every process a test saw (pid, start time, group) so teardown can kill leftovers:
    only those, verified by identity, never by name."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.seen: set = set()

    def note(self, name: str) -> dict | None:
        from monitor.procs import Ident

        rec = pid_record(self.state_dir, name)
        if rec:
            ident = Ident.from_json([rec.get("pid"), rec.get("start"), rec.get("pgid")])
            if ident:
                self.seen.add(ident)
            self.seen.update(i for i in (Ident.from_json(d) for d in rec.get("descendants", [])) if i)
        return rec

    def note_all(self) -> None:
        pid_dir = self.state_dir / "pids"
        if pid_dir.is_dir():
            for f in pid_dir.glob("*.json"):
                self.note(f.stem)

    def anything_recorded(self) -> bool:
        """True while any pid file is left (something may still run)."""
        pid_dir = self.state_dir / "pids"
        return pid_dir.is_dir() and any(pid_dir.glob("*.json"))

    def kill_leftovers(self) -> list[int]:
        from monitor.procs import signal_members

        left = [i for i in self.seen if i.alive()]
        signal_members(left, signal.SIGKILL)
        return [i.pid for i in left]


def python() -> str:
    return sys.executable
