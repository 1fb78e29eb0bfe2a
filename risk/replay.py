"""The risk book derived from its sources of truth: `logs/trades.jsonl` and `logs/risk.jsonl`.

`state/risk.json` is a cache. At every executor start (and after any error recording a fill
or a settlement) the state is rebuilt by replaying, in time order, every journaled fill and
settlement of this mode with the same transition functions the live book uses
(`risk.guards.apply_fill` / `apply_settled` / `roll`), interleaved with the halts and resumes
of `logs/risk.jsonl`. Replaying is idempotent (per trade_id), so a fill whose recording failed
is counted on the next rebuild, and deleting `risk.json` forgets neither today's P&L, nor the
losing streak, nor a halt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from core import fees
from core.config import Config
from core.durable_files import read_jsonl
from core.window_grid import parse_iso_utc, utc_day
from risk import guards

log = logging.getLogger("risk.replay")

TRADE_EVENTS = ("filled", "settled")
RISK_EVENTS = ("halt", "resume", "auto_resume")


def fill_numbers(fill: dict, cfg: Config) -> tuple[float, float, float, float]:
    """(amount, price, shares, fee in USD) of a journaled fill; shares and fee computed when absent."""
    amount, price = float(fill.get("amount") or 0), float(fill.get("price") or 0)
    shares, fee = fill.get("shares"), fill.get("fee")
    if (shares is None or fee is None) and 0 < price < 1:
        bought = fees.buy(amount, price, cfg.fee_rate, cfg.fee_exponent)
        shares = bought.shares if shares is None else shares
        fee = bought.fee_usd if fee is None else fee
    return amount, price, float(shares or 0), float(fee or 0)


def _ts(rec: dict) -> float | None:
    try:
        return parse_iso_utc(str(rec["ts"]))
    except (KeyError, ValueError):
        return None


def _timeline(cfg: Config, trade_events: Iterable[dict], risk_events: Iterable[dict]) -> list[tuple[float, int, dict]]:
    """(time, order, record): trade events before risk events at the same instant (a halt follows
    the settlement that tripped it)."""
    out: list[tuple[float, int, dict]] = []
    fills: dict[str, dict] = {}
    for rec in trade_events:
        ev = rec.get("event")
        if ev == "intent":
            fills.setdefault(str(rec.get("trade_id")), dict(rec))
        if rec.get("mode") != cfg.mode or ev not in TRADE_EVENTS or (t := _ts(rec)) is None:
            continue
        if ev == "filled":
            rec = {**fills.get(str(rec.get("trade_id")), {}), **rec}
        out.append((t, 0, rec))
    for rec in risk_events:
        if rec.get("mode") == cfg.mode and rec.get("event") in RISK_EVENTS and (t := _ts(rec)) is not None:
            out.append((t, 1, rec))
    out.sort(key=lambda x: (x[0], x[1]))
    return out


def derive_state(cfg: Config, trade_events: Iterable[dict], risk_events: Iterable[dict], now: float) -> dict:
    """The risk state that the journals imply at `now` (a fresh book replayed event by event)."""
    timeline = _timeline(cfg, trade_events, risk_events)
    start = timeline[0][0] if timeline else now
    st = guards._fresh_state(utc_day(min(start, now)))
    scratch: list[dict] = []   # records the replay would journal: already in risk.jsonl, never rewritten
    unjournaled = False        # the halt in force was tripped by a replayed settlement, not read from risk.jsonl
    for t, _order, rec in timeline:
        guards.roll(st, t, scratch, cfg)
        was = st["halted"]
        _apply(st, cfg, t, rec, scratch)
        if rec.get("event") == "halt" or not st["halted"]:
            unjournaled = False
        elif rec.get("event") == "settled" and not was:
            unjournaled = True
    guards.roll(st, now, scratch, cfg)
    if st["halted"] and unjournaled and guards.limit_breach(st, cfg) is None:
        _drop_unjournaled_halt(st)
    return st


def _drop_unjournaled_halt(st: dict) -> None:
    """A halt the replay tripped with today's limits on a past settlement, which the live book never
    tripped (no halt line in risk.jsonl) and which the counters no longer imply (a win since reset the
    streak, the P&L came back): the limits were lowered since. A new limit applies from now on, not to
    losses already followed by wins; a streak or a loss still at the new limit keeps the halt."""
    log.info("risk replay: %s (at %s) is not a halt the journals recorded and today's counters no longer"
             " imply it (a limit was lowered since): not applied", st["halt_reason"], st["halted_at"])
    st.update(halted=False, halt_reason=None, halt_kind=None, halted_at=None, halt_day=None, halt_streak=None)


def _apply(st: dict, cfg: Config, t: float, rec: dict, scratch: list[dict]) -> None:
    ev, tid = rec.get("event"), str(rec.get("trade_id"))
    if ev == "filled":
        amount, price, shares, fee = fill_numbers(rec, cfg)
        guards.apply_fill(st, tid, str(rec.get("asset", "")), rec.get("window_start"), str(rec.get("side", "")),
                          amount, price, shares, fee, t)
    elif ev == "settled":
        try:
            pnl = float(rec.get("pnl") or 0)
        except (TypeError, ValueError):
            log.error("settlement of %s has an unreadable pnl %r: counted as a loss of its amount", tid, rec.get("pnl"))
            pnl = -abs(float(rec.get("amount") or 0))
        outcome = rec.get("outcome") if rec.get("outcome") in ("won", "lost") else None
        guards.apply_settled(st, cfg, tid, pnl, t, outcome, scratch, quiet=True)
    elif ev == "halt" and guards.halt_applies(st, str(rec.get("kind") or "error")):
        guards.set_halt(st, str(rec.get("reason") or "halt"), str(rec.get("kind") or "error"), t, scratch, cfg.mode,
                        quiet=True)
    elif ev in ("resume", "auto_resume") and st["halted"]:
        guards.clear_halt(st)


def merge_cached(derived: dict, cached: dict | None) -> dict:
    """Fail closed: a halt the cache holds stays, with its own details (its exact time; or a halt the
    journals lost through a failed risk.jsonl append); a halt only the journals imply is kept too."""
    if cached and cached.get("halted"):
        for key in ("halted", "halt_reason", "halt_kind", "halted_at", "halt_day", "halt_streak"):
            derived[key] = cached.get(key)
    return derived


def differences(before: dict | None, after: dict) -> list[str]:
    """What a rebuild changed, for the log (empty when the cache was right)."""
    if not before:
        return ["risk.json was missing or unreadable"]
    keys: tuple[Any, ...] = ("trades_today", "wins", "losses", "consecutive_losses", "halted")
    out = [f"{k} {before.get(k)!r} -> {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)]
    if abs(float(before.get("pnl_today") or 0) - after["pnl_today"]) > 1e-6:
        out.append(f"pnl_today {before.get('pnl_today')!r} -> {round(after['pnl_today'], 6)!r}")
    if set(before.get("open") or {}) != set(after["open"]):
        out.append(f"open positions {len(before.get('open') or {})} -> {len(after['open'])}")
    return out


def rebuild(book: guards.RiskBook, trade_events: Iterable[dict], now: float) -> list[str]:
    """Replace the book's state with the one the journals imply (keeping a cached halt); under the
    book's lock, so a concurrent `resume` is either before (and replayed) or after. Returns what
    changed. Raises what the book raises (lock timeout, unwritable state): the caller fails closed."""
    events = list(trade_events)
    existed = book.path.exists()
    with book._txn(now) as (st, _journal):
        derived = derive_state(book.cfg, events, read_jsonl(book.journal_path), now)
        merged = merge_cached(derived, st)
        changed = differences(st if existed else None, merged)
        st.clear()
        st.update(merged)
    if changed and (events or existed):
        log.warning("risk book rebuilt from the journals: %s", "; ".join(changed))
    return changed
