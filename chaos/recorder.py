"""What a chaos run observes while it runs, from a background thread.

- every signal.json the engine publishes (seq -> its timestamp, stale flag, asset, window),
  polled every 50 ms (the engine writes every SIGNAL_INTERVAL, 1 s by default);
- whether a live executor process exists (the monitor's pid file, checked against /proc), to
  measure the longest time without one;
- the replica's wallet requests and events (`GET /api/wallet`), accumulated across replica
  restarts (the replica keeps requests in memory only and its last 200 events on disk).
"""

from __future__ import annotations

import logging
import threading
import time

from core.durable_files import read_json
from core.window_grid import parse_iso_utc

from .system import IsolatedSystem

log = logging.getLogger("chaos.recorder")
POLL_S = 0.05
WALLET_EVERY_S = 0.5
READY_STATES = ("watching", "trading")


class Recorder:
    def __init__(self, system: IsolatedSystem):
        self.system = system
        self.signals: dict[int, dict] = {}
        self.wallet_requests: dict[str, dict] = {}
        self.wallet_events: dict[tuple[str, str], dict] = {}
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-recorder", daemon=True)
        self.exec_up_since: float | None = None
        self.exec_down_since: float | None = None
        self.longest_without_executor = 0.0
        self.longest_without_executor_at: float | None = None
        self.executor_seen = False
        # "ready": a live executor whose executor.json (same pid) says it is watching or trading
        self.ready_down_since: float | None = None
        self.longest_without_ready = 0.0
        self.ready_seen = False
        self.samples = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        last_wallet = 0.0
        while not self._stop.is_set():
            now = time.time()
            try:
                self._signal()
                self._executor(now)
                if now - last_wallet >= WALLET_EVERY_S:
                    last_wallet = now
                    self.poll_wallet()
            except Exception:  # noqa: BLE001 - the recorder must outlive one bad read; logged with traceback
                log.exception("recorder step failed; carrying on")
            self.samples += 1
            self._stop.wait(POLL_S)

    def _signal(self) -> None:
        res = read_json(self.system.signal_path)
        d = res.data if res.ok else None
        if not isinstance(d, dict) or not isinstance(d.get("seq"), int):
            return
        seq = d["seq"]
        if seq in self.signals:
            return
        try:
            ts = parse_iso_utc(str(d.get("timestamp")))
        except ValueError:
            ts = None
        win = d.get("window") if isinstance(d.get("window"), dict) else {}
        try:
            wstart = int(round(parse_iso_utc(str(win.get("start")))))
        except ValueError:
            wstart = None
        with self.lock:
            self.signals[seq] = {"ts": ts, "stale": d.get("stale"), "asset": d.get("asset"), "window_start": wstart,
                                 "seen": time.time()}

    def _executor(self, now: float) -> None:
        child = self.system.child("executor")
        up = child is not None
        self._ready(now, child.pid if child else None)
        if up:
            self.executor_seen = True
            if self.exec_down_since is not None:
                gap = now - self.exec_down_since
                if gap > self.longest_without_executor:
                    self.longest_without_executor, self.longest_without_executor_at = gap, self.exec_down_since
                self.exec_down_since = None
        elif self.executor_seen and self.exec_down_since is None:
            self.exec_down_since = now

    def _ready(self, now: float, pid: int | None) -> None:
        ready = False
        if pid is not None:
            res = read_json(self.system.state_dir / "executor.json")
            d = res.data if res.ok and isinstance(res.data, dict) else {}
            ready = d.get("pid") == pid and d.get("status") in READY_STATES
        if ready:
            self.ready_seen = True
            if self.ready_down_since is not None:
                self.longest_without_ready = max(self.longest_without_ready, now - self.ready_down_since)
                self.ready_down_since = None
        elif self.ready_seen and self.ready_down_since is None:
            self.ready_down_since = now

    def close_gap(self) -> None:
        """At the end: an executor still down counts up to now."""
        if self.ready_down_since is not None:
            self.longest_without_ready = max(self.longest_without_ready, time.time() - self.ready_down_since)
        if self.exec_down_since is not None:
            gap = time.time() - self.exec_down_since
            if gap > self.longest_without_executor:
                self.longest_without_executor, self.longest_without_executor_at = gap, self.exec_down_since

    def poll_wallet(self) -> dict | None:
        view = self.system.try_json("/api/wallet")
        if not isinstance(view, dict):
            return None
        self.merge_wallet(view.get("requests") or [], view.get("events") or [])
        return view

    def merge_wallet(self, requests: list, events: list) -> None:
        with self.lock:
            for r in requests:
                if isinstance(r, dict) and r.get("id"):
                    self.wallet_requests[str(r["id"])] = {k: r.get(k) for k in (
                        "id", "asset", "slug", "side", "amount", "status", "adversary", "order_id", "created",
                        "popup", "popup_delay_ms")}
            for e in events:
                if isinstance(e, dict) and e.get("request_id"):
                    self.wallet_events[(str(e["request_id"]), str(e.get("action")))] = {
                        k: e.get(k) for k in ("time", "request_id", "action", "adversary", "asset", "slug")}
