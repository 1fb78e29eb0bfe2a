"""The backtest: windows and gaps, lookahead, scores, fee and tie math, planted properties, CLI."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backtest import cli as backtest
from backtest.data import build_windows
from backtest.engine import (
    MARKET_PARAMS,
    StrategySettings,
    compute_run,
    entry_columns,
    heuristic_section,
    market_asks,
    prob_section,
    run_edge,
    walk_forward,
)
from backtest.metrics import brier, ece, log_loss, max_drawdown, reliability, trade_stats
from backtest.strategy import (
    MarketAssumption,
    asks,
    edge_of,
    edge_trades,
    fee_per_share,
    lagged,
    seed_trades,
)
from core import fees
from signal_engine import model
from signal_engine.history import Candles, load_candles
from tests.model_support import T0, drop_minutes, random_walk_candles, write_csv

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def walk_run():
    """A long pure random walk (about 6,900 windows), computed once for the module."""
    return compute_run(random_walk_candles(104_000, seed=3))


# ---- windows and gaps ---------------------------------------------------------------------


def test_windows_by_hand_and_never_across_a_gap():
    c = random_walk_candles(2000)
    w = build_windows(c, model.HISTORY_NEEDED_S)
    # First usable start: T0 + 60 (first sample) + 3660 s of history -> T0 + 4500 on the grid;
    # last: start + 840 <= T0 + 119940 -> T0 + 118800.
    assert len(w) == 128 and w.start[0] == T0 + 4500 and w.start[-1] == T0 + 118800
    assert w.skipped_history == 5 and w.skipped_partial == 1
    i0 = ((w.start - T0) / 60).astype(int)
    np.testing.assert_array_equal(w.open, c.open[i0])
    np.testing.assert_array_equal(w.close, c.close[i0 + 14])
    np.testing.assert_array_equal(w.up, c.close[i0 + 14] >= c.open[i0])

    g = drop_minutes(c, [1000])                      # the minute opening at T0 + 60000 is missing
    wg = build_windows(g, model.HISTORY_NEEDED_S)
    assert len(wg) == 61 + 62                        # ..T0+58500 | T0+63900.. (history again after the gap)
    assert set(np.unique(wg.segment)) == {0, 1}
    hole = T0 + 60000
    assert not np.any((wg.start - model.HISTORY_NEEDED_S <= hole) & (hole < wg.start + 900))
    assert wg.start[60] == T0 + 58500 and wg.start[61] == T0 + 63900


def test_no_feature_across_a_gap_in_the_run():
    c = drop_minutes(random_walk_candles(3000), list(range(1500, 1505)))     # a 5-minute hole
    run = compute_run(c)
    assert np.isfinite(run.sigma[3600.0]).all() and np.isfinite(run.score).all()
    assert run.windows.segment.max() == 1
    times, prices = c.price_series()
    t_after = T0 + 1505 * 60 + 60 + 600                 # 10 minutes after the hole
    f = model.features(times, prices, t_after)
    assert np.isnan(f["vol_long"][0]) and np.isnan(f["macro"][0]) and np.isfinite(f["momentum_60s"][0])


def test_lookahead_changing_rows_after_t_changes_nothing_at_or_before_t():
    c = random_walk_candles(4000, seed=5)
    base = compute_run(c)
    w = base.windows
    t = float(w.start[20] + 5 * 60)
    rng = np.random.default_rng(9)
    later = c.open_time > t                          # candles opening after t: wholly in the future
    at_t = c.open_time == t                          # the candle opening at t: only its open is known at t
    k = int(later.sum())
    bump = np.exp(rng.standard_normal(k) * 0.01)
    close = c.close.copy()
    close[later] *= bump
    close[at_t] *= 1.01
    open_ = c.open.copy()
    open_[later] *= bump[::-1]
    changed = Candles(c.open_time, open_, c.high, c.low, close, c.volume)
    after = compute_run(changed)
    np.testing.assert_array_equal(after.windows.start, w.start)
    when = w.decision_times(base.minutes)
    known = when <= t
    assert known.sum() > 300 and (~known).sum() > 300
    for name in ("price", "score", "direction", "confidence"):
        a, b = getattr(base, name), getattr(after, name)
        np.testing.assert_array_equal(a[known], b[known], err_msg=name)
        assert not np.array_equal(a[~known], b[~known]), name
    for lb in base.sigma:
        np.testing.assert_array_equal(base.sigma[lb][known], after.sigma[lb][known])
    np.testing.assert_array_equal(base.prob(model.DEFAULT_PARAMS)[known], after.prob(model.DEFAULT_PARAMS)[known])


# ---- scores -------------------------------------------------------------------------------


def test_scores_by_hand():
    q = np.array([0.1, 0.4, 0.8, 0.8])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    assert brier(q, y) == pytest.approx((0.01 + 0.36 + 0.04 + 0.64) / 4)
    assert log_loss(q, y) == pytest.approx(-(math.log(0.9) + math.log(0.4) + math.log(0.8) + math.log(0.2)) / 4)
    # bins: 0.1 -> bin 1 (|0.1 - 0|), 0.4 -> bin 4 (|0.4 - 1|), 0.8 x2 -> bin 8 (|1.6 - 1|): (0.1+0.6+0.6)/4
    assert ece(q, y) == pytest.approx(1.3 / 4)
    rel = reliability(q, y)
    assert rel[8] == {"lo": 0.8, "hi": 0.9, "n": 2, "mean_pred": 0.8, "observed": 0.5}
    assert rel[0]["n"] == 0 and rel[0]["observed"] is None
    assert ece(np.array([1.0]), np.array([1.0])) == 0.0            # q = 1 falls in the last bin
    assert max_drawdown(np.array([5.0, -3.0, -4.0, 10.0, -1.0])) == pytest.approx(7.0)
    assert max_drawdown(np.array([-2.0, 1.0])) == pytest.approx(2.0)  # from the starting 0
    s = trade_stats(np.array([5.0, -3.0]), np.array([True, False]))
    assert s == {"trades": 2, "pnl": 2.0, "win_rate": 0.5, "max_drawdown": 3.0, "mean_per_trade": 1.0,
                 "std_per_trade": round(math.sqrt(32), 4)}


# ---- fees, ties, the assumed market ---------------------------------------------------------


def test_fee_math_matches_core_fees():
    for p in (0.01, 0.2, 0.5, 0.73, 0.99):
        fill = fees.buy(10.0, p)
        kept = float(fees.kept_shares_array(10.0, np.array([p]), 0.07, 1.0)[0])
        assert kept == pytest.approx(fill.shares, rel=1e-12)
    # $10 at 0.5: 20 shares gross, fee 20 * 0.07 * 0.25 = 0.35 shares, 19.65 kept.
    assert float(fees.kept_shares_array(10.0, np.array([0.5]), 0.07, 1.0)[0]) == pytest.approx(19.65)
    m = MarketAssumption()
    assert float(fee_per_share(np.array([0.6]), m)[0]) == pytest.approx(0.07 * 0.24)


def test_ties_go_up_and_settle_like_core_fees():
    m = MarketAssumption()
    up = np.array([True, True, False])               # window 0 and 1: close == open counts Up
    direction = np.array([1, -1, -1])
    t = seed_trades(direction, np.array([80.0, 80.0, 55.0]), up, np.full(3, 0.51), np.full(3, 0.51), 60.0, m)
    assert t.window.tolist() == [0, 1]                  # window 2 is below the threshold
    assert t.won.tolist() == [True, False]
    ref = fees.settle(fees.buy(10.0, 0.51), "UP", 100.0, 100.0)    # a tie: Up wins
    assert ref["outcome"] == "won" and float(t.pnl[0]) == pytest.approx(ref["pnl"])
    assert float(t.pnl[1]) == pytest.approx(fees.settle(fees.buy(10.0, 0.51), "DOWN", 100.0, 100.0)["pnl"])
    assert fees.up_wins(100.0, 100.0)


def test_asks_lag_and_edge_by_hand():
    m = MarketAssumption()
    au, ad = asks(np.array([0.5, 0.995, 0.004, 0.333]), m)
    np.testing.assert_allclose(au, [0.51, 0.99, 0.02, 0.35])   # rounded up to the tick, kept in [0.01, 0.99]
    np.testing.assert_allclose(ad, [0.51, 0.02, 0.99, 0.68])
    fv = np.array([[0.5, 0.6, 0.7]])
    np.testing.assert_allclose(lagged(fv, 1), [[0.5, 0.5, 0.6]])
    np.testing.assert_allclose(lagged(fv, 0), fv)
    # q = 0.7 vs ask 0.6: edge = 0.7 - 0.6 - 0.7 * 0.07 * 0.24 = 0.08824 -> trades at min_edge 0.08, not 0.09.
    q = np.array([[0.55, 0.7]])
    a_up, a_dn = np.array([[0.6, 0.6]]), np.array([[0.45, 0.45]])
    t = edge_trades(q, a_up, a_dn, np.array([True]), np.array([3, 4]), 0.08, m)
    assert t.minute.tolist() == [4] and t.side_up.tolist() == [True] and t.ask.tolist() == [0.6]
    assert edge_trades(q, a_up, a_dn, np.array([True]), np.array([3, 4]), 0.09, m).window.size == 0
    assert float(edge_of(np.array(0.7), np.array(0.6), m)) == pytest.approx(0.1 - 0.7 * 0.07 * 0.24)
    # Down side: 1 - 0.55 = 0.45 vs ask 0.35 -> 0.1 - 0.45 * 0.07 * 0.2275 = 0.0928 at minute 3.
    t = edge_trades(q, a_up, np.array([[0.35, 0.45]]), np.array([False]), np.array([3, 4]), 0.08, m)
    assert t.minute.tolist() == [3] and t.side_up.tolist() == [False] and bool(t.won[0])
    # Asks outside [MIN_PRICE, MAX_PRICE] are never bought, however large the edge.
    q = np.array([[0.999, 0.999]])
    a_up = np.array([[0.97, 0.95]])
    t = edge_trades(q, a_up, np.array([[0.05, 0.06]]), np.array([True]), np.array([3, 4]), 0.0, m, 0.05, 0.95)
    assert t.minute.tolist() == [4] and t.ask.tolist() == [0.95]


# ---- planted properties ---------------------------------------------------------------------


def test_random_walk_coin_at_the_open_and_calibrated_later(walk_run):
    pu = prob_section(walk_run, model.DEFAULT_PARAMS)
    assert pu["0"]["n"] > 6000
    assert pu["0"]["brier"] == pytest.approx(0.25, abs=0.0005)
    for m in ("5", "10"):
        assert pu[m]["ece"] < 0.02, (m, pu[m])
    assert pu["5"]["brier"] < 0.215 and pu["10"]["brier"] < pu["5"]["brier"] < pu["1"]["brier"]
    h = heuristic_section(walk_run)["0"]
    # No signal to find: the sign of the score is right half of the time (n ~ 6,900, sd 0.006).
    assert abs(h["score_sign_hit_rate"] - 0.5) < 0.02 and h["n_directional"] > 100


def test_edge_exists_only_from_the_assumed_lag(walk_run):
    s = StrategySettings()
    cols = entry_columns(walk_run, s)
    assert cols.tolist() == list(range(12))              # entry 0..720 s: minutes 0..11
    rows = np.arange(len(walk_run.windows))
    q = walk_run.prob(MARKET_PARAMS)                     # the model IS the market's fair value here
    m0 = MarketAssumption(lag_minutes=0)
    au, ad = market_asks(walk_run, m0)
    assert run_edge(walk_run, m0, q, s.min_edge, rows, au, ad, cols).window.size == 0
    m1 = MarketAssumption(lag_minutes=1)
    au, ad = market_asks(walk_run, m1)
    t = run_edge(walk_run, m1, q, s.min_edge, rows, au, ad, cols)
    assert t.window.size > 1000 and t.pnl.sum() > 0


def test_planted_autocorrelation_is_detected():
    run = compute_run(random_walk_candles(60_000, seed=4, rho=0.5))
    h = heuristic_section(run)["0"]
    assert h["n_directional"] > 250 and h["hit_rate"] > 0.56 and h["score_sign_hit_rate"] > 0.52
    wf = walk_forward(run, MarketAssumption(), StrategySettings(), model.DEFAULT_PARAMS, folds=3)
    assert all(f["fitted_tilt_alone"] > 0 for f in wf["folds"])
    ll = wf["mean_log_loss_out_of_sample"]
    assert ll["tilt_alone"] < ll["base"]
    assert wf["prob_up_tilt_alone_out_of_sample"]["0"]["brier"] < 0.2495


def test_walk_forward_keeps_the_tilt_off_on_a_random_walk(walk_run):
    wf = walk_forward(walk_run, MarketAssumption(), StrategySettings(), model.DEFAULT_PARAMS, folds=3)
    assert len(wf["folds"]) == 2 and wf["out_of_sample_windows"] < len(walk_run.windows)
    assert all(abs(f["fitted_tilt_alone"]) <= 0.2 for f in wf["folds"])
    assert wf["folds"][0]["train_until"] < wf["folds"][0]["test_from"]      # fitted on the past only
    assert wf["folds"][0]["fitted_seed_confidence"] in (50.0, 60.0, 70.0, 80.0, 90.0, 96.0)


# ---- loader and CLI -------------------------------------------------------------------------


def test_loader_reads_binance_dumps_microseconds_bad_rows_and_duplicates(tmp_path):
    c = random_walk_candles(50)
    p = tmp_path / "BTCUSDT-1m-2024-01.csv"
    write_csv(p, c, header=False, extra_cols=True)
    lines = p.read_text().splitlines()
    lines = [lines[3], *lines, lines[10], "garbage,row", f"{int(T0 * 1000) + 3_000_000},0,1,1,1,1"]
    us = [ln.split(",") for ln in lines[:5]]
    us = [",".join([str(int(r[0]) * 1000), *r[1:]]) for r in us if r[0].isdigit()]
    p.write_text("\n".join(lines) + "\n")
    got = load_candles(p)
    assert len(got) == 50 and got.dropped_rows == 4        # 2 duplicates, garbage, a zero open
    np.testing.assert_allclose(got.open_time, c.open_time)
    np.testing.assert_allclose(got.close, c.close)
    q = tmp_path / "ETHUSDT-1m-us.csv.gz"
    q.write_bytes(gzip.compress(("\n".join(us) + "\n").encode()))
    assert load_candles(q).open_time[0] == c.open_time[0]   # microsecond stamps detected
    assert backtest.asset_of(p) == "BTC" and backtest.asset_of(q) == "ETH"
    assert backtest.asset_of(Path("btcusdt_1m_dev.csv.gz")) == "BTC"


def test_cli_writes_report_plots_and_summary(tmp_path):
    data = tmp_path / "btcusdt_1m_test.csv.gz"
    write_csv(data, random_walk_candles(30_000, seed=8))
    out = tmp_path / "bt"
    r = subprocess.run([sys.executable, "-m", "backtest", "--data", str(data), "--out", str(out),
                        "--asset", "BTC"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    for m in ("0", "1", "5", "10", "13"):
        row = rep["assets"]["BTC"]["prob_up"][m]
        assert row["n"] > 1900 and set(row) >= {"n", "brier", "log_loss", "hit_rate", "ece"}
    assert rep["assets"]["BTC"]["prob_up"]["0"]["brier"] == pytest.approx(0.25, abs=0.001)
    assert rep["assumptions"]["market"]["lag_minutes"] == 1 and "fee_model" in rep["assumptions"]["market"]
    assert (out / "reliability_BTC.png").stat().st_size > 1000 and (out / "equity_BTC.png").stat().st_size > 1000
    assert "== BTC" in r.stdout and "walk-forward" in r.stdout and "seed heuristic" in r.stdout


def test_files_of_one_asset_are_joined(tmp_path):
    c = random_walk_candles(3000, seed=12)
    first = Candles(*(x[:1600] for x in (c.open_time, c.open, c.high, c.low, c.close, c.volume)))
    second = Candles(*(x[1500:] for x in (c.open_time, c.open, c.high, c.low, c.close, c.volume)))
    write_csv(tmp_path / "BTCUSDT-1m-a.csv.gz", first, header=False, extra_cols=True)   # overlapping dumps
    write_csv(tmp_path / "BTCUSDT-1m-b.csv", second)
    write_csv(tmp_path / "btcusdt_whole.csv", c)
    args = (MarketAssumption(), StrategySettings(), model.DEFAULT_PARAMS, False, False)
    two = backtest.run([tmp_path / "BTCUSDT-1m-a.csv.gz", tmp_path / "BTCUSDT-1m-b.csv"], tmp_path / "two", None, *args)
    one = backtest.run([tmp_path / "btcusdt_whole.csv"], tmp_path / "one", None, *args)
    assert two["assets"]["BTC"]["data"]["dropped_rows"] == 100 and two["assets"]["BTC"]["windows"] == 195
    assert two["assets"]["BTC"]["prob_up"] == one["assets"]["BTC"]["prob_up"]
    tiny = tmp_path / "ethusdt_tiny.csv"
    write_csv(tiny, random_walk_candles(50))
    rep = backtest.run([tiny], tmp_path / "tiny", None, *args)
    assert rep["assets"]["ETH"]["windows"] == 0 and rep["verdicts"][0].startswith("[SKIP] ETH: no usable window")


@pytest.mark.parametrize("module", ["backtest", "signal_engine.backtest"])   # the old command is an alias
def test_cli_says_clearly_when_data_is_absent(tmp_path, monkeypatch, capsys, module):
    r = subprocess.run([sys.executable, "-m", module, "--data", str(tmp_path / "none.csv"),
                        "--out", str(tmp_path / "o")], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "none.csv does not exist" in r.stderr
    monkeypatch.setattr(backtest, "DEFAULT_DATA_DIR", tmp_path / "shared" / "data")
    assert backtest.main(["--out", str(tmp_path / "o")]) == 2
    assert "no data folder at" in capsys.readouterr().err
    assert not (tmp_path / "o" / "report.json").exists()


def test_strategy_settings_follow_the_entry_interval(walk_run):
    cols = entry_columns(walk_run, replace(StrategySettings(), entry_start=120.0, entry_end=300.0))
    assert cols.tolist() == [2, 3, 4]
