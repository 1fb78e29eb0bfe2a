"""core/fees.py: the numpy forms give the very same numbers as the scalar ones, on a grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import fees

# The venue's tick grid, and a fine grid on which numpy's own power (x * x for ** 2, sqrt for ** 0.5)
# rounds differently from Python's in a few places.
PRICES = [round(0.01 * k, 2) for k in range(1, 100)] + np.linspace(0.0005, 0.9995, 2000).tolist()
CASES = [(0.07, 1.0), (0.07, 2.0), (0.1, 0.5), (0.25, 1.7), (0.0, 1.0), (0.07, 0.0), (0.3, 3.0)]


@pytest.mark.parametrize("rate,exponent", CASES)
def test_array_forms_equal_the_scalar_forms_exactly(rate, exponent):
    prices = np.array(PRICES)
    for amount in (1.0, 10.0, 37.5):
        gross = amount / prices
        fee = fees.fee_shares_array(gross, prices, rate, exponent)
        kept = fees.kept_shares_array(amount, prices, rate, exponent)
        per_share = fees.fee_shares_array(1.0, prices, rate, exponent)
        for i, p in enumerate(PRICES):
            fill = fees.buy(amount, p, rate, exponent)
            assert fee[i] == fill.fee_shares, (amount, p)           # identical, not approximately equal
            assert kept[i] == fill.shares, (amount, p)
            assert per_share[i] == fees.fee_shares(1.0, p, rate, exponent), p


def test_array_forms_keep_the_shape_and_broadcast():
    grid = np.array([[0.2, 0.5, 0.8], [0.5, 0.5, 0.31]])
    for exponent in (1.0, 2.0):
        out = fees.fee_shares_array(100.0, grid, 0.07, exponent)
        assert out.shape == grid.shape
        assert out[0, 1] == out[1, 0] == out[1, 1] == fees.fee_shares(100.0, 0.5, 0.07, exponent)
        assert out[0, 0] == pytest.approx(out[0, 2])              # symmetric in p <-> 1 - p
    # $10 at 0.5: 20 shares gross, fee 20 * 0.07 * 0.25 = 0.35 shares, 19.65 kept.
    assert fees.kept_shares_array(10.0, np.array([0.5]))[0] == pytest.approx(19.65)


def test_array_forms_reject_prices_outside_the_open_interval_and_pass_nan():
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="inside"):
            fees.fee_shares_array(10.0, np.array([0.5, bad]))
        with pytest.raises(ValueError, match="inside"):
            fees.fee_shares(10.0, bad)
    out = fees.kept_shares_array(10.0, np.array([math.nan, 0.4]), 0.07, 2.0)
    assert math.isnan(out[0]) and out[1] == fees.buy(10.0, 0.4, 0.07, 2.0).shares


def test_one_edge_function_for_the_executor_and_the_backtest():
    from backtest.strategy import MarketAssumption, edge_of
    from executor.decision import Params
    from executor.decision import edge_of as decision_edge

    asks = np.linspace(0.01, 0.99, 99)
    probs = np.linspace(0.0, 1.0, 99)
    arr = fees.edge(probs, asks, 0.07, 1.0)
    assert arr.tolist() == [fees.edge(float(q), float(a), 0.07, 1.0) for q, a in zip(probs, asks, strict=True)]
    p = Params("edge", 60, 0.03, 0, 900, 3, 0.01, 0.99, 0.07, 1.0)
    assert decision_edge(0.6, 0.5, p) == fees.edge(0.6, 0.5, 0.07, 1.0) == 0.6 - 0.5 - 0.6 * 0.07 * 0.25
    m = MarketAssumption(fee_rate=0.07, fee_exponent=1.0)
    assert edge_of(probs, asks, m).tolist() == arr.tolist()
