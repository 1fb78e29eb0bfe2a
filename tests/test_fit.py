"""`python -m backtest fit` on generated candles with planted seasonality and fat tails: the fit finds
them, scores walk-forward against today's model, writes a parameter file the engine loads.
Generated data only (never ../shared/data); a few seconds."""

from __future__ import annotations

import json

import numpy as np

from backtest import fit
from backtest.cli import main as backtest_main
from signal_engine import vol_model as vm
from signal_engine import vol_params
from signal_engine.history import Candles
from tests.model_support import write_csv

T0 = 1_767_225_600.0          # Thursday 00:00 UTC
BUSY_HOURS = (13, 14, 15)      # UTC hours whose 1-minute volatility is planted at 2.5 x


def seasonal_candles(days: int = 24, seed: int = 11) -> Candles:
    rng = np.random.default_rng(seed)
    n = days * 1440
    t = T0 + 60.0 * np.arange(n)
    hour = (t // 3600).astype(int) % 24
    sigma = np.where(np.isin(hour, BUSY_HOURS), 2.5, 1.0) * 0.0006
    regime = np.exp(np.cumsum(rng.standard_normal(n)) * 0.004)            # a slowly wandering level
    eps = rng.standard_t(4, n) / np.sqrt(2.0)                              # fat tails, unit variance
    r = sigma * regime / np.exp(np.mean(np.log(regime))) * eps
    close = np.round(30000.0 * np.exp(np.cumsum(r)), 2)
    open_ = np.concatenate(([30000.0], close[:-1]))
    return Candles(t, open_, np.maximum(open_, close) + 0.5, np.minimum(open_, close) - 0.5, close, np.ones(n))


def test_the_season_is_found():
    c = seasonal_candles(days=14)
    how, moh = fit.fit_season(c, fit.returns_of(c), until=float(c.open_time[-1]) + 60)
    hours_of_day = np.array([how[h::24].mean() for h in range(24)])   # hour of the week -> hour of the day
    busy, calm = hours_of_day[list(BUSY_HOURS)].mean(), np.delete(hours_of_day, BUSY_HOURS).mean()
    assert 4.0 < busy / calm < 8.5, busy / calm                        # 2.5 ** 2 = 6.25 in variance (capped tails)
    assert 0.8 < moh.min() and moh.max() < 1.25                        # no minute-of-hour effect planted


def test_fit_command_beats_todays_model_out_of_sample_and_writes_a_loadable_file(tmp_path):
    data = tmp_path / "btcusdt_1m_gen.csv.gz"
    write_csv(data, seasonal_candles())
    out, rep = tmp_path / "params" / "prob_up-v2.json", tmp_path / "rep"
    rc = backtest_main(["fit", "--data", str(data), "--out", str(out), "--report", str(rep), "--folds", "3",
                        "--bootstrap", "20", "--quiet"])
    assert rc == 0
    models = vol_params.load_param_file(out)
    assert set(models) == {"BTC"} and models["BTC"].nu is not None
    assert json.loads(out.read_text())["format"] == 3
    rb, cb = models["BTC"].range_blend, models["BTC"].close_blend
    assert rb is not None and rb.b_range is not None and cb.b_range is None and sum(cb.b_close) > 0.5
    report = json.loads((rep / "fit_report.json").read_text())
    wf = report["assets"]["BTC"]["walk_forward"]
    assert set(wf["minutes"]) == {"0", "1", "2", "5", "10", "13", "14"} and len(wf["ece_every_minute"]) == 14
    assert wf["minutes"]["0"]["new"]["brier"] == 0.25 and wf["minutes"]["0"]["today"]["brier"] == 0.25
    for m in ("5", "10", "13"):
        r = wf["minutes"][m]
        lo, hi = r["new"]["brier_ci95"]
        assert lo <= r["new"]["brier"] <= hi and r["reliability_new"] and r["brier_change_pct_ci95"][0] is not None
    # planted seasonality and fat tails: v2 is better than today's model late in the window, where the
    # remaining move is a few fat-tailed minutes (early on it is a sum of many: nearly normal, as v1 assumes)
    late = [wf["ece_every_minute"][str(m)]["brier_change_pct"] for m in range(10, 15)]
    assert np.mean(late) < -0.5 and max(late) < 0, late
    assert {b["bar"].split(" ")[0] for b in report["assets"]["BTC"]["bars"]} >= {"Brier", "ECE"}
    # per block and for the engine's close-only fallback (no candle high/low), the same windows
    assert set(wf["per_fold_brier_change_pct"]) == {"1", "2"}
    # the late-window shift: fitted per fold and once more for the file (no lean planted: small)
    kappa = report["assets"]["BTC"]["kappa"]
    assert [f["kappa"] for f in wf["folds"]] == kappa["per_fold"] and len(kappa["per_fold"]) == 2
    assert models["BTC"].kappa == kappa["final"] and all(abs(k) < 0.2 for k in kappa["per_fold"] + [kappa["final"]])
    fallback = report["assets"]["BTC"]["close_only_fallback"]
    assert set(fallback["brier_change_pct"]) == {"5", "10", "13"} and fallback["max_ece"] is not None
    assert (rep / "reliability_v2_BTC.png").stat().st_size > 10_000


def test_the_late_window_shift_is_found_on_the_search_lattice():
    """A planted kappa comes back (within its noise), on the KAPPA_STEP lattice, equal to the
    exhaustive search of the lattice (the coarse-then-fine search misses nothing)."""
    rng = np.random.default_rng(14)
    seconds_left = 900.0 - 60.0 * np.arange(fit.MINUTES)
    profile = vm.shift_profile(seconds_left[1:])
    n, last = 5_000, fit.MINUTES - 2                  # the last decision minute (60 s left: profile 1)
    u = rng.standard_t(5, size=n)
    uu = np.full((n, fit.MINUTES - 1), np.nan)        # only that minute informs (the others unknown)
    uu[:, last] = u
    w = np.ones(n)
    for planted in (0.3, -0.12):
        y = (rng.random(n) < vm.t_cdf(u + planted * profile[last], 5.0)).astype(float)
        k = fit.fit_shift(uu, profile, y, w, 5.0)
        assert abs(k - planted) < 0.07 and abs(k / fit.KAPPA_STEP - round(k / fit.KAPPA_STEP)) < 1e-9, (k, planted)
        lattice = np.arange(-200, 201) * fit.KAPPA_STEP
        losses = [fit._wlogloss(vm.t_cdf(u + x * profile[last], 5.0), y, w) for x in lattice]
        assert k == lattice[int(np.argmin(losses))]


def test_fit_command_refuses_too_little_data(tmp_path, capsys):
    data = tmp_path / "ethusdt_1m_gen.csv.gz"
    write_csv(data, seasonal_candles(days=1))
    rc = backtest_main(["fit", "--data", str(data), "--out", str(tmp_path / "p.json"), "--report", str(tmp_path)])
    assert rc == 2 and not (tmp_path / "p.json").exists()
    assert "usable windows" in capsys.readouterr().err
