"""Recording what happened to an order: the journal line first (the source of truth), then the
executor's counters, the risk book (through the fail-closed gate) and a notification."""

from __future__ import annotations

import logging

from executor.orders import OrderEvent
from executor.risk_gate import RiskGate
from executor.services import Services
from executor.trade import Outcome

log = logging.getLogger("executor.outcomes")


class Recorder:
    def __init__(self, svc: Services, risk: RiskGate):
        self.svc, self.risk = svc, risk

    def outcome(self, asset: str, start: int, trade_id: str, outcome: Outcome) -> None:
        fields = {k: v for k, v in outcome.fields.items() if v is not None}
        if outcome.event != OrderEvent.FILLED:
            fields.setdefault("reason", outcome.reason)
        self.svc.journal.append(outcome.event, asset, start, trade_id, **fields)
        st = self.svc.state
        st.bump(str(outcome.event))
        last = dict(st.data.get("last_trade") or {})
        last.update(event=str(outcome.event), reason=outcome.reason)
        st.set(last_trade=last)
        level = logging.INFO if outcome.event == OrderEvent.FILLED else logging.WARNING
        log.log(level, "trade %s: %s (%s)", trade_id, outcome.event, outcome.reason)
        if outcome.event == OrderEvent.FILLED:
            fill = self.svc.journal.trades[trade_id].merged_fill()
            self.risk.on_fill(trade_id, asset, start, fill)
            self.svc.notify("filled", f"{asset} {fill.get('side')} ${float(fill.get('amount') or 0):.2f} at"
                                      f" {float(fill.get('price') or 0):.2f} ({trade_id})")
        else:
            self.svc.notify(str(outcome.event), f"{asset} trade {trade_id}: {outcome.event}: {outcome.reason}")

    def settled(self, fill: dict, res: dict) -> None:
        asset, start, tid = fill["asset"], int(fill["window_start"]), fill["trade_id"]
        side = str(fill.get("side", "")).upper()
        self.svc.journal.append(OrderEvent.SETTLED, asset, start, tid, slug=fill.get("slug"), side=side,
                                amount=float(fill.get("amount") or 0), **res)
        self.svc.state.bump("settled")
        log.info("trade %s settled: %s, payout %.4f, pnl %+.4f", tid, res["outcome"], res["payout"], res["pnl"])
        halted = self.risk.on_settled(tid, res["pnl"], res.get("outcome"))
        if halted:
            log.error("risk halt: %s", halted)
            self.svc.notify("halt", f"trading halted: {halted}")
        self.svc.notify("settled", f"{asset} {tid}: {res['outcome']}, pnl {res['pnl']:+.2f}")
