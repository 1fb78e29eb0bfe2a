"""The replica's market site as the 2026 Polymarket site lays it out: the hub, the event pages, the portfolio.

    GET /crypto/15M             the hub: per asset the current and the next window, each a link to
                                its event page (also /crypto/5M, the same hub)
    GET /event/<slug>           one window's event page: title, "Price to beat" (after a delay),
                                the trade widget (`#trade-widget`, plus one hidden copy), Positions
                                and History panels, and the embedded data script
                                (`script#__NEXT_DATA__`, type application/json) carrying the event
                                (Gamma's shape: its market, `clobTokenIds`, `outcomes`) and the
                                window's `openPrice`; a past window shows "Go to live market".
                                An unknown slug answers 404.
    GET /portfolio              Positions and History across markets

The markup follows ../shared/design/real-site-notes.md ("Trade panel markup"); where the real
markup is unknown (toasts, the panels' tables) the replica's own is documented in docs/replica.md.
The pages render from `window.REPLICA` (replica/static/market.js) and poll `/api/state?slug=` for
live prices, the price to beat, orders and persistent faults.

Page faults (replica/faults.py PAGE_FAULTS, and markup_variant / market_unavailable) are taken
here for the asset of the page being rendered: a one-shot one is consumed by that page load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.window_grid import Window, iso_utc, parse_slug

from . import market_api
from .faults import PAGE_FAULTS
from .http_base import STATIC
from .pricing import window_title
from .state import ReplicaState

HUB_PATHS = ("/crypto/15M", "/crypto/5M")
EVENT_PREFIX = "/event/"
ONCE_PAGE_KINDS = ("markup_variant", "market_unavailable", *PAGE_FAULTS)


@dataclass(frozen=True)
class Rendered:
    status: int
    html: bytes


def embed(obj: object) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(obj).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def overrides_for(st: ReplicaState, asset: str | None) -> dict:
    """The page faults of this page load: the one-shot ones it consumes (for `asset`'s page, or any
    on the hub), and the persistent event-page ones of `asset` (they stay armed)."""
    out: dict = {"variant": False, "unavailable": []}
    with st.lock:
        once = [f for f in st.faults if f.mode == "once" and f.kind in ONCE_PAGE_KINDS
                and (asset is None or f.matches_asset(asset))]
        if asset is not None:
            out.update({f.kind: True for f in st.faults if f.mode == "persistent" and f.kind in PAGE_FAULTS
                        and f.matches_asset(asset)})
    for f in once:
        if f.kind in PAGE_FAULTS and asset is None:
            continue   # event-page faults wait for an event page
        if not st.consume(f):
            continue
        if f.kind == "markup_variant":
            out["variant"] = True
        elif f.kind == "market_unavailable":
            out["unavailable"] = list(st.s.assets) if f.asset is None else [f.asset]
        else:
            out[f.kind] = True
    return out


def _crypto_prices(st: ReplicaState, w: Window, now: float, late: bool) -> dict:
    known = now - w.start >= st.s.price_to_beat_delay and not late
    ended = now >= w.end
    path = st.paths[w.asset]
    return {"openPrice": path.price(w.start) if known else None,
            "closePrice": path.price(w.end) if ended else None,
            "timestamp": int(now * 1000), "completed": ended, "incomplete": not ended}


def next_data(st: ReplicaState, w: Window, overrides: dict) -> dict:
    """The embedded data script of an event page (Next.js `__NEXT_DATA__`): the event in Gamma's
    shape and the window's crypto prices (`openPrice` once the price to beat is known)."""
    now = st.clock()
    event = market_api.gamma_event(st, w)
    if overrides.get("page_other_token"):
        market = event["markets"][0]
        market["clobTokenIds"] = json.dumps(list(reversed(json.loads(market["clobTokenIds"]))))
    span = w.slug.split("-")[2]
    queries = [
        {"queryKey": ["/api/event/slug", w.slug], "state": {"data": event, "status": "success",
                                                           "dataUpdatedAt": int(now * 1000)}},
        {"queryKey": ["crypto-prices", "price", w.asset, iso_utc(w.start), span, iso_utc(w.end)],
         "state": {"data": _crypto_prices(st, w, now, bool(overrides.get("price_to_beat_late"))),
                   "status": "success", "dataUpdatedAt": int(now * 1000)}},
    ]
    return {"props": {"pageProps": {"dehydratedState": {"mutations": [], "queries": queries}}},
            "page": "/event/[slug]", "query": {"slug": w.slug}, "buildId": "replica", "isFallback": False}


def _page(st: ReplicaState, kind: str, wallet_origin: str, overrides: dict, w: Window | None,
          title: str) -> bytes:
    event = None
    data_script = ""
    if w is not None:
        event = {"asset": w.asset, "slug": w.slug, "start": w.start, "end": w.end}
        data_script = ('<script id="__NEXT_DATA__" type="application/json">'
                       + embed(next_data(st, w, overrides)) + "</script>")
    template = (STATIC / "market.html").read_text()
    for name in ("market.css", "dom.js", "market.js"):
        template = template.replace(f"/static/{name}", static_url(name))
    html = (template.replace("__TITLE__", title)
            .replace("__NEXT_DATA_SCRIPT__", data_script)
            .replace("__INITIAL_STATE__", embed(st.page_state((w.asset, w.start) if w else None)))
            .replace("__OVERRIDES__", embed(overrides))
            .replace("__WALLET_ORIGIN__", embed(wallet_origin))
            .replace("__PAGE_KIND__", embed(kind))
            .replace("__EVENT__", embed(event)))
    return html.encode()


def static_url(name: str) -> str:
    """/static/<name>?v=<its mtime>: cacheable, and a changed file gets a new URL."""
    try:
        version = int((STATIC / name).stat().st_mtime)
    except OSError:
        version = 0
    return f"/static/{name}?v={version}"


def _window_for(st: ReplicaState, slug: str) -> Window | None:
    return market_api.window_for_slug(st, slug)


def page_asset(path: str) -> str | None:
    """The asset of an event page's path (for faults armed for one asset), else None."""
    try:
        return parse_slug(path[len(EVENT_PREFIX):])[0] if path.startswith(EVENT_PREFIX) else None
    except ValueError:
        return None


def render(st: ReplicaState, path: str, wallet_origin: str) -> Rendered | None:
    """The page at `path`, or None when `path` is not one of the site's pages."""
    if path in HUB_PATHS:
        return Rendered(200, _page(st, "hub", wallet_origin, overrides_for(st, None), None,
                                   "Crypto Up or Down · Replica Markets"))
    if path == "/portfolio":
        return Rendered(200, _page(st, "portfolio", wallet_origin, {"variant": False, "unavailable": []},
                                   None, "Portfolio · Replica Markets"))
    if not path.startswith(EVENT_PREFIX):
        return None
    w = _window_for(st, path[len(EVENT_PREFIX):])
    if w is None:
        return Rendered(404, b"<!doctype html><title>404: This page could not be found</title>"
                             b"<h1>404</h1><p>This page could not be found.</p>")
    overrides = overrides_for(st, w.asset)
    shown = Window(w.asset, w.start - w.length, w.length) if overrides.get("page_other_window") else w
    return Rendered(200, _page(st, "event", wallet_origin, overrides, shown,
                               f"{window_title(shown)} · Replica Markets"))


def state_for(st: ReplicaState, slug: str | None) -> dict:
    """`GET /api/state[?slug=]`: the pages' live state (with that event page's market)."""
    w = _window_for(st, slug) if slug else None
    return st.page_state((w.asset, w.start) if w else None)
