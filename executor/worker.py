"""The worker: the executor's loop, stop flag, heartbeat and venue lifetime (relaunch with back-off).

It is the only part that knows MODE: demo and live get the browser venue (clicks through the
page and the wallet), paper gets the paper venue (the same page's data, simulated fills). It
builds the engine, opens the venue, and calls `engine.step()` every LOOP_WAIT_MS until stopped.
Any failure of the risk book stops trading (executor.risk_gate); a failing notifier only stops
notifications.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from core import instance_lock
from core.exit_codes import ExitStatus
from executor import quote_recorder
from executor.browser import BrowserUnavailable
from executor.engine import Engine
from executor.risk_gate import RiskGate
from executor.services import Services, StopFlag
from executor.signals import Held, SignalWatcher
from executor.state import ExecutorStatus
from executor.venue import Venue, VenueGone, VenueRefused
from executor.venue_browser import BrowserVenue, first_line
from executor.venue_paper import PaperVenue, WindowPrices
from notify import Notifier, summary_text

log = logging.getLogger("executor")

LOOP_WAIT_MS = 50
BACKOFF_MAX_S = 30.0
STEADY_AFTER_S = 60.0   # a venue that stayed up this long resets the back-off
RECYCLE_MIN_GAP_S = 4.0  # a planned browser restart only with at least this long before the next window


class RecycleBrowser(Exception):
    """BROWSER_RECYCLE_WINDOWS windows since the browser opened, and now a quiet moment: restart it.
    Playwright keeps every request and response of a page until the page or its context closes
    (microsoft/playwright#6319), so a tab that opens a new event page each window grows its driver's
    memory without bound; a fresh browser is the one reliable release."""


class Worker:
    def __init__(self, cfg, stop: StopFlag | None = None, clock=time.time):
        self.cfg = cfg
        self.notifier = self._notifier(cfg)
        self.svc = Services.build(cfg, clock, stop, notify=self.notify)
        self.prices = WindowPrices()
        self.signals = SignalWatcher({a: cfg.signal_path_for(a) for a in cfg.assets}, on_change=self._on_signal,
                                     clock=clock)
        self.venue = self._venue()
        self.risk = RiskGate(cfg, clock, self.svc.journal.all_events, self._on_risk_fault)
        self.engine = Engine(self.svc, self.venue, self.risk, self.signals, summary=self._maybe_summary)
        self.quotes: quote_recorder.QuoteRecorder | None = None

    @staticmethod
    def _notifier(cfg) -> Notifier | None:
        try:
            return Notifier(cfg)
        except Exception as exc:  # noqa: BLE001 - notifications are optional; the guards are not
            log.error("notifications off: the notifier failed to start (%s); trading goes on with every guard",
                      type(exc).__name__)
            return None

    def _venue(self) -> Venue:
        stop = self.svc.stop
        if self.cfg.mode == "paper":
            return PaperVenue(self.cfg, self.svc.tick, lambda: bool(stop), self.prices, self.svc.clock, self.notify)
        return BrowserVenue(self.cfg, self.svc.tick, lambda: bool(stop), self.notify)

    def notify(self, event: str, text: str) -> None:
        if self.notifier is not None:
            self.notifier.send(event, text)

    def _on_risk_fault(self, reason: str | None) -> None:
        st = self.svc.state
        if reason is not None:
            st.bump("risk_errors")
            st.set(status=ExecutorStatus.RISK_ERROR, reason=reason)
            self.notify("halt", f"not trading: {reason}")
        elif st.data.get("status") == ExecutorStatus.RISK_ERROR:
            st.set(status=self.engine.quiet_status(), reason=self.engine.write_fault)

    def _on_signal(self, asset: str, held: Held) -> None:
        """watchdog thread: note what we now hold (for status and the latency figure) and window prices."""
        doc = held.doc
        self.svc.state.set(signal={"asset": asset, "seq": doc.seq if doc else None,
                                   "timestamp": (held.data or {}).get("timestamp"), "problem": held.problem,
                                   "seen_at": held.seen_at})
        if doc is not None and doc.window is not None and doc.window.start is not None:
            self.prices.note(asset, int(round(doc.window.start)), doc.window.open_price, doc.price, held.seen_at)
        self.svc.state.save()

    def _maybe_summary(self, now: float) -> None:
        """The periodic summary (SUMMARY_INTERVAL), off the trading path like every notification."""
        if self.notifier is None or not self.notifier.summary_due(now):
            return
        status = self.risk.status(now)
        if status is not None:
            self.notify("summary", summary_text(status))

    # ---- lifecycle ------------------------------------------------------------------------------
    def _hold_locks(self) -> None:
        """One executor per state directory and, where a real wallet is used, per browser profile."""
        cfg = self.cfg
        self._locks = [instance_lock.hold(cfg.state_dir / "executor.lock", f"the state directory {cfg.state_dir}")]
        if cfg.mode != "demo":
            self._locks.append(instance_lock.hold(cfg.browser_profile_path.parent / f".{cfg.chrome_profile}.lock",
                                                  f"the browser profile {cfg.browser_profile_path} (its wallet)"))

    def run(self) -> int:
        svc, cfg = self.svc, self.cfg
        try:
            self._hold_locks()
        except instance_lock.AlreadyHeld as exc:
            print(f"executor: {exc}", file=sys.stderr)
            return ExitStatus.REFUSED
        j = svc.journal
        svc.state.set(status=ExecutorStatus.STARTING, reason=None, pid=os.getpid(), started=svc.clock(),
                      journal={"bad_lines": len(j.bad_lines), "first_bad": j.bad_lines[:3],
                               "blocked_assets": dict(j.blocked_assets)})
        svc.tick(force=True)
        self.risk.start()
        self.signals.start()
        self.quotes = quote_recorder.start(cfg)   # QUOTES: its own thread, never in the way of trading
        self.notify("start", f"executor started: mode {cfg.mode}, assets {','.join(cfg.assets)},"
                    f" strategy {cfg.strategy}, {cfg.market_url}")
        try:
            self._supervise_venue()
        except (VenueRefused, BrowserUnavailable) as exc:
            msg = str(exc) if isinstance(exc, VenueRefused) else f"executor: {exc}"
            print(msg, file=sys.stderr)
            svc.state.set(status=ExecutorStatus.REFUSED, reason=msg)
            self.venue.close()
            return ExitStatus.REFUSED
        finally:
            self._shutdown()
        log.info("executor stopped (%s)", svc.stop.reason or "done")
        return ExitStatus.OK

    def _supervise_venue(self) -> None:
        """Open the venue and run the loop; relaunch after a lost browser (with back-off) or a planned
        recycle. Each launch has a Playwright driver of its own: the driver (a node process) keeps
        what it learnt of every page until it exits, so a recycle restarts it with the browser."""
        backoff = 1.0
        while not self.svc.stop:
            started = time.monotonic()
            try:
                with sync_playwright() as pw:
                    try:
                        self.venue.open(pw, self.engine.windows.on_event)
                        self._opened()
                        self._loop()
                    finally:
                        self.venue.close()           # the browser first, then the driver (leaving `with`)
            except RecycleBrowser as exc:
                log.info("%s; restarting the browser and its driver now (planned, between windows)", exc)
                self.svc.state.bump("browser_recycles")
                continue
            except (VenueGone, PlaywrightError) as exc:
                if self.svc.stop:
                    break
                self.svc.state.bump("browser_relaunches")
                self.svc.state.set(status=ExecutorStatus.BROWSER_DOWN, reason=f"browser lost: {first_line(exc)}")
                log.error("browser lost (%s); relaunching in %.0fs", first_line(exc), backoff)
                self.venue.close()
                if time.monotonic() - started > STEADY_AFTER_S:
                    backoff = 1.0
                self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
        self.venue.close()

    def _opened(self) -> None:
        self.engine.on_open()
        self.svc.tick(force=True)

    def _loop(self) -> None:
        opened_at = self._windows_seen()
        while not self.svc.stop:
            self.venue.check_alive()
            self.svc.tick()
            self.engine.step()
            self._recycle_if_due(opened_at)
            self.venue.pause(LOOP_WAIT_MS)

    def _windows_seen(self) -> int:
        return int(self.svc.state.data.get("counters", {}).get("windows", 0))

    def _recycle_if_due(self, opened_at: int) -> None:
        """Raise RecycleBrowser after BROWSER_RECYCLE_WINDOWS windows, once every current window is
        decided and the next one starts in RECYCLE_MIN_GAP_S or more (never inside a trade: the
        click-through runs inside engine.step)."""
        every = self.svc.cfg.browser_recycle_windows
        if not every or self._windows_seen() - opened_at < every:
            return
        current = self.engine.windows.current
        if any(not w.decided for w in current.values()):
            return
        now, length = self.svc.clock(), self.svc.cfg.window_seconds
        if length - (now % length) < RECYCLE_MIN_GAP_S:
            return
        raise RecycleBrowser(f"{self._windows_seen() - opened_at} windows since the browser opened"
                             f" (BROWSER_RECYCLE_WINDOWS={every})")

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.svc.stop and time.monotonic() < deadline:
            self.svc.tick()
            self.svc.stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))

    def _shutdown(self) -> None:
        svc = self.svc
        self.signals.stop()
        quote_recorder.stop(self.quotes)
        if self.notifier is not None:
            self.notifier.send("stop", f"executor stopped ({svc.stop.reason or 'done'})")
            self.notifier.close()
        if svc.state.data.get("status") != ExecutorStatus.REFUSED:
            svc.state.set(status=ExecutorStatus.STOPPED, reason=svc.stop.reason or None)
        svc.tick(force=True)
