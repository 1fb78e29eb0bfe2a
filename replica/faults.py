"""Fault and adversary injection: what can be armed through `POST /api/faults`, and when it fires.

A fault is {"kind": ..., "mode": "once" | "persistent", ...params}. A one-shot fault is
consumed where it takes effect (listed in `GET /api/faults` with `fired` counts until then);
a persistent one stays until `DELETE /api/faults` (or `/api/reset`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .typed_order import ADVERSARIES

# kind -> (where it fires, what it does)
KINDS: dict[str, str] = {
    "popup_delay": "the wallet popup opens `ms` milliseconds after Buy (param ms, default 3000)",
    "popup_never": "Buy opens no wallet popup; the request expires unanswered",
    "order_reject": "the next confirmed order is rejected: error toast, no order (param message)",
    "slow_page": "the market page's HTML response is delayed by `ms` milliseconds (param ms, default 3000)",
    "page_500": "the market page answers HTTP 500",
    "markup_variant": "the page uses renamed classes and moved elements (a stale selector map fails)",
    "market_unavailable": "the market (param asset, default all) shows Unavailable and refuses orders",
    # event-page faults (param asset, default all): a one-shot one applies to the next event page
    # loaded for its asset, a persistent one to every page, live (replica/site_pages.py)
    "widget_hidden_first": "the hidden copy of the trade widget comes before the visible one in the page",
    "widget_deposit": "the trade button reads Deposit (an account without funds): pressing it places no order",
    "logged_out": "the page is logged out: a Log In button, and the trade button reads Log in",
    "widget_limit_sell": "the trade widget opens in Limit mode with Sell selected (a remembered preference)",
    "page_other_window": "the event page's data and widget show the previous window (page and API disagree)",
    "page_other_token": "the event page's embedded token ids are not the APIs' (page and API disagree)",
    "page_price_skew": "the event page's outcome prices are 20 cents away from the book (page and API disagree)",
    "price_to_beat_late": "the event page never shows the price to beat (openPrice null) while it is open",
    **ADVERSARIES,   # the wallet's real-shaped adversarial requests (replica/typed_order.py)
    "api_unavailable": "the public APIs (/gamma, /clob: replica/market_api.py) answer 503",
    "api_slow": "the public APIs answer `ms` milliseconds late (param ms, default 3000)",
    "api_rate_limited": "the public APIs answer 429 with Retry-After: 1",
    "api_geoblock": "the public APIs answer 403 (geoblocked)",
    "api_html": "the public APIs answer an HTML page (status 200) instead of JSON",
    "api_empty_book": "the next CLOB /book has no bids and no asks",
}
ADVERSARY_KINDS = tuple(ADVERSARIES)
PAGE_FAULTS = ("widget_hidden_first", "widget_deposit", "logged_out", "widget_limit_sell", "page_other_window",
               "page_other_token", "page_price_skew", "price_to_beat_late")
MODES = ("once", "persistent")
DEFAULT_MS = 3000
MAX_MS = 120_000


class FaultError(ValueError):
    """A fault specification is invalid (the message says which field and why)."""


@dataclass
class Fault:
    id: int
    kind: str
    mode: str = "once"
    ms: int = 0
    asset: str | None = None
    message: str | None = None
    fired: int = 0
    created: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("extra")
        return d

    def matches_asset(self, asset: str) -> bool:
        return self.asset is None or self.asset == asset.upper()


def parse_fault(spec: object, fault_id: int, now: float, assets: tuple[str, ...]) -> Fault:
    """A Fault from one JSON object, or FaultError naming what is wrong."""
    if not isinstance(spec, dict):
        raise FaultError(f"a fault must be a JSON object like {{\"kind\": \"page_500\"}}, got {spec!r}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; known kinds: {', '.join(KINDS)}")
    mode = spec.get("mode", "once")
    if mode not in MODES:
        raise FaultError(f"fault mode must be 'once' or 'persistent', got {mode!r}")
    ms = 0
    if kind in ("popup_delay", "slow_page", "api_slow"):
        raw = spec.get("ms", DEFAULT_MS)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= MAX_MS:
            raise FaultError(f"fault {kind}: ms must be a number of milliseconds 0..{MAX_MS}, got {raw!r}")
        ms = int(raw)
    asset = spec.get("asset")
    if asset is not None:
        if not isinstance(asset, str) or asset.upper() not in assets:
            raise FaultError(f"fault {kind}: asset must be one of {', '.join(assets)}, got {asset!r}")
        asset = asset.upper()
    message = spec.get("message")
    if message is not None and not isinstance(message, str):
        raise FaultError(f"fault {kind}: message must be a string, got {message!r}")
    return Fault(id=fault_id, kind=kind, mode=mode, ms=ms, asset=asset, message=message, created=now)
