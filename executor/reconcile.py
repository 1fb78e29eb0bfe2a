"""Reconciliation: every open intent (no filled/failed/wallet_rejected) gets its outcome from the
venue's own record, never from a retry: found -> `reconciled` + `filled`; not found -> `failed`;
the venue's record unreadable -> the intent stays open (and its window is never traded again)."""

from __future__ import annotations

import logging

from core.window_grid import parse_iso_utc, window_slug
from executor.decision import Logged
from executor.orders import IllegalTransition, OrderEvent
from executor.outcomes import Recorder
from executor.services import Services
from executor.trade import Order, Outcome
from executor.venue import NotReadable, Venue

log = logging.getLogger("executor.reconcile")


def order_of(intent: dict, slug: str) -> Order:
    return Order(intent["trade_id"], intent["asset"], int(intent["window_start"]), slug, str(intent.get("side")),
                 float(intent.get("amount") or 0), float(intent.get("price") or 0))


class Reconciler:
    def __init__(self, svc: Services, venue: Venue, recorder: Recorder):
        self.svc, self.venue, self.recorder = svc, venue, recorder
        self._cannot: set[str] = set()   # trade ids whose journal this version cannot continue

    def run(self, min_age: float) -> None:
        """Reconcile the open intents at least `min_age` old (0 at start: all of them)."""
        opens = self.svc.journal.open_intents()
        if not opens or getattr(self.venue, "in_trade", False):
            return
        now = self.svc.clock()
        for intent in opens:
            try:
                age = now - parse_iso_utc(intent["ts"])
            except (KeyError, ValueError):
                age = min_age
            if age < min_age or intent["trade_id"] in self._cannot:
                continue
            try:
                if not self._one(intent, wait=self.svc.cfg.step_timeout if min_age == 0 else 0.5):
                    return
            except IllegalTransition as exc:   # never crash-loop on a journal we cannot continue
                log.error("cannot reconcile %s: %s; new %s orders refused", intent["trade_id"], exc, intent["asset"])
                self._cannot.add(intent["trade_id"])
                self.svc.journal.blocked_assets[intent["asset"]] = f"journal: {exc}"

    def _one(self, intent: dict, wait: float) -> bool:
        """False when the venue cannot be read now (stop for this pass)."""
        tid, asset, start = intent["trade_id"], intent["asset"], int(intent["window_start"])
        slug = intent.get("slug") or window_slug(asset, start, self.svc.cfg.window_seconds)
        order = order_of(intent, slug)
        if self.svc.journal.state_of(tid) == OrderEvent.RECONCILED:
            # Found on an earlier pass, then stopped before its `filled` line: complete it, never redo it.
            rec = self.svc.journal.trades[tid].first(OrderEvent.RECONCILED) or {}
            self.recorder.outcome(asset, start, tid, Outcome(
                "filled", "reconciled earlier (found in the venue's orders); fill recorded now", "reconcile",
                {"side": order.side, "amount": order.amount, "price": order.price, "order_id": rec.get("order_id"),
                 "reconciled": True}))
            return True
        try:
            found = self.venue.find_order(asset, slug, order, wait)
        except NotReadable as exc:
            log.error("cannot reconcile %s: %s; the intent stays open until the venue shows its orders", tid, exc)
            return False
        # The decision line of a window whose run died before writing it (once per window, idempotent).
        self.svc.decisions.write(asset, start, slug, Logged.TRADED, f"{intent.get('reason')} (intent journaled"
                                 " before a restart)", strategy=intent.get("strategy"), trade_id=tid,
                                 side=intent.get("side"), price=intent.get("price"), amount=intent.get("amount"),
                                 outcome="filled" if found is not None else "failed")
        if found is not None:
            self.svc.journal.append(OrderEvent.RECONCILED, asset, start, tid, slug=slug, found=True,
                                    order_id=found.get("order_id"))
            self.svc.state.bump("reconciled")
            self.recorder.outcome(asset, start, tid, Outcome("filled", "reconciled from the venue's orders",
                                                             "reconcile", {**found, "reconciled": True}))
        else:
            self.recorder.outcome(asset, start, tid, Outcome(
                "failed", f"reconciliation: no order for this window in the {self.venue.kind} venue's record",
                "reconcile", {"reconciled": True}))
        return True
