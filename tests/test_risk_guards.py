"""Risk guards: each trips, survives a restart (a new RiskBook on the same dir), and resume clears it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.durable_files import read_jsonl
from core.window_grid import utc_day
from risk.guards import RiskBook
from tests.risk_support import DAY, T0, risk_cfg

REPO = Path(__file__).resolve().parent.parent
REQUIRED_STATUS = {"halted", "halt_reason", "halted_at", "day", "trades_today", "wins", "losses", "pnl_today",
                   "fees_today", "open_exposure", "consecutive_losses", "win_rate", "limits"}


class Trader:
    """Drives a RiskBook the way the executor does: check, fill, settle, one window at a time."""

    def __init__(self, book: RiskBook, now: float = T0, step: float = 60.0):
        self.book, self.now, self.step, self.n = book, now, step, 0

    def trade(self, pnl: float, amount: float = 10.0, settle: bool = True) -> str | None:
        self.n += 1
        tid = f"t{self.n}"
        ws = int(self.now // 60 * 60)
        self.book.on_fill(tid, "BTC", ws, "UP", amount, 0.5, amount / 0.5 * 0.9825, 0.0875, self.now)
        tripped = self.book.on_settled(tid, pnl, self.now + 1) if settle else None
        self.now += self.step
        return tripped


def journal_events(cfg) -> list[str]:
    return [r["event"] for r in read_jsonl(cfg.log_dir / "risk.jsonl")]


def test_consecutive_losses_halt_survive_restart_and_resume(iso_env):
    cfg = risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=3, MAX_DAILY_LOSS=1000)
    tr = Trader(RiskBook(cfg))
    assert tr.trade(-10) is None and tr.trade(-10) is None
    assert tr.trade(+9) is None  # a win ends the streak
    assert tr.trade(-10) is None and tr.trade(-10) is None
    tripped = tr.trade(-10)
    assert tripped == "3 consecutive losses (MAX_CONSECUTIVE_LOSSES=3)"
    assert tr.book.check("BTC", 0, 10.0, tr.now) == f"halted: {tripped}"
    # A restart (a new RiskBook on the same state dir) keeps it, and so does the next UTC day by default.
    book2 = RiskBook(risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=3, MAX_DAILY_LOSS=1000))
    assert book2.check("BTC", 0, 10.0, tr.now + DAY).startswith("halted: 3 consecutive losses")
    st = book2.status(tr.now + DAY)
    assert st["halted"] and st["consecutive_losses"] == 3 and st["trades_today"] == 0  # new day's counters
    cleared = book2.resume(tr.now + DAY)
    assert cleared["halt_reason"] == tripped and cleared["halt_kind"] == "consecutive_losses"
    assert book2.check("BTC", 0, 10.0, tr.now + DAY) is None
    assert book2.status(tr.now + DAY)["consecutive_losses"] == 0
    assert book2.resume(tr.now + DAY) is None  # nothing left to clear
    assert journal_events(cfg) == ["halt", "day_rollover", "resume"]


def test_daily_loss_halts_and_does_not_resume_by_itself(iso_env):
    cfg = risk_cfg(iso_env, MAX_DAILY_LOSS=25, MAX_CONSECUTIVE_LOSSES=10)
    tr = Trader(RiskBook(cfg))
    assert tr.trade(-10) is None
    assert tr.trade(+4) is None
    assert tr.trade(-10) is None  # -16
    tripped = tr.trade(-10)       # -26 <= -25
    assert tripped and tripped.startswith("daily loss limit: today's P&L $-26.00")
    st = tr.book.status(tr.now)
    assert st["halted"] and st["halt_reason"] == tripped and st["pnl_today"] == pytest.approx(-26.0)
    assert st["halted_at"] == pytest.approx(tr.now - tr.step + 1)
    # A settlement of a trade opened before the halt (a win) does not clear it.
    tr.book.on_fill("late", "ETH", 0, "DOWN", 10, 0.5, 19.65, 0.0875, tr.now - 30)
    assert tr.book.on_settled("late", 9.65, tr.now) is None
    assert tr.book.status(tr.now)["halted"]
    # Not the next day either (RESUME_NEXT_DAY=0), nor a restart a week later.
    assert RiskBook(cfg).check("BTC", 0, 10.0, tr.now + 7 * DAY).startswith("halted: daily loss limit")
    RiskBook(cfg).resume(tr.now + 7 * DAY)
    assert RiskBook(cfg).check("BTC", 0, 10.0, tr.now + 7 * DAY) is None


def test_after_resume_the_next_loss_of_a_losing_day_halts_again(iso_env):
    cfg = risk_cfg(iso_env, MAX_DAILY_LOSS=15, MAX_CONSECUTIVE_LOSSES=10)
    tr = Trader(RiskBook(cfg))
    tr.trade(-10)
    assert tr.trade(-10)
    tr.book.resume(tr.now)
    assert tr.book.check("BTC", 0, 10.0, tr.now) is None
    assert tr.trade(+5) is None   # still -15 for the day, but a win never trips
    assert tr.trade(-1) is not None


def test_resume_next_day_clears_loss_halts_but_not_error_halts(iso_env):
    cfg = risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2, MAX_DAILY_LOSS=1000, RESUME_NEXT_DAY=1)
    day_end = (T0 // DAY + 1) * DAY
    tr = Trader(RiskBook(cfg), now=day_end - 600)
    tr.trade(-10)
    assert tr.trade(-10)
    assert tr.book.check("BTC", 0, 10, day_end - 1).startswith("halted:")  # same UTC day: still halted
    assert RiskBook(cfg).check("BTC", 0, 10, day_end + 1) is None            # next UTC day: cleared
    assert journal_events(cfg)[-2:] == ["day_rollover", "auto_resume"]
    assert RiskBook(cfg).status(day_end + 2)["consecutive_losses"] == 0
    # An error halt is not a loss halt: only resume clears it.
    assert RiskBook(cfg).halt("wallet popup asked for a transfer", day_end + 5)
    assert not RiskBook(cfg).halt("second cause", day_end + 6)  # already halted: first reason kept
    assert RiskBook(cfg).check("BTC", 0, 10, day_end + 2 * DAY) == "halted: wallet popup asked for a transfer"


def test_daily_trade_cap_resets_on_the_next_utc_day(iso_env):
    cfg = risk_cfg(iso_env, MAX_TRADES_PER_DAY=2)
    tr = Trader(RiskBook(cfg))
    tr.trade(+1)
    assert tr.book.check("BTC", 0, 10, tr.now) is None
    tr.trade(+1)
    why = RiskBook(cfg).check("BTC", 0, 10, tr.now)
    assert why.startswith("daily trade cap reached (2/2") and utc_day(tr.now) in why
    assert not RiskBook(cfg).status(tr.now)["halted"]  # a skip, not a halt
    assert RiskBook(cfg).check("BTC", 0, 10, tr.now + DAY) is None


def test_open_exposure_cap_counts_unsettled_fills(iso_env):
    cfg = risk_cfg(iso_env, MAX_OPEN_EXPOSURE=25)
    tr = Trader(RiskBook(cfg))
    tr.trade(0, amount=10, settle=False)
    tr.trade(0, amount=10, settle=False)
    why = RiskBook(cfg).check("BTC", 0, 10.0, tr.now)
    assert why.startswith("open exposure cap: $20.00 open + $10.00")
    assert RiskBook(cfg).check("BTC", 0, 5.0, tr.now) is None  # exactly the cap is allowed
    assert RiskBook(cfg).status(tr.now)["open_exposure"] == pytest.approx(20.0)
    tr.book.on_settled("t1", -10, tr.now)
    assert tr.book.check("BTC", 0, 10.0, tr.now) is None
    assert tr.book.status(tr.now)["open_exposure"] == pytest.approx(10.0)


def test_cooldown_between_trades_survives_a_restart(iso_env):
    cfg = risk_cfg(iso_env, COOLDOWN_SECONDS=120)
    book = RiskBook(cfg)
    book.on_fill("a", "BTC", 0, "UP", 10, 0.5, 19.65, 0.0875, T0)
    why = RiskBook(cfg).check("ETH", 900, 10, T0 + 60)
    assert why.startswith("cooldown: 60s left of COOLDOWN_SECONDS=120")
    assert RiskBook(cfg).status(T0 + 60)["cooldown_left"] == pytest.approx(60)
    assert RiskBook(cfg).check("ETH", 900, 10, T0 + 120) is None
    assert risk_cfg(iso_env).cooldown_seconds == 0  # demo default: no cooldown


def test_one_position_per_window_and_idempotent_events(iso_env):
    cfg = risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2)
    book = RiskBook(cfg)
    book.on_fill("a", "BTC", "2026-01-01T01:00:00Z", "UP", 10, 0.5, 19.65, 0.0875, T0)
    assert book.check("BTC", int(T0), 10, T0).startswith("already holding a")
    assert book.check("ETH", int(T0), 10, T0) is None
    book.on_fill("a", "BTC", int(T0), "UP", 10, 0.5, 19.65, 0.0875, T0)  # replayed fill: counted once
    assert book.status(T0)["trades_today"] == 1
    assert book.on_settled("a", -10, T0 + 60) is None
    assert book.on_settled("a", -10, T0 + 61) is None  # replayed settlement: counted once
    book.on_fill("a", "BTC", int(T0), "UP", 10, 0.5, 19.65, 0.0875, T0)  # fill after its settlement: ignored
    st = book.status(T0 + 62)
    assert (st["losses"], st["consecutive_losses"], st["pnl_today"], st["open_exposure"]) == (1, 1, -10.0, 0.0)
    assert st["fees_today"] == pytest.approx(0.0875)


def test_outcome_overrides_the_sign_and_a_push_counts_neither(iso_env):
    book = RiskBook(risk_cfg(iso_env))
    book.on_settled("x", 0.0, T0)
    book.on_settled("y", 0.0, T0, outcome="lost")
    st = book.status(T0)
    assert (st["wins"], st["losses"], st["win_rate"]) == (0, 1, 0.0)


def test_status_has_the_contract_fields(iso_env):
    cfg = risk_cfg(iso_env)
    tr = Trader(RiskBook(cfg))
    tr.trade(+9.65)
    tr.trade(-10)
    tr.trade(+9.65)
    tr.trade(0, settle=False)
    st = RiskBook(cfg).status(tr.now)
    assert REQUIRED_STATUS <= set(st)
    assert st["win_rate"] == pytest.approx(2 / 3)
    assert st["pnl_today"] == pytest.approx(9.3)
    assert st["fees_today"] == pytest.approx(4 * 0.0875)
    assert st["trades_today"] == 4 and st["open_exposure"] == 10.0 and not st["halted"]
    assert set(st["limits"]) == {"max_daily_loss", "max_consecutive_losses", "max_trades_per_day",
                                 "max_open_exposure", "cooldown_seconds", "resume_next_day"}
    json.dumps(st)  # JSON-ready


def test_corrupt_state_starts_halted_and_keeps_a_copy(iso_env):
    cfg = risk_cfg(iso_env)
    path = cfg.state_dir / "risk.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"halted": true, "halt_re')  # torn by hand
    why = RiskBook(cfg).check("BTC", 0, 10, T0)
    assert why.startswith("halted: risk state") and "unreadable" in why and "resume" in why
    assert list(cfg.state_dir.glob("risk.json.corrupt-*"))
    assert RiskBook(cfg).status(T0)["halted"]  # the halted fresh state was saved
    RiskBook(cfg).resume(T0)
    assert RiskBook(cfg).check("BTC", 0, 10, T0) is None


def run_risk(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "risk", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_resume_command_clears_the_halt_in_a_real_process(iso_env):
    cfg = risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2)
    tr = Trader(RiskBook(cfg), now=time.time() - 600)
    tr.trade(-10)
    tripped = tr.trade(-10)
    st = run_risk(iso_env, "status", "--json")
    assert st.returncode == 0, st.stderr
    assert json.loads(st.stdout)["halted"] is True
    human = run_risk(iso_env, "status")
    assert "HALTED" in human.stdout and "2 consecutive losses" in human.stdout
    r = run_risk(iso_env, "resume")
    assert r.returncode == 0, r.stderr
    assert "cleared halt (consecutive_losses)" in r.stdout and tripped in r.stdout
    assert not RiskBook(cfg).status()["halted"]
    r = run_risk(iso_env, "resume")
    assert r.returncode == 0 and "not halted" in r.stdout
    bad = run_risk({**iso_env, "MAX_DAILY_LOSS": "lots"}, "status")
    assert bad.returncode == 2 and "MAX_DAILY_LOSS" in bad.stderr


def test_resume_says_one_line_with_the_streak_at_the_halt_and_now(iso_env):
    """Found in a user's trial: positions opened before a losing-streak halt (other assets, same window)
    settle after it and are booked, so the streak was 6 for a halt at 5; resume printed "losing streak
    of 6 reset" next to "5 consecutive losses", and a logger WARNING under its own line."""
    cfg = risk_cfg(iso_env, MAX_CONSECUTIVE_LOSSES=2, MAX_DAILY_LOSS=1000)
    tr = Trader(RiskBook(cfg), now=time.time() - 600, step=1.0)
    for _ in range(3):                               # three positions open at once (three assets)
        tr.trade(-10, settle=False)
    assert tr.book.on_settled("t1", -10, tr.now) is None
    tripped = tr.book.on_settled("t2", -10, tr.now)
    assert tripped == "2 consecutive losses (MAX_CONSECUTIVE_LOSSES=2)"
    assert tr.book.on_settled("t3", -10, tr.now) is None   # booked while halted: the streak is 3 now
    r = run_risk(iso_env, "resume")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr                  # one message: no logger line beside it
    assert r.stdout.count("\n") == 1 and tripped in r.stdout, r.stdout
    assert "losing streak of 3 reset: 2 when it halted, then 1 more loss settled after the halt" in r.stdout
    assert journal_events(cfg)[-1] == "resume"       # the record is in logs/risk.jsonl
    # A halt whose streak did not move says just that (the resume process reads the streak from risk.json).
    tr.trade(-10)
    tr.trade(-10)
    r = run_risk(iso_env, "resume", "--by", "./supervisor.sh resume")   # what the supervisor passes
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.rstrip().endswith("losing streak of 2 reset)"), r.stdout
    last = read_jsonl(cfg.log_dir / "risk.jsonl")[-1]
    assert last["event"] == "resume" and last["by"] == "./supervisor.sh resume"


def test_resume_process_concurrent_with_fills_loses_no_update(iso_env):
    """The executor keeps filling while `python -m risk resume` runs: both updates must land."""
    cfg = risk_cfg(iso_env, MAX_TRADES_PER_DAY=100000, MAX_OPEN_EXPOSURE=1e9)
    book = RiskBook(cfg)
    book.halt("forced for the test")
    proc = subprocess.Popen([sys.executable, "-m", "risk", "resume"], cwd=REPO, env=iso_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fills = 0
    pace = threading.Event()  # never set: wait() spaces the fills 2 ms apart, a busy executor's pace
    try:
        while proc.poll() is None or fills < 20:
            book.on_fill(f"c{fills}", "BTC", fills, "UP", 1.0, 0.5, 2.0, 0.01)
            fills += 1
            pace.wait(0.002)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
    assert "cleared halt (error): forced for the test" in out
    st = RiskBook(cfg).status()
    assert st["trades_today"] == fills and not st["halted"]


def test_resume_process_waits_for_the_lock(iso_env):
    """`python -m risk resume` never writes while another process holds the risk state's lock."""
    from filelock import FileLock

    cfg = risk_cfg(iso_env)
    RiskBook(cfg).halt("held for the test")
    lock = FileLock(str(cfg.state_dir / "risk.json.lock"))
    with lock:
        proc = subprocess.Popen([sys.executable, "-m", "risk", "resume"], cwd=REPO, env=iso_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
            assert json.loads((cfg.state_dir / "risk.json").read_text())["halted"] is True
        except BaseException:
            proc.kill()
            proc.wait(timeout=10)
            raise
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "held for the test" in out and not RiskBook(cfg).status()["halted"]
