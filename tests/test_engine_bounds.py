"""The engine stays bounded and never trades a stale decision: finished trades of old windows are
forgotten (the file keeps them, and a rebuild of the risk book reads the file), open ones never."""

from __future__ import annotations

from executor.journal import DecisionLog, TradeJournal
from executor.orders import OrderEvent as E

T0 = 1_800_000_000


def test_prune_keeps_open_intents_and_unsettled_fills_and_the_file(tmp_path):
    path = tmp_path / "trades.jsonl"
    j = TradeJournal(path, "demo", clock=lambda: T0)
    for i in range(50):                                   # 50 old windows, all settled
        tid = f"old-{i}"
        j.append(E.INTENT, "BTC", T0 + 60 * i, tid, side="UP", amount=1.0, price=0.5)
        j.append(E.FILLED, "BTC", T0 + 60 * i, tid, shares=2.0)
        j.append(E.SETTLED, "BTC", T0 + 60 * i, tid, outcome="won", pnl=1.0)
    j.append(E.INTENT, "BTC", T0 + 5, "open", side="UP", amount=1.0, price=0.5)        # never resolved
    j.append(E.INTENT, "ETH", T0 + 5, "unsettled", side="UP", amount=1.0, price=0.5)
    j.append(E.FILLED, "ETH", T0 + 5, "unsettled", shares=2.0)
    j.append(E.INTENT, "BTC", T0 + 10_000, "recent", side="UP", amount=1.0, price=0.5)
    j.append(E.FAILED, "BTC", T0 + 10_000, "recent", reason="x")

    assert j.prune(before=T0 + 9_000) == 50
    assert set(j.trades) == {"open", "unsettled", "recent"}
    assert [r["trade_id"] for r in j.open_intents()] == ["open"]
    assert [r["trade_id"] for r in j.unsettled_fills()] == ["unsettled"]
    assert j.traded("BTC", T0 + 10_000) and not j.traded("BTC", T0 + 60)
    assert len(j.all_events()) == 150 + 5                  # the whole history is still in the file
    assert len(TradeJournal(path, "demo").trades) == 53    # and a restart reads it all again


def test_decision_log_prune_forgets_old_windows_only(tmp_path):
    d = DecisionLog(tmp_path / "decisions.jsonl", "demo", clock=lambda: T0)
    for i in range(10):
        d.write("BTC", T0 + 60 * i, f"s{i}", "skipped", "x")
    d.prune(before=T0 + 300)
    assert not d.done("BTC", T0) and d.done("BTC", T0 + 300) and d.done("BTC", T0 + 540)
    assert not d.write("BTC", T0 + 300, "s5", "skipped", "again")    # still exactly once for kept windows


def test_a_decision_whose_checks_were_slow_is_made_again_not_traded():
    """Found by the chaos run's held risk lock: the risk check waited ~10 s for the lock, and the
    intent then went out on a 9 s old signal. Now the engine decides again instead."""
    from types import SimpleNamespace

    from core.signal_doc import SignalDoc
    from executor.engine import DECISION_MAX_LAG_S, Engine

    now = [T0 + 20.0]
    fake = SimpleNamespace(svc=SimpleNamespace(clock=lambda: now[0], cfg=SimpleNamespace(signal_max_age=5.0)))
    sig = SignalDoc(timestamp=T0 + 19.5, asset="BTC", direction="UP", confidence=60.0, prob_up=0.6, price=1.0,
                    window=None, stale=False)
    assert Engine._stale_decision(fake, T0 + 19.9, sig) is None
    why = Engine._stale_decision(fake, T0 + 20.0 - DECISION_MAX_LAG_S - 0.5, sig)
    assert why is not None and "checks took" in why
    now[0] = T0 + 26.0                                 # quick checks, but the signal aged past SIGNAL_MAX_AGE
    assert "signal is now 6.5 s old" in str(Engine._stale_decision(fake, T0 + 25.9, sig))
    assert "unknown" in str(Engine._stale_decision(fake, T0 + 25.9, None))


def test_doctor_names_the_wallet_address_and_account_type(tmp_path):
    """doctor's wallet line: WALLET_ADDRESS, else what the first good order pinned (state/wallet.json)."""
    from browser_tools.doctor import Report, _wallet
    from core.config import load_config
    from core.durable_files import atomic_write_json

    base = {"MODE": "paper", "STATE_DIR": str(tmp_path / "state"), "LOG_DIR": str(tmp_path / "logs"),
            "PROFILE_DIR": str(tmp_path / "profiles")}
    lines: list[tuple[str, str, str]] = []

    class Rec(Report):
        def line(self, level: str, what: str, text: str) -> None:
            lines.append((level, what, text))

    cfg = load_config(base, dotenv_path=tmp_path / "no.env")
    _wallet(Rec(), cfg)
    assert lines[-1][0] == "NOTE" and "no WALLET_ADDRESS" in lines[-1][2]
    maker = "0x" + "ab" * 20
    atomic_write_json(cfg.state_dir / "wallet.json", {"maker": maker, "signer": maker, "account": "TypedDataSign",
                                                      "trade_id": "t1"})
    _wallet(Rec(), cfg)
    assert lines[-1][0] == "OK" and maker in lines[-1][2] and "deposit wallet" in lines[-1][2]
    cfg = load_config({**base, "WALLET_ADDRESS": "0x" + "cd" * 20}, dotenv_path=tmp_path / "no.env")
    _wallet(Rec(), cfg)
    assert lines[-1][0] == "OK" and "WALLET_ADDRESS 0x" + "cd" * 20 in lines[-1][2]


def test_the_browser_is_restarted_between_windows_after_browser_recycle_windows():
    """Playwright keeps every request of a page until it closes (microsoft/playwright#6319): the worker
    restarts the browser after BROWSER_RECYCLE_WINDOWS windows, only when every current window is
    decided and the next one is at least RECYCLE_MIN_GAP_S away (never inside a trade)."""
    from types import SimpleNamespace

    import pytest

    from executor.worker import RECYCLE_MIN_GAP_S, RecycleBrowser, Worker

    now = [T0 + 2.0]
    counters = {"windows": 10}
    w = SimpleNamespace(decided=True)
    fake = SimpleNamespace(
        svc=SimpleNamespace(clock=lambda: now[0], state=SimpleNamespace(data={"counters": counters}),
                            cfg=SimpleNamespace(browser_recycle_windows=3, window_seconds=60)),
        engine=SimpleNamespace(windows=SimpleNamespace(current={"BTC": w})))
    fake._windows_seen = lambda: Worker._windows_seen(fake)
    Worker._recycle_if_due(fake, opened_at=8)                # 2 windows since it opened: not yet
    counters["windows"] = 11
    w.decided = False
    Worker._recycle_if_due(fake, opened_at=8)                # due, but a window is still undecided
    w.decided = True
    now[0] = T0 + 60 - RECYCLE_MIN_GAP_S / 2
    Worker._recycle_if_due(fake, opened_at=8)                # due, but the next window is too close
    now[0] = T0 + 5.0
    with pytest.raises(RecycleBrowser, match="BROWSER_RECYCLE_WINDOWS=3"):
        Worker._recycle_if_due(fake, opened_at=8)
    fake.svc.cfg.browser_recycle_windows = 0                # 0: never
    Worker._recycle_if_due(fake, opened_at=0)
