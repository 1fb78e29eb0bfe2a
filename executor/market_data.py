"""A client of Polymarket's public read-only market data (Gamma and CLOB), for the venues.

    md = MarketData(gamma_base, clob_base, timeout=5.0)   # real hosts, or "<replica>/gamma", "<replica>/clob"
    m = md.market("btc-updown-15m-1767225600")   # Market: tokens paired by outcome NAME, times, fees
    md.book(m.token_up).ask_for(10.0)            # walks the asks' depth; None = too little depth
    md.price(token, "SELL")                      # the best ASK (CLOB: BUY answers the best bid)
    md.midpoint(token), md.fee_rate_bps(token), md.version(), md.resolution(m)

Failures (core/market_shapes.py, re-exported here) say what to do next, and their `kind` names
them (api_down, api_slow, api_rate_limited, api_geoblock, api_html, api_malformed,
market_not_found): ApiUnavailable (down, timeout, 5xx, 429 with `retry_after`): try later;
ApiForbidden (403, geoblocked): refuse, tell the user; ApiMalformed (HTML instead of JSON, a
missing or inconsistent field, an event without markets, token ids missing, outcomes other than
Up and Down): refuse this window; MarketNotFound (its subclass): the slug is not listed, or 404.
Every request has an explicit (connect, read) timeout and reads at most MAX_BODY bytes. The
recorded shapes and their public sources are documented in replica/market_api.py, which serves
them to the demo and the tests.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from core.market_shapes import (
    OUTCOME_NAMES,
    ApiForbidden,
    ApiMalformed,
    ApiUnavailable,
    Book,
    BookFill,
    Level,
    Market,
    MarketDataError,
    MarketNotFound,
    Resolution,
    number,
    parse_levels,
    parse_market,
)

__all__ = ["ApiForbidden", "ApiMalformed", "ApiUnavailable", "Book", "BookFill", "Level", "Market", "MarketData",
           "MarketDataError", "MarketNotFound", "Resolution", "parse_market"]

REAL_GAMMA_URL = "https://gamma-api.polymarket.com"
REAL_CLOB_URL = "https://clob.polymarket.com"
DEFAULT_TIMEOUT = 5.0
MAX_BODY = 4 * 1024 * 1024
MAX_RETRY_AFTER = 300.0


def _retry_after(value: str | None) -> float | None:
    seconds = number(value.strip()) if value else None          # an HTTP-date: None, the caller's back-off
    return None if seconds is None else min(MAX_RETRY_AFTER, max(0.0, seconds))


class MarketData:
    """Gamma + CLOB read-only client. One requests.Session: use one instance per thread."""

    def __init__(self, gamma_base: str = REAL_GAMMA_URL, clob_base: str = REAL_CLOB_URL,
                 timeout: float = DEFAULT_TIMEOUT, session: requests.Session | None = None):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 120:
            raise ValueError(f"timeout must be 0 < seconds <= 120, got {timeout!r}")
        self.gamma_base, self.clob_base = gamma_base.rstrip("/"), clob_base.rstrip("/")
        self.timeout = float(timeout)
        self.session = session or requests.Session()

    def close(self) -> None:
        self.session.close()

    def _get(self, base: str, path: str, params: dict | None = None, kind: type = dict) -> tuple[Any, str]:
        """(parsed JSON of type `kind`, url) or the exception saying what to do next."""
        url = base + path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        try:
            with self.session.get(base + path, params=params, timeout=(min(self.timeout, 5.0), self.timeout),
                                  stream=True, headers={"Accept": "application/json"}) as resp:
                body = b""
                for chunk in resp.iter_content(65536):
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise ApiMalformed(f"answer larger than {MAX_BODY} bytes", url)
        except requests.Timeout:
            raise ApiUnavailable(f"timed out after {self.timeout:g} s", url, kind="api_slow") from None
        except requests.RequestException as exc:
            raise ApiUnavailable(f"cannot reach the API: {type(exc).__name__}", url) from None
        status, text = resp.status_code, " ".join(body[:120].decode("utf-8", "replace").split())
        if status == 429 or status >= 500:
            raise ApiUnavailable(f"HTTP {status}: {text}", url, _retry_after(resp.headers.get("Retry-After")), status)
        if status == 403:
            raise ApiForbidden(f"forbidden (403: geoblocked?): {text}", url)
        if status != 200:
            raise (MarketNotFound if status == 404 else ApiMalformed)(f"HTTP {status}: {text}", url)
        ctype = resp.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        try:
            if ctype and "json" not in ctype:
                raise ValueError(ctype)
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiMalformed(f"not JSON ({ctype or 'no type'}): {text}", url, kind="api_html") from None
        if not isinstance(data, kind):
            want = "object" if kind is dict else "array"
            raise ApiMalformed(f"expected a JSON {want}, got {type(data).__name__}: {text}", url)
        return data, url

    # ---- Gamma ------------------------------------------------------------------------------------
    def market(self, slug: str) -> Market:
        """The event's Up/Down market via Gamma `/events?slug=`."""
        data, url = self._get(self.gamma_base, "/events", {"slug": slug}, list)
        if not data:
            raise MarketNotFound(f"no event for slug {slug}", url)
        events = [e for e in data if isinstance(e, dict) and e.get("slug") == slug]
        if len(events) != 1:
            raise ApiMalformed(f"expected one event with slug {slug}, got {len(events)} of {len(data)}", url)
        markets = events[0].get("markets")
        if not isinstance(markets, list) or not markets:
            raise ApiMalformed(f"event {slug} has no markets", url)
        return parse_market(self._pick(markets, slug, url), slug, url)

    def market_by_slug(self, slug: str) -> Market:
        """The same market via Gamma `/markets?slug=` (a cross-check, or the fallback)."""
        data, url = self._get(self.gamma_base, "/markets", {"slug": slug}, list)
        if not data:
            raise MarketNotFound(f"no market for slug {slug}", url)
        return parse_market(self._pick(data, slug, url), slug, url)

    @staticmethod
    def _pick(markets: list, slug: str, url: str) -> dict:
        same = [m for m in markets if isinstance(m, dict) and m.get("slug") == slug]
        if len(same) == 1:
            return same[0]
        if len(markets) == 1 and isinstance(markets[0], dict):
            return markets[0]     # the event's only market (its own slug may differ: the times are checked)
        raise ApiMalformed(f"cannot tell this window's market among {len(markets)} markets", url)

    # ---- CLOB -------------------------------------------------------------------------------------
    def book(self, token_id: str) -> Book:
        data, url = self._get(self.clob_base, "/book", {"token_id": token_id})
        if data.get("asset_id", token_id) != token_id:
            raise ApiMalformed(f"/book answered for another token {data.get('asset_id')!r:.90}", url)
        bids = sorted(parse_levels(data.get("bids", []), "bids", url), key=lambda lv: -lv.price)
        asks = sorted(parse_levels(data.get("asks", []), "asks", url), key=lambda lv: lv.price)
        ts = number(data.get("timestamp"))
        return Book(token_id, tuple(bids), tuple(asks), number(data.get("tick_size")),
                    number(data.get("min_order_size")), int(ts) if ts is not None else None)

    def price(self, token_id: str, side: str) -> float:
        """CLOB `/price`: side BUY answers the best BID, SELL the best ASK (as documented)."""
        if side.upper() not in ("BUY", "SELL"):
            raise ValueError(f"side must be BUY or SELL, got {side!r}")
        data, url = self._get(self.clob_base, "/price", {"token_id": token_id, "side": side.upper()})
        return number(data.get("price"), "price", url)

    def midpoint(self, token_id: str) -> float:
        data, url = self._get(self.clob_base, "/midpoint", {"token_id": token_id})
        return number(data.get("mid_price", data.get("mid")), "mid_price", url)

    def fee_rate_bps(self, token_id: str) -> int:
        data, url = self._get(self.clob_base, "/fee-rate", {"token_id": token_id})
        return int(number(data.get("base_fee", 0), "base_fee", url))

    def version(self) -> int:
        data, url = self._get(self.clob_base, "/version")
        value = number(data.get("version"), "version", url)
        if value != int(value) or value < 1:
            raise ApiMalformed(f"version is not a positive integer: {value}", url)
        return int(value)

    def clob_tokens(self, condition_id: str) -> tuple[dict[str, dict], bool]:
        """CLOB `/markets/<conditionId>`: ({"UP": token, "DOWN": token} by outcome NAME, closed)."""
        data, url = self._get(self.clob_base, f"/markets/{condition_id}")
        out: dict[str, dict] = {}
        for tok in data.get("tokens") if isinstance(data.get("tokens"), list) else []:
            key = OUTCOME_NAMES.get(str(tok.get("outcome", "")).strip().lower()) if isinstance(tok, dict) else None
            if key is None or key in out:
                raise ApiMalformed(f"unexpected or repeated token {tok!r:.80}", url)
            out[key] = tok
        if set(out) != {"UP", "DOWN"}:
            raise ApiMalformed("tokens are not exactly Up and Down", url)
        return out, data.get("closed") is True

    def resolution(self, market: Market) -> Resolution:
        """The market's own resolution: CLOB `winner` (its token ids checked against Gamma's), else
        Gamma `closed` with `outcomePrices` ["1","0"] / ["0","1"]. winner None: not yet."""
        tokens, closed = self.clob_tokens(market.condition_id)
        if (str(tokens["UP"].get("token_id")), str(tokens["DOWN"].get("token_id"))) != (market.token_up,
                                                                                          market.token_down):
            raise ApiMalformed("CLOB and Gamma disagree on the Up/Down token ids", market.condition_id)
        winners = [k for k in ("UP", "DOWN") if tokens[k].get("winner") is True]
        if len(winners) > 1:
            raise ApiMalformed("both outcomes marked winner", market.condition_id)
        if winners:
            return Resolution(winners[0], True, "clob")
        fresh = self.market(market.slug)
        prices = fresh.outcome_prices or {}
        for winner, want in (("UP", {"UP": 1.0, "DOWN": 0.0}), ("DOWN", {"UP": 0.0, "DOWN": 1.0})):
            if fresh.closed and prices == want:
                return Resolution(winner, True, "gamma")
        return Resolution(None, closed or fresh.closed, "clob")
