"""What an event page says about itself (executor/page_data.py, pure) and the site profile that
reads it (executor/profiles.py SiteProfile): the embedded event found wherever it sits, tokens
paired by outcome NAME, page-vs-API comparison, History rows by column, "not an order" words."""

from __future__ import annotations

import json

import pytest

from core.market_shapes import parse_market
from executor.page_data import (
    PageDataError,
    cents_in,
    compare,
    read_event,
    record_fields,
    widget_value,
)
from executor.profiles import ProfileError, SiteProfile
from tests.replica_support import REPO

SLUG = "btc-updown-15m-1767225600"
START = 1767225600
UP, DOWN = "1" * 70, "2" * 70


def market(slug: str = SLUG, outcomes=("Up", "Down"), tokens=(UP, DOWN), start: int = START) -> dict:
    return {"conditionId": "0x" + "ab" * 32, "question": "Bitcoin Up or Down", "slug": slug,
            "outcomes": json.dumps(list(outcomes)), "clobTokenIds": json.dumps(list(tokens)),
            "eventStartTime": "2026-01-01T00:00:00Z" if start == START else None,
            "endDate": "2026-01-01T00:15:00Z" if start == START else "2026-01-01T00:00:00Z", "closed": False}


def page(event: dict, open_price: object = 90123.45) -> str:
    """A Next.js-like data script: the event and the crypto prices deep in dehydrated queries."""
    return json.dumps({"props": {"pageProps": {"dehydratedState": {"queries": [
        {"queryKey": ["/api/event/slug", event.get("slug")], "state": {"data": event}},
        {"queryKey": ["crypto-prices"], "state": {"data": {"openPrice": open_price, "closePrice": None}}}]}}}})


def test_the_event_is_found_wherever_it_sits_and_tokens_pair_by_name():
    ev = read_event(page({"slug": SLUG, "markets": [market(outcomes=("Down", "Up"), tokens=(DOWN, UP))]}), SLUG)
    assert (ev.slug, ev.start, ev.market.token_up, ev.market.token_down) == (SLUG, START, UP, DOWN)
    assert ev.outcomes == ("Down", "Up") and ev.open_price == 90123.45
    assert widget_value(ev.outcomes, "UP") == "1" and widget_value(ev.outcomes, "DOWN") == "0"
    assert read_event(page({"slug": SLUG, "markets": [market()]}, open_price=None), SLUG).open_price is None


@pytest.mark.parametrize("text, why", [
    (None, "no embedded data"),
    ("<html>", "not JSON"),
    (json.dumps({"props": {}}), "no event"),
    (page({"slug": SLUG, "markets": []}), "0 markets"),
    (page({"slug": SLUG, "markets": [market(), market()]}), "2 markets"),
    (page({"slug": SLUG, "markets": [market(outcomes=("Yes", "No"))]}), "Up and Down"),
    (page({"slug": SLUG, "markets": [market(tokens=(UP,))]}), "pair up"),
])
def test_unreadable_page_data_says_what_is_missing(text, why):
    with pytest.raises(PageDataError, match=why):
        read_event(text, SLUG)


def test_page_and_api_disagree_on_window_token_or_condition():
    api = parse_market(market(), SLUG)
    same = read_event(page({"slug": SLUG, "markets": [market()]}), SLUG)
    assert compare(same, api, SLUG) is None
    prev = "btc-updown-15m-1767224700"
    other_window = read_event(page({"slug": prev, "markets": [market(prev, start=0)]}), SLUG)
    assert "disagree on the window" in compare(other_window, api, SLUG)
    swapped = read_event(page({"slug": SLUG, "markets": [market(tokens=(DOWN, UP))]}), SLUG)
    assert "disagree on the token" in compare(swapped, api, SLUG)
    other_cid = read_event(page({"slug": SLUG, "markets": [{**market(), "conditionId": "0x" + "cd" * 32}]}), SLUG)
    assert "condition id" in compare(other_cid, api, SLUG)


def test_history_rows_are_read_by_column_header():
    site = SiteProfile.load(REPO / "profiles/sites/polymarket.json")
    c = site.columns
    cells = {c["outcome"]: "Up", c["price"]: "53¢", c["shares"]: "18.8679", c["amount"]: "$1,010.00",
             c["fee"]: "$0.1853", c["status"]: "Won", c["payout"]: "$18.8679", c["market"]: "Bitcoin…",
             c["id"]: "ORD-000007"}
    links = {c["market"]: f"/event/{SLUG}", c["id"]: "/tx/ORD-000007"}
    row = record_fields(cells, links, c)
    assert (row.get("id"), row.get("slug"), row.get("side"), row.get("status"), row.get("result")) == (
        "ORD-000007", SLUG, "UP", "settled", "won")
    assert (row.number("amount"), row.number("price"), row.number("shares"), row.number("payout")) == (
        1010.0, 0.53, 18.8679, 18.8679)
    open_row = record_fields({**cells, c["status"]: "Filled", c["payout"]: "—"}, links, c)
    assert (open_row.get("status"), open_row.get("result"), open_row.get("payout")) == ("filled", None, None)
    assert cents_in("Up53¢") == 0.53 and cents_in("Down —") is None


def test_site_profile_not_an_order_words_and_a_missing_key(tmp_path):
    site = SiteProfile.load(REPO / "profiles/sites/polymarket.json")
    for text in ("Deposit", "Log in", "Sign up", "Connect wallet", "Insufficient balance", "Unavailable"):
        assert site.not_an_order_word(text), text
    for text in ("Buy Up", "Buy Down", "Trade"):
        assert site.not_an_order_word(text) is None, text
    data = json.loads((REPO / "profiles/sites/polymarket.json").read_text())
    del data["records"]["columns"]["id"]
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="records.columns.id"):
        SiteProfile.load(tmp_path / "p.json")
