"""`python -m bench.run_all` (`./supervisor.sh bench`): every benchmark of the project in one go.

    .venv/bin/python -m bench.run_all [--quick] [--only signal,executor,...] [--out logs/bench.json]
        [--longrun-windows 500] [--longrun-window-seconds 10] [--longrun-from FILE]

Runs each benchmark script as a subprocess with a timeout (a missing script is a "not available"
row, a crashed or timed-out one an "error" row; the others still run), collects its JSON, and
prints one table: signal tick-to-file latency (p50/p99), engine CPU and memory; window start to
order accepted on the replica (p50/p95), signal change to executor (p99), executor + browser
memory; recovery after SIGKILL per process; backtest wall time and throughput; and the long run
(--longrun-windows windows of --longrun-window-seconds s, memory sampled throughout, growth in
percent). Every figure with a target gets the ratio measured/target. The machine (CPU model,
cores, memory, OS, Python, Chromium) and the date head the table and logs/bench.json.

--quick: short versions (about 12 minutes in all) to check that everything runs, not figures to quote.
--longrun-from FILE: take the long run from a JSON written earlier by `python -m bench.bench_longrun
--out FILE` instead of running it (marked as such in the output).
--reuse FILE: the benchmarks left out by --only/--skip are copied from an earlier bench.json (marked
with that file and its date), so one table can gather runs made at different times.
Exit codes: 0 every available benchmark ran and met its targets; 1 one failed, timed out or missed
a target (the table says which); 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from core.durable_files import atomic_write_json, read_json  # noqa: E402

BENCH = REPO / "bench"
HELP_TIMEOUT_S = 30


@dataclass
class Row:
    area: str
    figure: str
    value: float | None
    unit: str
    target: float | None = None
    better: str = "lower"  # lower | higher: which side of the target passes

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.target:
            return None
        return self.value / self.target

    @property
    def ok(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def to_json(self) -> dict:
        return {"area": self.area, "figure": self.figure, "value": self.value, "unit": self.unit,
                "target": self.target, "ratio": None if self.ratio is None else round(self.ratio, 3), "ok": self.ok}


@dataclass
class Bench:
    name: str
    script: str                       # file under bench/
    full: list[str]
    quick: list[str]
    timeout: float
    quick_timeout: float
    out_flag: bool = False            # pass --out FILE and read it (else: the last JSON object on stdout)
    extract: Callable[[dict], list[Row]] = field(default=lambda d: [])


def _get(d: dict, *path, default=None):
    cur = d
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


def _num(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _find(d, pattern: str) -> float | None:
    """The first numeric leaf whose dotted key path matches `pattern` (a regex); for benchmarks whose
    JSON layout this harness does not know key by key."""
    rx = re.compile(pattern, re.I)

    def walk(obj, prefix: str):
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from walk(v, f"{prefix}.{k}" if prefix else str(k))
        elif _num(obj) is not None:
            yield prefix, float(obj)

    for path, value in walk(d, ""):
        if rx.search(path):
            return value
    return None


# ---- per-benchmark figures ----------------------------------------------------------------------
def rows_signal(d: dict) -> list[Row]:
    t = d.get("targets") or {}
    return [
        Row("signal", "tick-to-file latency p50", _num(_get(d, "latency_ms", "p50")), "ms"),
        Row("signal", "tick-to-file latency p99", _num(_get(d, "latency_ms", "p99")), "ms",
            _num(t.get("latency_p99_ms"))),
        Row("signal", "engine CPU (% of one core)", _num(d.get("cpu_percent")), "%", _num(t.get("cpu_percent"))),
        Row("signal", "engine memory (RSS max)", _num(d.get("rss_mb_max")), "MB", _num(t.get("rss_mb"))),
    ]


def rows_executor(d: dict) -> list[Row]:
    # bench_executor.py's keys; a regex over the key paths if its layout changes
    def pick(path: tuple, pattern: str) -> float | None:
        v = _num(_get(d, *path))
        return v if v is not None else _find(d, pattern)

    return [
        Row("executor", "window start -> order accepted p50", pick(("window_start_to_order_s", "p50"),
                                                                   r"window.*order.*p50"), "s"),
        Row("executor", "window start -> order accepted p95", pick(("window_start_to_order_s", "p95"),
                                                                   r"window.*order.*p95"), "s", 1.5),
        Row("executor", "signal.json replace -> executor holds it p99",
            pick(("signal_replace_to_held_ms", "p99"), r"signal.*p99"), "ms", 200.0),
        Row("executor", "executor + browser memory (PSS max)", pick(("memory", "pss_mb_max"), r"pss.*max"), "MB"),
        Row("executor", "executor + browser memory (RSS max)", pick(("memory", "rss_mb_max"), r"rss.*max"), "MB"),
        Row("executor", "windows without an order", _num(d.get("missed_windows")), "windows"),
    ]


def rows_recovery(d: dict) -> list[Row]:
    out = []
    for name in ("signal_engine", "executor"):
        r = d.get(name) or {}
        out.append(Row("recovery", f"{name}: SIGKILL -> running again, median", _num(r.get("median")), "s"))
        out.append(Row("recovery", f"{name}: SIGKILL -> running again, max", _num(r.get("max")), "s",
                       _num(r.get("target"))))
    return out


def rows_backtest(d: dict) -> list[Row]:
    med = _num(d.get("median_s"))
    candles, windows = _num(d.get("candles")), _num(d.get("windows"))
    return [
        Row("backtest", "whole backtest, median wall time", med, "s", _num(d.get("target_s"))),
        Row("backtest", "throughput (candles per second)", candles / med if med and candles else None, "candles/s"),
        Row("backtest", "throughput (windows per second)", windows / med if med and windows else None, "windows/s"),
    ]


def rows_longrun(d: dict) -> list[Row]:
    return [
        Row("longrun", f"windows run ({d.get('window_seconds')} s each)", _num(d.get("windows_elapsed")), "windows",
            _num(d.get("windows_target")), better="higher"),
        Row("longrun", "memory growth, total PSS (late vs early median)",
            _num(_get(d, "memory_total_pss", "growth_percent")), "%", 10.0),
        Row("longrun", "executor + browser PSS growth", _num(_get(d, "memory_per_process_pss", "executor",
                                                                   "growth_percent")), "%"),
        Row("longrun", "  of which Chromium", _num(_get(d, "memory_per_process_pss", "executor_browser",
                                                        "growth_percent")), "%"),
        Row("longrun", "  of which executor Python + Playwright driver",
            _num(_get(d, "memory_per_process_pss", "executor_python_and_driver", "growth_percent")), "%"),
        Row("longrun", "signal engine PSS growth", _num(_get(d, "memory_per_process_pss", "signal_engine",
                                                              "growth_percent")), "%"),
        Row("longrun", "replica PSS growth", _num(_get(d, "memory_per_process_pss", "replica", "growth_percent")), "%"),
        Row("longrun", "total PSS, late median", _num(_get(d, "memory_total_pss", "late_mb")), "MB"),
        Row("longrun", "total PSS slope", _num(_get(d, "memory_total_pss", "slope_mb_per_100_windows")),
            "MB/100 windows"),
        Row("longrun", "executor + browser CPU (% of one core)", _num(_get(d, "cpu_percent_of_one_core", "executor")),
            "%"),
        Row("longrun", "windows traded", _num(d.get("traded_windows")), "windows"),
    ]


BENCHES = [
    Bench("signal", "bench_signal.py", ["--duration", "60"], ["--duration", "15"], 180, 90, out_flag=True,
          extract=rows_signal),
    Bench("executor", "bench_executor.py", ["--windows", "30", "--window-seconds", "20"],
          ["--windows", "5", "--window-seconds", "20"], 1500, 400, out_flag=True, extract=rows_executor),
    Bench("recovery", "bench_recovery.py", ["--rounds", "3"], ["--rounds", "1"], 900, 400, extract=rows_recovery),
    Bench("backtest", "bench_backtest.py", ["--runs", "3"], ["--runs", "1"], 900, 300, extract=rows_backtest),
    Bench("longrun", "bench_longrun.py", [], ["--quick"], 0, 900, out_flag=True, extract=rows_longrun),
]


# ---- the machine ----------------------------------------------------------------------------------
def _first_line(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip().strip('"')
    except OSError:
        return None
    return None


def machine() -> dict:
    mem_kb = _first_line("/proc/meminfo", "MemTotal")
    chromium = None
    try:
        from core.browser_discovery import find_browser

        path = find_browser()
        if path:
            r = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=HELP_TIMEOUT_S)
            chromium = (r.stdout or r.stderr).strip() or None
    except (ImportError, OSError, subprocess.TimeoutExpired) as exc:
        chromium = f"unknown ({type(exc).__name__})"
    commit = None
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                           timeout=HELP_TIMEOUT_S)
        commit = r.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        commit = None  # not a git checkout: the commit is simply not reported
    return {
        "cpu_model": _first_line("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "os": _first_line("/etc/os-release", "PRETTY_NAME") or platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "chromium": chromium,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "commit": commit,
    }


# ---- running ----------------------------------------------------------------------------------------
def last_json(text: str) -> dict | None:
    """The last top-level JSON object printed on stdout (benchmarks print one, maybe after other lines)."""
    starts = [m.start() for m in re.finditer(r"(?m)^\{", text)]
    for s in reversed(starts):
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[s:])
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def supported(script: Path, args: list[str]) -> list[str]:
    """`args` without the options the script's --help does not mention (with their values): the other
    helpers' scripts evolve, and an unknown option would make one fail for nothing."""
    try:
        r = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True,
                           timeout=HELP_TIMEOUT_S, env={**os.environ, "PYTHONPATH": str(REPO)})
        text = r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired):
        return args
    out, i = [], 0
    while i < len(args):
        opt = args[i]
        has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
        if not opt.startswith("--") or re.search(re.escape(opt) + r"\b", text):
            out.append(opt)
            if has_value:
                out.append(args[i + 1])
        i += 2 if has_value else 1
    return out


def run_bench(b: Bench, quick: bool, extra: list[str], timeout: float) -> dict:
    script = BENCH / b.script
    if not script.is_file():
        return {"status": "not available", "why": f"{_rel(script)} does not exist in this build",
                "rows": [r.to_json() for r in b.extract({})]}
    args = supported(script, list(b.quick if quick else b.full) + extra)
    with tempfile.TemporaryDirectory(prefix=f"bench-{b.name}-") as tmp:
        out_file = Path(tmp) / "out.json"
        if b.out_flag:
            args += ["--out", str(out_file)]
        cmd = [sys.executable, str(script), *args]
        t0 = time.monotonic()
        print(f"bench: {b.name}: {' '.join(['python', str(_rel(script)), *args])}"
              f" (timeout {timeout:.0f} s)", file=sys.stderr, flush=True)
        try:
            r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
        except subprocess.TimeoutExpired as exc:
            tail = (exc.stderr or b"")[-1500:]
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            return {"status": "timeout", "why": f"no result within {timeout:.0f} s", "stderr_tail": tail,
                    "seconds": round(time.monotonic() - t0, 1), "rows": [r.to_json() for r in b.extract({})]}
        data = None
        if b.out_flag and out_file.exists():
            res = read_json(out_file)
            data = res.data if res.ok else None
        if data is None:
            data = last_json(r.stdout)
        seconds = round(time.monotonic() - t0, 1)
    if not isinstance(data, dict):
        return {"status": "error", "why": f"exit {r.returncode} and no JSON result", "seconds": seconds,
                "stderr_tail": r.stderr[-1500:], "rows": [r_.to_json() for r_ in b.extract({})]}
    rows = b.extract(data)
    status = "ok" if r.returncode == 0 else "target missed" if r.returncode == 1 else f"exit {r.returncode}"
    return {"status": status, "exit_code": r.returncode, "seconds": seconds, "command": " ".join(cmd[1:]),
            "rows": [x.to_json() for x in rows], "result": data,
            "stderr_tail": r.stderr[-800:] if r.returncode not in (0, 1) else None}


def fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        s = f"{v:.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return f"{s} {unit}"


def print_table(doc: dict) -> None:
    m = doc["machine"]
    print(f"benchmarks, {doc['date']}{' (quick: not figures to quote)' if doc['quick'] else ''}")
    print(f"machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']} (kernel {m['kernel']}),"
          f" Python {m['python']}, {m['chromium']}, load {m['load_average_at_start']}, commit {m['commit']}")
    print(f"{'area':<9} {'figure':<52} {'measured':>16} {'target':>10} {'ratio':>6}  ok")
    for name, res in doc["benchmarks"].items():
        if res["status"] not in ("ok", "target missed"):
            print(f"{name:<9} {'(' + res['status'] + ': ' + res.get('why', '') + ')':<52}")
            continue
        if res.get("reused_from"):
            print(f"{name:<9} (from {res['reused_from']})")
        for r in res["rows"]:
            ok = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            tgt = "" if r["target"] is None else fmt(r["target"], r["unit"])
            print(f"{r['area']:<9} {r['figure']:<52} {fmt(r['value'], r['unit']):>16} {tgt:>10} {ratio:>6}  {ok}")
    s = doc["summary"]
    print(f"summary: ran {', '.join(s['ran']) or 'nothing'}; not available: {', '.join(s['not_available']) or 'none'};"
          f" failed: {', '.join(s['failed']) or 'none'}; targets missed: {len(s['targets_missed'])};"
          f" median ratio to target {s['median_ratio_to_target']}; load average at the end {s['load_average_at_end']};"
          f" {s['seconds']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short versions of every benchmark")
    p.add_argument("--only", default="", help="comma list of: " + ", ".join(b.name for b in BENCHES))
    p.add_argument("--skip", default="", help="comma list of benchmarks not to run")
    p.add_argument("--out", type=Path, default=REPO / "logs" / "bench.json")
    p.add_argument("--longrun-windows", type=int, default=500)
    p.add_argument("--longrun-window-seconds", type=int, default=10)
    p.add_argument("--longrun-from", type=Path, default=None,
                   help="reuse a long run measured earlier (JSON from bench.bench_longrun --out) instead of running it")
    p.add_argument("--reuse", type=Path, default=None,
                   help="take the benchmarks not run this time (--only/--skip) from an earlier bench.json")
    a = p.parse_args(argv)
    names = {b.name for b in BENCHES}
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    skip = {x.strip() for x in a.skip.split(",") if x.strip()}
    bad = (only | skip) - names
    if bad:
        p.error(f"unknown benchmark(s) {', '.join(sorted(bad))}; known: {', '.join(sorted(names))}")
    if a.longrun_windows < 10 or not 10 <= a.longrun_window_seconds <= 3600:
        p.error("--longrun-windows must be >= 10 and --longrun-window-seconds 10..3600")
    t0 = time.time()
    doc = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)), "quick": a.quick,
           "command": "python -m bench.run_all " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine(), "benchmarks": {}}
    earlier = read_json(a.reuse).data if a.reuse is not None else None
    if a.reuse is not None and not isinstance(earlier, dict):
        p.error(f"--reuse {a.reuse}: not a readable bench.json")
    for b in BENCHES:
        if (only and b.name not in only) or b.name in skip:
            old = (earlier or {}).get("benchmarks", {}).get(b.name)
            if old is not None:
                doc["benchmarks"][b.name] = {**old, "reused_from": f"{a.reuse} ({earlier.get('date')})"}
            continue
        if b.name == "longrun" and a.longrun_from is not None:
            res = read_json(a.longrun_from)
            if res.ok and isinstance(res.data, dict):
                doc["benchmarks"][b.name] = {"status": "ok", "reused_from": str(a.longrun_from),
                                             "rows": [r.to_json() for r in rows_longrun(res.data)],
                                             "result": {k: v for k, v in res.data.items() if k != "series"}}
            else:
                doc["benchmarks"][b.name] = {"status": "error", "why": f"--longrun-from {a.longrun_from}:"
                                             f" {res.problem}", "rows": []}
            continue
        extra: list[str] = []
        timeout = b.quick_timeout if a.quick else b.timeout
        if b.name == "longrun" and not a.quick:
            extra = ["--windows", str(a.longrun_windows), "--window-seconds", str(a.longrun_window_seconds)]
            timeout = a.longrun_windows * a.longrun_window_seconds + 900
        doc["benchmarks"][b.name] = run_bench(b, a.quick, extra, timeout)
    statuses = {n: r["status"] for n, r in doc["benchmarks"].items()}
    missed = [f"{r['area']}: {r['figure']}" for res in doc["benchmarks"].values() for r in res["rows"]
              if r["ok"] is False]
    failed = [n for n, s in statuses.items() if s not in ("ok", "target missed", "not available")]
    ratios = [r["ratio"] for res in doc["benchmarks"].values() for r in res["rows"] if r["ratio"] is not None]
    doc["summary"] = {"ran": [n for n, s in statuses.items() if s in ("ok", "target missed")],
                      "not_available": [n for n, s in statuses.items() if s == "not available"],
                      "failed": failed, "targets_missed": missed,
                      "median_ratio_to_target": round(statistics.median(ratios), 3) if ratios else None,
                      "seconds": round(time.time() - t0, 1),
                      "load_average_at_end": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg")
                      else None}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out, doc)
    print_table(doc)
    print(f"written to {a.out}")
    return 1 if failed or missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
