"""Position sizing: fixed POSITION_SIZE (default) or fractional Kelly, never below the venue minimum.

Kelly, net of the taker fee (core/fees.py: fee = shares * rate * (p(1-p))^exponent, in shares):
a buy of $1 at ask `a` keeps (1 - k) / a shares, k = rate * (a(1-a))^exponent, and each kept
share pays $1 if the side wins. So the effective price of a winning share is c = a / (1 - k),
the net odds are b = (1 - c) / c, and the Kelly fraction of the bankroll is
f* = (q - c) / (1 - c) for the win probability q (prob_up for UP, 1 - prob_up for DOWN).
The stake is BANKROLL * KELLY_FRACTION * f*, capped by MAX_POSITION_SIZE, rounded DOWN to the
cent. A stake below the venue minimum (5 shares and $1) is a skip with that reason: it is never
rounded up.
"""

from __future__ import annotations

import math

from core.config import Config
from core.fees import below_minimum, fee_shares

SIDES = ("UP", "DOWN")


def effective_price(ask: float, rate: float, exponent: float) -> float:
    """USD paid per share kept after the fee, for a buy at `ask` (inside (0, 1))."""
    k = fee_shares(1.0, ask, rate, exponent)   # fee shares per share bought
    return math.inf if k >= 1.0 else ask / (1.0 - k)


def kelly_fraction_of_bankroll(q: float, ask: float, rate: float, exponent: float) -> float:
    """Full-Kelly fraction for win probability `q` at `ask`, net of the fee; <= 0 means no edge."""
    c = effective_price(ask, rate, exponent)
    if c >= 1.0:
        return -1.0
    return (q - c) / (1.0 - c)


def _floor_cents(x: float) -> float:
    return math.floor(x * 100.0 + 1e-9) / 100.0


def position_size(cfg: Config, prob_up: float | None, ask: float | None,
                  side: str) -> tuple[float | None, str | None]:
    """(amount USD, None) to trade, or (None, why the window is skipped)."""
    side = (side or "").upper()
    if side not in SIDES:
        return None, f"sizing: unknown side {side!r} (expected UP or DOWN)"
    if ask is None or not (isinstance(ask, (int, float)) and 0.0 < ask < 1.0):
        return None, f"sizing: no valid ask for {side} (got {ask!r})"
    if cfg.sizing == "kelly":
        if prob_up is None or not (0.0 <= prob_up <= 1.0) or math.isnan(prob_up):
            return None, f"sizing: kelly needs prob_up in [0, 1] (got {prob_up!r})"
        q = prob_up if side == "UP" else 1.0 - prob_up
        c = effective_price(ask, cfg.fee_rate, cfg.fee_exponent)
        f_star = kelly_fraction_of_bankroll(q, ask, cfg.fee_rate, cfg.fee_exponent)
        if f_star <= 0.0:
            return None, (f"sizing: no edge for {side}: win probability {q:.3f} <= fee-adjusted price {c:.3f}"
                          f" (ask {ask:.2f})")
        raw = cfg.bankroll * cfg.kelly_fraction * f_star
        amount = _floor_cents(min(raw, cfg.max_position_size))
        why = below_minimum(amount, ask) if amount > 0 else f"amount ${amount:.2f} is below the $1 minimum"
        if why:
            return None, (f"sizing: kelly stake ${raw:.2f} (f*={f_star:.3f} x {cfg.kelly_fraction:g}"
                          f" x bankroll ${cfg.bankroll:g}) is below the venue minimum: {why}")
        return amount, None
    amount = _floor_cents(min(cfg.position_size, cfg.max_position_size))
    why = below_minimum(amount, ask)
    if why:
        return None, f"sizing: POSITION_SIZE ${amount:.2f} at {ask:.2f} is below the venue minimum: {why}"
    return amount, None
