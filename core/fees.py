"""The venue's taker fee and the settlement arithmetic, shared by replica, executor and backtest.

Published form: fee = shares * rate * (p * (1 - p)) ** exponent, in shares, taken on buys.
A buy of `amount` USD at price p gets amount / p shares gross, and keeps gross - fee shares.
Minimum order: 5 shares and $1. Resolution: Up wins when close >= open (ties go Up).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_SHARES = 5.0
MIN_NOTIONAL = 1.0
DEFAULT_FEE_RATE = 0.07
DEFAULT_FEE_EXPONENT = 1.0


def fee_shares(shares: float, price: float, rate: float = DEFAULT_FEE_RATE,
               exponent: float = DEFAULT_FEE_EXPONENT) -> float:
    if not 0.0 < price < 1.0:
        raise ValueError(f"price must be inside (0, 1), got {price}")
    return shares * rate * (price * (1.0 - price)) ** exponent


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
