"""doctor's API checks: every public endpoint the venue reads, reachable and in the recorded shape.

    for c in check_apis(cfg):  print(c.level, c.what, c.text)

One line per endpoint, through the executor's own client (executor/market_data.py, so "expected
shape" means exactly what the executor accepts): Gamma `/events?slug=` of each asset's current
window and `/markets?slug=` (the cross-check), CLOB `/version` (the exchange version: the order
signature's domain version), `/book`, `/price`, `/midpoint`, `/fee-rate` of the first asset's Up
token and `/markets/<conditionId>` (its Up/Down token ids must equal Gamma's). A 403 is named
for what it is: geoblocked. A host that does not answer at all is not asked again (its other
endpoints are listed as not checked), so doctor stays quick without internet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.market_shapes import ApiForbidden, ApiUnavailable, MarketDataError, MarketNotFound
from core.window_grid import iso_utc, window_slug, window_start
from executor.market_data import MarketData
from executor.market_view import api_urls

KNOWN_VERSIONS = (2, 3)   # CLOB V2 since 2026-04-28, V3 rolling out from 2026-06 (real-site notes)
MAX_TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    level: str      # OK | WARN | FAIL | NOTE
    what: str       # gamma | clob
    text: str


def describe(exc: MarketDataError) -> str:
    """What a failure means, in the user's terms."""
    if isinstance(exc, ApiForbidden):
        return (f"403 Forbidden: GEOBLOCKED, Polymarket refuses this machine's country or network; paper and"
                f" live cannot work from here ({exc})")
    if isinstance(exc, ApiUnavailable):
        if exc.status == 429:
            return f"rate limited (429), retry later ({exc})"
        return f"unreachable or failing: {exc}" if exc.status is None else f"server error: {exc}"
    if isinstance(exc, MarketNotFound):
        return f"not found: {exc}"
    if getattr(exc, "kind", None) == "api_html" or "not JSON (text/html" in str(exc):
        return f"an HTML page instead of JSON (a proxy, a captive portal or a bot challenge?): {exc}"
    return f"not the expected shape: {exc}"


def _short(token: str) -> str:
    return f"...{token[-6:]}"


class _Checker:
    def __init__(self, md: MarketData):
        self.md = md
        self.checks: list[Check] = []
        self.down_hosts: set[str] = set()

    def run(self, what: str, endpoint: str, call: Callable[[], Any], ok: Callable[[Any], Check | str]) -> Any:
        """call(); a Check from ok(value) (or an OK line of its text), or a FAIL line saying why."""
        if what in self.down_hosts:
            self.checks.append(Check("NOTE", what, f"{endpoint}: not checked (the {what} host did not answer)"))
            return None
        try:
            value = call()
        except MarketDataError as exc:
            if isinstance(exc, ApiUnavailable) and exc.status is None:
                self.down_hosts.add(what)
            self.checks.append(Check("FAIL", what, f"{endpoint}: {describe(exc)}"))
            return None
        got = ok(value)
        self.checks.append(got if isinstance(got, Check) else Check("OK", what, f"{endpoint}: {got}"))
        return value

    def skipped(self, what: str, endpoints: str, why: str) -> None:
        self.checks.append(Check("NOTE", what, f"{endpoints}: not checked ({why})"))


def _version_check(v: int) -> Check:
    if v in KNOWN_VERSIONS:
        return Check("OK", "clob", f"/version: exchange version {v} (orders are signed for CTF Exchange V{v})")
    return Check("WARN", "clob", f"/version: exchange version {v}, not one this agent knows ({KNOWN_VERSIONS}):"
                                 " the wallet guard may refuse every order signature; check for an update")


def _clob_checks(c: _Checker, md: MarketData, market, size: float) -> None:
    up = market.token_up
    c.run("clob", f"/book?token_id={_short(up)} (Up)", lambda: md.book(up), lambda b: (
        f"best bid {b.best_bid()}, best ask {b.best_ask()}, {len(b.bids)}/{len(b.asks)} levels; "
        + (f"${size:g} fills at avg {f.avg_price:.4f} (worst {f.worst_price})" if (f := b.ask_for(size))
           else f"too little depth for ${size:g}")))
    c.run("clob", f"/price?token_id={_short(up)}&side=SELL", lambda: md.price(up, "SELL"), lambda p: f"best ask {p}")
    c.run("clob", f"/midpoint?token_id={_short(up)}", lambda: md.midpoint(up), lambda m: f"midpoint {m}")
    c.run("clob", f"/fee-rate?token_id={_short(up)}", lambda: md.fee_rate_bps(up),
          lambda b: f"base_fee {b} (fee schedule from Gamma: rate {market.fee_rate}, exponent {market.fee_exponent})")

    def pairing(result) -> Check:
        tokens, closed = result
        same = (str(tokens["UP"].get("token_id")), str(tokens["DOWN"].get("token_id"))) == (up, market.token_down)
        return Check("OK" if same else "FAIL", "clob", f"/markets/{market.condition_id[:10]}...: tokens Up/Down "
                     + ("match Gamma's" if same else "DIFFER from Gamma's clobTokenIds: refuse to trade")
                     + f", closed {closed}")
    c.run("clob", f"/markets/{market.condition_id[:10]}...", lambda: md.clob_tokens(market.condition_id), pairing)


def _cross_check(c: _Checker, md: MarketData, first) -> None:
    def same(m) -> Check:
        ok = (m.condition_id, m.token_up, m.token_down) == (first.condition_id, first.token_up, first.token_down)
        return Check("OK" if ok else "FAIL", "gamma", f"/markets?slug={first.slug}: "
                     + ("the same market and token ids" if ok else "market or token ids DIFFER from /events"))
    c.run("gamma", f"/markets?slug={first.slug}", lambda: md.market_by_slug(first.slug), same)


def check_apis(cfg, now: float | None = None, md: MarketData | None = None) -> list[Check]:
    """Every endpoint's line (see the module docstring); never raises for an API failure."""
    own = md is None
    gamma, clob = api_urls(cfg)     # what the executor reads (in demo, the replica behind MARKET_URL)
    md = md or MarketData(gamma, clob, timeout=min(cfg.market_data_timeout, MAX_TIMEOUT))
    now = time.time() if now is None else now
    c = _Checker(md)
    try:
        first = None
        for asset in cfg.assets:
            start = window_start(now, cfg.window_seconds)
            slug = window_slug(asset, start, cfg.window_seconds)
            m = c.run("gamma", f"/events?slug={slug}", lambda s=slug: md.market(s), lambda m, a=asset: (
                f"{a} window from {iso_utc(m.start)}, conditionId {m.condition_id[:10]}..., tokens Up"
                f" {_short(m.token_up)} Down {_short(m.token_down)}, fees {m.fee_rate}"
                f" {'(closed)' if m.closed else ''}".rstrip()))
            first = first or m
        if first is not None:
            _cross_check(c, md, first)
        c.run("clob", "/version", md.version, _version_check)
        if first is not None:
            _clob_checks(c, md, first, cfg.position_size)
        else:
            c.skipped("clob", "/book, /price, /midpoint, /fee-rate, /markets/<conditionId>", "no market from Gamma")
    finally:
        if own:
            md.close()
    return c.checks
