"""A small stand-in child for the supervisor tests: beats a heartbeat file until told to stop.

    python tests/supervisor_stub.py --beat PATH [--interval S] [--fail-fast] [--ignore-term]
                                    [--grandchild PIDFILE] [--exit-after S] [--env-dump PATH]
                                    [--refuse PATH]

--fail-fast exits 1 at once (a child that cannot start); --ignore-term ignores SIGTERM (so the
supervisor must escalate to SIGKILL); --grandchild starts a `sleep`-like Python process in a
session of its own (as Playwright starts Chromium) and writes its pid to PIDFILE; --refuse writes
what the executor writes when it refuses to run (state/executor.json: status refused, its reason) to
PATH, then exits 2 (as the executor does, live, with a locked wallet).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--beat", required=True)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--fail-fast", action="store_true")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--grandchild")
    p.add_argument("--exit-after", type=float)
    p.add_argument("--env-dump")
    p.add_argument("--refuse")
    a = p.parse_args()
    if a.env_dump:
        keys = ("MODE", "LIVE_CONFIRM", "METAMASK_PASSWORD", "REPLICA_WALLET_PASSWORD", "SUPERVISED_BY")
        Path(a.env_dump).write_text(json.dumps({k: os.environ.get(k) for k in keys}))
    if a.refuse:
        Path(a.refuse).parent.mkdir(parents=True, exist_ok=True)
        Path(a.refuse).write_text(json.dumps({"status": "refused", "pid": os.getpid(), "started": time.time(),
                                              "reason": "live mode needs METAMASK_PASSWORD (stub)"}))
        return 2
    if a.fail_fast:
        print("stub: failing at start on purpose", file=sys.stderr, flush=True)
        return 1
    if a.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if a.grandchild:
        g = subprocess.Popen([sys.executable, "-c", "import signal\nsignal.pause()"],
                             start_new_session=True)
        Path(a.grandchild).write_text(str(g.pid))
    beat = Path(a.beat)
    beat.parent.mkdir(parents=True, exist_ok=True)
    print(f"stub: pid {os.getpid()} beating {beat}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    beat_pace = threading.Event()   # never set: wait() paces the beats
    while True:
        beat.touch()
        os.utime(beat)
        if a.exit_after is not None and time.monotonic() - t0 > a.exit_after:
            return 4
        beat_pace.wait(a.interval)   # the stub's heartbeat period (its workload), not a wait


if __name__ == "__main__":
    raise SystemExit(main())
