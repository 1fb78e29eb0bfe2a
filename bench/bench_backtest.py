"""Benchmark: the whole backtest of the BTC dev file, end to end (a benchmark, not a test).

    .venv/bin/python bench/bench_backtest.py [--runs 3] [--data FILE]

Runs `python -m backtest --data FILE --asset BTC --out TMP` as a fresh process
`runs` times (load, model over every decision minute, walk-forward, plots, report) and prints
the median wall time against the 20 s target. Exit 2 when the data file is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "btcusdt_1m_dev.csv.gz"
TARGET_S = 20.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    a = p.parse_args()
    if not a.data.is_file():
        print(f"bench_backtest: no data file at {a.data} (the shared dev data is absent); pass --data FILE",
              file=sys.stderr)
        return 2
    times, cpus = [], []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.runs):
            t = time.perf_counter()
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run([sys.executable, "-m", "backtest", "--data", str(a.data),
                                "--asset", "BTC", "--out", str(Path(tmp) / f"run{i}"), "--quiet"],
                               cwd=REPO, capture_output=True, text=True, timeout=600)
            times.append(time.perf_counter() - t)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime)
            if r.returncode != 0:
                print(f"bench_backtest: run {i} failed with exit {r.returncode}: {r.stderr[-2000:]}", file=sys.stderr)
                return 1
        rep = json.loads((Path(tmp) / "run0" / "report.json").read_text())
    med = statistics.median(times)
    # CPU seconds tell the machine's own speed when other work shares its 2 cores (load average).
    print(json.dumps({"data": str(a.data), "runs": [round(x, 2) for x in times], "median_s": round(med, 2),
                      "cpu_s": [round(x, 2) for x in cpus], "median_cpu_s": round(statistics.median(cpus), 2),
                      "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                      "target_s": TARGET_S, "windows": rep["assets"]["BTC"]["windows"],
                      "candles": rep["assets"]["BTC"]["data"]["candles"], "pass": med <= TARGET_S}, indent=1))
    return 0 if med <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
