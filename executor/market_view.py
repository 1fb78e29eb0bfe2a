"""The venue's view of one asset's window through Polymarket's public APIs (Gamma + CLOB).

    view = MarketView.from_config(cfg)        # GAMMA_URL, CLOB_URL (api_urls), MARKET_DATA_TIMEOUT
    m = view.market("BTC", 1767225600)        # Market (token ids paired by outcome NAME), cached
    view.book("BTC", 1767225600, "Up")        # Book of that side's token (never cached)
    view.resolution("BTC", 1767225600)        # Resolution: winner None while not resolved

The slug is the deterministic `core.window_grid.window_slug(asset, start, WINDOW_SECONDS)`; the
market is cached per slug (bounded) because token ids and times never change, while books and
resolutions are read fresh each time. Errors are the market-data classes (ApiUnavailable: try
later; ApiForbidden: refuse and tell the user; ApiMalformed/MarketNotFound: refuse this window).
One instance per thread: it holds one requests.Session.
"""

from __future__ import annotations

from collections import OrderedDict
from urllib.parse import urlsplit

from core.market_shapes import ApiMalformed, Book, Market, Resolution
from core.window_grid import window_slug
from executor.market_data import MarketData

CACHE_SIZE = 16     # markets: a few assets x (this window, the next, the ones awaiting settlement)


def api_urls(cfg) -> tuple[str, str]:
    """(GAMMA_URL, CLOB_URL). In demo the page and its APIs are one replica: when MARKET_URL names
    another replica than REPLICA_PORT's and GAMMA_URL/CLOB_URL were left at their demo defaults
    (REPLICA_PORT's), the APIs of MARKET_URL's replica are used."""
    gamma, clob = cfg.gamma_url, cfg.clob_url
    if getattr(cfg, "mode", None) != "demo":
        return gamma, clob
    default = f"http://127.0.0.1:{cfg.replica_port}"
    parts = urlsplit(cfg.market_url)
    page = f"{parts.scheme}://{parts.netloc}"
    if page == default:
        return gamma, clob
    return (page + "/gamma" if gamma.rstrip("/") == default + "/gamma" else gamma,
            page + "/clob" if clob.rstrip("/") == default + "/clob" else clob)


class MarketView:
    def __init__(self, md: MarketData, window_seconds: int):
        self.md = md
        self.window_seconds = int(window_seconds)
        self._markets: OrderedDict[str, Market] = OrderedDict()
        self.resolution_watch: object | None = None   # executor.resolution.ResolutionWatch.of(view): one per view

    @classmethod
    def from_config(cls, cfg) -> MarketView:
        gamma, clob = api_urls(cfg)
        return cls(MarketData(gamma, clob, timeout=cfg.market_data_timeout), cfg.window_seconds)

    def close(self) -> None:
        self.md.close()

    def slug(self, asset: str, start: int) -> str:
        return window_slug(asset, int(start), self.window_seconds)

    def market(self, asset: str, start: int) -> Market:
        """The window's market; its times are checked against the grid (a market for another window
        is ApiMalformed, never traded)."""
        slug = self.slug(asset, start)
        cached = self._markets.get(slug)
        if cached is not None:
            self._markets.move_to_end(slug)
            return cached
        m = self.md.market(slug)
        if abs(m.start - int(start)) > 1 or abs(m.end - (int(start) + self.window_seconds)) > 1:
            raise ApiMalformed(f"market {slug} is for {m.start:.0f}-{m.end:.0f}, not the window"
                               f" {int(start)}-{int(start) + self.window_seconds}", slug)
        self._markets[slug] = m
        while len(self._markets) > CACHE_SIZE:
            self._markets.popitem(last=False)
        return m

    def book(self, asset: str, start: int, side: str) -> Book:
        """The order book of `side` ("Up"/"Down") for that window, read now."""
        return self.md.book(self.market(asset, start).token_for(side))

    def resolution(self, asset: str, start: int) -> Resolution:
        return self.md.resolution(self.market(asset, start))
