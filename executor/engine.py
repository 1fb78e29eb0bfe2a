"""The engine: one pass = windows -> decide -> risk -> intent -> venue -> record.

    step()                       every ~50 ms, from the worker's loop
      windows.drain/cross_check  which window each asset is in (executor.windows)
      evaluate(asset)            decide (executor.decision, pure) on the fresh signal and the asks
        trade(w, d)              size + risk check (executor.risk_gate, fails closed)
                                 -> journal `intent` (fsynced) -> venue.place -> record the outcome
      reconcile / settle         every 2 s (executor.reconcile, executor.settlement)
The engine never looks at MODE: the venue it is given decides what "place an order" means.
"""

from __future__ import annotations

import logging
import re
import time

from core.durable_files import append_jsonl
from core.pause import read_pause
from executor import decision
from executor.decision import Action, Logged
from executor.journal import new_trade_id
from executor.markup import MarkupHealth
from executor.orders import IllegalTransition, OrderEvent
from executor.outcomes import Recorder
from executor.reconcile import Reconciler
from executor.risk_gate import RiskGate
from executor.services import Services
from executor.settlement import Settler
from executor.signals import Held, SignalAlarm, SignalWatcher
from executor.state import ExecutorStatus
from executor.trade import Order, Outcome
from executor.venue import Venue
from executor.windows import WindowCtx, WindowTracker, status_is

log = logging.getLogger("executor.engine")

AFTERCARE_EVERY_S = 2.0
PRUNE_EVERY_S = 3600.0        # forget finished trades of old windows (memory of a 24/7 run stays flat)
PRUNE_KEEP_S = 86400.0
DECISION_MAX_LAG_S = 2.0      # a decision whose checks took longer is made again, never traded stale
SIGNAL_ALARM_AFTER_S = 30.0   # no usable signal this long (at least 3 x SIGNAL_MAX_AGE): tell the user
WRITE_RETRY_S = 5.0


def _shape(reason: str) -> str:
    return re.sub(r"[0-9.]+", "#", reason)


class Engine:
    def __init__(self, svc: Services, venue: Venue, risk: RiskGate, signals: SignalWatcher, summary=None):
        self.svc, self.venue, self.risk, self.signals = svc, venue, risk, signals
        self.params = decision.Params.from_config(svc.cfg)
        self.markup = MarkupHealth(svc, venue, svc.cfg.site_profile_path.name)
        self.windows = WindowTracker(svc, venue, on_grid_miss=self.markup.on_grid_miss)
        self.recorder = Recorder(svc, risk)
        self.reconciler = Reconciler(svc, venue, self.recorder)
        self.settler = Settler(svc, venue, self.recorder)
        self.summary = summary or (lambda now: None)
        self.signal_alarm = SignalAlarm(signals, svc.cfg.signal_max_age,
                                        max(SIGNAL_ALARM_AFTER_S, 3 * svc.cfg.signal_max_age), svc.notify)
        self._last_aftercare = 0.0
        self._last_prune = time.monotonic()
        self.write_fault: str | None = None
        self._last_write_try = 0.0

    def on_open(self) -> None:
        """The venue was (re)opened: forget page-bound checks, reconcile and settle what is owed."""
        self.markup.reset()
        self.svc.state.set(status=self.quiet_status(), reason=self.write_fault or self.risk.fault)
        try:
            self.aftercare(min_age=0.0)
        except OSError as exc:
            self._write_failed(exc)

    def quiet_status(self) -> ExecutorStatus:
        """The status between trades: what stops trading first (a write fault, the risk book), else watching."""
        if self.write_fault is not None:
            return ExecutorStatus.WRITE_ERROR
        return ExecutorStatus.RISK_ERROR if self.risk.fault is not None else ExecutorStatus.WATCHING

    def step(self) -> None:
        now = self.svc.clock()
        try:
            self.windows.drain()
            if self.write_fault is not None:
                self._retry_writes()
            for asset in self.svc.cfg.assets:
                self.windows.cross_check(asset, now)
                if self.write_fault is None:
                    self.evaluate(asset)
            if time.monotonic() - self._last_aftercare >= AFTERCARE_EVERY_S and self.write_fault is None:
                self.aftercare(min_age=self.svc.cfg.step_timeout)
        except OSError as exc:   # a journal or decision line could not be written: a state, not a crash
            self._write_failed(exc)
        except IllegalTransition as exc:   # a journal this version cannot continue: stop that asset, say why
            self._illegal(exc)
        self.venue.housekeeping()
        self.markup.recheck_when_idle(self.windows.current)
        self.signal_alarm.check(now)
        self.summary(now)

    def _adopt(self, w: WindowCtx, d: decision.Decision, trade_id: str, amount: float, found: dict) -> None:
        """The venue already holds an order for this window that our journal does not know (a run that
        died before its intent was durable, another instance): journal it as ours, never buy again."""
        j, why = self.svc.journal, "the venue already shows an order for this window; adopted, not bought again"
        log.error("%s %s: %s (order %s)", w.asset, w.slug, why, found.get("order_id"))
        j.append(OrderEvent.INTENT, w.asset, w.start, trade_id, slug=w.slug, side=found.get("side") or d.side,
                 amount=found.get("amount") or amount, price=found.get("price") or d.price,
                 strategy=self.svc.cfg.strategy, reason=why, adopted=True)
        w.decided = True
        j.append(OrderEvent.RECONCILED, w.asset, w.start, trade_id, slug=w.slug, found=True,
                 order_id=found.get("order_id"))
        self.recorder.outcome(w.asset, w.start, trade_id,
                              Outcome("filled", why, "adopt", {**found, "reconciled": True}))
        self.windows.decide_line(w, Logged.TRADED, why, outcome="filled", trade_id=trade_id, adopted=True)
        self.svc.notify("unknown", f"{w.asset} {w.slug}: {why} (order {found.get('order_id')})")

    def _illegal(self, exc: IllegalTransition) -> None:
        tr = self.svc.journal.trades.get(exc.trade_id)
        asset = tr.asset if tr else "?"
        if asset not in self.svc.journal.blocked_assets:
            log.error("%s; new %s orders refused until the journal is checked (then restart)", exc, asset)
            self.svc.journal.blocked_assets[asset] = f"journal: {exc}"
            self.svc.notify("halt", f"not trading {asset}: {exc}")

    def _write_failed(self, exc: OSError) -> None:
        first = self.write_fault is None
        self.write_fault = f"a write failed ({exc}); no new orders until writes succeed again"
        self._last_write_try = time.monotonic()
        self.svc.state.set(status=ExecutorStatus.WRITE_ERROR, reason=self.write_fault)
        if first:
            log.error("WRITE FAULT: %s", self.write_fault)
            self.svc.notify("halt", f"not trading: {self.write_fault}")

    def _retry_writes(self) -> None:
        """Every WRITE_RETRY_S: a probe append in the log and state directories; on success, trade again."""
        if time.monotonic() - self._last_write_try < WRITE_RETRY_S:
            return
        self._last_write_try = time.monotonic()
        for directory in (self.svc.cfg.log_dir, self.svc.cfg.state_dir):
            probe = directory / ".write-probe.jsonl"
            append_jsonl(probe, {"probe": "x" * 256})   # raises (and truncates) while the disk is full
            probe.unlink()
        log.warning("writes succeed again: trading resumes")
        self.write_fault = None
        self.svc.state.set(status=self.quiet_status(), reason=self.risk.fault)
        self.svc.notify("resume", "writes succeed again: trading resumes")

    def aftercare(self, min_age: float) -> None:
        self._last_aftercare = time.monotonic()
        self.reconciler.run(min_age)
        self.settler.run()
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            before = self.svc.clock() - PRUNE_KEEP_S
            dropped = self.svc.journal.prune(before)
            self.svc.decisions.prune(before)
            if dropped:
                log.info("forgot %d finished trades older than %.0f h (they stay in the journal file)", dropped,
                         PRUNE_KEEP_S / 3600)

    # ---- one window ---------------------------------------------------------------------------
    def evaluate(self, asset: str) -> None:
        w = self.windows.current.get(asset)
        svc, cfg = self.svc, self.svc.cfg
        if w is None or w.decided or svc.stop:
            return   # once asked to stop, no new intent
        if svc.journal.traded(asset, w.start) or svc.decisions.done(asset, w.start):
            self._already_traded(w)
            return
        now = svc.clock()
        if now >= w.end or now - w.start > cfg.entry_end:
            self.windows.finish(w, f"past the entry interval (ENTRY_END={cfg.entry_end:g}s)")
            return
        if now - w.start >= cfg.entry_start:
            # /pause, the dashboard, ./supervisor.sh pause: say so first (before the page's own state:
            # a paused window's line says "paused" even when the page is slow to show it)
            paused = read_pause(cfg.state_dir).reason()
            if paused:
                self.windows.decide_line(w, Logged.SKIPPED, paused)
                return
        if not w.page_seen:
            if not w.markup_checked and w.selector_error is None:
                self.markup.check(w)   # names the selector that hides the window, once per window
            return
        if now - w.start < cfg.entry_start or not self._market_ok(w):
            return
        held = self.signals.read_fresh(asset)
        ask_up, ask_down = self.venue.asks(asset)
        d = decision.decide(self.params, asset, w.start, w.end, now, held.doc, held.problem, ask_up, ask_down,
                            False)
        if d.action == Action.WAIT:
            if _shape(d.reason) != _shape(w.last_reason):
                log.info("%s %s: waiting: %s", asset, w.slug, d.reason)
            w.last_reason = d.reason
        elif d.action == Action.SKIP:
            self.windows.decide_line(w, Logged.SKIPPED, d.reason, prob_up=d.prob_up)
        else:
            self.trade(w, d, held)

    def _already_traded(self, w: WindowCtx) -> None:
        """A restart inside a traded window: its decision line (if the crash came before it) says so."""
        intent = self.svc.journal.intent_for(w.asset, w.start)
        if intent is not None:
            self.windows.decide_line(w, Logged.TRADED, f"{intent.get('reason')} (intent journaled before a restart)",
                                     trade_id=intent.get("trade_id"), side=intent.get("side"),
                                     price=intent.get("price"), amount=intent.get("amount"))
        w.decided = True

    def _market_ok(self, w: WindowCtx) -> bool:
        if w.markup_checked:
            return True
        if self.markup.recently_ok(w.asset, self.svc.cfg.window_seconds):
            w.markup_checked = True   # checked on this page since the last window: off the critical path
            return True
        return self.markup.check(w)

    def _stale_decision(self, decided_at: float, sig) -> str | None:
        """Why a decision can no longer be traded after its checks, or None: the checks took longer
        than DECISION_MAX_LAG_S, or the signal it used is now older than SIGNAL_MAX_AGE."""
        now, max_age = self.svc.clock(), self.svc.cfg.signal_max_age
        if now - decided_at > DECISION_MAX_LAG_S:
            return f"its checks took {now - decided_at:.1f} s (more than {DECISION_MAX_LAG_S:g} s)"
        if sig is None or sig.timestamp is None or now - sig.timestamp > max_age:
            age = "unknown" if sig is None or sig.timestamp is None else f"{now - sig.timestamp:.1f} s"
            return f"its signal is now {age} old (SIGNAL_MAX_AGE {max_age:g} s)"
        return None

    def _refusal(self, w: WindowCtx, d: decision.Decision) -> tuple[float | None, str | None]:
        """(amount, None) to trade, or (None, why not): blocked asset, sizing, then the risk guards."""
        blocked = self.svc.journal.blocked_assets.get(w.asset)
        if blocked:
            return None, blocked
        paused = read_pause(self.svc.cfg.state_dir).reason()   # /pause, the dashboard, ./supervisor.sh pause
        if paused:
            return None, paused
        amount, why = self.risk.size(d.prob_up, d.price, d.side)
        if why or amount is None:
            return None, why or "sizing gave no amount"
        why = self.risk.check(w.asset, w.start, amount, self.svc.clock())
        return (None, f"risk: {why}") if why else (amount, None)

    def trade(self, w: WindowCtx, d: decision.Decision, held: Held) -> None:
        svc = self.svc
        decided_at = svc.clock()
        amount, why = self._refusal(w, d)
        if amount is None:
            self.windows.decide_line(w, Logged.SKIPPED, str(why), side=d.side, price=d.price)
            return
        trade_id = new_trade_id(w.slug)
        found = self.venue.existing_order(w.asset, w.slug)
        if found is not None:
            self._adopt(w, d, trade_id, amount, found)
            return
        sig = held.doc
        late = self._stale_decision(decided_at, sig)
        if late:   # the checks were slow (a held risk lock waits up to 10 s): decide again on a fresh signal
            log.warning("%s %s: not trading on this decision: %s; deciding again", w.asset, w.slug, late)
            return
        svc.journal.append(OrderEvent.INTENT, w.asset, w.start, trade_id, slug=w.slug, side=d.side, amount=amount,
                           price=d.price, strategy=svc.cfg.strategy, reason=d.reason, prob_up=d.prob_up,
                           edge=d.edge, signal_seq=sig.seq if sig else None,
                           confidence=sig.confidence if sig else None)
        w.decided = True   # its decision line is written after the order (off the critical path)
        svc.state.set(status=ExecutorStatus.TRADING, last_trade={
            "trade_id": trade_id, "asset": w.asset, "slug": w.slug, "side": d.side, "amount": amount,
            "price": d.price, "event": "intent"})
        order = Order(trade_id, w.asset, w.start, w.slug, str(d.side), amount, float(d.price or 0))
        outcome = self.venue.place(order, lambda: svc.journal.append(OrderEvent.SUBMITTED, w.asset, w.start,
                                                                       trade_id, slug=w.slug))
        self.recorder.outcome(w.asset, w.start, trade_id, outcome)
        self.windows.decide_line(w, Logged.TRADED, d.reason, outcome=str(outcome.event), trade_id=trade_id,
                                 side=d.side, price=d.price, amount=amount, prob_up=d.prob_up, edge=d.edge)
        if outcome.event not in (OrderEvent.FILLED, "filled"):
            self.markup.reset()
            self.venue.after_failed_trade()
        if outcome.fields.get("selector"):
            svc.state.set(status=ExecutorStatus.SELECTOR_ERROR, reason=outcome.reason,
                          selector_error={"selector": outcome.fields["selector"], "window": w.slug,
                                          "at": svc.clock()})
        elif status_is(svc, ExecutorStatus.TRADING):
            svc.state.set(status=self.quiet_status())
