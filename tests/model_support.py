"""Generated candle data for the model and backtest tests (never the shared dev data)."""

from __future__ import annotations

import numpy as np

from signal_engine.history import Candles

T0 = 1_700_000_100.0 // 900 * 900 - 3 * 3600      # a window boundary, seconds


def random_walk_candles(n: int, sigma_1m: float = 0.0008, seed: int = 1, rho: float = 0.0,
                        start: float = T0, price0: float = 30000.0) -> Candles:
    """n one-minute candles whose log closes follow a random walk (AR(1) returns when rho != 0).

    Each candle opens at the previous close (as Binance's usually do); prices are rounded to
    cents, so ties (close == open) happen as they do on the venue.
    """
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal(n) * sigma_1m
    if rho:
        r = np.empty(n)
        prev = 0.0
        scale = np.sqrt(1.0 - rho * rho)
        for i in range(n):
            prev = rho * prev + scale * eps[i]
            r[i] = prev
    else:
        r = eps
    close = np.round(price0 * np.exp(np.cumsum(r)), 2)
    open_ = np.concatenate(([price0], close[:-1]))
    high = np.maximum(open_, close) + 0.5
    low = np.minimum(open_, close) - 0.5
    t = start + 60.0 * np.arange(n)
    return Candles(t, open_, high, low, close, np.ones(n))


def drop_minutes(c: Candles, idx: np.ndarray | list[int]) -> Candles:
    keep = np.ones(len(c), dtype=bool)
    keep[np.asarray(idx)] = False
    return Candles(c.open_time[keep], c.open[keep], c.high[keep], c.low[keep], c.close[keep], c.volume[keep])


def write_csv(path, c: Candles, header: bool = True, extra_cols: bool = False) -> None:
    """The headered format of ../shared/data, or Binance's headerless 12-column dump."""
    import gzip

    lines = ["open_time,open,high,low,close,volume"] if header else []
    for i in range(len(c)):
        ms = int(c.open_time[i] * 1000)
        row = [str(ms), f"{c.open[i]:.2f}", f"{c.high[i]:.2f}", f"{c.low[i]:.2f}", f"{c.close[i]:.2f}", "1.0"]
        if extra_cols:
            row += [str(ms + 59_999), "1.0", "10", "0.5", "0.5", "0"]
        lines.append(",".join(row))
    data = ("\n".join(lines) + "\n").encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    with open(path, "wb") as fh:
        fh.write(data)
