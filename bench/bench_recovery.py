"""SIGKILL -> running again, for the signal engine and the executor, under ./supervisor.sh.

    .venv/bin/python bench/bench_recovery.py [--rounds 3] [--window-seconds 30]

Starts the real demo (replica, signal engine, executor) in a throw-away STATE_DIR/LOG_DIR/PROFILE_DIR
on free ports, waits until it is steady, then per round SIGKILLs each child and measures:
- signal engine: until a new engine process runs and state/signal.json has been rewritten;
- executor: until a new executor process runs and has relaunched its browser, opened the market
  page and reconciled (state/executor.json says pid = the new pid and status watching/trading,
  written after the kill).
Stops everything at the end and checks that no process it saw is left. Prints one JSON document.
Targets (issue 5): signal engine <= 3 s, executor <= 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.procs import Ident  # noqa: E402

TARGETS = {"signal_engine": 3.0, "executor": 15.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise SystemExit(f"bench: timed out after {timeout} s waiting for {what}")


def alive(state: Path, name: str) -> int | None:
    rec = read(state / "pids" / f"{name}.json")
    ident = Ident.from_json([rec.get("pid"), rec.get("start"), rec.get("pgid")]) if rec else None
    return ident.pid if ident and ident.alive() else None


def recovered(state: Path, name: str, old: int, t0: float) -> int | None:
    pid = alive(state, name)
    if not pid or pid == old:
        return None
    if name == "signal_engine":
        return pid if mtime(state / "signal.json") > t0 else None
    ex = read(state / "executor.json")
    ok = ex.get("pid") == pid and ex.get("status") in ("watching", "trading") and mtime(state / "executor.json") > t0
    return pid if ok else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window-seconds", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the temporary state/log dirs (path printed)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    state = tmp / "state"
    env = {k: v for k, v in os.environ.items() if k not in ("MODE", "LIVE_CONFIRM", "SUPERVISOR_CHILDREN_FILE")}
    port = free_port()
    env.update(STATE_DIR=str(state), LOG_DIR=str(tmp / "logs"), PROFILE_DIR=str(tmp / "profiles"),
               DOTENV_PATH=str(tmp / "bench.env"), REPLICA_PORT=str(port), REPLICA_WALLET_PORT=str(free_port()),
               WINDOW_SECONDS=str(a.window_seconds), DASHBOARD_PORT=str(free_port()))
    (tmp / "bench.env").write_text("MODE=demo\n")
    sup = str(REPO / "supervisor.sh")
    seen: set[Ident] = set()
    results: dict[str, list[float]] = {"signal_engine": [], "executor": []}
    try:
        r = subprocess.run([sup, "start"], env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"bench: start failed: {r.stderr}")
        for name in ("replica", "signal_engine", "executor"):
            wait(lambda n=name: alive(state, n), 30, f"{name} running")
        wait(lambda: read(state / "executor.json").get("status") in ("watching", "trading"), 60, "executor watching")
        for _ in range(a.rounds):
            for name in ("signal_engine", "executor"):
                old = alive(state, name)
                rec = read(state / "pids" / f"{name}.json")
                seen.update(i for i in (Ident.from_json(d) for d in rec.get("descendants", [])) if i)
                t0 = time.time()
                os.kill(old, signal.SIGKILL)
                wait(lambda n=name, o=old, t=t0: recovered(state, n, o, t), 60, f"{name} recovered")
                results[name].append(round(time.time() - t0, 2))
                # let it settle (a steady loop, a fresh pid file) before the next kill
                wait(lambda n=name: (read(state / "pids" / f"{n}.json").get("descendants") or n != "executor"),
                     30, "descendants recorded")
        for f in (state / "pids").glob("*.json"):
            rec = read(f)
            seen.update(i for i in (Ident.from_json(d) for d in rec.get("descendants", [])) if i)
            ident = Ident.from_json([rec.get("pid"), rec.get("start"), rec.get("pgid")])
            if ident:
                seen.add(ident)
    finally:
        subprocess.run([sup, "stop"], env=env, capture_output=True, text=True, timeout=120)
        left = [i.pid for i in seen if i.alive()]
        for i in seen:
            if i.alive():
                os.kill(i.pid, signal.SIGKILL)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    out = {"rounds": a.rounds, "dir": str(tmp) if a.keep else None, "window_seconds": a.window_seconds,
           "left_after_stop": left, "cpus": os.cpu_count()}
    for name, xs in results.items():
        out[name] = {"seconds": xs, "median": statistics.median(xs), "max": max(xs), "target": TARGETS[name],
                     "ok": max(xs) <= TARGETS[name]}
    print(json.dumps(out, indent=2))
    return 0 if all(out[n]["ok"] for n in results) and not left else 1


if __name__ == "__main__":
    raise SystemExit(main())
