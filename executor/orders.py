"""The order state machine: one Enum of journal events/states and one transition table.

Every line of `logs/trades.jsonl` is an event that moves one trade (one `trade_id`) from a
state to the next. The table below is the only place that says which moves are legal:

    (new) -> intent -> submitted -> filled | failed | unknown | wallet_rejected
    intent -> filled (paper) | failed | unknown | wallet_rejected (before the wallet's confirm)
    intent | submitted | unknown -> reconciled -> filled     (found in the venue's record)
    intent | submitted | unknown -> failed                   (not found)
    unknown -> filled (the outcome became readable)
    filled -> settled

An illegal move raises `IllegalTransition` when the executor tries to journal it (the line is
not written), and is logged and skipped when it is read back from a journal written by hand or
by an older version (the trade keeps its last legal state).
"""

from __future__ import annotations

from enum import Enum


class OrderEvent(str, Enum):
    """A journal event, and the state a trade is in after it (the contract's spelling)."""

    INTENT = "intent"
    SUBMITTED = "submitted"
    FILLED = "filled"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RECONCILED = "reconciled"
    WALLET_REJECTED = "wallet_rejected"
    SETTLED = "settled"

    def __str__(self) -> str:
        return self.value


E = OrderEvent
NEW = None  # the state of a trade_id never seen

TRANSITIONS: dict[OrderEvent | None, frozenset[OrderEvent]] = {
    NEW: frozenset({E.INTENT}),
    E.INTENT: frozenset({E.SUBMITTED, E.FILLED, E.FAILED, E.UNKNOWN, E.WALLET_REJECTED, E.RECONCILED}),
    E.SUBMITTED: frozenset({E.FILLED, E.FAILED, E.UNKNOWN, E.WALLET_REJECTED, E.RECONCILED}),
    E.UNKNOWN: frozenset({E.RECONCILED, E.FILLED, E.FAILED}),
    E.RECONCILED: frozenset({E.FILLED}),
    E.FILLED: frozenset({E.SETTLED}),
    E.FAILED: frozenset(),
    E.WALLET_REJECTED: frozenset(),
    E.SETTLED: frozenset(),
}

# An intent in one of these states has an outcome: it is never reconciled again.
DECIDED = frozenset({E.FILLED, E.FAILED, E.WALLET_REJECTED, E.SETTLED})
# Outcomes the click-through (or the paper fill) may return for an intent.
OUTCOMES = frozenset({E.FILLED, E.FAILED, E.UNKNOWN, E.WALLET_REJECTED})


class IllegalTransition(ValueError):
    """A journal event that the table does not allow from the trade's current state."""

    def __init__(self, trade_id: str, state: OrderEvent | None, event: str):
        self.trade_id, self.state, self.event = trade_id, state, event
        where = state.value if state is not None else "new"
        super().__init__(f"trade {trade_id}: {event!r} is not a legal move from {where!r}"
                         f" (legal: {', '.join(sorted(e.value for e in TRANSITIONS.get(state, ())) ) or 'none'})")


def parse_event(name: object) -> OrderEvent | None:
    try:
        return OrderEvent(str(name))
    except ValueError:
        return None


def advance(trade_id: str, state: OrderEvent | None, event: OrderEvent | str) -> OrderEvent:
    """The state after `event`, or IllegalTransition."""
    ev = parse_event(event.value if isinstance(event, OrderEvent) else event)
    if ev is None or ev not in TRANSITIONS.get(state, frozenset()):
        raise IllegalTransition(trade_id, state, str(event))
    return ev


def is_open(state: OrderEvent | None) -> bool:
    """An intent with no outcome yet: it must be reconciled from the venue, never resubmitted."""
    return state is not None and state not in DECIDED


__all__ = ["DECIDED", "NEW", "OUTCOMES", "TRANSITIONS", "IllegalTransition", "OrderEvent", "advance", "is_open",
           "parse_event"]
