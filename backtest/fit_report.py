"""The fit's report: scores with bootstrap intervals, the quality bars, reliability per horizon.

Everything compares prob_up v2 (fitted walk-forward) with today's model (signal_engine.model,
fixed defaults) on the same out-of-sample windows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backtest.metrics import brier, ece, log_loss, reliability

REPORT_MINUTES = (0, 1, 2, 5, 10, 13, 14)
ECE_MINUTES = tuple(range(1, 15))
# Issue 14: Brier lower than today's by at least this much (percent), never higher anywhere;
# ECE <= 0.015 at every minute 1..14; exactly 0.2500 at the open.
BRIER_GAIN_PCT = {5: 0.2, 10: 1.0, 13: 1.5}
ECE_BAR = 0.015
OPEN_BRIER = 0.25


def _r(x: float, nd: int = 6) -> float | None:
    return round(float(x), nd) if np.isfinite(x) else None


def _ci(samples: np.ndarray) -> list[float | None]:
    return [_r(np.percentile(samples, 2.5)), _r(np.percentile(samples, 97.5))]


def scores(q: np.ndarray, y: np.ndarray, idx: np.ndarray) -> dict:
    """Brier, log loss and ECE of one column, each with a bootstrap 95 % interval (rows of idx)."""
    qb, yb = q[idx], y[idx]
    bs = np.mean((qb - yb) ** 2, axis=1)
    qc = np.clip(qb, 1e-6, 1 - 1e-6)
    ls = -np.mean(yb * np.log(qc) + (1 - yb) * np.log(1 - qc), axis=1)
    es = np.array([ece(qb[i], yb[i]) for i in range(idx.shape[0])])
    return {"brier": _r(brier(q, y)), "brier_ci95": _ci(bs), "log_loss": _r(log_loss(q, y)), "log_loss_ci95": _ci(ls),
            "ece": _r(ece(q, y)), "ece_ci95": _ci(es)}


def compare(q_new: np.ndarray, q_old: np.ndarray, y: np.ndarray, boot: int = 200, seed: int = 14) -> dict:
    """Per minute: both models' scores and the Brier change in percent (paired bootstrap interval)."""
    rng = np.random.default_rng(seed)
    n = y.size
    idx = rng.integers(0, n, size=(boot, n)) if n else np.zeros((boot, 0), dtype=np.int64)
    out: dict = {"minutes": {}, "ece_every_minute": {}}
    for m in REPORT_MINUTES:
        a, b = q_new[:, m], q_old[:, m]
        bn = np.mean((a[idx] - y[idx]) ** 2, axis=1)
        bo = np.mean((b[idx] - y[idx]) ** 2, axis=1)
        change = 100.0 * (brier(a, y) / brier(b, y) - 1.0) if n else float("nan")
        out["minutes"][str(m)] = {"n": int(n), "new": scores(a, y, idx), "today": scores(b, y, idx),
                                  "brier_change_pct": _r(change, 3),
                                  "brier_change_pct_ci95": _ci(100.0 * (bn / bo - 1.0)),
                                  "reliability_new": reliability(a, y), "reliability_today": reliability(b, y)}
    for m in ECE_MINUTES:
        out["ece_every_minute"][str(m)] = {"new": _r(ece(q_new[:, m], y)), "today": _r(ece(q_old[:, m], y)),
                                           "brier_change_pct": _r(100.0 * (brier(q_new[:, m], y)
                                                                           / brier(q_old[:, m], y) - 1.0), 3)}
    return out


def per_fold(q_new: np.ndarray, q_old: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict:
    """Brier change in percent at the bar minutes, per walk-forward block (is a gain consistent?)."""
    out = {}
    for k in np.unique(fold):
        s = fold == k
        out[str(int(k))] = {str(m): _r(100.0 * (brier(q_new[s, m], y[s]) / brier(q_old[s, m], y[s]) - 1.0), 3)
                            for m in BRIER_GAIN_PCT}
    return out


def brief(q_new: np.ndarray, q_old: np.ndarray, y: np.ndarray, fold: np.ndarray) -> dict:
    """A variant in a few numbers: Brier change at the bar minutes (overall and per block), worst
    change and largest ECE over minutes 1..14."""
    ch = {m: 100.0 * (brier(q_new[:, m], y) / brier(q_old[:, m], y) - 1.0) for m in ECE_MINUTES}
    eces = {m: ece(q_new[:, m], y) for m in ECE_MINUTES}
    top = max(eces, key=lambda m: eces[m])
    return {"brier_change_pct": {str(m): _r(ch[m], 3) for m in BRIER_GAIN_PCT},
            "worst_brier_change_pct": _r(max(ch.values()), 3), "max_ece": _r(eces[top]), "max_ece_minute": top,
            "per_fold_brier_change_pct": per_fold(q_new, q_old, y, fold)}


def bars(section: dict) -> list[dict]:
    """The issue's quality bars, each {bar, value, pass}."""
    rows = []
    mins = section["minutes"]
    every = section["ece_every_minute"]
    for m, gain in BRIER_GAIN_PCT.items():
        ch = mins[str(m)]["brier_change_pct"]
        rows.append({"bar": f"Brier at +{m} lower than today's by >= {gain:g} %", "value": ch,
                     "pass": ch is not None and ch <= -gain})
    worst = max(every.items(), key=lambda kv: -1e9 if kv[1]["brier_change_pct"] is None else kv[1]["brier_change_pct"])
    rows.append({"bar": "Brier never higher than today's at any minute 1..14",
                 "value": f"worst +{worst[0]}: {worst[1]['brier_change_pct']} %",
                 "pass": all(v["brier_change_pct"] is not None and v["brier_change_pct"] <= 0 for v in every.values())})
    bad = {m: v["new"] for m, v in every.items() if v["new"] is None or v["new"] > ECE_BAR}
    top = max(every.items(), key=lambda kv: kv[1]["new"] or 0.0)
    rows.append({"bar": f"ECE <= {ECE_BAR} at every minute 1..14", "value": f"max {top[1]['new']} at +{top[0]}"
                 + (f"; above the bar at {', '.join('+' + m for m in bad)}" if bad else ""), "pass": not bad})
    b0 = mins["0"]["new"]["brier"]
    rows.append({"bar": "Brier at the open exactly 0.2500", "value": b0, "pass": b0 is not None
                 and abs(b0 - OPEN_BRIER) < 5e-7})
    return rows


def summary(report: dict) -> str:
    lines = [f"prob_up v2 fit: {report['params_file']} ({', '.join(report['assets'])})",
             f"walk-forward: {report['method']}"]
    for asset, a in report["assets"].items():
        wf = a["walk_forward"]
        lines.append("")
        lines.append(f"== {asset}: {a['windows']} windows, {wf['out_of_sample_windows']} scored out of sample")
        lines.append(f"{'min':>4} {'Brier new [95% CI]':>27} {'Brier today':>12} {'change %':>17} "
                     f"{'logloss new/today':>18} {'ECE new/today':>14}")
        for m in REPORT_MINUTES:
            r = wf["minutes"][str(m)]
            nw, td = r["new"], r["today"]
            ci = nw["brier_ci95"]
            cci = r["brier_change_pct_ci95"]
            lines.append(f"{m:>4} {nw['brier']:>9.4f} [{ci[0]:.4f}, {ci[1]:.4f}] {td['brier']:>12.4f} "
                         f"{r['brier_change_pct']:>+7.2f} [{cci[0]:+.2f},{cci[1]:+.2f}] "
                         f"{nw['log_loss']:>8.4f}/{td['log_loss']:.4f} {nw['ece']:>7.4f}/{td['ece']:.4f}")
        lines.append("ECE new, minutes 1..14: " + " ".join(f"{wf['ece_every_minute'][str(m)]['new']:.4f}"
                                                          for m in ECE_MINUTES))
        if "kappa" in a:
            lines.append(f"late-window shift kappa: {a['kappa']['final']:+.4f} (per walk-forward fold: "
                         + " ".join(f"{k:+.4f}" for k in a["kappa"]["per_fold"]) + ")")
        for b in a["bars"]:
            lines.append(f"[{'PASS' if b['pass'] else 'FAIL'}] {asset} {b['bar']}: {b['value']}")
    for p in report.get("plots", []):
        lines.append(f"plot: {p}")
    return "\n".join(lines)


def plot_reliability(out_dir: Path, asset: str, q_new: np.ndarray, q_old: np.ndarray, y: np.ndarray) -> str:
    """reliability_v2_<asset>.png: one panel per reported minute, v2 and today's model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(14, 7))
    for ax, m in zip(axes.ravel(), REPORT_MINUTES, strict=False):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        for q, label in ((q_old[:, m], "today"), (q_new[:, m], "v2")):
            rows = [r for r in reliability(q, y) if r["n"]]
            ax.plot([r["mean_pred"] for r in rows], [r["observed"] for r in rows], marker="o", ms=3,
                    label=f"{label} (ECE {ece(q, y):.4f})")
        ax.set_title(f"+{m} min")
        ax.legend(fontsize=7, loc="upper left")
    axes.ravel()[-1].axis("off")
    fig.suptitle(f"{asset}: reliability of prob_up out of sample (10 bins): v2 vs today's model")
    fig.supxlabel("predicted prob_up")
    fig.supylabel("observed frequency of Up")
    fig.tight_layout()
    p = out_dir / f"reliability_v2_{asset}.png"
    fig.savefig(p, dpi=80)
    plt.close(fig)
    return str(p)
