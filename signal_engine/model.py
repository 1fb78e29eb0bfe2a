"""Features and models, shared by the live engine and the backtest (one implementation).

Every function takes a price history as two arrays, `times` (epoch seconds, ascending) and
`prices`, and one or many evaluation instants `now` (a float or an array). `now` must be a
sample time or later than the last sample: then every lookback point lies between two samples
at or before `now` (np.interp), and nothing from the future is used. A lookback that spans
a gap in the data (two consecutive samples further apart than `max_gap_s`) or reaches
before the first sample gives NaN, never a value computed across the hole.

Two models:
- `heuristic`: the seed's multi-factor score in [-1, 1] and its `confidence` (50..95). It is
  a score, not a probability: the backtest measures how often it is right.
- `prob_up`: P(window close >= window open) from the open price, the current price, the time
  left and a realised-volatility estimate, under a driftless log-normal model, with an optional
  tilt from the heuristic score whose weight is fitted out of sample by the backtest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class ModelParams:
    vol_lookback_s: float = 3600.0   # realised volatility over the last hour
    vol_step_s: float = 60.0         # ... of 1-minute log returns (same grid live and backtest)
    fallback_sigma: float = 1.0e-4   # per sqrt(second) when history is too short (~0.08%/min)
    max_gap_s: float = 150.0         # a hole wider than this breaks a lookback
    vol_scale: float = 1.0           # multiplier on the realised sigma inside prob_up
    tilt_weight: float = 0.0         # z-shift per unit of heuristic score (0 = pure fair value)
    prob_clip: float = 0.001         # prob_up is kept in [clip, 1 - clip]
    trade_threshold: float = 0.25    # the seed's score threshold for UP / DOWN


DEFAULT_PARAMS = ModelParams()

# Lookbacks (seconds) of the seed's features.
MOM_LOOKBACKS = (30.0, 60.0, 120.0)
MICRO_S, MACRO_S = 300.0, 1800.0
VOL_SHORT_S, VOL_LONG_S = 900.0, 3600.0
MEANREV_S = 1800.0
HISTORY_NEEDED_S = max(VOL_LONG_S, MACRO_S, MEANREV_S) + 60.0


def _as_array(now) -> np.ndarray:
    return np.atleast_1d(np.asarray(now, dtype=float))


def gap_ends(times: np.ndarray, max_gap_s: float) -> np.ndarray:
    """The first sample after each hole wider than max_gap_s (ascending)."""
    times = np.asarray(times, dtype=float)
    return times[1:][np.diff(times) > max_gap_s]


def gap_free(times: np.ndarray, now, lookback: float, max_gap_s: float, gaps: np.ndarray | None = None) -> np.ndarray:
    """True where [now - lookback, now] lies inside the data with no gap wider than max_gap_s.
    `gaps`: gap_ends(times, max_gap_s) when the caller has it (one pass over a long history, not one per call)."""
    now = _as_array(now)
    times = np.asarray(times, dtype=float)
    if times.size == 0:
        return np.zeros(now.shape, dtype=bool)
    gap_ends_ = gap_ends(times, max_gap_s) if gaps is None else gaps
    lo = now - lookback
    # A gap breaks the lookback if its end lies in (lo, now].
    n_gaps = np.searchsorted(gap_ends_, now, side="right") - np.searchsorted(gap_ends_, lo, side="right")
    inside = (lo >= times[0]) & (now <= times[-1] + max_gap_s)
    return inside & (n_gaps == 0)


def price_at(times: np.ndarray, prices: np.ndarray, t) -> np.ndarray:
    """Linear interpolation between the two samples around t (both at or before `now`)."""
    return np.interp(_as_array(t), times, prices)


def momentum(times, prices, now, lookback: float, params: ModelParams = DEFAULT_PARAMS,
             gaps: np.ndarray | None = None) -> np.ndarray:
    """Relative change over `lookback` seconds: p(now) / p(now - lookback) - 1 (NaN across a gap)."""
    now = _as_array(now)
    p_now = price_at(times, prices, now)
    p_then = price_at(times, prices, now - lookback)
    out = p_now / p_then - 1.0
    return np.where(gap_free(times, now, lookback, params.max_gap_s, gaps), out, np.nan)


def _price_grid(times, prices, now: np.ndarray, lookback: float, step: float) -> np.ndarray:
    """Matrix (len(now), K + 1) of prices at now - K*step, ..., now - step, now (oldest first)."""
    k = int(round(lookback / step))
    offsets = step * np.arange(k, -1, -1, dtype=float)
    return price_at(times, prices, (now[:, None] - offsets[None, :]).ravel()).reshape(len(now), k + 1)


def _sigma_of(rets: np.ndarray, step: float) -> np.ndarray:
    """Volatility per sqrt(second) of a matrix of `step`-second log returns (zero-mean estimator)."""
    return np.sqrt(np.mean(rets * rets, axis=1) / step)


def _zscore_of(grid: np.ndarray) -> np.ndarray:
    mean = grid.mean(axis=1)
    std = grid.std(axis=1)
    return np.where(std > 0, (grid[:, -1] - mean) / np.where(std > 0, std, 1.0), 0.0)


def realized_sigma(times, prices, now, lookback: float | None = None,
                   params: ModelParams = DEFAULT_PARAMS, gaps: np.ndarray | None = None) -> np.ndarray:
    """Volatility per sqrt(second) from `vol_step_s` log returns over `lookback`; NaN across a gap."""
    lookback = params.vol_lookback_s if lookback is None else lookback
    now = _as_array(now)
    rets = np.diff(np.log(_price_grid(times, prices, now, lookback, params.vol_step_s)), axis=1)
    return np.where(gap_free(times, now, lookback, params.max_gap_s, gaps), _sigma_of(rets, params.vol_step_s),
                    np.nan)


def features(times, prices, now, params: ModelParams = DEFAULT_PARAMS,
             gaps: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The seed's raw features at each `now` (arrays; NaN where the history does not allow)."""
    times = np.asarray(times, dtype=float)
    prices = np.asarray(prices, dtype=float)
    now = _as_array(now)
    gaps = gap_ends(times, params.max_gap_s) if gaps is None else gaps
    f: dict[str, np.ndarray] = {}
    for lb in MOM_LOOKBACKS:
        f[f"momentum_{int(lb)}s"] = momentum(times, prices, now, lb, params, gaps)
    prev30 = momentum(times, prices, now - 30.0, 30.0, params, gaps)
    f["acceleration"] = f["momentum_30s"] - prev30
    f["micro"] = momentum(times, prices, now, MICRO_S, params, gaps)
    f["macro"] = momentum(times, prices, now, MACRO_S, params, gaps)
    # One price grid of `vol_step_s` over the longest of the three lookbacks serves the two
    # volatilities (the last K returns of it) and the z-score (its last points): the same
    # numbers as separate grids, for a third of the interpolation.
    step = params.vol_step_s
    k_short, k_z = int(round(VOL_SHORT_S / step)), int(MEANREV_S // step)
    grid = _price_grid(times, prices, now, VOL_LONG_S, step)
    rets = np.diff(np.log(grid), axis=1)
    ok_short = k_short <= rets.shape[1] and abs(k_short * step - VOL_SHORT_S) < 1e-9
    short = _sigma_of(rets[:, -k_short:], step) if ok_short else \
        realized_sigma(times, prices, now, VOL_SHORT_S, params, gaps)
    f["vol_short"] = np.where(gap_free(times, now, VOL_SHORT_S, params.max_gap_s, gaps), short, np.nan)
    f["vol_long"] = np.where(gap_free(times, now, VOL_LONG_S, params.max_gap_s, gaps), _sigma_of(rets, step), np.nan)
    # Mean-reversion pressure: z-score of the price against its mean over MEANREV_S.
    zgrid = grid[:, -(k_z + 1):] if k_z + 1 <= grid.shape[1] else _price_grid(times, prices, now, k_z * step, step)
    f["zscore"] = np.where(gap_free(times, now, MEANREV_S, params.max_gap_s, gaps), _zscore_of(zgrid), np.nan)
    return f


def _clip1(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -1.0, 1.0)


def heuristic(f: dict[str, np.ndarray], params: ModelParams = DEFAULT_PARAMS) -> dict[str, np.ndarray]:
    """The seed's score: 40% momentum 30 s, 20% acceleration, 20% trend micro vs macro,
    10% volatility regime, 10% mean-reversion pressure. Each part is in [-1, 1]; a missing
    feature (NaN) contributes 0. Returns score, direction (+1 UP, -1 DOWN, 0 NO_TRADE) and
    confidence = min(95, 50 + |score| * 100) for UP/DOWN, 50 for NO_TRADE.
    """
    m = _clip1(f["momentum_30s"] / 0.002)            # +-0.2% in 30 s is full strength
    a = _clip1(f["acceleration"] / 0.0015)            # +-0.15% change of the 30 s momentum
    micro, macro = f["micro"], f["macro"]
    t = _clip1(0.5 * _clip1(micro / 0.003) + 0.5 * _clip1(macro / 0.006))
    ratio = f["vol_short"] / f["vol_long"]
    expanding = ratio > 1.2
    v = np.where(expanding, np.sign(np.nan_to_num(f["momentum_30s"])), 0.0)  # expansion backs the move
    r = _clip1(-f["zscore"] / 2.0)                    # oversold (z << 0) pushes up
    parts = np.stack([m, a, t, v, r])
    weights = np.array([0.4, 0.2, 0.2, 0.1, 0.1])[:, None]
    score = np.clip(np.nansum(np.nan_to_num(parts) * weights, axis=0), -1.0, 1.0)
    direction = np.where(score > params.trade_threshold, 1, np.where(score < -params.trade_threshold, -1, 0))
    confidence = np.where(direction != 0, np.minimum(95.0, 50.0 + np.abs(score) * 100.0), 50.0)
    return {"score": score, "direction": direction, "confidence": confidence,
            "vol_ratio": ratio, "parts": parts}


def _erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7); exact limits at +-inf."""
    x = np.asarray(x, dtype=float)
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    with np.errstate(over="ignore", invalid="ignore"):
        y = 1.0 - poly * np.exp(-a * a)
    y = np.where(np.isinf(a), 1.0, y)
    return sign * y


def norm_cdf(x) -> np.ndarray:
    return 0.5 * (1.0 + _erf(np.asarray(x, dtype=float) / SQRT2))


def prob_up(open_price, price, seconds_left, sigma, score=0.0,
            params: ModelParams = DEFAULT_PARAMS) -> np.ndarray:
    """P(close >= open) when the log price is a driftless random walk from `price`.

    z = ln(price / open) / (s sqrt(tau)) + tilt_weight * score, with s = vol_scale * sigma and
    tau the seconds left; prob_up = Phi(z). The log price (not the price) is taken driftless,
    so a price equal to the open gives exactly 0.5: the Ito term -s^2 tau / 2 of a martingale
    price made the open slightly worse than a coin on real data (Brier 0.25002 on BTC).
    At tau = 0 it is 1 when price >= open (ties go Up), else 0. Clipped to [clip, 1 - clip].
    A missing or non-positive sigma uses `fallback_sigma`.
    """
    open_price = np.asarray(open_price, dtype=float)
    price = np.asarray(price, dtype=float)
    tau = np.maximum(np.asarray(seconds_left, dtype=float), 0.0)
    sigma = np.asarray(sigma, dtype=float)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, params.fallback_sigma) * params.vol_scale
    lr = np.log(price / open_price)
    sd = sigma * np.sqrt(tau)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, lr / np.where(sd > 0, sd, 1.0), np.where(lr >= 0, np.inf, -np.inf))
    z = z + params.tilt_weight * np.nan_to_num(np.asarray(score, dtype=float))
    p = norm_cdf(z)
    return np.clip(p, params.prob_clip, 1.0 - params.prob_clip)


# ---- labels shown in signal.json's basis ---------------------------------------------


def _num(x) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def basis_labels(f: dict[str, np.ndarray], h: dict[str, np.ndarray], i: int = 0) -> dict:
    """The seed's `basis` object for evaluation i: numbers in percent, plus its labels."""
    ratio = _num(h["vol_ratio"][i])
    vol_state = "unknown" if ratio is None else ("expanding" if ratio > 1.2 else
                                                 "contracting" if ratio < 0.8 else "stable")
    micro, macro = _num(f["micro"][i]), _num(f["macro"][i])
    if micro is None or macro is None:
        trend = "unknown"
    elif micro > 0 and macro > 0:
        trend = "strong_up" if micro > 0.0015 else "up"
    elif micro < 0 and macro < 0:
        trend = "strong_down" if micro < -0.0015 else "down"
    else:
        trend = "mixed"
    z = _num(f["zscore"][i])
    pressure = "unknown" if z is None else ("oversold" if z < -2 else "overbought" if z > 2 else
                                            "high" if abs(z) > 1 else "low")

    def pct(key: str) -> float | None:
        v = _num(f[key][i])
        return None if v is None else round(v * 100.0, 4)

    return {
        "momentum_30s": pct("momentum_30s"),
        "momentum_60s": pct("momentum_60s"),
        "momentum_120s": pct("momentum_120s"),
        "acceleration": pct("acceleration"),
        "volatility_state": vol_state,
        "trend_bias": trend,
        "mean_reversion_pressure": pressure,
        "score": round(float(h["score"][i]), 4),
    }


DIRECTION_NAMES = {1: "UP", -1: "DOWN", 0: "NO_TRADE"}


def evaluate(times, prices, now: float, window_start: float, window_seconds: float,
             open_price: float | None = None, params: ModelParams = DEFAULT_PARAMS,
             vol=None, reference: float | None = None, minute_hl=None, memo: dict | None = None) -> dict:
    """Everything signal.json needs at one instant, from the history up to `now`.

    `open_price` (the strike) defaults to the interpolated price at the window's start (None if
    the history does not reach back that far, in which case prob_up is None). `reference` is the
    price compared with it (default: the history's price at `now`). `vol`: a
    signal_engine.vol_model.VolModel (prob_up v2); None, or a history too short for its
    volatility, uses today's model (v1) and says so in "model". `minute_hl`: closed 1-minute candles'
    (minute_open, high, low) for v2's range blend (signal_engine/candles.py); "vol_input" says whether
    v2 used them ("range") or its close-only blend ("close"); None under v1.

    `memo` (a dict the caller keeps per asset): the slow parts (the heuristic's features, the
    volatility) are computed once per wall-clock second and reused by further calls in that second
    (the engine publishes each streamed price: up to ~20 a second): the heuristic's direction,
    confidence and basis and the volatility may be up to a second old; the price, the reference, the
    strike, the time left and prob_up are always those of `now`.
    """
    times = np.asarray(times, dtype=float)
    prices = np.asarray(prices, dtype=float)
    key = (math.floor(now), id(vol), params)
    slow = memo["parts"] if memo is not None and memo.get("key") == key else None
    if slow is None:
        gaps = gap_ends(times, params.max_gap_s)      # one pass over the history (up to ~90k samples live)
        f = features(times, prices, now, params, gaps)
        h = heuristic(f, params)
        base, used = vol.base_variance_and_input_at(times, prices, now, params.max_gap_s, minute_hl, gaps) \
            if vol is not None else (math.nan, None)
        slow = {"direction": DIRECTION_NAMES[int(h["direction"][0])], "confidence": round(float(h["confidence"][0]), 1),
                "score": float(h["score"][0]), "basis": basis_labels(f, h, 0), "base": base, "used": used,
                "v1_sigma": None if vol is not None and math.isfinite(base) and base > 0 else
                float(realized_sigma(times, prices, now, params=params, gaps=gaps)[0])}
        if memo is not None:
            memo["key"], memo["parts"] = key, slow
    price = float(np.interp(now, times, prices))
    ref = price if reference is None else float(reference)
    if open_price is None and times.size and times[0] <= window_start <= now:
        open_price = float(price_at(times, prices, window_start)[0])
    seconds_left = max(0.0, window_start + window_seconds - now)
    p = None
    name, vol_input = "prob_up-v1", None
    base = slow["base"]
    if vol is not None and math.isfinite(base) and base > 0:
        name, vol_input = vol.name, slow["used"]
        if open_price is not None:     # one instant in floats (the array path's numbers: test_vol_model_live)
            p, sigma = vol.prob_and_sigma_one(open_price, ref, now, seconds_left, base, window_s=window_seconds)
        else:
            sigma = vol.sigma_per_sqrt_s(now, seconds_left, base)
    else:
        sigma = slow["v1_sigma"]
        if open_price is not None and math.isfinite(sigma) and sigma > 0:
            # Live, a volatility from no history (model.prob_up's fallback_sigma) is a guess, not a
            # probability to trade on: prob_up stays None until the history allows one
            p = float(np.ravel(prob_up(open_price, ref, seconds_left, sigma, slow["score"], params))[0])
    return {
        "model": name,
        "vol_input": vol_input,
        "direction": slow["direction"],
        "confidence": slow["confidence"],
        "score": slow["score"],
        "basis": slow["basis"],
        "price": price,
        "reference_price": ref,
        "open_price": open_price,
        "prob_up": None if p is None else round(p, 4),
        "sigma": None if not math.isfinite(sigma) else sigma,
        "seconds_left": seconds_left,
    }
