"""What an event page says about itself, parsed (pure): its embedded data and its records.

    ev = read_event(script_text, "btc-updown-15m-1767225600")   # PageEvent, or PageDataError
    ev.market.token_up, ev.outcomes, ev.open_price               # the page's own market data
    widget_value(ev.outcomes, "UP")                              # "0": the outcome button's value
    compare(ev, api_market, "btc-updown-15m-1767225600")         # None, or why page and API disagree
    record_fields(row, columns) -> OrderRow                      # a History row, by column header

The embedded data is the event page's JSON data script (Next.js' data script; its inner layout
is not known for the real site): the event is searched for as the object with a `slug` and a
`markets` list (Gamma's event shape), `openPrice` as the first such key anywhere. The market is
parsed by core.market_shapes.parse_market, so token ids are paired with outcomes by NAME.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from core.market_shapes import ApiMalformed, Market, number, parse_market
from core.window_grid import parse_slug
from executor.decision import parse_cents

MAX_NODES = 200_000   # a pathological data script is refused, not walked forever
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_CENTS = re.compile(r"(\d+(?:\.\d+)?)\s*¢")


class PageDataError(Exception):
    """The page's data cannot be read as an event of this kind (the message says what is missing)."""


@dataclass(frozen=True)
class PageEvent:
    slug: str
    start: int
    market: Market
    outcomes: tuple[str, ...]     # outcome names in the page's order (the widget's values index it)
    open_price: float | None      # the price to beat, when the page knows it


def _walk(node: object) -> Iterator[dict]:
    stack, seen = [node], 0
    while stack:
        cur = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise PageDataError(f"the page's data has more than {MAX_NODES} nodes")
        if isinstance(cur, dict):
            yield cur
            stack.extend(reversed(list(cur.values())))
        elif isinstance(cur, list):
            stack.extend(reversed(cur))


def _event_object(data: object, slug: str) -> dict:
    events = [d for d in _walk(data) if isinstance(d.get("slug"), str) and isinstance(d.get("markets"), list)]
    if not events:
        raise PageDataError("the page's data holds no event (an object with a slug and markets)")
    same = [e for e in events if e["slug"] == slug]
    if same:
        return same[0]
    slugs = sorted({e["slug"] for e in events})
    if len(slugs) == 1:
        return events[0]          # another window's event: the caller compares and refuses
    raise PageDataError(f"the page's data holds several events ({', '.join(slugs)[:160]}) and none is {slug}")


def _outcome_names(raw: dict) -> tuple[str, ...]:
    names = raw.get("outcomes")
    if isinstance(names, str):
        try:
            names = json.loads(names)
        except json.JSONDecodeError:
            names = None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise PageDataError(f"the page's market has no readable outcomes: {raw.get('outcomes')!r:.60}")
    return tuple(names)


def read_event(text: str | None, slug: str) -> PageEvent:
    """The event the page's data script (its text) describes; PageDataError when unreadable."""
    if not text:
        raise PageDataError("the page has no embedded data script")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PageDataError(f"the page's data script is not JSON: {exc}") from None
    event = _event_object(data, slug)
    markets = [m for m in event["markets"] if isinstance(m, dict)]
    if len(markets) != 1:
        raise PageDataError(f"the page's event {event['slug']} has {len(markets)} markets, not one")
    try:
        asset, start = parse_slug(event["slug"])
        market = parse_market(markets[0], event["slug"], "the page's data")
    except (ValueError, ApiMalformed) as exc:
        raise PageDataError(f"the page's event {event['slug']!r:.80}: {exc}") from None
    open_price = next((number(d["openPrice"]) for d in _walk(data) if "openPrice" in d), None)
    return PageEvent(event["slug"], start, market, _outcome_names(markets[0]), open_price)


def widget_value(outcomes: tuple[str, ...], side: str) -> str:
    """The outcome button's `value` for `side`: its index in the market's outcomes (Up "0" normally)."""
    names = [n.strip().lower() for n in outcomes]
    want = {"UP": "up", "DOWN": "down"}[side.upper()]
    if want not in names:
        raise PageDataError(f"the page's outcomes {list(outcomes)} have no {want.title()}")
    return str(names.index(want))


def compare(ev: PageEvent, api: Market, slug: str) -> str | None:
    """Why the page and the API disagree on this window or its tokens, or None when they agree."""
    if ev.slug != slug:
        return f"the page shows window {ev.slug}, not {slug} (page and API disagree on the window)"
    if abs(ev.market.start - api.start) > 1 or abs(ev.market.end - api.end) > 1:
        return (f"the page's window {ev.market.start:.0f}-{ev.market.end:.0f} is not the API's"
                f" {api.start:.0f}-{api.end:.0f}")
    if (ev.market.token_up, ev.market.token_down) != (api.token_up, api.token_down):
        return (f"the page's Up/Down token ids ({ev.market.token_up[:12]}…/{ev.market.token_down[:12]}…) are not"
                f" the API's ({api.token_up[:12]}…/{api.token_down[:12]}…) (page and API disagree on the token)")
    if ev.market.condition_id != api.condition_id:
        return f"the page's condition id {ev.market.condition_id[:14]}… is not the API's {api.condition_id[:14]}…"
    return None


def money(text: str | None) -> float | None:
    """'$1,234.56' / '18.87' / '—' -> a number or None."""
    m = _NUMBER.search(text or "")
    return float(m.group(0).replace(",", "")) if m else None


def cents_in(text: str | None) -> float | None:
    """The first price in cents inside a text ('Up53¢' -> 0.53); None when there is none."""
    m = _CENTS.search(text or "")
    value = float(m.group(1)) / 100.0 if m else None
    return value if value is not None and 0.0 < value < 1.0 else None


@dataclass(frozen=True)
class OrderRow:
    """One order of the venue's own record (a History row), in the executor's terms: id, side (UP/DOWN),
    amount, price, shares, fee, status (filled/settled), result (won/lost/None), payout, slug."""

    attrs: dict[str, str | None]

    def get(self, key: str) -> str | None:
        return self.attrs.get(key)

    def number(self, key: str) -> float | None:
        try:
            return float(str(self.attrs.get(key)))
        except (TypeError, ValueError):
            return None


def _slug_of(href: str | None) -> str | None:
    return href.rstrip("/").rsplit("/", 1)[-1] if href else None


def record_fields(cells: dict[str, str], links: dict[str, str | None], columns: dict[str, str]) -> OrderRow:
    """An OrderRow from one row's cells (column header -> text) and links (column header -> href)."""
    def text(field: str) -> str:
        return (cells.get(columns.get(field, "")) or "").strip()

    outcome = text("outcome").lower()
    status = text("status").lower()
    result = "won" if "won" in status else "lost" if "lost" in status else None
    price = parse_cents(text("price"))
    return OrderRow({
        "id": _slug_of(links.get(columns["id"])) or text("id") or None,
        "slug": _slug_of(links.get(columns["market"])),
        "side": "UP" if outcome.startswith("up") else "DOWN" if outcome.startswith("down") else None,
        "amount": _str(money(text("amount"))), "price": _str(price), "shares": _str(money(text("shares"))),
        "fee": _str(money(text("fee"))) if "fee" in columns else None,
        "status": "settled" if result else (status or None),
        "result": result, "payout": _str(money(text("payout"))) if "payout" in columns else None,
    })


def _str(value: float | None) -> str | None:
    return None if value is None else repr(value)
