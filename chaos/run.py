"""The chaos run: the whole demo system under seeded SIGKILLs, feed outages and venue/wallet faults.

Each step of the run is drawn from a `random.Random(seed)` in a fixed order (action, gap, delay,
outage), so the plan is the same for the same seed; the moments it lands on depend on the live
system (that is the point of reacting to an `intent` line or an open wallet request).

Kill actions (SIGKILL, counted towards --kills):
  executor, executor_in_trade (after an `intent` line appears in trades.jsonl, 0-1.5 s later),
  executor_in_popup (while the replica holds a pending wallet request, 0-0.4 s after it appears),
  executor_after_confirm (0-0.3 s after the `submitted` line: the wallet's confirm was clicked and
  the outcome is not journaled yet, the case reconciliation exists for),
  browser / browser_in_trade / browser_in_popup / browser_after_confirm (the browser's main Chromium
  process, found in the executor's process tree), signal_engine, replica, replica_in_popup,
  replica_after_confirm.
A process is killed only after it has run for KILL_MIN_UPTIME_S (a kill sooner would count as a failed
start for the monitor, which marks a child FATAL after five in a row: a different experiment).
Other faults (not counted as kills):
  feed outage: SIGSTOP of the signal engine for 6-20 s (SIGNAL_MAX_AGE is 5 s; the monitor's
  heartbeat limit for the engine is 15 s, so the longer ones end in a restart), then SIGCONT;
  replica faults (`POST /api/faults`, one armed at a time, at most one per window): slow and
  never-opening popups, venue rejection, slow page, and every adversarial wallet request.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field

from core.durable_files import iter_jsonl, read_json
from replica.typed_order import ADVERSARIES

from . import procs
from .recorder import Recorder
from .system import IsolatedSystem
from .system_faults import SystemFaults

log = logging.getLogger("chaos")

KILL_WEIGHTS = {
    "executor": 2.0, "executor_in_trade": 2.0, "executor_in_popup": 2.0,
    "browser": 1.0, "browser_in_trade": 1.0, "browser_in_popup": 1.0,
    "signal_engine": 1.5, "replica": 1.5, "replica_in_popup": 0.5,
    "executor_after_confirm": 2.0, "browser_after_confirm": 1.0, "replica_after_confirm": 0.5,
}
TRIGGERS = ("in_trade", "in_popup", "after_confirm")
# Every adversarial wallet request the replica can make (in the real CLOB V2 shapes), then the venue faults.
FAULT_KINDS = (*ADVERSARIES, "popup_never", "popup_delay", "order_reject", "slow_page")
KILL_MIN_UPTIME_S = 6.5
ELIGIBLE_WAIT_S = 45.0
OUTAGE_P = 0.15


@dataclass
class Step:
    action: str
    gap: float
    delay: float
    outage: float | None


@dataclass
class Stats:
    kills: dict = field(default_factory=dict)
    kill_log: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    outages: list = field(default_factory=list)
    faults_armed: list = field(default_factory=list)
    fallbacks: int = 0


class Plan:
    """The seeded sequence of steps and faults."""

    def __init__(self, seed: int, gap_min: float, gap_max: float):
        self.rng = random.Random(seed)
        self.gap_min, self.gap_max = gap_min, gap_max
        kinds = list(KILL_WEIGHTS)
        self.rng.shuffle(kinds)
        self._first = kinds          # every kill kind once first, then weighted draws
        self._faults = list(FAULT_KINDS)
        self.rng.shuffle(self._faults)
        self._fault_i = 0
        self.fault_rng = random.Random(seed * 7919 + 1)

    def next_step(self) -> Step:
        action = self._first.pop(0) if self._first else \
            self.rng.choices(list(KILL_WEIGHTS), weights=list(KILL_WEIGHTS.values()))[0]
        gap = self.rng.uniform(self.gap_min, self.gap_max)
        delay = self.rng.uniform(0.0, 1.5) if action.endswith("in_trade") else \
            self.rng.uniform(0.0, 0.3) if action.endswith("after_confirm") else self.rng.uniform(0.0, 0.4)
        outage = self.rng.uniform(6.0, 20.0) if self.rng.random() < OUTAGE_P else None
        return Step(action, gap, delay, outage)

    def next_fault(self) -> dict:
        kind = self._faults[self._fault_i % len(self._faults)]
        self._fault_i += 1
        spec: dict = {"kind": kind, "mode": "once"}
        if kind == "popup_delay":
            # short (the click-through waits it out) or longer than STEP_TIMEOUT (the popup opens late)
            spec["ms"] = int(self.fault_rng.choice([self.fault_rng.uniform(1000, 4000),
                                                    self.fault_rng.uniform(11000, 15000)]))
        elif kind == "slow_page":
            spec["ms"] = int(self.fault_rng.uniform(1000, 4000))
        return spec


class Chaos:
    def __init__(self, system: IsolatedSystem, recorder: Recorder, plan: Plan, kills: int,
                 fault_probability: float = 0.6, system_faults: SystemFaults | None = None):
        self.sys, self.rec, self.plan, self.target = system, recorder, plan, kills
        self.system_faults = system_faults
        self.fault_p = fault_probability
        self.stats = Stats()
        self.done = 0
        self._next_fault_at = 0.0
        self._outage: tuple[int, str, float] | None = None  # (pid, start token, resume at)
        self._journal_pos = 0
        self._lock = threading.Lock()

    # ---- maintenance while waiting ---------------------------------------------------------------
    def pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            self.maintain()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))  # pacing of the harness loop (it polls the system between steps)

    def maintain(self) -> None:
        self._end_outage_if_due()
        self._maybe_arm_fault()
        if self.system_faults is not None:
            self.system_faults.maintain(time.time())

    def _maybe_arm_fault(self) -> None:
        now = time.time()
        if now < self._next_fault_at:
            return
        self._next_fault_at = now + self.sys.window_seconds
        if self.plan.fault_rng.random() >= self.fault_p:
            return
        listed = self.sys.try_json("/api/faults")
        if not isinstance(listed, dict) or listed.get("faults"):
            return  # replica down, or the previous fault has not fired yet
        spec = self.plan.next_fault()
        if self.sys.try_json("/api/faults", "POST", spec) is not None:
            self.stats.faults_armed.append({"at": round(now, 2), **spec})
            log.info("fault armed: %s", spec)

    def _end_outage_if_due(self, force: bool = False) -> None:
        if self._outage is None:
            return
        pid, start, resume_at = self._outage
        if not force and time.time() < resume_at:
            return
        self._outage = None
        if procs.alive(pid, start):
            os.kill(pid, signal.SIGCONT)
            log.info("feed outage over: SIGCONT to the signal engine (pid %d)", pid)
        else:
            log.info("feed outage over: the signal engine pid %d was already replaced by the monitor", pid)

    # ---- targets ---------------------------------------------------------------------------------
    def _eligible(self, name: str) -> int | None:
        """The pid to kill for `name` (executor, browser, signal_engine, replica), if it has run long enough."""
        owner = "executor" if name == "browser" else name
        c = self.sys.child(owner)
        if c is None or time.time() - c.started_at < KILL_MIN_UPTIME_S:
            return None
        if self._outage is not None and owner == "signal_engine":
            return None  # stopped on purpose: let the outage play out
        if name != "browser":
            return c.pid
        main = procs.browser_main(procs.tree(c.pid))
        return main.pid if main else None

    def _wait_eligible(self, name: str) -> int | None:
        deadline = time.monotonic() + ELIGIBLE_WAIT_S
        while time.monotonic() < deadline:
            pid = self._eligible(name)
            if pid:
                return pid
            self.pause(0.2)
        return None

    def _new_journal_lines(self) -> list[dict]:
        path = self.sys.trades_path
        try:
            with open(path, "rb") as fh:
                fh.seek(self._journal_pos)
                data = fh.read()
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self._journal_pos += end + 1
        out = []
        for line in data[:end].splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue  # a torn line (the executor was killed mid-write): the audit reads the file again
            if isinstance(obj, dict):   # the malformed_line fault writes lines that are not objects
                out.append(obj)
        return out

    def _wait_journal(self, event: str, timeout: float) -> dict | None:
        self._new_journal_lines()  # skip what is already there
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self._new_journal_lines():
                if r.get("event") == event:
                    return r
            self.pause(0.05)
        return None

    def _wait_popup(self, timeout: float) -> dict | None:
        t0 = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = self.rec.poll_wallet()
            for r in (view or {}).get("requests", []) or []:
                if r.get("status") == "pending" and float(r.get("created") or 0) >= t0 - 0.5:
                    return r
            self.pause(0.05)
        return None

    # ---- one step --------------------------------------------------------------------------------
    def run_step(self, step: Step) -> None:
        action = step.action
        name, trigger = split_action(action)
        if self._wait_eligible(name) is None:
            self.stats.skipped.append({"action": action, "why": f"{name} not running for {KILL_MIN_UPTIME_S}s"})
            log.info("skip %s: %s not eligible within %.0fs", action, name, ELIGIBLE_WAIT_S)
            return
        seen = None
        wait = 3 * self.sys.window_seconds + 10
        if trigger == "in_trade":
            seen = self._wait_journal("intent", wait)
        elif trigger == "after_confirm":
            seen = self._wait_journal("submitted", wait)
        elif trigger == "in_popup":
            seen = self._wait_popup(wait)
        if trigger and seen is None:
            self.stats.fallbacks += 1
            log.info("%s: no %s seen within %.0fs; killing anyway", action, trigger, wait)
        if trigger and seen is not None:
            self.pause(step.delay)
        while self.system_faults is not None and self.system_faults.busy():
            self.pause(0.1)   # bounded: the second executor is killed after SECOND_EXECUTOR_WAIT_S
        pid = self._eligible(name)
        if pid is None:
            self.stats.skipped.append({"action": action, "why": f"{name} went away before the kill"})
            return
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            self.stats.skipped.append({"action": action, "why": f"{name} pid {pid} exited before the kill"})
            return
        self.done += 1
        self.stats.kills[action] = self.stats.kills.get(action, 0) + 1
        entry = {"n": self.done, "action": action, "pid": pid, "at": round(time.time(), 3)}
        if seen is not None:
            entry["during"] = seen.get("trade_id") or seen.get("id")
        self.stats.kill_log.append(entry)
        log.info("kill %d/%d: SIGKILL %s (pid %d)%s", self.done, self.target, action, pid,
                 f" during {entry['during']}" if "during" in entry else "")

    def start_outage(self, seconds: float) -> None:
        if self._outage is not None:
            return
        c = self.sys.child("signal_engine")
        if c is None:
            return
        tok = procs.start_token(c.pid)
        if tok is None:
            return
        os.kill(c.pid, signal.SIGSTOP)
        self._outage = (c.pid, tok, time.time() + seconds)
        self.stats.outages.append({"at": round(time.time(), 2), "seconds": round(seconds, 1), "pid": c.pid})
        log.info("feed outage: SIGSTOP to the signal engine (pid %d) for %.1fs", c.pid, seconds)

    def run(self, max_seconds: float) -> None:
        deadline = time.monotonic() + max_seconds
        while self.done < self.target and time.monotonic() < deadline:
            step = self.plan.next_step()
            self.pause(step.gap)
            if step.outage:
                self.start_outage(step.outage)
            self.run_step(step)
        if self.done < self.target:
            log.warning("stopped after %d of %d kills: the time limit of %.0fs was reached", self.done, self.target,
                        max_seconds)

    def wind_down(self) -> None:
        self._end_outage_if_due(force=True)
        if self.system_faults is not None:
            self.system_faults.wind_down()
        self.sys.try_json("/api/faults", "DELETE")

    def settle(self, timeout: float) -> bool:
        """After the last fault: every child running, no open intent, two more windows. True when settled."""
        t0 = time.monotonic()
        need_until = time.monotonic() + 2 * self.sys.window_seconds
        while time.monotonic() - t0 < timeout:
            self.sys.try_json("/api/faults", "DELETE")  # a restarted replica may have reloaded one
            if self.system_faults is not None:
                self.system_faults.wind_down()       # a halt the held risk lock caused is resumed
            up = all(self.sys.child(n) is not None for n in ("replica", "signal_engine", "executor"))
            if up and time.monotonic() >= need_until and not open_intents(self.sys):
                return True
            time.sleep(0.5)  # pacing of a deadline-bounded wait
        return False


def split_action(action: str) -> tuple[str, str | None]:
    """'executor_after_confirm' -> ('executor', 'after_confirm'); 'replica' -> ('replica', None)."""
    for t in TRIGGERS:
        if action.endswith("_" + t):
            return action[: -len(t) - 1], t
    return action, None


def open_intents(system: IsolatedSystem) -> list[str]:
    by: dict[str, set] = {}
    for r in iter_jsonl(system.trades_path):
        if isinstance(r.get("trade_id"), str):
            by.setdefault(r["trade_id"], set()).add(r.get("event"))
    return [t for t, evs in by.items() if "intent" in evs and not evs & {"filled", "failed", "wallet_rejected"}]


def executor_counters(system: IsolatedSystem) -> dict:
    res = read_json(system.state_dir / "executor.json")
    if res.ok and isinstance(res.data, dict):
        return dict(res.data.get("counters") or {})
    return {}
