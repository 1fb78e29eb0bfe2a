"""The verdict of a chaos run: the venue's orders against the executor's journal (a pure function).

Inputs are plain data (the replica's orders and wallet events, trades.jsonl's records, the
signal history the recorder observed), so the rules are unit-tested without any process.

The four bad counts (any non-zero one fails the run):
- duplicates: more than one venue order for one (asset, window), plus more than one `filled`
  record for one (asset, window) in the journal (each extra one counts once);
- lost records: a venue order with no `filled`/`reconciled` record of that (asset, window)
  naming it (or naming no order id), and a `filled` record (not simulated) with no venue order
  of that (asset, window) (or naming an order id the venue does not have);
- stale trades: an `intent` whose signal was unusable when the intent was written. The signal is
  identified by the intent's `signal_seq` in the recorded history of signal.json; it was
  unusable if it carried `stale: true`, if it was older than SIGNAL_MAX_AGE (+ a tolerance for
  the journal write) at the intent's time, or if it was for another asset or window. Independent
  of the seq: if the freshest signal published before the intent (by its own timestamp) was
  older than SIGNAL_MAX_AGE + tolerance, no fresh signal existed, so the trade was stale too.
- malicious requests confirmed: a wallet request carrying one of the replica's adversarial
  changes that was confirmed (the replica's wallet events), or a venue order created from such a
  request, or a venue order whose signing origin is not the market's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from core.window_grid import parse_iso_utc

BAD_KEYS = ("duplicates", "lost_records", "stale_trades", "malicious_confirmed")


def _ts(record: dict) -> float | None:
    try:
        return parse_iso_utc(str(record["ts"]))
    except (KeyError, ValueError, TypeError):
        return None


def _key(rec: dict) -> tuple[str, int] | None:
    try:
        return str(rec["asset"]).upper(), int(rec["window_start"])
    except (KeyError, TypeError, ValueError):
        return None


def audit(orders: list[dict], journal: list[dict], signals: dict[int, dict], wallet_events: Iterable[dict],
          wallet_requests: dict[str, dict], market_origin: str, max_age: float, tolerance: float = 1.0,
          mode: str = "demo") -> dict:
    """See the module doc. `signals`: seq -> {"ts", "stale", "asset", "window_start"}."""
    journal = [r for r in journal if r.get("mode", mode) == mode and isinstance(r.get("trade_id"), str)]
    details: dict[str, list] = {k: [] for k in BAD_KEYS}
    details["open_intents"] = []
    details["unverified_signals"] = []

    # ---- duplicates ------------------------------------------------------------------------
    orders_by_w: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for o in orders:
        k = _key(o)
        if k is not None:
            orders_by_w[k].append(o)
    dup_venue = 0
    for k, os_ in sorted(orders_by_w.items()):
        if len(os_) > 1:
            dup_venue += len(os_) - 1
            details["duplicates"].append({"where": "venue", "asset": k[0], "window_start": k[1],
                                          "orders": [o.get("id") for o in os_]})
    fills_by_w: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in journal:
        if r.get("event") == "filled" and not r.get("simulated"):
            k = _key(r)
            if k is not None:
                fills_by_w[k].append(r)
    dup_journal = 0
    for k, fs in sorted(fills_by_w.items()):
        if len(fs) > 1:
            dup_journal += len(fs) - 1
            details["duplicates"].append({"where": "journal", "asset": k[0], "window_start": k[1],
                                          "trade_ids": [f.get("trade_id") for f in fs],
                                          "order_ids": [f.get("order_id") for f in fs]})

    # ---- lost records ----------------------------------------------------------------------
    records_by_w: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in journal:
        if r.get("event") in ("filled", "reconciled"):
            k = _key(r)
            if k is not None:
                records_by_w[k].append(r)
    lost_orders = 0
    for k, os_ in sorted(orders_by_w.items()):
        recs = records_by_w.get(k, [])
        for o in os_:
            if not any(r.get("order_id") in (None, o.get("id")) for r in recs):
                lost_orders += 1
                details["lost_records"].append({"kind": "order without a filled/reconciled record",
                                                "order_id": o.get("id"), "asset": k[0], "window_start": k[1],
                                                "journal_trade_ids": sorted({r.get("trade_id") for r in journal
                                                                             if _key(r) == k})})
    lost_fills = 0
    for k, fs in sorted(fills_by_w.items()):
        ids = {o.get("id") for o in orders_by_w.get(k, [])}
        for f in fs:
            if not ids or (f.get("order_id") is not None and f.get("order_id") not in ids):
                lost_fills += 1
                details["lost_records"].append({"kind": "filled without a venue order", "trade_id": f.get("trade_id"),
                                                "order_id": f.get("order_id"), "asset": k[0], "window_start": k[1]})

    # ---- open intents (reported, not one of the four) -----------------------------------------
    by_trade: dict[str, list[dict]] = defaultdict(list)
    for r in journal:
        by_trade[r["trade_id"]].append(r)
    for tid, evs in sorted(by_trade.items()):
        if any(e.get("event") == "intent" for e in evs) and \
                not any(e.get("event") in ("filled", "failed", "wallet_rejected") for e in evs):
            details["open_intents"].append({"trade_id": tid, "events": [e.get("event") for e in evs]})

    # ---- stale trades ----------------------------------------------------------------------
    sig_times = sorted(float(s["ts"]) for s in signals.values() if isinstance(s.get("ts"), (int, float)))
    stale = 0
    for r in journal:
        if r.get("event") != "intent":
            continue
        t = _ts(r)
        if t is None:
            continue
        why = []
        seq = r.get("signal_seq")
        sig = signals.get(seq) if isinstance(seq, int) else None
        if sig is None:
            details["unverified_signals"].append({"trade_id": r["trade_id"], "signal_seq": seq})
        else:
            if sig.get("stale") is True:
                why.append(f"signal seq {seq} was flagged stale by the engine")
            if isinstance(sig.get("ts"), (int, float)) and t - sig["ts"] > max_age + tolerance:
                why.append(f"signal seq {seq} was {t - sig['ts']:.1f}s old at the intent (limit {max_age:g}s)")
            if sig.get("asset") and str(sig["asset"]).upper() != str(r.get("asset")).upper():
                why.append(f"signal seq {seq} is for {sig['asset']}")
            if isinstance(sig.get("window_start"), int) and sig["window_start"] != int(r.get("window_start", -1)):
                why.append(f"signal seq {seq} is for window {sig['window_start']},"
                           f" the intent for {r.get('window_start')}")
        before = [s for s in sig_times if s <= t]
        if sig_times and (not before or t - before[-1] > max_age + tolerance):
            age = t - before[-1] if before else float("inf")
            why.append(f"the freshest signal published before the intent was {age:.1f}s old (limit {max_age:g}s)")
        if why:
            stale += 1
            details["stale_trades"].append({"trade_id": r["trade_id"], "ts": r.get("ts"), "why": why})

    # ---- malicious requests confirmed -------------------------------------------------------
    bad_reqs: dict[str, str] = {}
    for e in wallet_events:
        if e.get("action") == "confirmed" and e.get("adversary"):
            bad_reqs[str(e.get("request_id"))] = f"wallet confirmed an adversarial request ({e['adversary']})"
    for o in orders:
        rid = str(o.get("request_id"))
        req = wallet_requests.get(rid) or {}
        if req.get("adversary"):
            bad_reqs.setdefault(rid, f"order {o.get('id')} was created from an adversarial request"
                                     f" ({req['adversary']})")
        if o.get("origin") and market_origin and o["origin"] != market_origin:
            bad_reqs.setdefault(rid, f"order {o.get('id')} was signed for origin {o['origin']}")
    details["malicious_confirmed"] = [{"request_id": k, "why": v} for k, v in sorted(bad_reqs.items())]

    adversarial_seen = defaultdict(int)
    for req in wallet_requests.values():
        if req.get("adversary"):
            adversarial_seen[req["adversary"]] += 1
    return {
        "orders_placed": len(orders),
        "duplicates": dup_venue + dup_journal,
        "duplicates_venue": dup_venue,
        "duplicates_journal": dup_journal,
        "lost_records": lost_orders + lost_fills,
        "stale_trades": stale,
        "malicious_confirmed": len(bad_reqs),
        "intents": sum(1 for r in journal if r.get("event") == "intent"),
        "filled": sum(1 for r in journal if r.get("event") == "filled"),
        "reconciled": sum(1 for r in journal if r.get("event") == "reconciled"),
        "failed": sum(1 for r in journal if r.get("event") == "failed"),
        "unknown": sum(1 for r in journal if r.get("event") == "unknown"),
        "wallet_rejected": sum(1 for r in journal if r.get("event") == "wallet_rejected"),
        "open_intents": len(details["open_intents"]),
        "unverified_signals": len(details["unverified_signals"]),
        "adversarial_requests_seen": dict(adversarial_seen),
        "details": details,
    }


def bad_total(result: dict) -> int:
    return sum(int(result.get(k) or 0) for k in BAD_KEYS)
