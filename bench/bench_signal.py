"""Benchmark of the signal engine process: CPU, memory and tick-to-file latency.

Runs the real `python -m signal_engine` in demo (simulated feed, offline) in a temporary
STATE_DIR at SIGNAL_INTERVAL (default 1 s) for --duration seconds (default 60), then stops it
with SIGTERM. Measured after the first signal is written (start-up and backfill excluded):
- CPU: the process's user+system time (/proc/<pid>/stat) over the wall time, in % of one core;
- RSS: /proc/<pid>/status VmRSS, sampled 4x a second (max and last);
- tick-to-file latency: the engine's own `prev_tick_to_file_ms` (perf_counter from the start of
  the tick, price fetch included, to the completed os.replace and directory fsync), read from
  each new signal.json by this watcher.
`--stream` (issue 14, "Figures"): the engine in paper mode, BTC and ETH, against local servers in
this process only: a WebSocket server speaking Binance's combined aggTrade stream (--rate messages a
second per asset, default 10, evenly spaced, each with a price not sent before) and Polymarket RTDS's
crypto_prices_chainlink topic (--chainlink-rate updates a second per asset, default 1; 0: off), and a
REST server answering Binance's klines/ticker (the backfill, and the fallback). Measured from the
moment both assets are priced by the stream: message -> signal file latency = the moment this
process's watchdog (inotify) watcher, the executor's own reader (executor/signals.py), has read a
file carrying a message's price minus the moment the message was sent, per price (a price that a
later one replaced before a write is counted as superseded, not as a latency); CPU and RSS as above.
Linux only (/proc). Usage:
    .venv/bin/python bench/bench_signal.py [--duration 60] [--interval 1] [--assets BTC]
        [--out logs/bench_signal.json] [--state-parent /dev/shm]
    .venv/bin/python bench/bench_signal.py --stream [--duration 60] [--rate 10] [--chainlink-rate 1]
        [--out logs/bench_signal_stream.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from core import procfs  # noqa: E402
from core.durable_files import atomic_write_json, read_json  # noqa: E402

TARGETS = {"cpu_percent": 2.0, "rss_mb": 80.0, "latency_p99_ms": 20.0}


def cpu_seconds(pid: int) -> float:
    secs = procfs.cpu_seconds(pid)   # utime + stime
    if secs is None:
        raise ProcessLookupError(f"the signal engine (pid {pid}) is gone")
    return secs


def rss_mb(pid: int) -> float:
    kb = procfs.status_kb(pid, "VmRSS")
    return kb / 1024.0 if kb is not None else float("nan")


def stop_engine(proc: subprocess.Popen) -> tuple[int, float]:
    """SIGTERM, then (exit code, seconds it took)."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=10)
    return rc, time.monotonic() - t0


def kill_leftover(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(duration: float, interval: float, assets: str, state_parent: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-signal-") as tmp, \
            tempfile.TemporaryDirectory(prefix="bench-signal-state-", dir=state_parent) as state_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("MODE", "FEEDS", "LIVE_CONFIRM")}
        env.update({"STATE_DIR": state_dir, "LOG_DIR": f"{tmp}/logs", "PROFILE_DIR": f"{tmp}/profiles",
                    "DOTENV_PATH": f"{tmp}/no.env", "SIGNAL_INTERVAL": str(interval), "ASSETS": assets,
                    "PYTHONPATH": str(REPO)})
        path = Path(state_dir) / "signal.json"
        proc = subprocess.Popen([sys.executable, "-m", "signal_engine"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                doc = read_json(path).data
                if doc and doc.get("price") is not None:
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the engine did not write a signal (rc={proc.poll()})")
                time.sleep(0.02)
            cpu0, wall0 = cpu_seconds(proc.pid), time.monotonic()
            latencies: dict[int, float] = {}
            writes: dict[int, float] = {}
            rss: list[float] = []
            seqs: set[int] = set()
            stale = 0
            while time.monotonic() - wall0 < duration:
                res = read_json(path)
                if res.ok and res.data["seq"] not in seqs:
                    seqs.add(res.data["seq"])
                    stale += bool(res.data["stale"])
                    if res.data.get("prev_tick_to_file_ms") is not None:
                        latencies[res.data["seq"]] = float(res.data["prev_tick_to_file_ms"])
                        writes[res.data["seq"]] = float(res.data["prev_write_ms"])
                rss.append(rss_mb(proc.pid))
                time.sleep(min(0.25, interval / 4))
            cpu1, wall1 = cpu_seconds(proc.pid), time.monotonic()
            rc, stop_s = stop_engine(proc)
        finally:
            kill_leftover(proc)
        lat = list(latencies.values())
        wr = list(writes.values())
        load = os.getloadavg()
        return {
            "duration_s": round(wall1 - wall0, 2),
            "interval_s": interval,
            "assets": assets,
            "state_dir_parent": state_parent or tempfile.gettempdir(),
            "writes_seen": len(seqs),
            "stale_writes": stale,
            "cpu_percent": round(100.0 * (cpu1 - cpu0) / (wall1 - wall0), 3),
            "rss_mb_max": round(max(rss), 1),
            "rss_mb_last": round(rss[-1], 1),
            "latency_ms": {"n": len(lat), "p50": round(percentile(lat, 0.5), 3),
                           "p99": round(percentile(lat, 0.99), 3), "max": round(max(lat), 3) if lat else None,
                           "slowest": sorted(lat)[-5:]},
            "write_ms": {"p50": round(percentile(wr, 0.5), 3), "p99": round(percentile(wr, 0.99), 3),
                         "slowest": sorted(wr)[-5:]},
            "loadavg_1m_at_end": round(load[0], 2),
            "sigterm_exit_code": rc,
            "sigterm_exit_s": round(stop_s, 3),
            "targets": TARGETS,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "system": platform.platform()},
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def report(rows: list[tuple], r: dict, ok: dict, out: str, width: int) -> int:
    """Print the figures table, write the JSON; exit 0 when every target is met, else 1."""
    print(f"{'figure':<{width}}{'measured':>10}  {'target':<8} ok")
    for name, value, target, passed in rows:
        print(f"{name:<{width}}{value:>10}  {target:<8} {'' if passed is None else ('yes' if passed else 'NO')}")
    atomic_write_json(Path(out), r)
    print(f"written to {out}")
    return 0 if all(ok.values()) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--assets", default="BTC")
    ap.add_argument("--out", default=None, help="default logs/bench_signal.json (--stream: bench_signal_stream.json)")
    ap.add_argument("--stream", action="store_true", help="two assets streaming from a local WebSocket server")
    ap.add_argument("--rate", type=float, default=10.0, help="--stream: trades a second per asset")
    ap.add_argument("--chainlink-rate", type=float, default=1.0, help="--stream: Chainlink updates a second per"
                    " asset (0: no Chainlink stream)")
    ap.add_argument("--state-parent", default=None,
                    help="where the temporary STATE_DIR goes (default: the temp dir; /dev/shm separates the"
                         " engine's own latency from the disk's fsync)")
    args = ap.parse_args(argv)
    args.out = args.out or str(REPO / "logs" / ("bench_signal_stream.json" if args.stream else "bench_signal.json"))
    if args.stream:
        from bench.bench_signal_stream import main_stream  # REPO is on sys.path (above)

        return main_stream(args)
    r = run(args.duration, args.interval, args.assets, args.state_parent)
    ok = {"cpu_percent": r["cpu_percent"] < TARGETS["cpu_percent"],
          "rss_mb": r["rss_mb_max"] < TARGETS["rss_mb"],
          "latency_p99_ms": r["latency_ms"]["p99"] < TARGETS["latency_p99_ms"]}
    r["pass"] = ok
    rows = [("CPU (% of one core)", f"{r['cpu_percent']:.2f}", f"< {TARGETS['cpu_percent']:g}", ok["cpu_percent"]),
            ("RSS max (MB)", f"{r['rss_mb_max']:.1f}", f"< {TARGETS['rss_mb']:g}", ok["rss_mb"]),
            ("tick-to-file p50 (ms)", f"{r['latency_ms']['p50']:.2f}", "", None),
            ("tick-to-file p99 (ms)", f"{r['latency_ms']['p99']:.2f}", f"< {TARGETS['latency_p99_ms']:g}",
             ok["latency_p99_ms"]),
            ("  of which write p50", f"{r['write_ms']['p50']:.2f}", "", None),
            ("  of which write p99", f"{r['write_ms']['p99']:.2f}", "", None)]
    print(f"signal engine, demo feed, {r['assets']}, interval {r['interval_s']:g} s, {r['duration_s']:.0f} s,"
          f" {r['writes_seen']} writes seen ({r['stale_writes']} stale), SIGTERM exit {r['sigterm_exit_code']}"
          f" in {r['sigterm_exit_s']:.2f} s; load average {r['loadavg_1m_at_end']}; state in {r['state_dir_parent']}")
    return report(rows, r, ok, args.out, 24)


if __name__ == "__main__":
    raise SystemExit(main())
