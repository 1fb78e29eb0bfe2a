"""The venue's taker fee and the settlement arithmetic, shared by replica, executor, risk and backtest.

Published form: fee = shares * rate * (p * (1 - p)) ** exponent, in shares, taken on buys.
A buy of `amount` USD at price p gets amount / p shares gross, and keeps gross - fee shares.
Minimum order: 5 shares and $1. Resolution: Up wins when close >= open (ties go Up).

This is the only place the formula is written. `fee_shares` and `buy` are the scalar forms;
`fee_shares_array` and `kept_shares_array` are the numpy forms for the backtest, and give the
very same numbers element by element (numpy's own power takes shortcuts, e.g. x * x for ** 2,
that round differently from Python's, so the array forms raise with Python's `**`: directly for
the published exponent 1, once per distinct price otherwise - prices sit on a tick grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MIN_SHARES = 5.0
MIN_NOTIONAL = 1.0
DEFAULT_FEE_RATE = 0.07
DEFAULT_FEE_EXPONENT = 1.0


def fee_shares(shares: float, price: float, rate: float = DEFAULT_FEE_RATE,
               exponent: float = DEFAULT_FEE_EXPONENT) -> float:
    if not 0.0 < price < 1.0:
        raise ValueError(f"price must be inside (0, 1), got {price}")
    return shares * rate * (price * (1.0 - price)) ** exponent


def _power_array(base: np.ndarray, exponent: float) -> np.ndarray:
    """base ** exponent element by element, rounded exactly as Python's float ** (see the module doc)."""
    import numpy as np  # here, not at the top: the executor and the replica use only the scalar forms

    if exponent == 1.0:
        return base                                  # x ** 1.0 == x exactly
    uniq, inverse = np.unique(base, return_inverse=True)
    powered = np.array([x ** exponent for x in uniq.tolist()], dtype=float)
    return powered[inverse].reshape(base.shape)


def fee_shares_array(shares: float | np.ndarray, price: np.ndarray, rate: float = DEFAULT_FEE_RATE,
                     exponent: float = DEFAULT_FEE_EXPONENT) -> np.ndarray:
    """`fee_shares` over arrays (broadcast): identical numbers. NaN prices give NaN; any other
    price outside (0, 1) raises ValueError, as the scalar form does."""
    import numpy as np

    price = np.asarray(price, dtype=float)
    outside = (price <= 0.0) | (price >= 1.0)
    if outside.any():
        raise ValueError(f"price must be inside (0, 1), got {price[outside].flat[0]}")
    return np.asarray(shares, dtype=float) * rate * _power_array(price * (1.0 - price), exponent)


def kept_shares_array(amount: float, price: np.ndarray, rate: float = DEFAULT_FEE_RATE,
                      exponent: float = DEFAULT_FEE_EXPONENT) -> np.ndarray:
    """`buy(amount, p).shares` for each price p: gross - fee shares, identical numbers."""
    import numpy as np

    gross = amount / np.asarray(price, dtype=float)
    return gross - fee_shares_array(gross, price, rate, exponent)


def edge(prob, ask, rate: float = DEFAULT_FEE_RATE, exponent: float = DEFAULT_FEE_EXPONENT):
    """The one edge: expected profit per share bought at `ask` with win probability `prob`, net of
    the fee (the fee shares are worth $1 each when the share wins): prob - ask - prob * fee(1, ask).
    Scalars give a float (the executor's decision); numpy arrays give an array (the backtest)."""
    if isinstance(ask, (int, float)):
        return prob - ask - prob * fee_shares(1.0, ask, rate, exponent)
    return prob - ask - prob * fee_shares_array(1.0, ask, rate, exponent)


@dataclass(frozen=True)
class Fill:
    amount: float        # USD paid
    price: float         # price per share
    gross_shares: float  # amount / price
    fee_shares: float    # taken from the shares
    shares: float        # kept: gross - fee

    @property
    def fee_usd(self) -> float:
        return self.fee_shares * self.price


def buy(amount: float, price: float, rate: float = DEFAULT_FEE_RATE,
        exponent: float = DEFAULT_FEE_EXPONENT) -> Fill:
    gross = amount / price
    fee = fee_shares(gross, price, rate, exponent)
    return Fill(amount, price, gross, fee, gross - fee)


def below_minimum(amount: float, price: float) -> str | None:
    """Why an order of `amount` USD at `price` is below the venue minimum, or None."""
    if amount < MIN_NOTIONAL:
        return f"amount ${amount:.2f} is below the ${MIN_NOTIONAL:.0f} minimum"
    if amount / price < MIN_SHARES:
        return f"{amount / price:.2f} shares at {price:.2f} is below the {MIN_SHARES:.0f}-share minimum"
    return None


def up_wins(open_price: float, close_price: float) -> bool:
    """Resolution rule: Up when close >= open (ties go Up)."""
    return close_price >= open_price


def settle(fill: Fill, side: str, open_price: float, close_price: float) -> dict:
    """Outcome, payout and P&L of a filled buy of `side` ('UP'/'DOWN')."""
    side = side.upper()
    won = up_wins(open_price, close_price) == (side == "UP")
    payout = fill.shares if won else 0.0
    return {"outcome": "won" if won else "lost", "payout": payout,
            "fee": fill.fee_usd, "pnl": payout - fill.amount}
