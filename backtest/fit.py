"""Fitting prob_up v2 (signal_engine/vol_model.py) on candle history, walk-forward, in one pass.

For each training set (the windows of earlier chronological blocks, and only candles that closed
before the first window it is scored on):

1. seasonality: mean squared 1-minute return per hour of the day, per hour of the week relative to
   its hour of the day, then per minute of the hour (each shrunk towards 1 by SEASON_PRIOR
   pseudo-minutes), normalised to mean 1;
2. volatility: the EWMAs of the deseasonalised squared returns and Parkinson ranges over SPANS; the
   log of the rest of each training window's realised variance (decision minutes 0..LOG_FIT_MINUTES - 1,
   at least 5 minutes to go) regressed on their logs: the range blend (both) and the close-only blend
   (squared returns only, the engine's fallback without candle high/low); the intercept then set so
   that v is the unbiased level (mean of realised / v = 1);
3. calibration: z = ln(price / open) / sqrt(v * H) at every decision minute 1..14 of the training
   windows; for each nu of NU_GRID a scale per minute minimising the log loss (recency-weighted:
   a window RECENCY_HALFLIFE_DAYS older counts half); the nu with the lowest total loss wins; then,
   with nu and the scales fixed, the late-window shift kappa (prob_up = T_nu(z / c + kappa /
   sqrt(minutes left))) minimising the same weighted log loss pooled over minutes 1..14, on a lattice
   of KAPPA_STEP in [-KAPPA_SEARCH, KAPPA_SEARCH].

`fit_asset` returns the VolModel; `walk_forward` scores block k with the model fitted on blocks < k
next to today's model (signal_engine.model, fixed defaults) on the same windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from backtest.data import Windows, build_windows
from signal_engine import model
from signal_engine import vol_model as vm
from signal_engine.history import Candles

MINUTES = 15
SLOW_LEN = 720                                   # 12 h of returns for the slow span
# (half-life min, length, minimum count) of the EWMAs. Measured walk-forward (5 blocks), Brier change
# at +5 / +10 against today's model: the linear fast/slow pair of format 1 -0.09 / -0.77 % (BTC),
# -0.13 / -0.74 % (ETH); a linear blend with Parkinson ranges -0.15 / -0.92 %, -0.22 / -0.73 %; this
# log-linear blend -0.25 / -0.98 %, -0.43 / -1.11 % (close-only log blend: -0.18 / -0.87 %, -0.28 / -0.98 %).
SPANS = ((2.0, 12, 3), (10.0, 60, 3), (240.0, SLOW_LEN, 30))
LOG_FIT_MINUTES = 11
NU_GRID = (3.0, 4.0, 5.0, 7.0, 10.0, None)
RECENCY_HALFLIFE_DAYS = 120.0
SEASON_PRIOR = 60.0                              # pseudo-minutes added to every bin's noise
WINSOR_Q = 0.999                                 # squared returns above this quantile are capped (seasonality)
SMOOTH_DEGREE: int | None = None   # 2 smooths log(scale) over log(minutes left): measured worse out of sample
HISTORY_S = (SLOW_LEN + 2) * 60.0 + 60.0
# The late-window shift's search (issue 14, round two): the lattice of the research harness (step
# 0.0025); walk-forward on the dev data the folds chose BTC 0.07 / 0.235 / 0.08 / 0.055 and ETH -0.095 /
# -0.01 / 0.11 / 0.025, so +-0.5 keeps every optimum inside the range (+-0.1 clipped two folds).
KAPPA_STEP = 0.0025
KAPPA_SEARCH = 0.5
KAPPA_COARSE = 8                                 # coarse pass every 8 lattice steps, then the 16 around its best


@dataclass
class Grid:
    """Per window (rows) and decision minute m = 0..14 (columns): what both models need."""
    windows: Windows
    row0: np.ndarray        # index of each window's first candle
    price: np.ndarray       # (n, 15): the open at m = 0, else the close of candle m - 1
    now: np.ndarray         # (n, 15) decision instants start + 60 m
    seconds_left: np.ndarray  # (15,)

    @property
    def up(self) -> np.ndarray:
        return self.windows.up.astype(float)

    def take(self, rows: np.ndarray) -> Grid:
        return Grid(self.windows.take(np.isin(np.arange(len(self.windows)), rows)), self.row0[rows],
                    self.price[rows], self.now[rows], self.seconds_left)


def build_grid(c: Candles, window_seconds: float = 900.0) -> Grid:
    w = build_windows(c, max(HISTORY_S, model.HISTORY_NEEDED_S), window_seconds)
    row0 = np.searchsorted(c.open_time, w.start)
    m = np.arange(MINUTES)
    last = row0[:, None] + m[None, :] - 1
    price = c.close[np.maximum(last, 0)]
    price[:, 0] = w.open
    now = w.start[:, None] + 60.0 * m[None, :]
    return Grid(w, row0, price, now, window_seconds - 60.0 * m)


def v1_prob(c: Candles, g: Grid) -> np.ndarray:
    """Today's model (signal_engine.model, DEFAULT_PARAMS) at every decision minute of the grid."""
    times, prices = c.price_series()
    p = model.DEFAULT_PARAMS
    out = np.empty(g.price.shape)
    for a in range(0, len(g.row0), 4000):
        b = min(len(g.row0), a + 4000)
        t = g.now[a:b].ravel()
        sig = model.realized_sigma(times, prices, t, params=p).reshape(b - a, MINUTES)
        out[a:b] = model.prob_up(g.windows.open[a:b, None], g.price[a:b], g.seconds_left[None, :], sig, 0.0, p)
    return out


# ---- 1. seasonality ------------------------------------------------------------------------


def returns_of(c: Candles) -> np.ndarray:
    r = np.full(len(c), np.nan)
    ok = np.diff(c.open_time) == 60.0
    r[1:] = np.where(ok, np.log(c.close[1:] / c.close[:-1]), np.nan)
    return r


def fit_season(c: Candles, r: np.ndarray, until: float) -> tuple[np.ndarray, np.ndarray]:
    """Hour-of-week and minute-of-hour factors of the variance of the returns of candles closed
    before `until`. Measured on |r| (far less noisy than r**2 under fat tails) and squared: the same
    factor when the shape of the distribution does not depend on the hour."""
    x = np.abs(r)
    use = np.isfinite(x) & (c.open_time + 60.0 <= until)
    if use.sum() < 1000:
        return np.ones(168), np.ones(60)
    x = np.minimum(x, np.quantile(x[use], WINSOR_Q))
    xs, how, moh = x[use], vm.hour_of_week(c.open_time[use]), vm.minute_of_hour(c.open_time[use])
    xs = xs / xs.mean()

    def factor(key, vals, k):
        """Mean of vals per bin relative to the overall mean, shrunk towards 1 by how noisy each bin is
        (empirical Bayes: weight = between-bin variance / (between-bin + the bin's own noise variance))."""
        vals = vals / vals.mean()
        n = np.bincount(key, minlength=k).astype(float)
        m = np.bincount(key, weights=vals, minlength=k) / np.maximum(n, 1.0)
        noise = vals.var() / (n + SEASON_PRIOR)
        filled = n > 0
        between = max(0.0, float(np.var(m[filled])) - float(np.mean(noise[filled]))) if filled.any() else 0.0
        return 1.0 + np.where(filled, m - 1.0, 0.0) * between / (between + noise)

    # hour of the week = hour of the day (24 well-filled bins) x a ratio per hour of the week shrunk to 1
    hod = factor(how % 24, xs, 24)
    a = hod[np.arange(168) % 24] * factor(how, xs / hod[how % 24], 168)
    b = factor(moh, xs / a[how], 60)
    a, b = a * a, b * b
    norm = float(np.mean(a[how] * b[moh]))
    return a / math.sqrt(norm), b / math.sqrt(norm)


# ---- 2. volatility -------------------------------------------------------------------------


def _future_variance(x: np.ndarray, g: Grid) -> np.ndarray:
    """(n, 15): mean deseasonalised squared return over the minutes m .. 14 of each window."""
    cx = np.concatenate(([0.0], np.cumsum(np.nan_to_num(x))))
    m = np.arange(MINUTES)
    a = g.row0[:, None] + m[None, :]
    return (cx[g.row0[:, None] + MINUTES] - cx[a]) / (MINUTES - m)[None, :]


def _fit_log_blend(logs: list[np.ndarray], target: np.ndarray, k: int, ranged: bool) -> vm.LogBlend:
    """ln target ~ a + b . logs on decision minutes 0..LOG_FIT_MINUTES - 1; then a such that the mean of
    target / v over every decision minute is 1."""
    X = np.stack([lg.ravel() for lg in logs], axis=1)
    t = target.ravel()
    ok = np.all(np.isfinite(X), axis=1) & np.isfinite(t) & (t > 0)
    fit_on = ok & (np.broadcast_to(np.arange(MINUTES) < LOG_FIT_MINUTES, target.shape).ravel())
    A = np.column_stack([np.ones(int(fit_on.sum())), X[fit_on]])
    coef = np.linalg.lstsq(A, np.log(t[fit_on]), rcond=None)[0]
    pred = X[ok] @ coef[1:]
    level = float(np.log(np.mean(t[ok] / np.exp(pred))))
    b = tuple(float(v) for v in coef[1:])
    return vm.LogBlend(level, b[:k], b[k:] if ranged else None)


def fit_vol(x: np.ndarray, xr: np.ndarray, g: Grid) -> tuple[vm.LogBlend, vm.LogBlend]:
    """(close-only blend, range blend) on the grid's windows: x = r**2 / S2, xr = Parkinson / S2."""
    target = _future_variance(x, g)
    last = np.maximum(g.row0[:, None] + np.arange(MINUTES)[None, :] - 1, 0)
    cp = [vm.ewma_series(x, hl, n, mc)[last] for hl, n, mc in SPANS]
    rp = [vm.ewma_series(xr, hl, n, mc)[last] for hl, n, mc in SPANS]
    k = len(SPANS)
    return (_fit_log_blend(vm.log_parts(cp), target, k, False),
            _fit_log_blend(vm.log_parts(cp, rp), target, k, True))


# ---- 3. calibration ------------------------------------------------------------------------


def _wlogloss(q: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    q = np.clip(q, 1e-6, 1 - 1e-6)
    return float(-np.sum(w * (y * np.log(q) + (1 - y) * np.log(1 - q))) / np.sum(w))


def fit_scale(z: np.ndarray, y: np.ndarray, w: np.ndarray, nu: float | None, iters: int = 28) -> tuple[float, float]:
    """(scale, loss): golden-section search of log(scale) in [log 0.2, log 5]."""
    ok = np.isfinite(z)
    z, y, w = z[ok], y[ok], w[ok]
    gr = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = math.log(0.2), math.log(5.0)

    def loss(lc: float) -> float:
        return _wlogloss(vm.t_cdf(z / math.exp(lc), nu), y, w)

    c1, c2 = b - gr * (b - a), a + gr * (b - a)
    f1, f2 = loss(c1), loss(c2)
    for _ in range(iters):
        if f1 < f2:
            b, c2, f2 = c2, c1, f1
            c1 = b - gr * (b - a)
            f1 = loss(c1)
        else:
            a, c1, f1 = c1, c2, f2
            c2 = a + gr * (b - a)
            f2 = loss(c2)
    c = 0.5 * (a + b)
    return math.exp(c), loss(c)


def fit_shift(u: np.ndarray, profile: np.ndarray, y: np.ndarray, w: np.ndarray, nu: float | None) -> float:
    """kappa minimising the weighted log loss of T_nu(u + kappa * profile) pooled over the columns of
    u (u = z / c per decision minute, profile = vm.shift_profile of its seconds left): the lattice
    point of KAPPA_STEP in [-KAPPA_SEARCH, KAPPA_SEARCH] with the lowest loss (the lowest kappa on a
    tie), found by a coarse pass and a fine one around its best (the loss is unimodal in kappa)."""
    ok = np.isfinite(u)
    uu, pp = u[ok], np.broadcast_to(profile, u.shape)[ok]
    yy, ww = np.broadcast_to(y[:, None], u.shape)[ok], np.broadcast_to(w[:, None], u.shape)[ok]
    n = int(round(KAPPA_SEARCH / KAPPA_STEP))
    cache: dict[int, float] = {}

    def loss(i: int) -> float:
        if i not in cache:
            cache[i] = _wlogloss(vm.t_cdf(uu + i * KAPPA_STEP * pp, nu), yy, ww)
        return cache[i]

    coarse = min(range(-n, n + 1, KAPPA_COARSE), key=lambda i: (loss(i), i))
    fine = range(max(-n, coarse - KAPPA_COARSE), min(n, coarse + KAPPA_COARSE) + 1)
    return min(fine, key=lambda i: (loss(i), i)) * KAPPA_STEP


def fit_calibration(z: np.ndarray, y: np.ndarray, w: np.ndarray,
                    seconds_left: np.ndarray | None = None,
                    window_s: float = vm.WINDOW_S) -> tuple[float | None, np.ndarray, float]:
    """nu, one scale per decision minute 1..14 (columns of z) and the late-window shift kappa
    (`seconds_left`: the seconds left of z's columns 0..14; None: no shift, kappa 0)."""
    best = None
    for nu in NU_GRID:
        fits = [fit_scale(z[:, m], y, w, nu) for m in range(1, MINUTES)]
        total = sum(f[1] for f in fits)
        if best is None or total < best[0]:
            best = (total, nu, np.array([f[0] for f in fits]))
    assert best is not None
    scales = best[2]
    if SMOOTH_DEGREE is not None:
        # log scale as a low-degree polynomial of log(minutes left): one curve, less noise per minute
        lt = np.log(np.arange(MINUTES - 1, 0, -1, dtype=float))
        coef = np.polyfit(lt, np.log(scales), SMOOTH_DEGREE)
        scales = np.exp(np.polyval(coef, lt))
    kappa = 0.0
    if seconds_left is not None:
        kappa = fit_shift(z[:, 1:] / scales, vm.shift_profile(seconds_left[1:], window_s), y, w, best[1])
    return best[1], scales, kappa


# ---- the whole fit -------------------------------------------------------------------------


def _model(asset: str, season: tuple[np.ndarray, np.ndarray], blends: tuple[vm.LogBlend, vm.LogBlend],
           nu: float | None, scales: np.ndarray, seconds_left: np.ndarray, kappa: float = 0.0) -> vm.VolModel:
    nodes = seconds_left[1:]                     # minutes 1..14: seconds left 840 .. 60
    order = np.argsort(nodes)
    return vm.VolModel(asset.upper(), SPANS, blends[0], blends[1], nu, season[0], season[1],
                       nodes[order].astype(float), scales[order], float(kappa))


def base_at_decisions(v: vm.VolModel, c: Candles, g: Grid) -> np.ndarray:
    base = v.base_variance_series(c.open_time, c.close, c.high, c.low)
    last = g.row0[:, None] + np.arange(MINUTES)[None, :] - 1
    return base[last]


def zscores(v: vm.VolModel, c: Candles, g: Grid) -> np.ndarray:
    base = base_at_decisions(v, c, g)
    z = v.zscore(g.windows.open[:, None].repeat(MINUTES, 1).ravel(), g.price.ravel(), g.now.ravel(),
                 np.broadcast_to(g.seconds_left, g.price.shape).ravel(), base.ravel())
    return z.reshape(g.price.shape)


def predict(v: vm.VolModel, c: Candles, g: Grid, close_only: bool = False) -> np.ndarray:
    """prob_up at every decision minute; close_only: as the engine without candle high/low."""
    z = zscores(v if not close_only else replace(v, range_blend=None), c, g)
    return v.prob_from_z(z, np.broadcast_to(g.seconds_left, z.shape), g.windows.window_seconds)


def fit_asset(asset: str, c: Candles, g: Grid, rows: np.ndarray, r: np.ndarray | None = None) -> vm.VolModel:
    """The model fitted on the grid's windows `rows`, with candles closed before their last window's end."""
    r = returns_of(c) if r is None else r
    until = float(g.windows.start[rows[-1]] + g.windows.window_seconds)
    season = fit_season(c, r, until)
    s2 = season[0][vm.hour_of_week(c.open_time)] * season[1][vm.minute_of_hour(c.open_time)]
    x = r * r / s2
    sub = g.take(rows)
    blends = fit_vol(x, vm.parkinson(c.high, c.low) / s2, sub)
    v0 = _model(asset, season, blends, None, np.ones(MINUTES - 1), g.seconds_left)
    z = zscores(v0, c, sub)
    age_days = (until - sub.windows.start) / 86400.0
    w = 0.5 ** (age_days / RECENCY_HALFLIFE_DAYS)
    nu, scales, kappa = fit_calibration(z, sub.up, w, g.seconds_left, g.windows.window_seconds)
    return _model(asset, season, blends, nu, scales, g.seconds_left, kappa)


def walk_forward(asset: str, c: Candles, g: Grid, folds: int = 5) -> dict:
    """Block k >= 1 predicted by the model fitted on blocks < k; returns rows, q_new, q_close_only (the
    same models without candle high/low: the engine's fallback) and the fitted models."""
    n = len(g.windows)
    fold = (np.arange(n) * folds) // max(n, 1)
    r = returns_of(c)
    q_new = np.full(g.price.shape, np.nan)
    q_close = np.full(g.price.shape, np.nan)
    fitted = []
    for k in range(1, folds):
        train, test = np.nonzero(fold < k)[0], np.nonzero(fold == k)[0]
        if not train.size or not test.size:
            continue
        v = fit_asset(asset, c, g, train, r)
        q_new[test] = predict(v, c, g.take(test))
        q_close[test] = predict(v, c, g.take(test), close_only=True)
        fitted.append((k, train, test, v))
    rows = np.nonzero(np.isfinite(q_new[:, 1]))[0]
    return {"rows": rows, "q_new": q_new[rows], "q_close_only": q_close[rows], "fitted": fitted,
            "fold_of_row": fold[rows]}
