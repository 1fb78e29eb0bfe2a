"""The replica's rules in process: amounts, quotes, titles, fees, settlement (ties), wallet, snapshots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core import fees
from core.window_grid import Window
from replica.faults import FaultError, parse_fault
from replica.pricing import PricePath, tick_round, window_title
from replica.state import OrderError, ReplicaState, Settings, parse_amount

T0 = 1_795_000_020.0  # a window start on the 60 s grid


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def make_state(tmp_path: Path | None = None, **kw) -> tuple[ReplicaState, Clock]:
    clock = Clock(T0 + 5)
    settings = Settings(window_seconds=60, password="pw", state_file=(tmp_path / "s.json") if tmp_path else None,
                        **kw)
    return ReplicaState(settings, clock), clock


def place(state: ReplicaState, side: str = "UP", amount: str = "10", asset: str = "BTC") -> dict:
    req = state.create_request(asset, side, amount, None, "http://127.0.0.1:1")
    assert state.unlock("pw")
    return state.confirm(req["request_id"])


@pytest.mark.parametrize("text, value, error", [
    ("10", 10.0, None), ("$12.5", 12.5, None), (" 3.456 ", 3.46, None), ("1,000", 1000.0, None), (7, 7.0, None),
    ("0", None, "greater than $0"), ("0.00", None, "greater than $0"), ("-5", None, "positive"),
    ("ten", None, "valid"), ("", None, "valid"), ("1e3", None, "valid"), (None, None, "valid"),
    (True, None, "valid"), (float("nan"), None, "valid"),
])
def test_parse_amount(text, value, error):
    got, why = parse_amount(text)
    assert got == value
    assert (why is None) if error is None else (error in why)


def test_quotes_are_on_the_tick_and_in_range_and_down_follows_up():
    path = PricePath("BTC", 7, 60)
    for i in range(400):
        now = T0 + i * 0.77
        w = Window("BTC", int(now // 60) * 60, 60)
        q = path.quote(w, now, spread=0.01)
        for p in (q.up, q.down):
            assert 0.01 <= p <= 0.99 and round(p * 100) == pytest.approx(p * 100, abs=1e-9)
        assert q.down == tick_round(1 - q.up + 0.01)
    assert tick_round(1.2) == 0.99 and tick_round(-0.3) == 0.01 and tick_round(0.555) in (0.55, 0.56)


def test_price_path_is_seeded_and_settlements_vary():
    a, b, c = PricePath("BTC", 7, 60), PricePath("BTC", 7, 60), PricePath("BTC", 8, 60)
    assert a.price(T0) == b.price(T0) != c.price(T0)
    ups = [fees.up_wins(*a.open_close(Window("BTC", int(T0) + 60 * k, 60))) for k in range(200)]
    assert 0.3 < sum(ups) / len(ups) < 0.7


def test_title_is_in_us_eastern_time():
    start = int(dt.datetime(2026, 1, 28, 15, 15, tzinfo=dt.timezone.utc).timestamp())
    assert window_title(Window("BTC", start, 900)) == "Bitcoin Up or Down - January 28, 10:15AM-10:30AM ET"
    summer = int(dt.datetime(2026, 7, 4, 16, 45, tzinfo=dt.timezone.utc).timestamp())
    assert window_title(Window("ETH", summer, 900)) == "Ethereum Up or Down - July 4, 12:45PM-1:00PM ET"
    assert window_title(Window("BTC", start, 30)).endswith("10:15:00AM-10:15:30AM ET")


def test_order_fee_uses_the_published_form_with_configurable_rate():
    for rate, exponent in ((0.07, 1.0), (0.1, 2.0)):
        state, _ = make_state(fee_rate=rate, fee_exponent=exponent)
        assert place(state, "UP", "10")["status"] == "confirmed"
        o = state.orders[0]
        expected = fees.buy(10.0, o["price"], rate, exponent)
        assert o["gross_shares"] == pytest.approx(10.0 / o["price"])
        assert o["fee_shares"] == pytest.approx(o["gross_shares"] * rate * (o["price"] * (1 - o["price"])) ** exponent)
        assert o["shares"] == pytest.approx(expected.shares)
        assert o["fee"] == pytest.approx(expected.fee_usd)
        assert state.balance == pytest.approx(990.0)


@pytest.mark.parametrize("open_, close, side, result", [
    (100.0, 100.0, "UP", "won"), (100.0, 100.0, "DOWN", "lost"),      # ties go Up
    (100.0, 101.0, "UP", "won"), (100.0, 99.0, "UP", "lost"), (100.0, 99.0, "DOWN", "won"),
])
def test_settlement_from_the_path_ties_go_up(open_, close, side, result):
    state, clock = make_state(resolution_delay=0.0)
    state.paths["BTC"].open_close = lambda w: (open_, close)
    place(state, side, "10")
    order = state.orders[0]
    assert order["status"] == "filled" and order["result"] is None
    clock.t = order["window_end"] - 0.01
    assert state.settle_due() == 0
    clock.t = order["window_end"]
    assert state.settle_due() == 1
    assert order["status"] == "settled" and order["result"] == result
    assert order["payout"] == pytest.approx(order["shares"] if result == "won" else 0.0)
    assert order["pnl"] == pytest.approx(order["payout"] - 10.0)
    assert state.balance == pytest.approx(990.0 + order["payout"])
    s = next(s for s in state.settlements if s["slug"] == order["slug"])
    assert s["outcome"] == ("UP" if close >= open_ else "DOWN")


def test_minimum_order_and_balance():
    state, _ = make_state(balance=20.0)
    with pytest.raises(OrderError, match="Minimum order"):
        state.create_request("BTC", "UP", "0.5", None, "o")
    with pytest.raises(OrderError, match="Insufficient balance"):
        state.create_request("BTC", "UP", "25", None, "o")
    with pytest.raises(OrderError, match="closed"):
        state.create_request("BTC", "UP", "10", "btc-updown-1m-60", "o")
    with pytest.raises(OrderError, match="Up or Down"):
        state.create_request("BTC", "SIDEWAYS", "10", None, "o")


def test_wallet_lock_unlock_expiry_and_request_reuse():
    state, clock = make_state(unlock_seconds=30.0, request_timeout=20.0)
    a = state.create_request("BTC", "UP", "10", None, "o")
    b = state.create_request("BTC", "UP", "10", None, "o")
    assert a["request_id"] == b["request_id"] and b["reused"]          # a double Buy: one request
    assert state.wallet_view(a["request_id"])["locked"]
    assert state.wallet_view(a["request_id"])["request"].keys() == {"id", "status"}   # nothing shown while locked
    with pytest.raises(OrderError, match="locked"):
        state.confirm(a["request_id"])
    assert not state.unlock("wrong")
    assert state.unlock("pw")
    view = state.wallet_view(None)
    order = view["request"]["typed"]["message"]              # the real CLOB V2 order, amounts in base units
    assert view["request"]["typed"]["primaryType"] == "Order" and order["makerAmount"] == "10000000"
    clock.t += 31
    assert state.wallet_view(None)["locked"]
    assert state.request_status(a["request_id"])["status"] == "expired"


def test_adversaries_when_signed():
    state, _ = make_state()
    state.add_faults({"kind": "wallet_larger_amount"})
    assert place(state, "UP", "10")["status"] == "confirmed"
    assert state.orders[-1]["amount"] == 100.0
    state.add_faults({"kind": "wallet_transfer"})
    before = state.balance
    assert place(state, "UP", "10")["status"] == "failed"
    assert len(state.orders) == 1 and state.balance == 0.0 < before
    assert [e["adversary"] for e in state.events] == ["wallet_larger_amount", "wallet_transfer"]


def test_a_worse_price_attack_is_worse_than_every_ask_the_window_quoted():
    """The executor may decide on an ask seconds before its Buy while the price falls: an attack of
    "0.10 above the ask at the click" could then be within the decision's MAX_SLIPPAGE (chaos found
    one confirmed). The attack is 0.10 above the highest ask of the window so far."""
    from fractions import Fraction

    state, clock = make_state()
    path = state.paths["BTC"]

    def falls(start: int):   # a moment whose ask is >= 0.05 below an earlier one, with room for the attack
        w = Window("BTC", start, 60)
        asks = [(start + t / 4, path.quote(w, start + t / 4, state.s.spread).up) for t in range(4 * 59)]
        for i, (t, a) in enumerate(asks):
            high = max(b for _, b in asks[:i + 1])
            if high - a >= 0.05 and high + 0.10 <= 0.99:
                return t, a, high
        return None

    at, ask, high = next(f for f in map(falls, range(int(T0), int(T0) + 60 * 200, 60)) if f)
    clock.t = at
    state.add_faults({"kind": "wallet_worse_price"})
    req = state.create_request("BTC", "UP", "10", None, "http://127.0.0.1:1")
    assert state.unlock("pw")
    order = state.wallet_view(req["request_id"])["request"]["typed"]["message"]
    implied = Fraction(int(order["makerAmount"]), int(order["takerAmount"]))
    assert implied >= Fraction(str(round(high + 0.10, 2))) * Fraction(99, 100)        # taker rounds down
    assert implied > Fraction(str(round(ask + 0.10, 2)))                              # not the click's ask


def test_fault_validation_and_once_semantics():
    with pytest.raises(FaultError, match="unknown fault kind"):
        parse_fault({"kind": "meteor"}, 1, 0.0, ("BTC",))
    with pytest.raises(FaultError, match="ms"):
        parse_fault({"kind": "popup_delay", "ms": "soon"}, 1, 0.0, ("BTC",))
    with pytest.raises(FaultError, match="asset"):
        parse_fault({"kind": "market_unavailable", "asset": "DOGE"}, 1, 0.0, ("BTC",))
    state, _ = make_state()
    state.add_faults([{"kind": "order_reject"}, {"kind": "popup_delay", "ms": 5, "mode": "persistent"}])
    assert state.take_fault("order_reject") is not None and state.take_fault("order_reject") is None
    assert state.take_fault("popup_delay").ms == 5 and state.take_fault("popup_delay") is not None


def test_snapshot_round_trip_and_corrupt_file(tmp_path: Path, caplog):
    state, _ = make_state(tmp_path)
    place(state, "DOWN", "10")
    state.add_faults({"kind": "page_500", "mode": "persistent"})
    again, _ = make_state(tmp_path)
    assert again.orders == state.orders and again.balance == state.balance
    assert [f.kind for f in again.faults] == ["page_500"]
    assert again.next_order == 2
    (tmp_path / "s.json").write_text("{torn")
    fresh, _ = make_state(tmp_path)
    assert fresh.orders == [] and "corrupt" in caplog.text
