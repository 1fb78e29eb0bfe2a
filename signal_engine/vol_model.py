"""prob_up v2: a volatility model with seasonality and a per-horizon calibration (one implementation,
live and backtest).

The model, for one asset, at an instant `now` with `seconds_left` to the window's end:

1. **Seasonality.** The squared 1-minute log return of the minute starting at t is modelled as
   `S2(t) * v`, with `S2(t) = hour_of_week[h(t)] * minute_of_hour[m(t)]` (168 + 60 factors, mean 1
   over the fitting data; Monday 00:00 UTC is hour 0) and `v` the deseasonalised variance.
2. **Volatility.** `v` is a log-linear (geometric) blend of exponentially weighted means over a few
   spans (half-life, length, minimum count; e.g. 2 min, 10 min, 4 h):
   `ln v = a + sum_k b_k ln E_k(r**2 / S2) [+ sum_k c_k ln E_k(pk / S2)]`, where r is the 1-minute
   close-to-close log return and pk = ln(high / low)**2 / (4 ln 2) the Parkinson variance of the
   1-minute candle (the range carries more information per minute than one squared return). Each
   EWMA runs over a bounded number of the latest minutes, weights renormalised over the minutes that
   exist (a gap drops those minutes, it is never bridged). Two blends are fitted (backtest/fit.py,
   regression of the log of the rest of the window's realised variance): the **range blend**, used
   when the 1-minute candles' high and low are known, and the **close-only blend**, used when they
   are not (or a range component is unknown): the engine never breaks for lack of candles, it is
   just a little less sharp. A close-to-close component without enough returns takes the value of
   the slowest one that has them; every component is floored at COMPONENT_FLOOR of the slowest; the
   range blend is held within RANGE_MAX_RATIO of the close-only one (bad high/low cannot run away).
3. **Horizon.** The variance until the window's end is `v * H`, with `H` the integral of `S2` over
   [now, now + seconds_left] in minutes (the seasonality of the minutes still to come).
4. **Calibration.** `z = ln(price / strike) / sqrt(v * H)`,
   `prob_up = T_nu(z / c(seconds_left) + kappa * shift_profile(seconds_left))`: a Student-t CDF with
   `nu` degrees of freedom (fat tails; nu = None is the normal CDF), a scale `c` per seconds-left
   node, linearly interpolated between nodes (and held at the end nodes), and a late-window shift
   (format 3; kappa = 0 in format 2): `kappa / sqrt(s / 60)` with s the seconds left, i.e. one
   parameter per asset, largest near the end, where a small lean of the outcome (BTC ended Up a little
   more often than z says late in the window) matters most. The shift is 0 at the window's open,
   grows linearly to full one minute in (SHIFT_RAMP_S; the first decision minute of the fit), is held
   at its value for one minute left below that (SHIFT_MIN_LEFT_S: never larger than |kappa|, no blow-up
   as s -> 0) and is 0 when no time is left. At the open (price == strike) prob_up is exactly 0.5;
   at seconds_left <= 0 it is 1 when price >= strike (ties go Up), else 0; always clipped to
   [0.001, 0.999].

The live engine calls `VolModel.base_variance_at(times, prices, now, minute_hl=...)` on its tick
history (and, when it has them, the closed 1-minute candles' high/low); the backtest calls
`base_variance_series` on a 1-minute candle grid and the same `horizon_s2` / `prob_from_z`. At a
candle's close time both give the same number (tests/test_vol_model.py). The parameters come from a
versioned JSON file written by `python -m backtest fit` (signal_engine/vol_params.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import model

MODEL_NAME = "prob_up-v2"
FILE_FORMAT = 3                  # 3: + calibration.kappa; 2: log-linear blends (kappa 0); 1 (linear pair): refit
READABLE_FORMATS = (2, 3)
PROB_CLIP = 0.001
STEP_S = 60.0                    # returns are 1-minute log returns, on both paths
HOW_OFFSET_H = 72                # epoch 0 was a Thursday 00:00 UTC: +72 h makes Monday 00:00 hour 0
MIN_FAST_RETURNS = 3             # fewer valid returns than this in a component's span: that component is unknown
MIN_SLOW_RETURNS = 30
PARKINSON = 1.0 / (4.0 * math.log(2.0))
COMPONENT_FLOOR = 1e-3           # each EWMA is at least this fraction of the slowest close-to-close one
# The range blend is held within this factor of the close-only blend: a guard against bad high/low (a
# feed reporting high == low, a stale candle). On the dev data ln(range / close) stayed in
# [-0.68, 1.66] (99.8 % within +-0.65), so the guard almost never acts on real candles.
RANGE_MAX_RATIO = 4.0
# The late-window shift kappa * shift_profile(s): 0 at the open of a WINDOW_S window (unless the caller
# says another length), full SHIFT_RAMP_S later, held below SHIFT_MIN_LEFT_S left, 0 at s <= 0.
WINDOW_S = 900.0
SHIFT_RAMP_S = 60.0
SHIFT_MIN_LEFT_S = 60.0
KAPPA_MAX = 1.0                  # a parameter file's |kappa| above this is refused (the fit searches +-0.5)


# ---- Student-t CDF (numpy only: a table per nu, built once) --------------------------------

_T_GRID_MAX = 60.0
_T_GRID_N = 120_001


@lru_cache(maxsize=16)
def _t_table(nu: float) -> tuple[np.ndarray, np.ndarray]:
    xs = np.linspace(0.0, _T_GRID_MAX, _T_GRID_N)
    lg = math.lgamma((nu + 1.0) / 2.0) - math.lgamma(nu / 2.0) - 0.5 * math.log(nu * math.pi)
    pdf = np.exp(lg - (nu + 1.0) / 2.0 * np.log1p(xs * xs / nu))
    cdf = 0.5 + np.concatenate(([0.0], np.cumsum((pdf[1:] + pdf[:-1]) * 0.5 * np.diff(xs))))
    return xs, np.minimum(cdf, 1.0)


def t_cdf(z, nu: float | None) -> np.ndarray:
    """P(T <= z) for a Student-t with `nu` degrees of freedom (None: the normal CDF); exact 0.5 at 0."""
    z = np.asarray(z, dtype=float)
    if nu is None:
        return model.norm_cdf(z)
    xs, cdf = _t_table(float(nu))
    a = np.abs(z)
    v = np.where(np.isinf(a), 1.0, np.interp(np.where(np.isfinite(a), a, 0.0), xs, cdf))
    return np.where(z >= 0, v, 1.0 - v)


def _t_cdf_one(z: float, nu: float | None) -> float:
    """t_cdf of one float (the same table and interpolation)."""
    if nu is None:
        return float(model.norm_cdf(z))
    a = abs(z)
    if math.isinf(a):
        v = 1.0
    else:
        xs, cdf = _t_table(float(nu))
        v = float(np.interp(a if math.isfinite(a) else 0.0, xs, cdf))
    return v if z >= 0 else 1.0 - v


# ---- shared pieces ----------------------------------------------------------------------


def ewma_weights(halflife_min: float, length: int) -> np.ndarray:
    """Weights of the latest `length` returns, newest first: 0.5 ** (k / halflife)."""
    return 0.5 ** (np.arange(length, dtype=float) / float(halflife_min))


def ewma_last(x: np.ndarray, halflife_min: float, min_count: int) -> np.ndarray:
    """Live path: rows of x (oldest first, NaN = missing) -> weighted mean of each row; NaN when
    fewer than min_count values exist."""
    x = np.atleast_2d(x)
    w = ewma_weights(halflife_min, x.shape[1])[::-1]
    ok = np.isfinite(x)
    num = np.sum(np.where(ok, x, 0.0) * w, axis=1)
    den = np.sum(ok * w, axis=1)
    out = num / np.where(den > 0, den, 1.0)
    return np.where(ok.sum(axis=1) >= min_count, out, np.nan)


def ewma_series(x: np.ndarray, halflife_min: float, length: int, min_count: int) -> np.ndarray:
    """Backtest path: the same weighted mean at every index of a 1-minute series (value j uses
    x[j - length + 1 .. j])."""
    x = np.asarray(x, dtype=float)
    w = ewma_weights(halflife_min, length)
    ok = np.isfinite(x)
    num = _causal_conv(np.where(ok, x, 0.0), w)
    den = _causal_conv(ok.astype(float), w)
    c = np.concatenate(([0], np.cumsum(ok)))
    idx = np.arange(x.size)
    cnt = c[idx + 1] - c[np.maximum(idx + 1 - length, 0)]
    out = np.maximum(num / np.where(den > 0, den, 1.0), 0.0)
    return np.where((cnt >= min_count) & (den > 0), out, np.nan)


def _causal_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """y[j] = sum_k w[k] x[j - k] (k < len(w), x before 0 taken as 0); FFT for long kernels."""
    if w.size <= 64 or x.size < 4096:
        return np.convolve(x, w)[:x.size]
    n = 1 << int(math.ceil(math.log2(x.size + w.size)))
    y = np.fft.irfft(np.fft.rfft(x, n) * np.fft.rfft(w, n), n)[:x.size]
    return np.where(np.abs(y) < 1e-300, 0.0, y)


def hour_of_week(t) -> np.ndarray:
    return ((np.floor(np.asarray(t, dtype=float) / 3600.0).astype(np.int64) + HOW_OFFSET_H) % 168)


def minute_of_hour(t) -> np.ndarray:
    return np.floor(np.asarray(t, dtype=float) / 60.0).astype(np.int64) % 60


def parkinson(high, low) -> np.ndarray:
    """Parkinson's variance of one candle: ln(high / low)**2 / (4 ln 2); NaN where unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.log(np.asarray(high, dtype=float) / np.asarray(low, dtype=float))
    return np.where(np.isfinite(hl) & (hl >= 0), hl * hl * PARKINSON, np.nan)


def minute_range_at(minute_hl: tuple[np.ndarray, np.ndarray, np.ndarray], ends: np.ndarray) -> np.ndarray:
    """Parkinson variance of the candle holding the midpoint of each 1-minute return ending at `ends`
    (at a candle close: that candle); NaN when that candle is not in minute_hl."""
    mo, hi, lo = (np.asarray(a, dtype=float) for a in minute_hl)
    want = np.floor((np.asarray(ends, dtype=float) - STEP_S / 2.0) / STEP_S) * STEP_S
    if not mo.size:
        return np.full(want.shape, np.nan)
    order = np.argsort(mo, kind="stable")
    mo, pk = mo[order], parkinson(hi[order], lo[order])
    i = np.minimum(np.searchsorted(mo, want), mo.size - 1)
    return np.where(mo[i] == want, pk[i], np.nan)


def shift_profile(seconds_left, window_s: float = WINDOW_S) -> np.ndarray:
    """The late-window shift per unit kappa: 1 / sqrt(max(s, SHIFT_MIN_LEFT_S) / 60) times a ramp
    from 0 at the open (s = window_s) to 1 at SHIFT_RAMP_S after it; 0 when s <= 0 (the window is
    settled: prob_up is then 1 or 0 from z alone) and for s >= window_s (not open yet)."""
    s = np.asarray(seconds_left, dtype=float)
    ramp = np.clip((float(window_s) - s) / SHIFT_RAMP_S, 0.0, 1.0)
    prof = ramp / np.sqrt(np.maximum(s, SHIFT_MIN_LEFT_S) / 60.0)
    return np.where(s > 0, prof, 0.0)


@dataclass(frozen=True)
class LogBlend:
    """ln v = intercept + sum_k b_close[k] ln C_k (+ sum_k b_range[k] ln R_k): C_k, R_k the EWMAs of
    the deseasonalised squared returns / Parkinson variances over span k."""
    intercept: float
    b_close: tuple[float, ...]
    b_range: tuple[float, ...] | None = None

    def to_dict(self) -> dict:
        d: dict = {"intercept": round(float(self.intercept), 6), "b_close": [round(float(b), 6) for b in self.b_close]}
        if self.b_range is not None:
            d["b_range"] = [round(float(b), 6) for b in self.b_range]
        return d


def log_parts(close_parts: list[np.ndarray], range_parts: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """The logs the blends combine (spans fastest first): a missing close component takes the value
    of the slowest one present; range components stay NaN when missing; each floored at
    COMPONENT_FLOOR x the slowest close component (never log 0)."""
    close_parts = [np.asarray(p, dtype=float) for p in close_parts]
    fill = np.full(close_parts[0].shape, np.nan)
    for p in reversed(close_parts):
        fill = np.where(np.isfinite(fill), fill, p)
    floor = np.maximum(COMPONENT_FLOOR * fill, 1e-300)
    out = [np.log(np.maximum(np.where(np.isfinite(p), p, fill), floor)) for p in close_parts]
    for p in range_parts or []:
        out.append(np.log(np.maximum(np.asarray(p, dtype=float), floor)))
    return out


def combine(blend: LogBlend, logs: list[np.ndarray]) -> np.ndarray:
    """exp(intercept + coefficients . logs) (NaN when a component it needs is unknown)."""
    coefs = list(blend.b_close) + list(blend.b_range or ())
    total = np.full(np.shape(logs[0]), float(blend.intercept))
    for b, lg in zip(coefs, logs, strict=False):
        total = total + b * lg
    return np.exp(total)


@dataclass(frozen=True)
class VolModel:
    asset: str
    spans: tuple[tuple[float, int, int], ...]   # (half-life min, length, minimum count), fastest first
    close_blend: LogBlend
    range_blend: LogBlend | None
    nu: float | None
    season_how: np.ndarray          # (168,)
    season_moh: np.ndarray          # (60,)
    calib_seconds_left: np.ndarray  # ascending nodes
    calib_scale: np.ndarray
    kappa: float = 0.0              # the late-window shift (0 = none; format 2 files)
    name: str = MODEL_NAME
    # The live hot path's memo (one entry: the horizon's whole minutes after the current one); not data.
    _tail: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- what the engine needs to keep ----

    @property
    def history_needed_s(self) -> float:
        return (max(n for _, n, _ in self.spans) + 2) * STEP_S

    # ---- seasonality ----

    def season_s2(self, minute_start) -> np.ndarray:
        """S2 of the minute that starts at (or contains) each time."""
        return self.season_how[hour_of_week(minute_start)] * self.season_moh[minute_of_hour(minute_start)]

    def horizon_s2(self, now, seconds_left) -> np.ndarray:
        """Integral of S2 over [now, now + seconds_left], in minutes (partial minutes pro rata)."""
        if np.ndim(now) == 0 and np.ndim(seconds_left) == 0:   # live: one instant (the same sum, in floats)
            return np.array([self._horizon_s2_one(float(now), float(seconds_left))])
        now = np.atleast_1d(np.asarray(now, dtype=float))
        tau = np.maximum(np.broadcast_to(np.asarray(seconds_left, dtype=float), now.shape), 0.0)
        first = np.floor(now / STEP_S) * STEP_S
        k_max = int(np.max(np.ceil((now + tau - first) / STEP_S))) if now.size else 0
        if k_max <= 0:
            return np.zeros(now.shape)
        starts = first[:, None] + STEP_S * np.arange(k_max)[None, :]
        end = (now + tau)[:, None]
        overlap = np.clip(np.minimum(end, starts + STEP_S) - np.maximum(now[:, None], starts), 0.0, STEP_S)
        return np.sum(self.season_s2(starts) * overlap / STEP_S, axis=1)

    def _horizon_s2_one(self, now: float, seconds_left: float) -> float:
        """horizon_s2 of one instant without numpy's per-call cost (the engine computes it on every
        streamed price; tests/test_vol_model_live.py holds it equal to the array path): the part of the
        current minute, plus the whole minutes after it, summed once per (minute, end) and kept."""
        end = now + max(seconds_left, 0.0)
        start = math.floor(now / STEP_S) * STEP_S
        if start >= end:
            return 0.0
        first = (min(end, start + STEP_S) - max(now, start)) * self._s2_one(start) / STEP_S
        key = (start, end)
        tail = self._tail.get(key)
        if tail is None:
            tail = 0.0
            m = start + STEP_S
            while m < end:
                tail += self._s2_one(m) * min(end - m, STEP_S) / STEP_S
                m += STEP_S
            self._tail.clear()
            self._tail[key] = tail
        return first + tail

    def _s2_one(self, minute_start: float) -> float:
        how = (math.floor(minute_start / 3600.0) + HOW_OFFSET_H) % 168
        return float(self.season_how[how]) * float(self.season_moh[math.floor(minute_start / 60.0) % 60])

    # ---- volatility ----

    def variance_from_parts(self, close_parts: list[np.ndarray], range_parts: list[np.ndarray] | None) -> np.ndarray:
        """v from the EWMAs of each span: the range blend where it is known, else the close-only blend."""
        out = combine(self.close_blend, log_parts(close_parts))
        if self.range_blend is None or range_parts is None:
            return out
        ranged = combine(self.range_blend, log_parts(close_parts, range_parts))
        ranged = np.clip(ranged, out / RANGE_MAX_RATIO, out * RANGE_MAX_RATIO)
        return np.where(np.isfinite(ranged), ranged, out)

    def base_variance_series(self, minute_open: np.ndarray, close: np.ndarray, high: np.ndarray | None = None,
                             low: np.ndarray | None = None) -> np.ndarray:
        """Backtest: v after each 1-minute candle of a series (NaN returns across gaps).

        Element j is the variance known at candle j's close (minute_open[j] + 60); with high and low
        the range blend, else the close-only blend."""
        minute_open = np.asarray(minute_open, dtype=float)
        close = np.asarray(close, dtype=float)
        r = np.full(close.size, np.nan)
        if close.size > 1:
            ok = np.diff(minute_open) == STEP_S
            r[1:] = np.where(ok, np.log(close[1:] / close[:-1]), np.nan)
        s2 = self.season_s2(minute_open)
        x = r * r / s2
        cp = [ewma_series(x, hl, n, mc) for hl, n, mc in self.spans]
        rp = None
        if high is not None and low is not None and self.range_blend is not None:
            xr = parkinson(high, low) / s2
            rp = [ewma_series(xr, hl, n, mc) for hl, n, mc in self.spans]
        return self.variance_from_parts(cp, rp)

    def base_variance_at(self, times, prices, now: float, max_gap_s: float = model.DEFAULT_PARAMS.max_gap_s,
                         minute_hl: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> float:
        """Live: v at `now` from a price history (see base_variance_and_input_at)."""
        return self.base_variance_and_input_at(times, prices, now, max_gap_s, minute_hl)[0]

    def base_variance_and_input_at(self, times, prices, now: float,
                                   max_gap_s: float = model.DEFAULT_PARAMS.max_gap_s,
                                   minute_hl: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                                   gaps: np.ndarray | None = None) -> tuple[float, str]:
        """Live: (v, input) at `now` from a price history (1-minute returns on a grid ending at now);
        input is "range" when every span's range EWMA was known, else "close".

        `minute_hl` = (minute_open, high, low) of closed 1-minute candles (any subset, any order; a
        minute not in it counts as missing): with it the range blend, without it the close-only blend.
        `gaps`: model.gap_ends(times, max_gap_s) when the caller has it."""
        times = np.asarray(times, dtype=float)
        prices = np.asarray(prices, dtype=float)
        n = max(length for _, length, _ in self.spans)
        ends = now - STEP_S * np.arange(n - 1, -1, -1, dtype=float)          # oldest first
        p_end = model.price_at(times, prices, ends)
        p_start = model.price_at(times, prices, ends - STEP_S)
        ok = model.gap_free(times, ends, STEP_S, max_gap_s, gaps)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(ok, np.log(p_end / p_start), np.nan)
        # A return's minute: the one containing its midpoint (on the candle grid: the candle's open).
        s2 = self.season_s2(ends - STEP_S / 2.0)
        x = r * r / s2
        cp = [ewma_last(x[-length:], hl, mc) for hl, length, mc in self.spans]
        rp = None
        if minute_hl is not None and self.range_blend is not None:
            xr = minute_range_at(minute_hl, ends) / s2
            rp = [ewma_last(xr[-length:], hl, mc) for hl, length, mc in self.spans]
        used = "range" if rp is not None and all(np.all(np.isfinite(p)) for p in rp) else "close"
        return float(self.variance_from_parts(cp, rp)[0]), used

    # ---- probability ----

    def scale_at(self, seconds_left) -> np.ndarray:
        return np.interp(np.asarray(seconds_left, dtype=float), self.calib_seconds_left, self.calib_scale)

    def shift_at(self, seconds_left, window_s: float = WINDOW_S) -> np.ndarray:
        """kappa * shift_profile: what is added to z / c before the CDF (in z units)."""
        if self.kappa == 0.0:
            return np.zeros(np.shape(seconds_left))
        return self.kappa * shift_profile(seconds_left, window_s)

    def prob_from_z(self, z, seconds_left, window_s: float = WINDOW_S) -> np.ndarray:
        """T_nu(z / c(s) + kappa * shift_profile(s)), clipped; `window_s`: the window's length (the
        shift is 0 at its open)."""
        u = np.asarray(z, dtype=float) / self.scale_at(seconds_left) + self.shift_at(seconds_left, window_s)
        return np.clip(t_cdf(u, self.nu), PROB_CLIP, 1.0 - PROB_CLIP)

    def zscore(self, strike, price, now, seconds_left, base_var) -> np.ndarray:
        """ln(price / strike) / sqrt(v * H); +-inf (0 -> +inf: ties go Up) when no time is left."""
        lr = np.log(np.asarray(price, dtype=float) / np.asarray(strike, dtype=float))
        sd = np.sqrt(np.asarray(base_var, dtype=float) * self.horizon_s2(now, seconds_left))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 0, lr / np.where(sd > 0, sd, 1.0), np.where(lr >= 0, np.inf, -np.inf))

    def prob_up(self, strike, price, now, seconds_left, base_var, window_s: float = WINDOW_S) -> np.ndarray:
        return self.prob_from_z(self.zscore(strike, price, now, seconds_left, base_var), seconds_left, window_s)

    def prob_and_sigma_one(self, strike: float, price: float, now: float, seconds_left: float, base_var: float,
                           window_s: float = WINDOW_S) -> tuple[float, float]:
        """(prob_up, sigma_per_sqrt_s) of one instant in floats: the engine's path on every streamed price
        (a tenth of the array path's cost); tests/test_vol_model_live.py holds it equal to prob_up and
        sigma_per_sqrt_s. `base_var` finite and > 0 (the caller's condition for a v2 prob_up)."""
        s = float(seconds_left)
        tau = max(s, 0.0)
        h = self._horizon_s2_one(now, tau)
        scale = float(np.interp(s, self.calib_seconds_left, self.calib_scale))
        lr = math.log(price / strike)
        sd = math.sqrt(base_var * h)
        z = lr / sd if sd > 0 else (math.inf if lr >= 0 else -math.inf)
        u = z / scale
        if self.kappa != 0.0 and s > 0:
            ramp = min(max((float(window_s) - s) / SHIFT_RAMP_S, 0.0), 1.0)
            u += self.kappa * (ramp / math.sqrt(max(s, SHIFT_MIN_LEFT_S) / 60.0))
        p = min(max(_t_cdf_one(u, self.nu), PROB_CLIP), 1.0 - PROB_CLIP)
        sigma = math.sqrt(base_var * h / tau) * scale if tau > 0 else math.nan
        return p, sigma

    def sigma_per_sqrt_s(self, now, seconds_left, base_var) -> float:
        """The volatility per sqrt(second) this prob_up used (for signal.json's display)."""
        tau = float(seconds_left)
        if tau <= 0 or not math.isfinite(base_var):
            return math.nan
        return math.sqrt(base_var * float(self.horizon_s2(now, tau)[0]) / tau) * float(self.scale_at(tau))

    # ---- file ----

    def to_dict(self) -> dict:
        return {"spans": [[float(hl), int(n), int(mc)] for hl, n, mc in self.spans],
                "close_blend": self.close_blend.to_dict(),
                **({"range_blend": self.range_blend.to_dict()} if self.range_blend else {}),
                "nu": self.nu,
                "season_hour_of_week": [round(float(v), 6) for v in self.season_how],
                "season_minute_of_hour": [round(float(v), 6) for v in self.season_moh],
                "calibration": {"seconds_left": [float(v) for v in self.calib_seconds_left],
                                "scale": [round(float(v), 6) for v in self.calib_scale],
                                "kappa": round(float(self.kappa), 6)}}
