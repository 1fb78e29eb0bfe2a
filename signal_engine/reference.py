"""The reference price prob_up compares with the strike, and the exchange-Chainlink basis.

The markets resolve on Chainlink's price, not the exchange's. Per asset this keeps:
- the Chainlink prices seen (a short history, for its price at a window's start);
- a running estimate of the basis `ln(chainlink / exchange)`, each Chainlink price compared with
  the exchange price **at the Chainlink observation's own timestamp** (interpolated in the
  exchange history), so a Chainlink stream that lags the exchange by seconds does not read the
  exchange's move in the meantime as basis. The estimate is an exponentially weighted mean with a
  half-life of BASIS_HALFLIFE_S seconds of observations; a sample whose basis exceeds MAX_BASIS is
  dropped (a broken or foreign price, not a basis).

`reference(...)`: the Chainlink price itself when its last message is at most `max_age` seconds
old ("chainlink"), else the exchange price times exp(basis) ("exchange+basis"; basis 0 when it
was never measured). `strike_from_open(...)`: the window's start in the same terms: Chainlink's own
price at the start when the stream covered it, else the exchange open times exp(basis).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .tick_history import TickHistory

BASIS_HALFLIFE_S = 300.0
MAX_BASIS = 0.02            # |ln(chainlink / exchange)| above 2 % is not a basis
MAX_EXCHANGE_GAP_S = 5.0    # a Chainlink timestamp this far outside the exchange history is not compared


@dataclass
class _AssetRef:
    history: TickHistory
    last_ts: float | None = None          # Chainlink observation time of the latest value
    last_value: float | None = None
    last_recv: float | None = None        # wall clock when it arrived
    basis: float | None = None
    basis_weight: float = 0.0
    basis_ts: float | None = None
    samples: int = 0
    dropped: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Reference:
    price: float
    source: str            # "chainlink" | "exchange+basis"
    age_s: float | None
    basis: float | None    # the running ln(chainlink / exchange), None when never measured


class ReferenceTracker:
    def __init__(self, keep_s: float = 3600.0):
        self.keep_s = keep_s
        self.assets: dict[str, _AssetRef] = {}

    def _get(self, asset: str) -> _AssetRef:
        a = self.assets.get(asset.upper())
        if a is None:
            a = self.assets[asset.upper()] = _AssetRef(TickHistory(self.keep_s, capacity=1024, min_spacing_s=0.2))
        return a

    def _drop(self, a: _AssetRef, why: str) -> None:
        a.dropped[why] = a.dropped.get(why, 0) + 1

    def on_chainlink(self, asset: str, value: float, ts: float, recv: float,
                     ex_times: np.ndarray, ex_prices: np.ndarray) -> bool:
        """A Chainlink observation (value at epoch ts, received at recv); False when dropped."""
        a = self._get(asset)
        if not (math.isfinite(value) and value > 0 and math.isfinite(ts)):
            self._drop(a, "invalid")
            return False
        if a.last_ts is not None and ts <= a.last_ts:
            self._drop(a, "old_timestamp")           # a replay of an older observation
            return False
        if ex_times.size and ex_times[0] - MAX_EXCHANGE_GAP_S <= ts <= ex_times[-1] + MAX_EXCHANGE_GAP_S:
            ex = float(np.interp(ts, ex_times, ex_prices))
            b = math.log(value / ex)
            if abs(b) > MAX_BASIS:
                self._drop(a, "implausible")
                return False
            self._update_basis(a, b, ts)
        a.history.add(ts, value)
        a.last_ts, a.last_value, a.last_recv = ts, value, recv
        return True

    @staticmethod
    def _update_basis(a: _AssetRef, b: float, ts: float) -> None:
        if a.basis is None or a.basis_ts is None:
            a.basis, a.basis_weight = b, 1.0
        else:
            decay = 0.5 ** (max(0.0, ts - a.basis_ts) / BASIS_HALFLIFE_S)
            w = a.basis_weight * decay
            a.basis = (a.basis * w + b) / (w + 1.0)
            a.basis_weight = w + 1.0
        a.basis_ts = ts
        a.samples += 1

    def basis(self, asset: str) -> float | None:
        a = self.assets.get(asset.upper())
        return None if a is None else a.basis

    def reference(self, asset: str, exchange_price: float, exchange_age: float | None, now: float,
                  max_age: float) -> Reference:
        a = self.assets.get(asset.upper())
        basis = None if a is None else a.basis
        if a is not None and a.last_value is not None and a.last_recv is not None and now - a.last_recv <= max_age:
            return Reference(a.last_value, "chainlink", round(max(0.0, now - a.last_ts), 3), basis)
        return Reference(exchange_price * math.exp(basis or 0.0), "exchange+basis", exchange_age, basis)

    def strike_from_open(self, asset: str, window_start: float, exchange_open: float | None) -> float | None:
        """The window's open in the reference's terms (see the module doc); None when unknown."""
        a = self.assets.get(asset.upper())
        if a is not None and len(a.history):
            t, p = a.history.arrays()
            if t[0] <= window_start <= t[-1]:
                i = int(np.searchsorted(t, window_start, side="right")) - 1
                return float(p[i])                   # Chainlink's last price at or before the start
        if exchange_open is None:
            return None
        return exchange_open * math.exp((a.basis if a is not None else None) or 0.0)

    def stats(self) -> dict:
        return {k: {"basis": None if a.basis is None else round(a.basis, 7), "samples": a.samples,
                    "dropped": dict(a.dropped)} for k, a in self.assets.items()}
