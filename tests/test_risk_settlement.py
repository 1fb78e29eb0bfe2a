"""Settlement arithmetic, fees and ties (core/fees.py), as the executor and the report use them."""

from __future__ import annotations

import pytest

from core import fees


def test_fee_follows_the_published_form_in_shares():
    # fee = shares * rate * (p(1-p))^exponent
    assert fees.fee_shares(100, 0.5) == pytest.approx(100 * 0.07 * 0.25)
    assert fees.fee_shares(100, 0.9, rate=0.07, exponent=2) == pytest.approx(100 * 0.07 * 0.09 ** 2)
    assert fees.fee_shares(100, 0.5, rate=0.0) == 0.0
    # The fee is largest at p = 0.5 and symmetric.
    assert fees.fee_shares(10, 0.2) == pytest.approx(fees.fee_shares(10, 0.8))
    assert fees.fee_shares(10, 0.5) > fees.fee_shares(10, 0.3)
    for bad in (0.0, 1.0, -0.1, 1.2):
        with pytest.raises(ValueError):
            fees.fee_shares(10, bad)


def test_buy_takes_the_fee_in_shares():
    f = fees.buy(10.0, 0.5)
    assert f.gross_shares == pytest.approx(20.0)
    assert f.fee_shares == pytest.approx(20 * 0.07 * 0.25)  # 0.35 shares
    assert f.shares == pytest.approx(19.65)
    assert f.fee_usd == pytest.approx(0.175)
    assert f.amount == 10.0 and f.price == 0.5


@pytest.mark.parametrize("side,open_,close,outcome", [
    ("UP", 100.0, 101.0, "won"),
    ("UP", 100.0, 99.0, "lost"),
    ("DOWN", 100.0, 99.0, "won"),
    ("DOWN", 100.0, 101.0, "lost"),
    ("UP", 100.0, 100.0, "won"),    # a tie goes Up
    ("DOWN", 100.0, 100.0, "lost"),  # ... so Down loses a tie
    ("down", 100.0, 99.5, "won"),    # side is case-insensitive
])
def test_settle_outcomes_and_ties(side, open_, close, outcome):
    fill = fees.buy(10.0, 0.4)
    s = fees.settle(fill, side, open_, close)
    assert s["outcome"] == outcome
    if outcome == "won":
        assert s["payout"] == pytest.approx(fill.shares)
        assert s["pnl"] == pytest.approx(fill.shares - 10.0)
        assert s["pnl"] > 0
    else:
        assert s["payout"] == 0.0
        assert s["pnl"] == pytest.approx(-10.0)
    assert s["fee"] == pytest.approx(fill.fee_usd)


def test_up_wins_on_ties_only_when_close_is_not_below_open():
    assert fees.up_wins(100.0, 100.0)
    assert fees.up_wins(100.0, 100.01)
    assert not fees.up_wins(100.0, 99.99)


def test_won_pnl_numbers():
    # $10 at 0.40: 25 gross shares, fee 25*0.07*0.24 = 0.42 shares, 24.58 kept; won -> +14.58.
    s = fees.settle(fees.buy(10.0, 0.40), "UP", 1.0, 2.0)
    assert s["payout"] == pytest.approx(24.58)
    assert s["pnl"] == pytest.approx(14.58)
    assert s["fee"] == pytest.approx(0.42 * 0.40)
    # Even at 0.99 a win is still a (tiny) gain after the fee.
    assert fees.settle(fees.buy(10.0, 0.99), "UP", 1.0, 1.0)["pnl"] > 0


@pytest.mark.parametrize("amount,price,ok", [
    (1.0, 0.20, True),     # exactly $1 and exactly 5 shares
    (0.99, 0.10, False),   # below $1 even with 9.9 shares
    (2.0, 0.50, False),    # 4 shares
    (2.5, 0.50, True),     # 5 shares
    (10.0, 0.95, True),
    (4.0, 0.81, False),    # 4.94 shares
])
def test_venue_minimum(amount, price, ok):
    why = fees.below_minimum(amount, price)
    assert (why is None) == ok, why
    if not ok:
        assert "minimum" in why
