"""The backtest's computation: the model over every decision instant, scores, walk-forward.

Everything the model says comes from `signal_engine.model` (features, heuristic,
realized_sigma, prob_up), called on whole arrays of decision instants at once: the same
code the live engine runs through `model.evaluate`, vectorised with numpy.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from backtest.data import Windows, build_windows
from backtest.metrics import confidence_table, log_loss, prob_metrics, trade_stats
from backtest.strategy import MarketAssumption, Trades, asks, edge_trades, lagged, seed_trades
from core.window_grid import iso_utc
from signal_engine import model
from signal_engine.history import Candles

REPORT_MINUTES = (0, 1, 5, 10, 13)
VOL_LOOKBACKS = (900.0, 1800.0, 3600.0)
VOL_SCALES = (0.9, 1.0, 1.1)
TILTS = (-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2)
SEED_THRESHOLDS = (50.0, 60.0, 70.0, 80.0, 90.0, 96.0)     # 96 = never trade (confidence <= 95)
MIN_EDGES = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2)
MARKET_PARAMS = model.ModelParams(vol_lookback_s=3600.0, vol_scale=1.0, tilt_weight=0.0)
CHUNK_WINDOWS = 2000


class Progress:
    """A one-line progress bar on stderr, drawn at most every 0.2 s; silent when disabled."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None, width: int = 30):
        self.total, self.label, self.enabled = max(1, total), label, enabled
        self.stream = stream or sys.stderr
        self.width, self.done, self._last = width, 0, 0.0

    def update(self, k: int = 1) -> None:
        self.done += k
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.2 or self.done >= self.total):
            self._last = now
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * self.width)
            self.stream.write(f"\r{self.label:<12} [{bar:<{self.width}}] {frac * 100:5.1f}%")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()


@dataclass
class Run:
    """The model's outputs at every minute m = 0..minutes-1 of every usable window."""
    windows: Windows
    minutes: np.ndarray
    price: np.ndarray                  # (n, M) price at start + 60 m (the open at m = 0)
    score: np.ndarray                  # (n, M) heuristic score
    direction: np.ndarray              # (n, M) +1 / -1 / 0
    confidence: np.ndarray             # (n, M)
    sigma: dict[float, np.ndarray]     # vol lookback -> (n, M) realised sigma

    @property
    def seconds_left(self) -> np.ndarray:
        return self.windows.window_seconds - 60.0 * self.minutes.astype(float)

    def col(self, minute: int) -> int:
        return int(np.nonzero(self.minutes == minute)[0][0])

    def prob(self, params: model.ModelParams, rows: np.ndarray | slice = slice(None),
             cols: list[int] | None = None) -> np.ndarray:
        """prob_up (rows, M or len(cols)) with `params` (its vol lookback must have been computed)."""
        c = slice(None) if cols is None else np.asarray(cols)
        sig = self.sigma[float(params.vol_lookback_s)][rows][:, c]
        return model.prob_up(self.windows.open[rows][:, None], self.price[rows][:, c],
                             self.seconds_left[c][None, :], sig, self.score[rows][:, c], params)


def compute_run(c: Candles, params: model.ModelParams = model.DEFAULT_PARAMS,
                lookbacks: tuple[float, ...] = VOL_LOOKBACKS, window_seconds: float = 900.0,
                progress: bool = False, label: str = "model") -> Run:
    """Features, heuristic and realised sigma at every decision minute of every usable window."""
    lookbacks = tuple(sorted({float(x) for x in (*lookbacks, params.vol_lookback_s)}))
    history_s = max(model.HISTORY_NEEDED_S, max(lookbacks) + 60.0)
    w = build_windows(c, history_s, window_seconds)
    minutes = np.arange(int(round(window_seconds / 60.0)))
    n, k = len(w), minutes.size
    times, prices = c.price_series()
    price = np.empty((n, k))
    score = np.empty((n, k))
    direction = np.empty((n, k), dtype=np.int64)
    confidence = np.empty((n, k))
    sigma = {lb: np.empty((n, k)) for lb in lookbacks}
    bar = Progress(n, label, enabled=progress and n > 3000)
    for a in range(0, n, CHUNK_WINDOWS):
        b = min(n, a + CHUNK_WINDOWS)
        t = w.decision_times(minutes)[a:b].ravel()
        f = model.features(times, prices, t, params)
        h = model.heuristic(f, params)
        price[a:b] = model.price_at(times, prices, t).reshape(b - a, k)
        score[a:b] = h["score"].reshape(b - a, k)
        direction[a:b] = h["direction"].reshape(b - a, k)
        confidence[a:b] = h["confidence"].reshape(b - a, k)
        for lb in lookbacks:
            if lb == model.VOL_LONG_S:
                s = f["vol_long"]
            elif lb == model.VOL_SHORT_S:
                s = f["vol_short"]
            else:
                s = model.realized_sigma(times, prices, t, lb, params)
            sigma[lb][a:b] = s.reshape(b - a, k)
        bar.update(b - a)
    # At the window's start the current price is the open (live, evaluate() takes the price at the
    # start as the open): the last close before it may differ from the first trade by a tick or two.
    price[:, 0] = w.open
    return Run(w, minutes, price, score, direction, confidence, sigma)


# ---- scores -------------------------------------------------------------------------------


def prob_section(run: Run, params: model.ModelParams, rows: np.ndarray | slice = slice(None),
                 table: bool = True) -> dict:
    q = run.prob(params, rows)
    y = run.windows.up[rows].astype(float)
    return {str(m): prob_metrics(q[:, run.col(m)], y, table=table) for m in REPORT_MINUTES}


def heuristic_section(run: Run) -> dict:
    up = run.windows.up
    out = {}
    for m in REPORT_MINUTES:
        j = run.col(m)
        t = confidence_table(run.confidence[:, j], run.direction[:, j], up)
        s = run.score[:, j]
        nz = s != 0
        t["score_sign_hit_rate"] = round(float(np.mean((s[nz] > 0) == up[nz])), 6) if nz.any() else None
        out[str(m)] = t
    return out


# ---- strategies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategySettings:
    confidence: float = 60.0        # seed threshold (CONFIDENCE)
    min_edge: float = 0.03          # edge threshold (MIN_EDGE)
    entry_start: float = 0.0        # seconds into the window (ENTRY_START)
    entry_end: float = 720.0        # ENTRY_END (0.8 of 900 s)
    min_price: float = 0.05         # MIN_PRICE: the executor buys no ask below this
    max_price: float = 0.95         # MAX_PRICE: ... nor above this


def entry_columns(run: Run, s: StrategySettings) -> np.ndarray:
    t = 60.0 * run.minutes
    return np.nonzero((t >= s.entry_start) & (t < s.entry_end))[0]


def market_asks(run: Run, m: MarketAssumption) -> tuple[np.ndarray, np.ndarray]:
    fv = lagged(run.prob(MARKET_PARAMS), m.lag_minutes)
    return asks(fv, m)


def run_seed(run: Run, m: MarketAssumption, threshold: float, rows: np.ndarray,
             ask_up: np.ndarray, ask_dn: np.ndarray, s: StrategySettings = StrategySettings()) -> Trades:
    j = run.col(0)
    t = seed_trades(run.direction[rows, j], run.confidence[rows, j], run.windows.up[rows],
                    ask_up[rows, j], ask_dn[rows, j], threshold, m, s.min_price, s.max_price)
    t.window = rows[t.window]
    return t


def run_edge(run: Run, m: MarketAssumption, q: np.ndarray, min_edge: float, rows: np.ndarray,
             ask_up: np.ndarray, ask_dn: np.ndarray, cols: np.ndarray,
             s: StrategySettings = StrategySettings()) -> Trades:
    """q: prob_up (len(rows), M) for those rows."""
    t = edge_trades(q[:, cols], ask_up[rows][:, cols], ask_dn[rows][:, cols], run.windows.up[rows],
                    run.minutes[cols], min_edge, m, s.min_price, s.max_price)
    t.window = rows[t.window]
    return t


def stats(t: Trades) -> dict:
    return trade_stats(t.pnl, t.won)


def combine(parts: list[Trades]) -> Trades:
    if not parts:
        z = np.zeros(0)
        return Trades(z.astype(np.int64), z.astype(np.int64), z.astype(bool), z, z, z.astype(bool))
    return Trades(*(np.concatenate([getattr(p, f) for p in parts])
                    for f in ("window", "minute", "side_up", "ask", "pnl", "won")))


# ---- walk-forward -------------------------------------------------------------------------


def param_grid(base: model.ModelParams) -> list[model.ModelParams]:
    return [replace(base, vol_lookback_s=lb, vol_scale=vs, tilt_weight=tw)
            for lb, vs, tw in itertools.product(VOL_LOOKBACKS, VOL_SCALES, TILTS)]


def _short(p: model.ModelParams) -> dict:
    return {"vol_lookback_s": p.vol_lookback_s, "vol_scale": p.vol_scale, "tilt_weight": p.tilt_weight}


def walk_forward(run: Run, m: MarketAssumption, s: StrategySettings, base: model.ModelParams,
                 folds: int = 5) -> dict:
    """Fit on earlier chronological blocks, score on the next one; block 0 is only ever fitted on.

    Fitted: the vol lookback, vol scale and tilt weight of prob_up (lowest mean log loss over the
    report minutes), the seed's confidence threshold and the edge strategy's min_edge (highest
    P&L). Figures marked out_of_sample come only from blocks scored after fitting on earlier ones.
    """
    n = len(run.windows)
    fold = (np.arange(n) * folds) // max(n, 1)
    grid = param_grid(base)
    y = run.windows.up.astype(float)
    rep_cols = [run.col(mm) for mm in REPORT_MINUTES]
    # Per-window loss of every candidate, once: fitting is then a mean over earlier rows.
    loss = np.empty((len(grid), n))
    for i, p in enumerate(grid):
        q = np.clip(run.prob(p, cols=rep_cols), 1e-6, 1 - 1e-6)
        loss[i] = -np.mean(y[:, None] * np.log(q) + (1 - y[:, None]) * np.log(1 - q), axis=1)
    ask_up, ask_dn = market_asks(run, m)
    m0 = replace(m, lag_minutes=0)
    a0u, a0d = market_asks(run, m0)
    cols = entry_columns(run, s)
    fold_rows, oos_q, oos_rows, seed_parts, edge_parts, base_edge_parts = [], [], [], [], [], []
    edge0_parts, tilt_q = [], []
    # The tilt alone (vol lookback and scale held at the base): does the heuristic add anything?
    tilt_idx = [i for i, p in enumerate(grid) if p.vol_lookback_s == base.vol_lookback_s
                and p.vol_scale == base.vol_scale]
    for k in range(1, folds):
        train = np.nonzero(fold < k)[0]
        test = np.nonzero(fold == k)[0]
        if not train.size or not test.size:
            continue
        best = grid[int(np.argmin(loss[:, train].mean(axis=1)))]
        seed_pnl = [run_seed(run, m, th, train, ask_up, ask_dn, s).pnl.sum() for th in SEED_THRESHOLDS]
        th = SEED_THRESHOLDS[int(np.argmax(seed_pnl))]
        q_train = run.prob(best, train)
        edge_pnl = [run_edge(run, m, q_train, me, train, ask_up, ask_dn, cols, s).pnl.sum()
                    for me in MIN_EDGES]
        me = MIN_EDGES[int(np.argmax(edge_pnl))]
        q_test = run.prob(best, test)
        best_tilt = grid[tilt_idx[int(np.argmin(loss[tilt_idx][:, train].mean(axis=1)))]]
        tilt_q.append(run.prob(best_tilt, test))
        oos_q.append(q_test)
        oos_rows.append(test)
        seed_parts.append(run_seed(run, m, th, test, ask_up, ask_dn, s))
        edge_parts.append(run_edge(run, m, q_test, me, test, ask_up, ask_dn, cols, s))
        # The same fitted model against a market without lag: is there any edge left?
        e0_pnl = [run_edge(run, m0, q_train, x, train, a0u, a0d, cols, s).pnl.sum() for x in MIN_EDGES]
        me0 = MIN_EDGES[int(np.argmax(e0_pnl))]
        edge0_parts.append(run_edge(run, m0, q_test, me0, test, a0u, a0d, cols, s))
        base_edge_parts.append(run_edge(run, m, run.prob(base, test), s.min_edge, test, ask_up, ask_dn, cols, s))
        start = run.windows.start
        fold_rows.append({"fold": k, "train_windows": int(train.size), "test_windows": int(test.size),
                          "train_until": iso_utc(float(start[train[-1]])), "test_from": iso_utc(float(start[test[0]])),
                          "test_until": iso_utc(float(start[test[-1]])), "fitted_prob_params": _short(best),
                          "fitted_tilt_alone": best_tilt.tilt_weight,
                          "fitted_seed_confidence": th, "fitted_min_edge": me,
                          "fitted_min_edge_market_without_lag": me0})
    if not oos_rows:
        return {"folds": [], "note": "too few windows for a walk-forward"}
    rows = np.concatenate(oos_rows)
    q = np.concatenate(oos_q)
    yo = y[rows]
    oos = {str(mm): prob_metrics(q[:, run.col(mm)], yo, table=False) for mm in REPORT_MINUTES}
    qt = np.concatenate(tilt_q)
    tilt_oos = {str(mm): prob_metrics(qt[:, run.col(mm)], yo, table=False) for mm in REPORT_MINUTES}
    base_oos = prob_section(run, base, rows, table=False)
    # Which single parameter set would the out-of-sample blocks have preferred (for the defaults)?
    mean_oos_loss = loss[:, rows].mean(axis=1)
    return {
        "method": f"{folds} chronological blocks of windows; block k>=1 scored with what was fitted on blocks < k",
        "folds": fold_rows,
        "out_of_sample_windows": int(rows.size),
        "prob_up_fitted_out_of_sample": oos,
        "prob_up_base_params_same_windows": base_oos,
        "prob_up_tilt_alone_out_of_sample": tilt_oos,
        "base_params": _short(base),
        "mean_log_loss_out_of_sample": {"fitted": round(float(np.mean([log_loss(q[:, c], yo) for c in rep_cols])), 6),
                                        "tilt_alone": round(float(np.mean([log_loss(qt[:, c], yo)
                                                                           for c in rep_cols])), 6),
                                        "base": round(float(loss[grid.index(base), rows].mean()), 6)
                                        if base in grid else None},
        "best_single_params_on_oos_blocks": _short(grid[int(np.argmin(mean_oos_loss))]),
        "seed_fitted_out_of_sample": stats(combine(seed_parts)),
        "edge_fitted_out_of_sample": stats(combine(edge_parts)),
        "edge_fitted_out_of_sample_market_without_lag": stats(combine(edge0_parts)),
        "edge_config_defaults_same_windows": stats(combine(base_edge_parts)),
    }


def asset_report(c: Candles, params: model.ModelParams, m: MarketAssumption, s: StrategySettings,
                 progress: bool = False, label: str = "model", folds: int = 5) -> tuple[dict, Run, dict]:
    """The report section of one asset, the run, and the trades for the equity plots."""
    run = compute_run(c, params, progress=progress, label=label)
    w = run.windows
    all_rows = np.arange(len(w))
    ask_up, ask_dn = market_asks(run, m)
    cols = entry_columns(run, s)
    q = run.prob(params)
    seed = run_seed(run, m, s.confidence, all_rows, ask_up, ask_dn, s)
    edge = run_edge(run, m, q, s.min_edge, all_rows, ask_up, ask_dn, cols, s)
    m0 = replace(m, lag_minutes=0)
    a0u, a0d = market_asks(run, m0)
    edge0 = run_edge(run, m0, q, s.min_edge, all_rows, a0u, a0d, cols, s)
    seed0 = run_seed(run, m0, s.confidence, all_rows, a0u, a0d, s)
    section = {
        "windows": len(w),
        "windows_up": int(w.up.sum()),
        "windows_skipped_no_history": w.skipped_history,
        "windows_skipped_partial": w.skipped_partial,
        "first_window": iso_utc(float(w.start[0])) if len(w) else None,
        "last_window": iso_utc(float(w.start[-1])) if len(w) else None,
        "prob_up": prob_section(run, params),
        "heuristic": heuristic_section(run),
        "strategies": {
            "seed": {"settings": {"confidence_threshold": s.confidence, "at": "window open",
                                  "price_range": [s.min_price, s.max_price]},
                     "lagged_market": stats(seed), "market_without_lag": stats(seed0)},
            "edge": {"settings": {"min_edge": s.min_edge, "entry_start": s.entry_start, "entry_end": s.entry_end,
                                  "edge": "prob - ask - prob * fee_rate * (ask * (1 - ask)) ** fee_exponent",
                                  "price_range": [s.min_price, s.max_price]},
                     "lagged_market": stats(edge), "market_without_lag": stats(edge0)},
        },
        "walk_forward": walk_forward(run, m, s, params, folds),
        "params": asdict(params),
        "in_sample": ["prob_up", "heuristic", "strategies"],   # fixed defaults, chosen on the dev set
        "out_of_sample": ["walk_forward.*_out_of_sample*"],
    }
    trades = {"seed": seed, "edge (lag)": edge, "edge (no lag)": edge0}
    return section, run, trades
