"""Helpers for the executor's browser tests: a signal writer, the executor as a real subprocess,
descendant-process lookup (to kill its browser), and journal readers.

    SignalWriter(paths_by_asset, window_seconds) -- a thread keeping each asset's signal.json
        current (atomic replace every 0.25 s) for the UTC-grid window; `.set(asset, **fields)` changes
        what it writes (direction, confidence, prob_up, stale, mode="ok"|"stale_ts"|"corrupt"|"missing").
    ExecutorProc(env, workdir)   -- `python -m executor` with stdout/stderr to a log file;
        .start() .stop() (SIGTERM) .kill() (SIGKILL) .pid .log_text() .descendants()
    trades(env) / decisions(env) / state(env) -- the executor's files as parsed JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core import procfs
from core.durable_files import atomic_write_json, read_json, read_jsonl
from core.window_grid import iso_utc, window_at
from tests.replica_support import wait_until

REPO = Path(__file__).resolve().parent.parent


class SignalWriter:
    def __init__(self, paths: dict[str, Path], window_seconds: int, interval: float = 0.25):
        self.paths = {a: Path(p) for a, p in paths.items()}
        self.window_seconds = window_seconds
        self.interval = interval
        self.fields: dict[str, dict] = {a: {"direction": "UP", "confidence": 80, "prob_up": 0.8} for a in paths}
        self.modes: dict[str, str] = {a: "ok" for a in paths}
        self.seq = 0
        self.last_write: dict[str, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="signal-writer", daemon=True)

    def set(self, asset: str, mode: str | None = None, **fields) -> None:
        with self._lock:
            if mode is not None:
                self.modes[asset] = mode
            self.fields[asset].update(fields)
        self.write_all()

    def document(self, asset: str, now: float) -> dict:
        w = window_at(asset, now, self.window_seconds)
        self.seq += 1
        doc = {"timestamp": iso_utc(now), "direction": "UP", "confidence": 80, "price": 100.0 + self.seq * 0.01,
               "asset": asset, "prob_up": 0.8,
               "window": {"start": iso_utc(w.start), "end": iso_utc(w.end), "open_price": 100.0,
                          "seconds_left": w.seconds_left(now)},
               "source": "test", "seq": self.seq, "stale": False,
               # a stand-in for the engine that knows the venue's price to beat (STRIKE_REQUIRED_AFTER)
               "strike": 100.0, "strike_source": "venue"}
        doc.update(self.fields[asset])
        return doc

    def write_all(self) -> None:
        now = time.time()
        with self._lock:
            for asset, path in self.paths.items():
                mode = self.modes[asset]
                if mode == "missing":
                    path.unlink(missing_ok=True)
                elif mode == "corrupt":
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text('{"timestamp": "2026-01-01T00:00:00Z", "direction": "UP", "confid')
                    os.replace(tmp, path)
                else:
                    doc = self.document(asset, now)
                    if mode == "stale_ts":
                        doc["timestamp"] = iso_utc(now - 120)
                    atomic_write_json(path, doc)
                self.last_write[asset] = now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.write_all()

    def start(self) -> SignalWriter:
        for p in self.paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
        self.write_all()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def executor_env(base: dict[str, str], replica, **overrides: str) -> dict[str, str]:
    env = dict(base)
    env.update({
        "MODE": "demo", "MARKET_URL": replica.market_url, "WINDOW_SECONDS": str(replica.window_seconds),
        # the venue's market data (token ids for the wallet guard, books) from this replica's Gamma/CLOB
        "GAMMA_URL": replica.base_url + "/gamma", "CLOB_URL": replica.base_url + "/clob",
        "METAMASK_PASSWORD": replica.password, "STRATEGY": "seed", "CONFIDENCE": "60", "ASSETS": "BTC",
        "STEP_TIMEOUT": "4", "HEADLESS": "1", "POSITION_SIZE": "10", "SIGNAL_MAX_AGE": "3",
        "ENTRY_END": str(replica.window_seconds * 0.8),
        # The replica's quotes are noisy second to second: tests of other behaviour must not
        # depend on the slippage guard (unit-tested in test_executor_units.py).
        "MAX_SLIPPAGE": "0.98",
    })
    env.update(overrides)
    return env


class ExecutorProc:
    def __init__(self, env: dict[str, str], workdir: Path, args: tuple[str, ...] = ()):
        self.env = env
        self.workdir = Path(workdir)
        self.args = args
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "executor.log"
        self._fh = None

    def start(self) -> ExecutorProc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in _close()
        self.proc = subprocess.Popen([sys.executable, "-m", "executor", *self.args], cwd=str(REPO), env=self.env,
                                     stdout=self._fh, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def descendants(self) -> list[int]:
        return descendants(self.pid) if self.proc else []

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._close()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; SIGKILL (and the browser with it) if it does not exit in time."""
        if self.proc is None:
            return None
        kids = self.descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        kill_pids(kids)
        self._close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the executor, then the browser it leaves behind (only pids it started)."""
        if self.proc is None:
            return
        kids = self.descendants()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        kill_pids(kids)
        self._close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def descendants(pid: int) -> list[int]:
    return procfs.descendant_pids(pid)


def cmdline(pid: int) -> str:
    return procfs.cmdline(pid)


def browser_main_pid(executor_pid: int) -> int | None:
    """The browser's main process: a descendant running chrome/chromium with --user-data-dir, no --type=."""
    for pid in descendants(executor_pid):
        cl = cmdline(pid)
        if ("chrom" in cl.lower()) and "--user-data-dir" in cl and "--type=" not in cl:
            return pid
    return None


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # already gone (most die with their parent): nothing to clean


def trades(env: dict) -> list[dict]:
    return read_jsonl(Path(env["LOG_DIR"]) / "trades.jsonl")


def decisions(env: dict) -> list[dict]:
    return read_jsonl(Path(env["LOG_DIR"]) / "decisions.jsonl")


def state(env: dict) -> dict:
    return read_json(Path(env["STATE_DIR"]) / "executor.json").data or {}


def events_for(env: dict, asset: str, window_start: int) -> list[str]:
    return [t["event"] for t in trades(env) if t["asset"] == asset and t["window_start"] == window_start]


def next_window_start(window_seconds: int, min_lead: float = 1.0) -> int:
    """The start of the next grid window at least `min_lead` seconds away."""
    now = time.time()
    w = window_at("BTC", now, window_seconds)
    start = w.end
    if start - now < min_lead:
        start += window_seconds
    return start


def wait_for_outcome(env: dict, asset: str, window_start: int, timeout: float, events=("filled", "failed",
                     "wallet_rejected", "unknown")) -> list[str]:
    """The window's events up to its first outcome (a `settled` that a loaded machine let arrive
    before the check is after the outcome, not part of it)."""
    def upto_outcome(ev: list[str]) -> list[str] | None:
        ends = [i for i, e in enumerate(ev) if e in events]
        return ev[:ends[0] + 1] if ends else None
    return wait_until(lambda: upto_outcome(events_for(env, asset, window_start)), timeout,
                      what=f"an outcome for {asset} {window_start}")


def wait_for_decision(env: dict, asset: str, window_start: int, timeout: float) -> dict:
    def find():
        for d in decisions(env):
            if d["asset"] == asset and d["window_start"] == window_start:
                return d
        return None
    return wait_until(find, timeout, what=f"the decision line of {asset} {window_start}")


def json_dump(obj) -> str:
    return json.dumps(obj, indent=1)[:4000]


def decided(env: dict, asset: str, window_start: int) -> bool:
    """The window has its decision line and, if traded, a terminal outcome in the journal."""
    line = next((d for d in decisions(env) if d["asset"] == asset and d["window_start"] == window_start), None)
    if line is None:
        return False
    if line["action"] != "traded":
        return True
    return any(e in ("filled", "failed", "wallet_rejected", "unknown") for e in events_for(env, asset, window_start))


def arm_for_next_window(env: dict, replica, assets: tuple[str, ...], window_seconds: int,
                        faults: dict[str, dict] | None = None, margin: float = 0.3) -> int:
    """Wait until the current window is decided for every asset (a window the executor never saw
    counts as over once it ends), arm `faults` (asset -> spec), and return the next window's start."""
    deadline = time.monotonic() + 4 * window_seconds
    while True:
        start = int(time.time() // window_seconds) * window_seconds
        done = wait_until(lambda s=start: all(decided(env, a, s) for a in assets)
                          or time.time() >= s + window_seconds, window_seconds + 5,
                          what=f"the window {start} to be decided")
        nxt = start + window_seconds
        if done is True and all(decided(env, a, start) for a in assets) and nxt - time.time() > margin:
            if faults:
                replica.faults(*[{**spec, "asset": a} for a, spec in faults.items()])
            return nxt
        if time.monotonic() > deadline:
            raise AssertionError("no window could be armed in time")
        wait_until(lambda n=nxt: time.time() >= n, window_seconds + 1, what="the next window")
