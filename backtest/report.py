"""The backtest's outputs besides report.json: a terminal summary and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backtest.engine import REPORT_MINUTES, Run
from backtest.strategy import Trades


def _f(x, nd: int = 4) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def summary(report: dict) -> str:
    lines = [f"Backtest of {', '.join(report['assets'])} ({report['window_seconds']:g} s windows)",
             "prob_up uses " + ", ".join(f"{k}={v}" for k, v in report["params_short"].items())
             + (" (defaults chosen on this dev set: in-sample)" if report.get("params_in_sample") else "")]
    for asset, a in report["assets"].items():
        lines.append("")
        lines.append(f"== {asset}: {a['windows']} windows ({a['windows_up']} Up), "
                     f"{a['data']['segments']} segments, file {a['data']['file']}")
        lines.append(f"{'minute':>6} {'n':>7} {'brier':>7} {'logloss':>8} {'hit':>6} {'ece':>6}")
        for m in REPORT_MINUTES:
            r = a["prob_up"][str(m)]
            lines.append(f"{m:>6} {r['n']:>7} {_f(r['brier'])} {_f(r['log_loss']):>8} {_f(r['hit_rate'], 3):>6} "
                         f"{_f(r['ece'])}")
        h = a["heuristic"]["0"]
        lines.append(f"seed heuristic at the open: {h['n_directional']} calls, hit rate {_f(h['hit_rate'], 3)} "
                     f"at mean stated confidence {_f(h['mean_confidence'], 1)}")
        for b in h["buckets"]:
            if b["n"]:
                lines.append(f"   confidence {b['confidence_lo']:.0f}-{b['confidence_hi']:.0f}: n={b['n']:<5} "
                             f"realised hit {_f(b['hit_rate'], 3)}")
        for name, st in a["strategies"].items():
            for mk in ("lagged_market", "market_without_lag"):
                r = st[mk]
                lines.append(f"{name:>5} vs {mk:<18}: trades {r['trades']:<5} P&L {r['pnl']:>9.2f} "
                             f"win {_f(r['win_rate'], 3)} maxDD {r['max_drawdown']:.2f} "
                             f"mean {_f(r['mean_per_trade'], 3)} sd {_f(r['std_per_trade'], 3)}")
        wf = a["walk_forward"]
        if wf.get("folds"):
            o = wf["prob_up_fitted_out_of_sample"]
            lines.append(f"walk-forward (out of sample, {wf['out_of_sample_windows']} windows): brier "
                         + " ".join(f"m{m}={_f(o[str(m)]['brier'])}" for m in REPORT_MINUTES)
                         + f"; seed P&L {wf['seed_fitted_out_of_sample']['pnl']:.2f}, "
                         f"edge P&L {wf['edge_fitted_out_of_sample']['pnl']:.2f} (lagged market), "
                         f"{wf['edge_fitted_out_of_sample_market_without_lag']['pnl']:.2f} "
                         f"in {wf['edge_fitted_out_of_sample_market_without_lag']['trades']} trades (no lag)")
            ll = wf["mean_log_loss_out_of_sample"]
            lines.append(f"   mean log loss out of sample: all fitted {ll['fitted']}, tilt alone fitted "
                         f"{ll['tilt_alone']}, fixed defaults {ll['base']}")
            lines.append("   fitted per fold: " + "; ".join(
                f"{f['fitted_prob_params']['vol_lookback_s']:g}s x{f['fitted_prob_params']['vol_scale']:g} "
                f"tilt {f['fitted_prob_params']['tilt_weight']:g} (alone {f['fitted_tilt_alone']:g}) "
                f"conf>={f['fitted_seed_confidence']:g} "
                f"edge>={f['fitted_min_edge']:g}" for f in wf["folds"]))
    for v in report.get("verdicts", []):
        lines.append(v)
    if report.get("plots"):
        lines.append("plots: " + ", ".join(report["plots"]))
    return "\n".join(lines)


def plots(out_dir: Path, asset: str, run: Run, q: np.ndarray, trades: dict[str, Trades]) -> list[str]:
    """reliability_<asset>.png and equity_<asset>.png; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = run.windows.up.astype(float)
    paths = []
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect")
    for m in REPORT_MINUTES:
        qq = q[:, run.col(m)]
        idx = np.minimum((qq * 10).astype(int), 9)
        n = np.bincount(idx, minlength=10)
        mp = np.bincount(idx, weights=qq, minlength=10)
        ob = np.bincount(idx, weights=y, minlength=10)
        ok = n > 0
        ax.plot(mp[ok] / n[ok], ob[ok] / n[ok], marker="o", label=f"+{m} min")
    ax.set_xlabel("predicted prob_up")
    ax.set_ylabel("observed frequency of Up")
    ax.set_title(f"{asset}: reliability of prob_up (10 bins)")
    ax.legend()
    p = out_dir / f"reliability_{asset}.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(str(p))

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, t in trades.items():
        order = np.argsort(t.window, kind="stable")
        when = (run.windows.start[t.window[order]] * 1000).astype("datetime64[ms]")
        ax.step(when, np.cumsum(t.pnl[order]), where="post", label=f"{name} ({t.pnl.size} trades)")
    ax.axhline(0.0, color="grey", lw=0.8)
    fig.autofmt_xdate()
    ax.set_xlabel("window start (UTC); flat stretches are gaps in the data")
    ax.set_ylabel("cumulative P&L (USD)")
    ax.set_title(f"{asset}: equity under the assumed market (see report assumptions)")
    ax.legend()
    p = out_dir / f"equity_{asset}.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    paths.append(str(p))
    return paths
