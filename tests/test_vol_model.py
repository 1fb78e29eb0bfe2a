"""prob_up v2 (signal_engine/vol_model.py): the Student-t CDF, the two EWMA paths, seasonality, the
horizon, the parameter file and the engine's fallback to today's model. Generated data only."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from signal_engine import model
from signal_engine import vol_model as vm
from signal_engine import vol_params as vp
from signal_engine.feeds import FallbackChain, SimFeed
from signal_engine.publisher import SignalEngine
from tests.model_support import random_walk_candles
from tests.test_signal_engine import FakeClock, make_cfg

T0 = 1_767_225_600.0          # a Thursday 00:00 UTC, a window boundary


def toy_model(nu: float | None = 4.0, **kw) -> vm.VolModel:
    how = 1.0 + 0.5 * np.sin(np.arange(168) / 168 * 2 * np.pi)
    moh = np.ones(60)
    moh[0] = 2.0
    args = {"asset": "BTC", "spans": ((2.0, 12, 3), (10.0, 60, 3), (120.0, 240, 30)),
            "close_blend": vm.LogBlend(-0.1, (0.1, 0.45, 0.4)),
            "range_blend": vm.LogBlend(1.6, (0.05, 0.2, 0.5), (0.2, 0.2, -0.1)),
            "nu": nu, "season_how": how, "season_moh": moh,
            "calib_seconds_left": np.array([60.0, 480.0, 840.0]), "calib_scale": np.array([0.7, 0.9, 1.1])}
    args.update(kw)
    return vm.VolModel(**args)


def test_student_t_cdf_matches_closed_forms_and_the_normal():
    z = np.array([-3.0, -1.0, -0.2, 0.0, 0.4, 1.0, 2.5, 8.0])
    # nu = 3: F(z) = 1/2 + (z / (sqrt3 (1 + z^2/3)) + atan(z / sqrt3)) / pi
    exact3 = 0.5 + (z / (math.sqrt(3) * (1 + z * z / 3)) + np.arctan(z / math.sqrt(3))) / math.pi
    assert np.max(np.abs(vm.t_cdf(z, 3.0) - exact3)) < 1e-7
    assert abs(float(vm.t_cdf(1.0, 1.0)) - 0.75) < 1e-6           # Cauchy
    assert float(vm.t_cdf(0.0, 4.0)) == 0.5 and float(vm.t_cdf(0.0, None)) == 0.5
    assert np.max(np.abs(vm.t_cdf(z, 1e5) - model.norm_cdf(z))) < 1e-4
    assert float(vm.t_cdf(np.inf, 4.0)) == 1.0 and float(vm.t_cdf(-np.inf, 4.0)) == 0.0


def test_the_live_and_backtest_ewma_paths_agree_with_gaps():
    rng = np.random.default_rng(3)
    x = rng.random(2000)
    x[[5, 6, 100, 1500]] = np.nan
    series = vm.ewma_series(x, 7.0, 40, 3)
    for j in (2, 3, 39, 40, 101, 1999):
        row = np.full(40, np.nan)
        lo = max(0, j - 39)
        row[40 - (j - lo + 1):] = x[lo:j + 1]
        want = vm.ewma_last(row[None, :], 7.0, 3)[0]
        assert (math.isnan(want) and math.isnan(series[j])) or abs(want - series[j]) < 1e-12 * max(1, abs(want))
    assert math.isnan(series[1])                                   # fewer than 3 returns
    w = vm.ewma_weights(7.0, 3)
    assert abs(series[2] - (x[2] * w[0] + x[1] * w[1] + x[0] * w[2]) / w.sum()) < 1e-12


def test_live_path_equals_the_backtest_at_candle_closes():
    c = random_walk_candles(900, sigma_1m=0.001, seed=5, start=T0)
    v = toy_model()
    base = v.base_variance_series(c.open_time, c.close)
    times, prices = c.price_series()
    for j in (35, 250, 600, 899):
        live = v.base_variance_at(times, prices, float(times[j]))
        assert abs(live - base[j]) <= 1e-9 * base[j], (j, live, base[j])
    # prob_up through model.evaluate (live) == the backtest's grid at every decision minute
    start = T0 + 900 * 20
    row0 = int(np.searchsorted(c.open_time, start))
    for m in (0, 1, 7, 14):
        now = start + 60 * m
        ev = model.evaluate(times, prices, now, start, 900, open_price=float(c.open[row0]), vol=v)
        price = c.open[row0] if m == 0 else c.close[row0 + m - 1]
        want = v.prob_up(c.open[row0], price, now, 900 - 60 * m, base[row0 + m - 1])[0]
        assert ev["model"] == "prob_up-v2" and abs(ev["prob_up"] - round(float(want), 4)) < 1e-9
        if m == 0:
            assert ev["prob_up"] == 0.5


def test_range_blend_live_path_equals_the_backtest_and_falls_back_to_close_only():
    c = random_walk_candles(900, sigma_1m=0.001, seed=6, start=T0)
    v = toy_model()
    with_hl = v.base_variance_series(c.open_time, c.close, c.high, c.low)
    close_only = v.base_variance_series(c.open_time, c.close)
    times, prices = c.price_series()
    hl = (c.open_time, c.high, c.low)
    for j in (40, 250, 600, 899):
        live = v.base_variance_at(times, prices, float(times[j]), minute_hl=hl)
        assert abs(live - with_hl[j]) <= 1e-9 * with_hl[j], (j, live, with_hl[j])
        assert abs(v.base_variance_at(times, prices, float(times[j])) - close_only[j]) <= 1e-9 * close_only[j]
        assert abs(with_hl[j] / close_only[j] - 1.0) > 1e-6            # the range really is used
    # by hand at j = 899: ln v = a + b . ln EWMA(r^2 / S2) + c . ln EWMA(parkinson / S2)
    j = 899
    r = np.log(c.close[1:j + 1] / c.close[:j])
    s2 = v.season_s2(c.open_time[1:j + 1])
    pk = np.log(c.high[1:j + 1] / c.low[1:j + 1]) ** 2 / (4 * math.log(2)) / s2
    x = r * r / s2
    logs = []
    for series in (x, pk):
        for hl_min, n, _ in v.spans:
            w = 0.5 ** (np.arange(n) / hl_min)
            logs.append(math.log(float(np.sum(series[::-1][:n] * w) / w.sum())))
    rb = v.range_blend
    want = math.exp(rb.intercept + float(np.dot(list(rb.b_close) + list(rb.b_range), logs)))
    assert abs(want - with_hl[j]) <= 1e-9 * want
    # a few minutes without high/low (the engine missed them): those minutes drop out of the range
    # EWMAs, the number stays finite; no candle at all for the last minutes of the fast span: close-only
    keep = np.ones(len(c), bool)
    keep[[880, 885]] = False
    part = v.base_variance_at(times, prices, float(times[j]), minute_hl=(c.open_time[keep], c.high[keep], c.low[keep]))
    assert math.isfinite(part) and part != close_only[j]
    keep[j - 11:] = False
    none_recent = v.base_variance_at(times, prices, float(times[j]),
                                     minute_hl=(c.open_time[keep], c.high[keep], c.low[keep]))
    assert abs(none_recent - close_only[j]) <= 1e-9 * close_only[j]
    # a feed whose high == low (no range at all) moves v by at most RANGE_MAX_RATIO from close-only
    flat = v.base_variance_at(times, prices, float(times[j]), minute_hl=(c.open_time, c.close, c.close))
    assert abs(flat / close_only[j] - 1.0 / vm.RANGE_MAX_RATIO) < 1e-9 or flat / close_only[j] > 1 / vm.RANGE_MAX_RATIO
    assert flat <= close_only[j] * vm.RANGE_MAX_RATIO * (1 + 1e-12)
    # between candle closes the live path still answers (the current minute's candle is not closed yet)
    assert math.isfinite(v.base_variance_at(times, prices, float(times[j]) + 25.0, minute_hl=hl))


def test_horizon_seasonality_and_probability_by_hand():
    v = toy_model(season_how=np.ones(168))
    # whole minutes from a minute boundary: minute 0 of the hour counts twice
    assert abs(float(v.horizon_s2(T0, 900)[0]) - 16.0) < 1e-12           # 15 minutes, the first doubled
    assert abs(float(v.horizon_s2(T0 + 60, 840)[0]) - 14.0) < 1e-12
    assert abs(float(v.horizon_s2(T0 + 30, 90)[0]) - (0.5 * 2 + 1.0)) < 1e-12   # half of minute 0, all of minute 1
    assert abs(float(v.horizon_s2(T0 + 3540, 120)[0]) - 3.0) < 1e-12      # wraps into the next hour's minute 0
    # prob_up: exactly 0.5 at the strike; ties go Up at the end; the scale interpolates by seconds left
    assert float(v.prob_up(100.0, 100.0, T0, 600, 1e-6)[0]) == 0.5
    assert float(v.prob_up(100.0, 100.0, T0, 0, 1e-6)[0]) == 0.999
    assert float(v.prob_up(100.0, 99.99, T0, 0, 1e-6)[0]) == 0.001
    z = math.log(100.05 / 100.0) / math.sqrt(1e-6 * 10.0)                  # 600 s from T0 + 120: 10 minutes
    want = float(vm.t_cdf(z / float(np.interp(600.0, [60, 480, 840], [0.7, 0.9, 1.1])), 4.0))
    assert abs(float(v.prob_up(100.0, 100.05, T0 + 120, 600, 1e-6)[0]) - want) < 1e-12


def test_late_window_shift_by_hand():
    """prob_up = T_nu(z / c(s) + kappa / sqrt(s / 60)): 0 at the open (ramped over the first minute),
    held at kappa below a minute left, nothing once the window is settled."""
    v = toy_model(kappa=0.1, season_how=np.ones(168))
    c = [60, 480, 840]
    z = np.array([-1.3, 0.0, 0.4])
    for s, shift in ((600.0, 0.1 / math.sqrt(10)), (840.0, 0.1 / math.sqrt(14)), (60.0, 0.1),
                     (870.0, 0.5 * 0.1 / math.sqrt(14.5)), (899.0, 0.1 / 60 / math.sqrt(899 / 60)),
                     (30.0, 0.1), (1e-9, 0.1), (900.0, 0.0), (1200.0, 0.0)):
        want = vm.t_cdf(z / float(np.interp(s, c, [0.7, 0.9, 1.1])) + shift, 4.0)
        np.testing.assert_allclose(v.prob_from_z(z, s), np.clip(want, 0.001, 0.999), rtol=0, atol=1e-12)
        assert abs(float(v.shift_at(s)) - shift) < 1e-15
    # the open is exactly 0.5 (z = 0, no shift), also for another window length (demo windows)
    assert float(v.prob_up(100.0, 100.0, T0, 900, 1e-6)[0]) == 0.5
    assert float(v.prob_up(100.0, 100.0, T0, 60, 1e-6, window_s=60.0)[0]) == 0.5
    assert float(v.prob_up(100.0, 100.0, T0, 30, 1e-6, window_s=60.0)[0]) > 0.5     # half-way up the ramp
    # mid-window the shift leans the tie: kappa > 0 -> above 0.5
    lean = float(vm.t_cdf(0.1 / math.sqrt(10), 4.0))
    assert float(v.prob_up(100.0, 100.0, T0 + 300, 600, 1e-6)[0]) == pytest.approx(lean) and lean > 0.51
    # no time left: the settled 0/1 (clipped), ties Up, whatever kappa says
    down = toy_model(kappa=-vm.KAPPA_MAX)
    for m in (v, down):
        assert float(m.prob_up(100.0, 100.0, T0, 0, 1e-6)[0]) == 0.999
        assert float(m.prob_up(100.0, 99.99, T0, -5, 1e-6)[0]) == 0.001
        assert float(m.prob_up(100.0, 100.01, T0, 0, 1e-6)[0]) == 0.999
        assert float(m.shift_at(0.0)) == 0.0 and float(m.shift_at(-3.0)) == 0.0
    # bounded as s -> 0 (held at |kappa|), and kappa = 0 is today's model exactly
    assert np.all(np.abs(vm.shift_profile(np.array([1e-12, 0.5, 59.9, 60.0]))) <= 1.0)
    plain = toy_model(season_how=np.ones(168))
    s = np.array([60.0, 333.0, 840.0, 900.0])
    np.testing.assert_array_equal(plain.prob_from_z(np.full(4, 0.7), s),
                                  np.clip(vm.t_cdf(0.7 / plain.scale_at(s), 4.0), 0.001, 0.999))
    # the array path (backtest) and one instant (engine) agree
    many = v.prob_up(np.full(3, 100.0), np.array([100.02, 99.97, 100.0]), np.full(3, T0 + 60),
                     np.array([840.0, 300.0, 45.0]), 1e-6)
    one = [float(v.prob_up(100.0, p, T0 + 60, s, 1e-6)[0]) for p, s in ((100.02, 840.0), (99.97, 300.0), (100.0, 45.0))]
    np.testing.assert_allclose(many, one, rtol=0, atol=1e-12)


def test_parameter_file_kappa_formats_2_and_3(tmp_path):
    path = tmp_path / "p.json"
    doc = vp.write_param_doc(path, {"BTC": toy_model(kappa=-0.0725)}, {})
    assert doc["format"] == 3 and doc["assets"]["BTC"]["calibration"]["kappa"] == -0.0725
    assert vp.load_param_file(path)["BTC"].kappa == -0.0725
    old = json.loads(path.read_text())
    old["format"] = 2                                                # before the shift: kappa 0
    del old["assets"]["BTC"]["calibration"]["kappa"]
    (tmp_path / "f2.json").write_text(json.dumps(old))
    assert vp.load_param_file(tmp_path / "f2.json")["BTC"].kappa == 0.0
    old["assets"]["BTC"]["calibration"]["kappa"] = 0.1               # a format 2 file cannot carry one
    (tmp_path / "f2k.json").write_text(json.dumps(old))
    with pytest.raises(vp.ParamsError, match="calibration.kappa is a format 3 field"):
        vp.load_param_file(tmp_path / "f2k.json")
    for bad, why in ((float("nan"), "must be a number"), (1.5, "must be a number in \\[-1, 1\\]"),
                     (-1.01, "must be a number"), ("0.1", "must be a number"), (True, "must be a number"),
                     (None, "must be a number"), ("absent", "is missing")):
        d = json.loads(path.read_text())
        if bad == "absent":
            del d["assets"]["BTC"]["calibration"]["kappa"]
        else:
            d["assets"]["BTC"]["calibration"]["kappa"] = bad
        (tmp_path / "k.json").write_text(json.dumps(d))                  # NaN is written as the NaN token
        with pytest.raises(vp.ParamsError, match=f"assets.BTC.calibration.kappa {why}"):
            vp.load_param_file(tmp_path / "k.json")


def test_parameter_file_round_trip_and_every_problem_named(tmp_path):
    path = tmp_path / "p.json"
    doc = vp.write_param_doc(path, {"BTC": toy_model()}, {"created": "x", "per_asset": {"BTC": {"fitted_on": {}}}})
    assert doc["version"] == 2 and "per_asset" not in doc and oct(path.stat().st_mode & 0o777) == "0o600"
    back = vp.load_param_file(path)["BTC"]
    assert back.nu == 4.0 and back.spans == toy_model().spans and back.range_blend == toy_model().range_blend
    assert np.allclose(back.season_how, toy_model().season_how, atol=1e-6)
    assert vp.load_param_file(_without_range(path, tmp_path))["BTC"].range_blend is None
    with pytest.raises(vp.ParamsError, match="does not exist"):
        vp.load_param_file(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(vp.ParamsError, match="not JSON"):
        vp.load_param_file(tmp_path / "bad.json")
    for mutate, field in ((lambda a: a.update(nu=-1), "nu"),
                          (lambda a: a.update(season_hour_of_week=[1.0] * 167), "season_hour_of_week"),
                          (lambda a: a["calibration"].update(seconds_left=[840, 480, 60]), "ascending"),
                          (lambda a: a["close_blend"].update(b_close=[0, 0, 0]), "sum to more than 0"),
                          (lambda a: a["range_blend"].update(b_range=[0.1]), "range_blend.b_range"),
                          (lambda a: a.update(spans=[[2.0, 12, 30]]), "spans\\[0\\].min_count")):
        d = json.loads(path.read_text())
        mutate(d["assets"]["BTC"])
        (tmp_path / "m.json").write_text(json.dumps(d))
        with pytest.raises(vp.ParamsError, match=field):
            vp.load_param_file(tmp_path / "m.json")
    d = json.loads(path.read_text())
    d["format"] = 1                                                  # the linear fast/slow pair: refit
    (tmp_path / "f.json").write_text(json.dumps(d))
    with pytest.raises(vp.ParamsError, match="format 2 or 3"):
        vp.load_param_file(tmp_path / "f.json")
    d = json.loads(path.read_text())
    d["version"] = 3
    (tmp_path / "v.json").write_text(json.dumps(d))
    with pytest.raises(vp.ParamsError, match="version 2"):
        vp.load_param_file(tmp_path / "v.json")


def _without_range(path: Path, tmp_path: Path) -> Path:
    d = json.loads(path.read_text())
    del d["assets"]["BTC"]["range_blend"]
    out = tmp_path / "close_only.json"
    out.write_text(json.dumps(d))
    return out


def _engine(tmp_path: Path, **env) -> SignalEngine:
    cfg = make_cfg(tmp_path, MODE="demo", ASSETS="BTC,ETH", WINDOW_SECONDS="900", **env)
    clock = FakeClock(T0 + 300.0)
    engine = SignalEngine(cfg, FallbackChain([SimFeed(7, clock=clock)]), mono=clock, wall=clock)
    engine.backfill()
    return engine


def test_engine_uses_the_file_and_falls_back_to_todays_model_with_a_reason(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="signal_engine")
    docs = _engine(tmp_path / "a").tick(write=False)            # the repository's fitted file
    assert docs["BTC"]["model"] == "prob_up-v2" and docs["ETH"]["model"] == "prob_up-v2"
    assert docs["BTC"]["prob_up"] is not None and docs["BTC"]["strike_source"] == "feed_open"

    only_btc = tmp_path / "btc.json"
    vp.write_param_doc(only_btc, {"BTC": toy_model()}, {})
    caplog.clear()
    docs = _engine(tmp_path / "b", PROB_MODEL_FILE=str(only_btc)).tick(write=False)
    assert docs["BTC"]["model"] == "prob_up-v2" and docs["ETH"]["model"] == "prob_up-v1"
    assert any("ETH: prob_up uses today's model (v1)" in r.getMessage() and "no parameters for ETH" in r.getMessage()
               for r in caplog.records)

    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"model": "prob_up", "version": 2')
    caplog.clear()
    docs = _engine(tmp_path / "c", PROB_MODEL_FILE=str(corrupt)).tick(write=False)
    assert {d["model"] for d in docs.values()} == {"prob_up-v1"} and docs["BTC"]["prob_up"] is not None
    msgs = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(msgs) == 2 and all("not JSON" in m and "python -m backtest fit" in m for m in msgs)

    docs = _engine(tmp_path / "d", PROB_MODEL_FILE="off").tick(write=False)
    assert docs["BTC"]["model"] == "prob_up-v1"
