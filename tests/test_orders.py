"""The order state machine (executor.orders) and the journal's index built on it (executor.journal)."""

from __future__ import annotations

import itertools
import json

import pytest

from executor.journal import TradeJournal
from executor.orders import NEW, TRANSITIONS, IllegalTransition, OrderEvent, advance, is_open

W0 = 1_767_225_600
E = OrderEvent
LEGAL = {
    (NEW, E.INTENT),
    (E.INTENT, E.SUBMITTED), (E.INTENT, E.FILLED), (E.INTENT, E.FAILED), (E.INTENT, E.UNKNOWN),
    (E.INTENT, E.WALLET_REJECTED), (E.INTENT, E.RECONCILED),
    (E.SUBMITTED, E.FILLED), (E.SUBMITTED, E.FAILED), (E.SUBMITTED, E.UNKNOWN), (E.SUBMITTED, E.WALLET_REJECTED),
    (E.SUBMITTED, E.RECONCILED),
    (E.UNKNOWN, E.RECONCILED), (E.UNKNOWN, E.FILLED), (E.UNKNOWN, E.FAILED),
    (E.RECONCILED, E.FILLED),
    (E.FILLED, E.SETTLED),
}
STATES = [NEW, *OrderEvent]


@pytest.mark.parametrize(("state", "event"), list(itertools.product(STATES, list(OrderEvent))),
                         ids=lambda x: "new" if x is None else str(x))
def test_every_transition_is_legal_or_raises(state, event):
    if (state, event) in LEGAL:
        assert advance("t", state, event) == event
        assert advance("t", state, event.value) == event   # the journal's spelling works too
    else:
        with pytest.raises(IllegalTransition) as info:
            advance("t", state, event)
        assert "t:" in str(info.value) and repr(event.value) in str(info.value)


def test_the_table_is_exactly_the_documented_one():
    assert {(s, e) for s, evs in TRANSITIONS.items() for e in evs} == LEGAL
    with pytest.raises(IllegalTransition):
        advance("t", E.INTENT, "bogus")


def test_open_states():
    assert [s for s in STATES if is_open(s)] == [E.INTENT, E.SUBMITTED, E.UNKNOWN, E.RECONCILED]


def test_journal_refuses_an_illegal_event_and_writes_nothing(tmp_path):
    path = tmp_path / "trades.jsonl"
    j = TradeJournal(path, "demo")
    j.append("intent", "BTC", W0, "a", slug="s")
    j.append("filled", "BTC", W0, "a", price=0.5, amount=10)
    before = path.read_bytes()
    for bad in ("intent", "submitted", "failed", "filled"):
        with pytest.raises(IllegalTransition):
            j.append(bad, "BTC", W0, "a")
    with pytest.raises(IllegalTransition):
        j.append("filled", "BTC", W0, "never-intended")
    assert path.read_bytes() == before
    assert j.state_of("a") == E.FILLED


def test_journal_index_matches_a_fresh_read(tmp_path):
    path = tmp_path / "trades.jsonl"
    j = TradeJournal(path, "demo")
    j.append("intent", "BTC", W0, "a", slug="s", side="UP", amount=10)
    j.append("submitted", "BTC", W0, "a")
    j.append("intent", "ETH", W0, "b", slug="s2", side="DOWN", amount=5, price=0.4)
    j.append("filled", "ETH", W0, "b", shares=12.0)
    again = TradeJournal(path, "demo")
    assert {t: r.state for t, r in again.trades.items()} == {t: r.state for t, r in j.trades.items()}
    assert [i["trade_id"] for i in again.open_intents()] == ["a"]
    fill = again.unsettled_fills()[0]
    assert fill["side"] == "DOWN" and fill["price"] == 0.4 and fill["shares"] == 12.0   # intent merged under fill
    assert again.intent_for("ETH", W0)["trade_id"] == "b" and again.intent_for("ETH", W0 + 900) is None


def test_bad_lines_are_skipped_counted_and_an_unreadable_intent_blocks_its_asset(tmp_path, caplog):
    path = tmp_path / "trades.jsonl"
    good = TradeJournal(path, "demo")
    good.append("intent", "BTC", W0, "a", slug="s")
    good.append("filled", "BTC", W0, "a", price=0.5, amount=10)
    with open(path, "a") as fh:
        fh.write("[1, 2]\n")                                                          # not an object
        fh.write(json.dumps({"ts": "2026-01-01T00:00:00Z", "event": "intent", "mode": "demo", "window_start": W0,
                             "trade_id": "x"}) + "\n")                                 # no asset
        fh.write(json.dumps({"ts": "2026-01-01T00:00:00Z", "event": "intent", "mode": "demo", "asset": "ETH",
                             "trade_id": "y"}) + "\n")                                 # no window_start
        fh.write(json.dumps({"ts": "2026-01-01T00:00:00Z", "event": "settled", "mode": "demo", "asset": "BTC",
                             "window_start": W0, "trade_id": "zz"}) + "\n")            # settled before intent
        fh.write('{"ts": "2026-01-01T00:0')                                            # torn tail
    j = TradeJournal(path, "demo")
    assert [b.split(":")[0] for b in j.bad_lines] == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "ETH" in j.blocked_assets and "line 5" in j.blocked_assets["ETH"]
    assert "BTC" not in j.blocked_assets            # the intent without an asset cannot name one
    assert j.state_of("a") == E.FILLED and j.state_of("zz") is NEW
    assert sum("line 4" in r.getMessage() for r in caplog.records) == 1
    assert len(path.read_text().splitlines()) == 7   # the file itself is never rewritten by a reader


def test_a_window_with_an_unreadable_line_counts_as_traded(tmp_path):
    path = tmp_path / "trades.jsonl"
    with open(path, "w") as fh:   # an outcome without its intent (the intent line was lost or edited away)
        fh.write(json.dumps({"ts": "2026-01-01T00:00:00Z", "event": "filled", "mode": "demo", "asset": "BTC",
                             "window_start": W0, "trade_id": "lost"}) + "\n")
    j = TradeJournal(path, "demo")
    assert j.bad_lines and j.traded("BTC", W0) and not j.traded("BTC", W0 + 900)
