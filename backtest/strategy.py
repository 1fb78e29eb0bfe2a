"""Simulated trading for the backtest: the seed strategy and the edge strategy.

There is no recorded order book for these markets, so the market price is ASSUMED: a fair
value (the driftless log-normal of `signal_engine.model.prob_up` with the market's own
parameters) as it stood `lag_minutes` earlier (0.5 before the window's first minute is
known), plus `spread` on the ask, rounded up to the tick and kept in [tick, 1 - tick].
A strategy buys `amount` USD of one side per window at most, pays the venue's fee in shares
(core.fees: fee = shares * rate * (p(1-p))^exponent) and is paid 1 per kept share when its
side wins (Up when close >= open).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from core import fees
from core.fees import (
    DEFAULT_FEE_EXPONENT,
    DEFAULT_FEE_RATE,
    MIN_NOTIONAL,
    MIN_SHARES,
    fee_shares_array,
    kept_shares_array,
)


@dataclass(frozen=True)
class MarketAssumption:
    lag_minutes: int = 1          # the market quotes the fair value of this many minutes ago
    spread: float = 0.01          # added to the fair value on the ask
    tick: float = 0.01
    fee_rate: float = DEFAULT_FEE_RATE
    fee_exponent: float = DEFAULT_FEE_EXPONENT
    amount: float = 10.0          # USD per trade (POSITION_SIZE)

    def describe(self) -> dict:
        d = asdict(self)
        d["price_model"] = ("ask(side) = ceil_to_tick(fair_value(side, t - lag) + spread), clipped to "
                            "[tick, 1 - tick]; fair value = driftless log-normal prob_up with the "
                            "market's parameters; 0.5 before the window's first lagged minute")
        d["fee_model"] = "fee_shares = shares * fee_rate * (p * (1 - p)) ** fee_exponent, taken on buys"
        d["minimum"] = f"{MIN_SHARES:g} shares and ${MIN_NOTIONAL:g} per order"
        return d


def lagged(fv: np.ndarray, lag_minutes: int) -> np.ndarray:
    """fv[:, m - lag] for each minute m of a (windows, minutes) matrix; 0.5 where m < lag."""
    if lag_minutes <= 0:
        return fv.copy()
    out = np.full_like(fv, 0.5)
    out[:, lag_minutes:] = fv[:, :-lag_minutes]
    return out


def asks(fv_market: np.ndarray, m: MarketAssumption) -> tuple[np.ndarray, np.ndarray]:
    """(ask_up, ask_down) from the market's (lagged) fair value of Up."""
    def quote(p: np.ndarray) -> np.ndarray:
        ticks = np.ceil(np.round((p + m.spread) / m.tick, 6))
        return np.clip(ticks * m.tick, m.tick, 1.0 - m.tick)
    return quote(fv_market), quote(1.0 - fv_market)


def fee_per_share(ask: np.ndarray, m: MarketAssumption) -> np.ndarray:
    """The fee in shares per share bought, counted at $1 a share (its worth when it wins)."""
    return fee_shares_array(1.0, ask, m.fee_rate, m.fee_exponent)


def _settle(ask: np.ndarray, side_up: np.ndarray, up: np.ndarray, m: MarketAssumption):
    """P&L and outcome of $amount buys at `ask` of Up (side_up) or Down, per window."""
    ok = (m.amount >= MIN_NOTIONAL) & (m.amount / ask >= MIN_SHARES)
    won = side_up == up
    pnl = np.where(won, kept_shares_array(m.amount, ask, m.fee_rate, m.fee_exponent), 0.0) - m.amount
    return pnl, won, ok


@dataclass
class Trades:
    """One row per window that traded, in time order."""
    window: np.ndarray     # index into the asset's windows
    minute: np.ndarray
    side_up: np.ndarray
    ask: np.ndarray
    pnl: np.ndarray
    won: np.ndarray


def seed_trades(direction0: np.ndarray, confidence0: np.ndarray, up: np.ndarray,
                ask_up0: np.ndarray, ask_dn0: np.ndarray, threshold: float, m: MarketAssumption,
                min_price: float = 0.0, max_price: float = 1.0) -> Trades:
    """The seed: at the window's open, buy the heuristic's direction if confidence >= threshold
    (and its ask is inside [min_price, max_price])."""
    side_up = direction0 == 1
    ask = np.where(side_up, ask_up0, ask_dn0)
    sel = (direction0 != 0) & (confidence0 >= threshold) & (ask >= min_price - 1e-9) & (ask <= max_price + 1e-9)
    pnl, won, ok = _settle(ask, side_up, up, m)
    sel &= ok
    idx = np.nonzero(sel)[0]
    return Trades(idx, np.zeros(idx.size, dtype=np.int64), side_up[idx], ask[idx], pnl[idx], won[idx])


def edge_of(prob: np.ndarray, ask: np.ndarray, m: MarketAssumption) -> np.ndarray:
    """Expected profit per share bought at `ask`, net of the fee (as executor/decision.py):
    prob - ask - prob * fee_rate * (ask (1 - ask))^exponent."""
    return fees.edge(prob, ask, m.fee_rate, m.fee_exponent)


def edge_trades(q: np.ndarray, ask_up: np.ndarray, ask_dn: np.ndarray, up: np.ndarray,
                minutes: np.ndarray, min_edge: float, m: MarketAssumption,
                min_price: float = 0.0, max_price: float = 1.0) -> Trades:
    """The edge strategy: at the first minute of the entry interval where a side's edge
    (`edge_of`) is >= min_edge and its ask is inside [min_price, max_price], buy the side with
    the larger edge (once per window).

    q, ask_up, ask_dn: (windows, len(minutes)) matrices over the entry interval's minutes.
    """
    def usable(ask: np.ndarray) -> np.ndarray:
        return (ask >= min_price - 1e-9) & (ask <= max_price + 1e-9)

    e_up = np.where(usable(ask_up), edge_of(q, ask_up, m), -np.inf)
    e_dn = np.where(usable(ask_dn), edge_of(1.0 - q, ask_dn, m), -np.inf)
    side_up_all = e_up >= e_dn
    best = np.where(side_up_all, e_up, e_dn)
    hit = best >= min_edge
    any_hit = hit.any(axis=1)
    first = np.argmax(hit, axis=1)
    idx = np.nonzero(any_hit)[0]
    col = first[idx]
    side_up = side_up_all[idx, col]
    ask = np.where(side_up, ask_up[idx, col], ask_dn[idx, col])
    pnl, won, ok = _settle(ask, side_up, up[idx], m)
    return Trades(idx[ok], np.asarray(minutes)[col][ok], side_up[ok], ask[ok], pnl[ok], won[ok])
