"""Position sizing: fixed by default, fractional Kelly net of the fee, the venue minimum."""

from __future__ import annotations

import pytest

from risk.sizing import effective_price, position_size
from tests.risk_support import risk_cfg


def kelly_expected(q: float, ask: float, bankroll: float, frac: float, cap: float) -> float:
    # Independent restatement: $1 keeps (1 - k)/ask shares, k = 0.07 * ask(1-ask); b = net odds.
    kept_per_usd = (1 - 0.07 * ask * (1 - ask)) / ask
    b = kept_per_usd - 1.0
    f = q - (1 - q) / b
    return min(bankroll * frac * f, cap)


def test_fixed_is_the_default_and_ignores_the_probability(iso_env):
    cfg = risk_cfg(iso_env)
    assert cfg.sizing == "fixed"
    assert position_size(cfg, 0.9, 0.5, "UP") == (10.0, None)
    assert position_size(cfg, 0.1, 0.5, "UP") == (10.0, None)  # edge is the strategy's job
    assert position_size(cfg, None, 0.3, "DOWN") == (10.0, None)


def test_fixed_below_the_minimum_is_skipped_not_rounded_up(iso_env):
    cfg = risk_cfg(iso_env, POSITION_SIZE=2)
    amount, why = position_size(cfg, 0.6, 0.5, "UP")  # 4 shares < 5
    assert amount is None and "5-share minimum" in why
    cfg = risk_cfg(iso_env, POSITION_SIZE=0.8)
    amount, why = position_size(cfg, 0.6, 0.1, "UP")  # 8 shares but < $1
    assert amount is None and "$1 minimum" in why
    assert position_size(risk_cfg(iso_env, POSITION_SIZE=2.5), 0.6, 0.5, "UP") == (2.5, None)


def test_kelly_up_and_down_net_of_the_fee(iso_env):
    cfg = risk_cfg(iso_env, SIZING="kelly", KELLY_FRACTION=0.25, BANKROLL=400, MAX_POSITION_SIZE=25)
    amount, why = position_size(cfg, 0.6, 0.5, "UP")
    assert why is None
    assert amount == pytest.approx(kelly_expected(0.6, 0.5, 400, 0.25, 25), abs=0.01)
    assert amount == 18.54  # rounded down to the cent
    # DOWN uses 1 - prob_up.
    assert position_size(cfg, 0.4, 0.5, "DOWN") == (amount, None)
    # More edge, more stake; a cheaper ask with the same probability is more edge too.
    assert position_size(cfg, 0.65, 0.5, "UP")[0] > amount
    assert position_size(cfg, 0.6, 0.45, "UP")[0] > amount


def test_kelly_needs_an_edge_after_the_fee(iso_env):
    cfg = risk_cfg(iso_env, SIZING="kelly")
    # 0.505 beats the 0.50 ask, but not the fee-adjusted price 0.5/(1-0.0175) = 0.5089.
    assert effective_price(0.5, 0.07, 1.0) == pytest.approx(0.508906, abs=1e-6)
    amount, why = position_size(cfg, 0.505, 0.5, "UP")
    assert amount is None and why.startswith("sizing: no edge")
    amount, why = position_size(cfg, 0.7, 0.5, "DOWN")  # DOWN wins with 0.3
    assert amount is None and "no edge" in why


def test_kelly_is_capped_by_max_position_size(iso_env):
    cfg = risk_cfg(iso_env, SIZING="kelly", MAX_POSITION_SIZE=25)
    assert position_size(cfg, 0.95, 0.5, "UP") == (25.0, None)


def test_kelly_below_the_minimum_is_skipped_with_the_reason(iso_env):
    cfg = risk_cfg(iso_env, SIZING="kelly", BANKROLL=20, POSITION_SIZE=1)
    # 20 * 0.25 * f*(0.6 @ 0.5)=0.185 -> $0.92: below $1 (and 1.8 shares)
    amount, why = position_size(cfg, 0.6, 0.5, "UP")
    assert amount is None and "below the venue minimum" in why and "$0.92" in why
    # 40 * 0.25 * f*(0.5 @ 0.40)=0.157 -> $1.57: above $1 but only 3.9 shares at 0.40
    cfg = risk_cfg(iso_env, SIZING="kelly", BANKROLL=40, POSITION_SIZE=1)
    amount, why = position_size(cfg, 0.5, 0.40, "UP")
    assert amount is None and "share minimum" in why


@pytest.mark.parametrize("prob,ask,side,needle", [
    (0.6, None, "UP", "no valid ask"),
    (0.6, 0.0, "UP", "no valid ask"),
    (0.6, 1.0, "UP", "no valid ask"),
    (0.6, 0.5, "SIDEWAYS", "unknown side"),
    (None, 0.5, "UP", "prob_up"),
    (1.5, 0.5, "UP", "prob_up"),
    (float("nan"), 0.5, "UP", "prob_up"),
])
def test_kelly_refuses_bad_inputs_with_a_reason(iso_env, prob, ask, side, needle):
    cfg = risk_cfg(iso_env, SIZING="kelly")
    amount, why = position_size(cfg, prob, ask, side)
    assert amount is None and needle in why


def test_bankroll_default_makes_a_ten_point_edge_size_to_position_size(iso_env):
    cfg = risk_cfg(iso_env, SIZING="kelly")
    assert cfg.bankroll == 40 * cfg.position_size
    c = effective_price(0.5, cfg.fee_rate, cfg.fee_exponent)
    q = c + 0.10 * (1 - c)  # full Kelly f* = 0.10
    amount, why = position_size(cfg, q + 1e-9, 0.5, "UP")
    assert why is None and amount == pytest.approx(cfg.position_size, abs=0.01)
