"""Executor figures on the replica (a benchmark, not a test).

    .venv/bin/python bench/bench_executor.py [--windows 30] [--window-seconds 20] [--out FILE]

Starts the replica (BTC only) and `python -m executor` (MODE=demo, STRATEGY=seed) as real
processes, writes signal.json itself every 0.5 s for the current window, and measures:
- window start -> order accepted: the order's `time` in /api/orders minus its window start;
- signal.json replace -> the executor holding the new value: the time the bench's os.replace
  returned vs the `seen_at` the executor records (state/executor.json, `signal`) for that seq;
- memory: RSS and PSS summed over the executor and every process under it (driver, browser).
Prints a JSON summary (and writes it to --out).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import procfs  # noqa: E402
from core.durable_files import read_json  # noqa: E402
from core.window_grid import iso_utc, window_at  # noqa: E402
from replica.process import start_replica  # noqa: E402
from signal_engine.schedule import next_tick_at  # noqa: E402


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1)))))
    return v[k]


def memory(pids: list[int]) -> dict:
    rss = pss = 0
    for pid in pids:
        kb = procfs.status_kb(pid, "VmRSS")
        if kb is None:
            continue  # gone
        rss += kb
        pss += procfs.smaps_rollup_kb(pid, "Pss") or 0  # smaps_rollup needs Linux >= 4.14; RSS alone then
    return {"rss_mb": rss / 1024.0, "pss_mb": pss / 1024.0, "processes": len(pids)}


class Writer(threading.Thread):
    """signal.json on the engine's schedule (every `interval` s on the wall-clock grid and just after each
    window start) for the current grid window; remembers when each seq was replaced."""

    def __init__(self, path: Path, window_seconds: int, interval: float = 0.5):
        super().__init__(daemon=True)
        self.path, self.window_seconds, self.interval = path, window_seconds, interval
        self.replaced: dict[int, float] = {}
        self.seq = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self.stop_event.is_set():
            now = time.time()
            w = window_at("BTC", now, self.window_seconds)
            self.seq += 1
            doc = {"timestamp": iso_utc(now), "direction": "UP", "confidence": 80, "price": 100.0, "asset": "BTC",
                   "prob_up": 0.8, "window": {"start": iso_utc(w.start), "end": iso_utc(w.end), "open_price": 100.0,
                                              "seconds_left": w.seconds_left(now)},
                   "source": "bench", "seq": self.seq, "stale": False}
            # atomic replace, timed at the os.replace itself (not after the directory fsync that follows)
            tmp = self.path.with_name(f".{self.path.name}.bench.tmp")
            with open(tmp, "w") as fh:
                json.dump(doc, fh)
                fh.flush()
                os.fsync(fh.fileno())
            t = time.time()
            os.replace(tmp, self.path)
            self.replaced[self.seq] = t
            # the signal engine's own schedule: the wall-clock grid and just after each window start
            self.stop_event.wait(max(0.0, next_tick_at(time.time(), self.interval, self.window_seconds) - time.time()))


class Executor:
    """`python -m executor` as a child in a session of its own, its output in WORKDIR/executor.log."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self.log = open(workdir / "executor.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "executor"], cwd=str(REPO), env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (SIGKILL after `timeout`), then SIGKILL the browser processes it started."""
        kids = procfs.descendant_pids(self.pid)
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # already gone with its parent: nothing to clean
        self.log.close()
        return self.proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=30)
    ap.add_argument("--window-seconds", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")   # run the cleanup below (stop executor and replica)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    W = args.window_seconds
    from core.browser_discovery import find_browser

    wd = Path(tempfile.mkdtemp(prefix="bench-executor-"))
    rep = start_replica(wd / "replica", window_seconds=W, assets=("BTC",))
    base = {k: v for k, v in os.environ.items() if k not in ("METAMASK_PASSWORD", "MODE", "LIVE_CONFIRM")}
    base.update({"STATE_DIR": str(wd / "state"), "LOG_DIR": str(wd / "logs"), "PROFILE_DIR": str(wd / "profiles"),
                 "DOTENV_PATH": str(wd / "no.env"), "PYTHONPATH": str(REPO), "BROWSER_PATH": find_browser() or ""})
    # Demo against the replica, the seed strategy (a trade every window), loss limits out of the way;
    # MAX_SLIPPAGE wide because the replica's quotes are noisy second to second.
    env = {**base, "MODE": "demo", "MARKET_URL": rep.market_url, "WINDOW_SECONDS": str(rep.window_seconds),
           "METAMASK_PASSWORD": rep.password, "STRATEGY": "seed", "CONFIDENCE": "60", "ASSETS": "BTC",
           "HEADLESS": "1", "POSITION_SIZE": "10", "SIGNAL_MAX_AGE": "3", "MAX_SLIPPAGE": "0.98",
           "ENTRY_END": str(int(W * 0.8)), "MIN_PRICE": "0.01", "MAX_PRICE": "0.99", "STEP_TIMEOUT": "8",
           "MAX_OPEN_EXPOSURE": "100000", "MAX_CONSECUTIVE_LOSSES": "100000", "MAX_DAILY_LOSS": "100000",
           "MAX_TRADES_PER_DAY": "100000"}
    state_path = wd / "state" / "executor.json"
    writer = Writer(wd / "state" / "signal.json", W)
    writer.start()
    ex = Executor(env, wd)
    signal_lat: list[float] = []
    mem: list[dict] = []
    first_window = None
    try:
        deadline = time.time() + (args.windows + 3) * W + 60
        last_seq = 0
        while time.time() < deadline:
            st = read_json(state_path).data or {}
            sig = st.get("signal") or {}
            seq, seen = sig.get("seq"), sig.get("seen_at")
            if isinstance(seq, int) and seq != last_seq and seq in writer.replaced and isinstance(seen, float):
                signal_lat.append(seen - writer.replaced[seq])
                last_seq = seq
            if int(time.time() * 10) % 50 == 0 and ex.running():
                mem.append(memory([ex.pid, *procfs.descendant_pids(ex.pid)]))
            if first_window is None and st.get("status") == "watching":
                first_window = (int(time.time() // W) + 1) * W
            if first_window is not None and time.time() > first_window + args.windows * W + 5:
                break
            time.sleep(0.02)  # the bench's sampling period (not a test: nothing to synchronise with)
    finally:
        rc = ex.stop()
        writer.stop_event.set()
        orders = rep.orders()
        rep.stop()
    fw = first_window or 0
    lat = [o["time"] - o["window_start"] for o in orders if fw <= o["window_start"] < fw + args.windows * W]
    windows = [fw + i * W for i in range(args.windows)]
    summary = {
        "window_seconds": W, "windows": args.windows, "orders_in_range": len(lat),
        "missed_windows": len([w for w in windows if w not in {o["window_start"] for o in orders}]),
        "window_start_to_order_s": {"p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat) if lat else None,
                                    "mean": statistics.fmean(lat) if lat else None},
        "signal_replace_to_held_ms": {"n": len(signal_lat), "p50": (pct(signal_lat, 50) or 0) * 1000,
                                      "p99": (pct(signal_lat, 99) or 0) * 1000,
                                      "max": max(signal_lat) * 1000 if signal_lat else None},
        "memory": {"rss_mb_mean": statistics.fmean([m["rss_mb"] for m in mem]) if mem else None,
                   "rss_mb_max": max(m["rss_mb"] for m in mem) if mem else None,
                   "pss_mb_mean": statistics.fmean([m["pss_mb"] for m in mem]) if mem else None,
                   "pss_mb_max": max(m["pss_mb"] for m in mem) if mem else None,
                   "processes": max(m["processes"] for m in mem) if mem else None},
        "executor_exit_code": rc, "workdir": str(wd), "cpus": os.cpu_count(),
        "load_avg_1m_at_end": os.getloadavg()[0],
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
