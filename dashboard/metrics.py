"""`/metrics` in Prometheus' text format (prometheus-client), computed from the agent's files at scrape time.

Journals are followed incrementally (core.jsonl_follow): the counters count every line of this
MODE in logs/trades.jsonl and every halt in logs/risk.jsonl since the journal began, so they only
grow (a replaced journal starts them again, which Prometheus treats as a counter reset). The
latency histograms cover the orders the executor placed itself (reconciled and adopted fills,
whose time says nothing about speed, are left out): window start -> the `filled` line, and the
`intent` line -> the `filled` line.

Names (all prefixed `updown_`): signal_age_seconds, signal_prob_up, signal_stale, feed_source
(value 1, label `source`), trades_total (intents), fills_total, failures_total{event}, wallet_rejections_total
{reason}, settlements_total{outcome}, journal_events_total{event}, pnl_today_usd, pnl_total_usd,
halted, halts_total, paused, process_up{process}, process_restarts_total{process},
process_heartbeat_age_seconds{process}, monitor_up, window_start_to_order_seconds and
intent_to_fill_seconds (histograms: the first includes the wait for an edge, the second is the
click-through alone).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from core.config import Config
from core.jsonl_follow import JsonlFollower
from core.window_grid import timestamp_of

from . import views

INTENTS_KEPT = 1000
LATENCY_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# wallet_rejected reasons are free text: a few stable labels keep the series' cardinality bounded
REJECTION_KINDS = (("slippage", ("slippage", "worse than")), ("origin", ("origin",)),
                   ("amount", ("amount",)), ("side", ("side", "outcome")), ("market", ("market", "token")),
                   ("address", ("address",)), ("alert", ("alert",)), ("signature", ("signature", "disagree")),
                   ("unreadable", ("unreadable",)))


def rejection_kind(reason: object) -> str:
    text = str(reason or "").lower()
    return next((kind for kind, words in REJECTION_KINDS if any(w in text for w in words)), "other")


class Histogram:
    """Cumulative buckets over LATENCY_BUCKETS, as a HistogramMetricFamily wants them."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.total += value
        self.counts[next((i for i, b in enumerate(LATENCY_BUCKETS) if value <= b), len(LATENCY_BUCKETS))] += 1

    def family(self, name: str, doc: str) -> HistogramMetricFamily:
        buckets, running = [], 0
        for bound, n in zip((*LATENCY_BUCKETS, math.inf), self.counts, strict=True):
            running += n
            buckets.append((floatToGoString(bound), float(running)))
        fam = HistogramMetricFamily(name, doc)
        fam.add_metric([], buckets, self.total)
        return fam


class JournalStats:
    """Counters over trades.jsonl and risk.jsonl, caught up on each scrape."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.trades = JsonlFollower(cfg.trades_path)
        self.risk = JsonlFollower(cfg.log_dir / "risk.jsonl")
        self.events: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.halts = 0
        self.window_to_fill = Histogram()
        self.intent_to_fill = Histogram()
        self.intents: OrderedDict[str, float] = OrderedDict()   # trade_id -> intent time (bounded)
        self._lock = threading.Lock()

    def update(self) -> None:
        with self._lock:
            resets = self.trades.resets
            recs = self.trades.read_all_new()
            if self.trades.resets != resets:
                self._reset_trades()
            for rec in recs:
                if rec.get("mode", self.cfg.mode) == self.cfg.mode:
                    self._count(rec)
            for rec in self.risk.read_all_new():
                if rec.get("event") == "halt" and rec.get("mode", self.cfg.mode) == self.cfg.mode:
                    self.halts += 1

    def _reset_trades(self) -> None:
        self.events.clear()
        self.failures.clear()
        self.rejections.clear()
        self.outcomes.clear()
        self.window_to_fill, self.intent_to_fill = Histogram(), Histogram()
        self.intents.clear()

    def _count(self, rec: dict) -> None:
        event = str(rec.get("event"))
        self.events[event] += 1
        if event in ("failed", "unknown"):
            self.failures[event] += 1
        elif event == "wallet_rejected":
            self.rejections[rejection_kind(rec.get("reason"))] += 1
        elif event == "settled":
            self.outcomes[str(rec.get("outcome") or "unknown")] += 1
        elif event == "intent":
            ts = timestamp_of(rec.get("ts"))
            if ts is not None:
                self.intents[str(rec.get("trade_id"))] = ts
                while len(self.intents) > INTENTS_KEPT:
                    self.intents.popitem(last=False)
        elif event == "filled" and not rec.get("reconciled") and not rec.get("adopted"):
            ts, start = timestamp_of(rec.get("ts")), rec.get("window_start")
            if ts is not None and isinstance(start, (int, float)) and not isinstance(start, bool):
                self.window_to_fill.observe(max(0.0, ts - float(start)))
            intent = self.intents.pop(str(rec.get("trade_id")), None)
            if ts is not None and intent is not None:
                self.intent_to_fill.observe(max(0.0, ts - intent))


def _labelled(name: str, doc: str, label: str, values: dict[str, float], counter: bool = False):
    fam = (CounterMetricFamily if counter else GaugeMetricFamily)(name, doc, labels=[label])
    for k, v in sorted(values.items()):
        fam.add_metric([k], v)
    return fam


class AgentCollector(Collector):
    def __init__(self, cfg: Config, stats: JournalStats | None = None, reports: views.ReportCache | None = None,
                 clock=time.time):
        self.cfg, self.clock = cfg, clock
        self.stats = stats or JournalStats(cfg)
        self.reports = reports or views.ReportCache(cfg)

    def collect(self) -> Iterator:
        now = self.clock()
        yield from self._signals(now)
        self.stats.update()
        yield from self._journal()
        yield from self._status(now)

    def _signals(self, now: float) -> Iterator:
        age = GaugeMetricFamily("updown_signal_age_seconds", "Age of the asset's signal document", labels=["asset"])
        prob = GaugeMetricFamily("updown_signal_prob_up", "The signal's calibrated P(Up)", labels=["asset"])
        stale = GaugeMetricFamily("updown_signal_stale", "1 when the signal is stale or unreadable", labels=["asset"])
        feed = GaugeMetricFamily("updown_feed_source", "1 for the price feed the signal came from",
                                 labels=["asset", "source"])
        for asset, sig in views.signals(self.cfg, now).items():
            if sig.get("age_s") is not None:
                age.add_metric([asset], float(sig["age_s"]))
            if sig.get("prob_up") is not None:
                prob.add_metric([asset], float(sig["prob_up"]))
            stale.add_metric([asset], 1.0 if sig.get("problem") or sig.get("stale") else 0.0)
            if sig.get("source"):
                feed.add_metric([asset, str(sig["source"])], 1.0)
        yield from (age, prob, stale, feed)

    def _journal(self) -> Iterator:
        s = self.stats
        with s._lock:
            yield CounterMetricFamily("updown_trades_total", "Orders decided (intent lines)", value=s.events["intent"])
            yield CounterMetricFamily("updown_fills_total", "Filled orders", value=s.events["filled"])
            yield _labelled("updown_failures_total", "Orders failed or of unknown outcome", "event",
                            {k: float(s.failures[k]) for k in ("failed", "unknown")}, counter=True)
            yield _labelled("updown_wallet_rejections_total", "Wallet requests the wallet guard rejected", "reason",
                            dict(s.rejections), counter=True)
            yield _labelled("updown_settlements_total", "Settled trades by outcome", "outcome", dict(s.outcomes),
                            counter=True)
            yield _labelled("updown_journal_events_total", "trades.jsonl lines of this mode by event", "event",
                            dict(s.events), counter=True)
            yield CounterMetricFamily("updown_halts_total", "Risk halts journaled in risk.jsonl", value=s.halts)
            yield s.window_to_fill.family("updown_window_start_to_order_seconds",
                                          "Window start to the order's fill line (orders the executor placed)")
            yield s.intent_to_fill.family("updown_intent_to_fill_seconds",
                                          "The intent line to the fill line: the order's own click-through")

    def _status(self, now: float) -> Iterator:
        st = views.status(self.cfg, now)
        up = GaugeMetricFamily("updown_process_up", "1 when the supervised process runs", labels=["process"])
        restarts = CounterMetricFamily("updown_process_restarts",
                                       "Crash/hang restarts since the monitor started (not starts asked for with up)",
                                       labels=["process"])
        beat = GaugeMetricFamily("updown_process_heartbeat_age_seconds", "Age of the process's heartbeat",
                                 labels=["process"])
        for name, p in st["processes"].items():
            up.add_metric([name], 1.0 if p.get("state") == "running" else 0.0)
            restarts.add_metric([name], float(p.get("restarts") or 0))
            if p.get("heartbeat_age_s") is not None:
                beat.add_metric([name], float(p["heartbeat_age_s"]))
        yield from (up, restarts, beat)
        yield GaugeMetricFamily("updown_monitor_up", "1 when the monitor runs",
                                value=1.0 if st["monitor"]["state"] == "running" else 0.0)
        risk = st.get("risk") or {}
        today = st["trades"]["today"]
        yield GaugeMetricFamily("updown_pnl_today_usd", "Today's (UTC) realised P&L",
                                value=float(risk.get("pnl_today", today["pnl"]) or 0.0))
        yield GaugeMetricFamily("updown_pnl_total_usd", "Realised P&L of every settled trade in trades.jsonl",
                                value=float(self.reports.get().total.pnl))
        yield GaugeMetricFamily("updown_halted", "1 while a risk halt stops trading",
                                value=1.0 if risk.get("halted") else 0.0)
        yield GaugeMetricFamily("updown_paused", "1 while the pause flag stops new trades",
                                value=1.0 if st["pause"]["paused"] else 0.0)


def registry_for(cfg: Config, reports: views.ReportCache | None = None) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(AgentCollector(cfg, reports=reports))
    return reg


__all__ = ["AgentCollector", "JournalStats", "registry_for", "rejection_kind"]
