"""Long run: the whole demo system over many accelerated windows, memory sampled throughout.

    .venv/bin/python -m bench.bench_longrun [--windows 500] [--window-seconds 10] [--sample-every 5]
                                            [--out logs/bench_longrun.json] [--quick]

Starts replica + signal engine + executor through `./supervisor.sh start` in a temporary,
isolated STATE_DIR/LOG_DIR with free ports and WINDOW_SECONDS=--window-seconds (risk guards
relaxed so that trading never halts), lets it run --windows windows, and samples the memory of
each process tree (the executor's includes its Chromium) every --sample-every seconds: PSS
(proportional set size: shared pages divided among sharers, so a tree's sum is not inflated) and
RSS. Growth in percent = (median total PSS over the last tenth of the windows) / (median total
PSS over the tenth after a warm-up of max(3, windows/25) windows) - 1. Also: a least-squares
slope in MB per 100 windows, the windows the executor handled, trades, restarts.
The JSON (--out) is rewritten every minute with "complete": false, so a cut-short run still
leaves its samples. Exit 0 when done (whatever the growth), 1 when the system could not start.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from chaos import procs  # noqa: E402
from chaos.system import CHILDREN, IsolatedSystem, SystemError_  # noqa: E402
from core.durable_files import atomic_write_json, iter_jsonl  # noqa: E402

SAVE_EVERY_S = 60.0


def slope_per(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope dy/dx, or None with fewer than 3 points."""
    if len(xs) < 3:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def growth(samples: list[dict], windows: int, key=lambda s: s["total_pss_mb"]) -> dict:
    """Median early vs median late (see the module doc)."""
    warm = max(3, windows // 25)
    span = max(3, windows // 10)
    early = [key(s) for s in samples if warm <= s["window"] < warm + span and key(s) is not None]
    late = [key(s) for s in samples if s["window"] >= windows - span and key(s) is not None]
    post = [s for s in samples if s["window"] >= warm and key(s) is not None]
    slope = slope_per([s["window"] for s in post], [key(s) for s in post])
    if not early or not late:
        return {"early_mb": None, "late_mb": None, "growth_percent": None, "slope_mb_per_100_windows": None}
    e, late_m = statistics.median(early), statistics.median(late)
    return {"early_mb": round(e, 2), "late_mb": round(late_m, 2),
            "growth_percent": round((late_m / e - 1) * 100, 2) if e else None,
            "slope_mb_per_100_windows": round(slope * 100, 3) if slope is not None else None,
            "early_windows": [warm, warm + span], "late_windows": [windows - span, windows]}


def _browser(s: dict) -> float | None:
    return (s["children"].get("executor") or {}).get("browser_pss_mb")


def _exe_rest(s: dict) -> float | None:
    e = s["children"].get("executor") or {}
    return round(e["pss_mb"] - e["browser_pss_mb"], 2) if e.get("pss_mb") is not None else None


def sample(system: IsolatedSystem, window: int, t: float) -> dict:
    tab = procs.table()
    out: dict = {"t": round(t, 2), "window": window, "children": {}}
    total_pss = total_rss = 0.0
    total_uss: float | None = 0.0
    for name in CHILDREN:
        c = system.child(name)
        if c is None:
            out["children"][name] = None
            continue
        m = procs.tree_memory_mb(c.pid, tab)
        m["pid"] = c.pid
        m["cpu_s"] = round(procs.tree_cpu_seconds(c.pid, tab), 2)
        out["children"][name] = m
        total_pss += m["pss_mb"]
        total_rss += m["rss_mb"]
        total_uss = None if total_uss is None or m.get("uss_mb") is None else total_uss + m["uss_mb"]
    out["total_uss_mb"] = round(total_uss, 2) if total_uss is not None else None
    out["total_pss_mb"] = round(total_pss, 2)
    out["total_rss_mb"] = round(total_rss, 2)
    return out


def summarize(system: IsolatedSystem, samples: list[dict], windows: int, window_seconds: int, t_start: float,
              complete: bool) -> dict:
    decisions = list(iter_jsonl(system.decisions_path))
    events = list(iter_jsonl(system.trades_path))
    status = system.status_doc()
    span = windows if complete else max(10, samples[-1]["window"] if samples else 10)
    per_child = {}
    for name in CHILDREN:
        per_child[name] = growth(samples, span, key=lambda s, n=name: (s["children"].get(n) or {}).get("pss_mb"))
    # the executor's tree split: its Chromium processes, and the rest (Python + Playwright's driver)
    per_child["executor_browser"] = growth(samples, span, key=_browser)
    per_child["executor_python_and_driver"] = growth(samples, span, key=_exe_rest)
    per_child_uss = {name: growth(samples, span, key=lambda s, n=name: (s["children"].get(n) or {}).get("uss_mb"))
                     for name in CHILDREN}
    per_child_uss["executor_browser"] = growth(
        samples, span, key=lambda s: (s["children"].get("executor") or {}).get("browser_uss_mb"))
    cpu = {}
    for name in CHILDREN:
        pts = [(s["t"], (s["children"].get(name) or {}).get("cpu_s"), (s["children"].get(name) or {}).get("pid"))
               for s in samples]
        pts = [p for p in pts if p[1] is not None]
        # CPU over the longest stretch of one pid (a restart resets the counter).
        if len(pts) >= 2 and pts[0][2] == pts[-1][2] and pts[-1][0] > pts[0][0]:
            cpu[name] = round((pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0]) * 100, 2)
        else:
            cpu[name] = None
    peak = max((s["total_pss_mb"] for s in samples), default=None)
    return {
        "complete": complete,
        "windows_target": windows, "window_seconds": window_seconds,
        "windows_elapsed": samples[-1]["window"] if samples else 0,
        "duration_s": round(time.time() - t_start, 1),
        "samples": len(samples),
        "memory_total_pss": growth(samples, span),
        "memory_total_rss": growth(samples, span, key=lambda s: s["total_rss_mb"]),
        "memory_per_process_pss": per_child,
        # USS (private memory): PSS divides shared pages among every process mapping them, so it
        # falls when another Chromium starts on the machine; USS does not. Growth is read from both.
        "memory_total_uss": growth(samples, span, key=lambda s: s.get("total_uss_mb")),
        "memory_per_process_uss": per_child_uss,
        "peak_total_pss_mb": peak,
        "cpu_percent_of_one_core": cpu,
        "decisions": len(decisions),
        "traded_windows": sum(1 for d in decisions if d.get("action") == "traded"),
        "filled": sum(1 for e in events if e.get("event") == "filled"),
        "failed": sum(1 for e in events if e.get("event") == "failed"),
        "restarts": {n: (status.get("children", {}).get(n) or {}).get("restarts") for n in CHILDREN},
        "series": [{"w": s["window"], "pss": s["total_pss_mb"], "uss": s.get("total_uss_mb"),
                    **{n[:3]: (s["children"].get(n) or {}).get("pss_mb") for n in CHILDREN},
                    "browser": _browser(s)}
                   for s in samples[:: max(1, len(samples) // 200)]],
    }


def run(windows: int, window_seconds: int, sample_every: float, out: Path | None, keep: Path | None) -> dict:
    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench-longrun-") if keep is None else None
    root = Path(tmp_ctx.name) if tmp_ctx else keep
    system = IsolatedSystem(root, window_seconds=window_seconds)
    samples: list[dict] = []
    t_start = time.time()
    try:
        system.start()
        if not system.wait_trading(timeout=max(120.0, 6 * window_seconds)):
            raise SystemError_(f"no trade within {max(120.0, 6 * window_seconds):.0f} s of start; see {system.log_dir}")
        now = time.time()
        t0 = (int(now) // window_seconds + 1) * window_seconds   # the next window boundary
        end = t0 + windows * window_seconds
        hms = time.strftime("%H:%M:%S", time.gmtime(t0)), time.strftime("%H:%M:%S", time.gmtime(end))
        print(f"bench_longrun: {windows} windows of {window_seconds} s from {hms[0]} UTC to {hms[1]} UTC;"
              f" state in {root}", file=sys.stderr, flush=True)
        last_save = time.monotonic()
        next_sample = t0
        last_report = 0
        while True:
            now = time.time()
            if now >= end:
                break
            if now >= next_sample:
                w = int((now - t0) // window_seconds)
                samples.append(sample(system, w, now))
                next_sample += sample_every
                if w - last_report >= 50:
                    last_report = w
                    print(f"bench_longrun: window {w}/{windows}, total PSS {samples[-1]['total_pss_mb']:.1f} MB",
                          file=sys.stderr, flush=True)
            if out is not None and time.monotonic() - last_save >= SAVE_EVERY_S:
                last_save = time.monotonic()
                atomic_write_json(out, summarize(system, samples, windows, window_seconds, t_start, False))
            time.sleep(min(0.5, max(0.0, next_sample - time.time())))  # pacing of the sampler, not synchronisation
        samples.append(sample(system, windows, time.time()))
        result = summarize(system, samples, windows, window_seconds, t_start, True)
    finally:
        if system.started:
            try:
                system.stop()
            except SystemError_ as exc:
                print(f"bench_longrun: {exc}", file=sys.stderr)
        if tmp_ctx is not None:
            tmp_ctx.cleanup()
    if out is not None:
        atomic_write_json(out, result)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_longrun", description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=500)
    p.add_argument("--window-seconds", type=int, default=10)
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--keep", type=Path, default=None, help="run in this directory and keep it (default: a temp dir)")
    p.add_argument("--quick", action="store_true", help="30 windows (a smoke run)")
    a = p.parse_args(argv)
    windows = 30 if a.quick else a.windows
    if windows < 10 or not 10 <= a.window_seconds <= 3600:
        p.error("--windows must be >= 10 and --window-seconds 10..3600")
    try:
        result = run(windows, a.window_seconds, a.sample_every, a.out, a.keep)
    except SystemError_ as exc:
        print(f"bench_longrun: {exc}", file=sys.stderr)
        return 1
    brief = {k: v for k, v in result.items() if k != "series"}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
