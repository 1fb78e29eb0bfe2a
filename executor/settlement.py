"""Settlement: each filled trade, once its window is over and the venue has its result, gets one
`settled` line (outcome, payout, fee, pnl), then the risk book counts it (fail closed)."""

from __future__ import annotations

from executor.outcomes import Recorder
from executor.services import Services
from executor.venue import Venue

SETTLE_AFTER_END_S = 1.0


class Settler:
    def __init__(self, svc: Services, venue: Venue, recorder: Recorder):
        self.svc, self.venue, self.recorder = svc, venue, recorder

    def run(self) -> None:
        now = self.svc.clock()
        for fill in self.svc.journal.unsettled_fills():
            if now < int(fill["window_start"]) + self.svc.cfg.window_seconds + SETTLE_AFTER_END_S:
                continue
            res = self.venue.window_result(fill)
            if res is not None:
                self.recorder.settled(fill, res)
