"""risk.json is a cache: the risk book rebuilt from trades.jsonl + risk.jsonl (risk.replay)."""

from __future__ import annotations

import pytest

from executor.journal import TradeJournal
from risk import replay
from risk.guards import RiskBook
from tests.risk_support import DAY, T0, risk_cfg

COMPARED = ("halted", "halt_reason", "halt_kind", "day", "trades_today", "wins", "losses", "pnl_today", "fees_today",
            "open_exposure", "open_positions", "consecutive_losses")


class Desk:
    """The executor's bookkeeping with a clock of its own: journal first, then the risk book."""

    def __init__(self, cfg, now: float = T0):
        self.cfg, self.now, self.n = cfg, now, 0
        self.journal = TradeJournal(cfg.trades_path, cfg.mode, clock=lambda: self.now)
        self.book = RiskBook(cfg, clock=lambda: self.now)

    def trade(self, pnl: float | None, amount: float = 10.0, tell_book: bool = True) -> str | None:
        self.n += 1
        tid, ws = f"t{self.n}", int(self.now // 60 * 60)
        self.journal.append("intent", "BTC", ws, tid, side="UP", amount=amount, price=0.5)
        self.journal.append("filled", "BTC", ws, tid, side="UP", amount=amount, price=0.5)
        if tell_book:
            fill = self.journal.trades[tid].merged_fill()
            a, p, shares, fee = replay.fill_numbers(fill, self.cfg)
            self.book.on_fill(tid, "BTC", ws, "UP", a, p, shares, fee, self.now)
        tripped = None
        if pnl is not None:
            self.now += 30
            outcome = "won" if pnl > 0 else "lost"
            self.journal.append("settled", "BTC", ws, tid, outcome=outcome, pnl=pnl, payout=amount + pnl)
            if tell_book:
                tripped = self.book.on_settled(tid, pnl, self.now, outcome=outcome)
        self.now += 30
        return tripped

    def status(self) -> dict:
        s = self.book.status(self.now)
        return {k: s[k] for k in COMPARED}

    def rebuild(self) -> list[str]:
        return replay.rebuild(self.book, TradeJournal(self.cfg.trades_path, self.cfg.mode).events(), self.now)


def test_deleting_risk_json_keeps_pnl_streak_and_halt(iso_env):
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=3, MAX_DAILY_LOSS=1000))
    d.trade(+4.0)
    d.trade(-10.0)
    d.trade(-10.0)
    assert d.trade(-10.0) == "3 consecutive losses (MAX_CONSECUTIVE_LOSSES=3)"
    d.trade(None)                           # an open position too
    before = d.status()
    assert before["halted"] and before["pnl_today"] == pytest.approx(-26.0) and before["open_positions"] == 1
    assert d.rebuild() == []                # the cache agreed with the journals
    d.book.path.unlink()
    assert d.rebuild() == ["risk.json was missing or unreadable"]
    assert d.status() == before
    # resume, then forget the cache again: the resume is in risk.jsonl, so it is not undone
    d.book.resume(d.now)
    cleared = d.status()
    d.book.path.unlink()
    d.rebuild()
    assert d.status() == cleared and not cleared["halted"] and cleared["consecutive_losses"] == 0


def test_a_fill_and_a_settlement_the_book_never_saw_are_counted_once(iso_env):
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2, MAX_DAILY_LOSS=1000))
    d.trade(-10.0)
    d.trade(-10.0, tell_book=False)         # e.g. risk.json's lock timed out while recording both
    assert not d.status()["halted"] and d.status()["trades_today"] == 1
    changed = d.rebuild()
    assert changed and any("trades_today" in c for c in changed)
    s = d.status()
    assert s["trades_today"] == 2 and s["losses"] == 2 and s["pnl_today"] == pytest.approx(-20.0)
    assert s["halted"] and s["halt_kind"] == "consecutive_losses"   # the replay trips the halt the book missed
    d.rebuild()
    assert d.status() == s                  # idempotent


def test_a_cached_halt_the_journal_lost_is_kept(iso_env):
    d = Desk(risk_cfg(iso_env))
    d.trade(+1.0)
    d.book.halt("operator test halt", d.now)
    d.book.journal_path.unlink()            # the halt's journal line is gone (e.g. a failed append)
    d.rebuild()
    assert d.status()["halted"] and d.status()["halt_reason"] == "operator test halt"


def test_days_roll_over_in_the_replay(iso_env):
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=10, MAX_DAILY_LOSS=1000))
    d.trade(-5.0)
    d.now += DAY
    d.trade(+3.0)
    d.book.path.unlink()
    d.rebuild()
    s = d.status()
    assert s["trades_today"] == 1 and s["pnl_today"] == pytest.approx(3.0) and s["consecutive_losses"] == 0


def test_other_modes_are_not_counted(iso_env):
    paper = Desk(risk_cfg(iso_env, MODE="paper"))
    paper.trade(-10.0)
    demo = Desk(risk_cfg(iso_env))
    demo.book.path.unlink(missing_ok=True)
    demo.rebuild()
    assert demo.status()["trades_today"] == 0 and demo.status()["pnl_today"] == 0


def test_an_error_halt_supersedes_a_halt_the_new_day_would_clear(iso_env):
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=1, MAX_DAILY_LOSS=1000, RESUME_NEXT_DAY=1))
    assert d.trade(-10.0).startswith("1 consecutive losses")
    assert d.book.halt("could not record fill t9 in the risk book (OSError)", d.now, kind="error")
    for _ in range(2):                              # the live book, then the rebuild without the cache
        d.now += DAY
        s = d.book.status(d.now)
        assert s["halted"] and s["halt_kind"] == "error" and s["halt_reason"].startswith("could not record fill")
        d.book.path.unlink()
        d.rebuild()


def test_a_lowered_loss_limit_applies_from_now_on_not_to_losses_already_followed_by_wins(iso_env):
    """Found in a user's trial: MAX_CONSECUTIVE_LOSSES 5 -> 1 and a restart halted trading over a loss that
    three wins had followed (the replay judged past settlements by the new limit). A halt the live book
    never journaled and the counters no longer imply is not applied; one they still imply is (fail closed)."""
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=5, MAX_DAILY_LOSS=1000))
    d.trade(-10.0)
    for _ in range(3):
        d.trade(+4.0)
    assert not d.status()["halted"] and d.status()["consecutive_losses"] == 0
    lowered = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=1, MAX_DAILY_LOSS=1000), now=d.now)
    assert lowered.rebuild() == []                                    # nothing to change: not halted
    assert not lowered.status()["halted"] and lowered.book.check("BTC", int(lowered.now), 10.0, lowered.now) is None
    lowered.n = d.n
    assert lowered.trade(-10.0) == "1 consecutive losses (MAX_CONSECUTIVE_LOSSES=1)"   # from now on: the next loss
    assert lowered.status()["halted"]


def test_a_lowered_limit_still_met_by_the_current_streak_halts_at_the_rebuild(iso_env):
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=5, MAX_DAILY_LOSS=1000))
    for _ in range(3):
        d.trade(-10.0)
    assert not d.status()["halted"] and d.status()["consecutive_losses"] == 3
    lowered = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2, MAX_DAILY_LOSS=1000), now=d.now)
    lowered.rebuild()
    st = lowered.status()
    assert st["halted"] and st["halt_kind"] == "consecutive_losses" and st["consecutive_losses"] == 3


def test_a_journaled_halt_stays_though_a_win_settled_after_it(iso_env):
    """The live book's own halt (a halt line in risk.jsonl) is never second-guessed by the replay."""
    d = Desk(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2, MAX_DAILY_LOSS=1000))
    d.trade(-10.0)
    assert d.trade(-10.0) is not None
    d.trade(+4.0)                     # a position opened before the halt settles as a win while halted
    assert d.status()["halted"] and d.status()["consecutive_losses"] == 0
    (d.cfg.state_dir / "risk.json").unlink()
    assert d.rebuild() == ["risk.json was missing or unreadable"] and d.status()["halted"]
