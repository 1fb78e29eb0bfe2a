"""The trading decision: a pure function of the signal, the page's asks, the window and the clock.

`decide` returns a `Decision` whose action is:
- "trade": buy `side` now;
- "skip": final, this window is not traded (the reason says why);
- "wait": not now, evaluate again later in this window (the reason says what is missing);
  the caller turns the last "wait" into a "skip" once the entry interval is over.

Strategies (STRATEGY):
- seed: trade the signal's direction when confidence >= CONFIDENCE (the first valid signal of
  the window decides; a NO_TRADE or low confidence is final).
- edge: trade Up when prob_up - ask_up - fee_up >= MIN_EDGE, Down when (1 - prob_up) - ask_down
  - fee_down >= MIN_EDGE (the larger edge wins), at any moment inside [ENTRY_START, ENTRY_END].
  fee is the expected value of the fee shares per share bought: prob * fee_shares(1, ask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from core import fees, signal_doc
from core.signal_doc import SignalDoc


@dataclass(frozen=True)
class Params:
    strategy: str
    confidence: float
    min_edge: float
    entry_start: float
    entry_end: float
    signal_max_age: float
    min_price: float
    max_price: float
    fee_rate: float
    fee_exponent: float
    # STRIKE_REQUIRED_AFTER: from this many seconds into a window on, trade only on a prob_up measured
    # against the venue's own price to beat (signal strike_source "venue"); None: never required
    strike_required_after: float | None = None

    @classmethod
    def from_config(cls, cfg) -> Params:
        return cls(cfg.strategy, cfg.confidence, cfg.min_edge, cfg.entry_start, cfg.entry_end,
                   cfg.signal_max_age, cfg.min_price, cfg.max_price, cfg.fee_rate, cfg.fee_exponent,
                   getattr(cfg, "strike_required_after", None))


class Action(str, Enum):
    """What `decide` says now."""

    TRADE = "trade"
    SKIP = "skip"
    WAIT = "wait"

    def __str__(self) -> str:
        return self.value


class Logged(str, Enum):
    """The one line a window gets in logs/decisions.jsonl (`action`)."""

    TRADED = "traded"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Decision:
    action: Action               # trade | skip | wait
    reason: str
    side: str | None = None      # UP | DOWN when action == trade
    price: float | None = None   # the ask of `side`
    prob_up: float | None = None
    edge: float | None = None
    details: dict = field(default_factory=dict)


def check_signal(signal: SignalDoc | None, problem: str | None, asset: str, window_start: int,
                 now: float, max_age: float) -> str | None:
    """Why this signal cannot be used for (asset, window_start) at `now`, or None if it can."""
    if signal is None:
        return f"signal {problem or 'missing'}"
    if signal.stale:
        return "signal is stale (the engine flagged its feed as stale)"
    if signal.timestamp is None:
        return "signal corrupt: no valid timestamp"
    age = now - signal.timestamp
    if age > max_age:
        return f"signal is {age:.1f}s old (SIGNAL_MAX_AGE={max_age:g})"
    sig_asset = signal.asset or asset.upper()
    if sig_asset != asset.upper():
        return f"signal is for {sig_asset}, not {asset.upper()}"
    if signal.window is None or signal.window.start is None:
        return "signal corrupt: no valid window.start"
    sig_start = int(round(signal.window.start))
    if sig_start != int(window_start):
        return f"signal is from another window (start {sig_start}, page window {int(window_start)})"
    return None


def strike_problem(p: Params, signal: SignalDoc | None, elapsed: float) -> str | None:
    """Late in a window a strike off by the exchange-Chainlink basis moves prob_up by tens of points:
    from STRIKE_REQUIRED_AFTER seconds on, only a signal measured against the venue's price to beat
    may trade (a wait: the strike may still arrive)."""
    if signal is None or p.strike_required_after is None or elapsed < p.strike_required_after:
        return None
    if signal.strike_source == "venue":
        return None
    return (f"strike unknown: the signal's strike is {signal.strike_source or 'missing'}, not the venue's price to"
            f" beat, {elapsed:.0f}s into the window (STRIKE_REQUIRED_AFTER={p.strike_required_after:g})")


def edge_of(prob: float, ask: float, p: Params) -> float:
    """Expected profit per share bought at `ask` with win probability `prob`, net of the fee."""
    return float(fees.edge(prob, ask, p.fee_rate, p.fee_exponent))


def _in_range(ask: float | None, p: Params) -> bool:
    return ask is not None and p.min_price <= ask <= p.max_price


def decide(p: Params, asset: str, window_start: int, window_end: int, now: float,
           signal: SignalDoc | dict | None, signal_problem: str | None,
           ask_up: float | None, ask_down: float | None, already_traded: bool) -> Decision:
    if already_traded:
        return Decision(Action.SKIP, "already traded this window (one trade per asset and window)")
    elapsed = now - window_start
    if now >= window_end:
        return Decision(Action.SKIP, "window is over")
    if elapsed < p.entry_start:
        return Decision(Action.WAIT, f"before the entry interval ({elapsed:.1f}s < ENTRY_START={p.entry_start:g})")
    if elapsed > p.entry_end:
        return Decision(Action.SKIP, f"past the entry interval ({elapsed:.1f}s > ENTRY_END={p.entry_end:g})")
    if isinstance(signal, dict):   # a raw document (tests, tools): parsed here, once
        signal, signal_problem = signal_doc.parse(signal)
    why = check_signal(signal, signal_problem, asset, window_start, now, p.signal_max_age) \
        or strike_problem(p, signal, elapsed)
    if why:
        return Decision(Action.WAIT, why)
    assert signal is not None
    asks = {"UP": ask_up, "DOWN": ask_down}
    return _seed(p, signal, asks) if p.strategy == "seed" else _edge(p, signal, asks)


def _seed(p: Params, signal: SignalDoc, asks: dict[str, float | None]) -> Decision:
    """The seed's strategy: the signal's direction when its confidence is high enough."""
    direction, conf = signal.direction, signal.confidence
    if direction not in ("UP", "DOWN"):
        return Decision(Action.SKIP, f"signal direction is {direction or 'missing'}")
    if conf is None:
        return Decision(Action.SKIP, "signal corrupt: no numeric confidence")
    if conf < p.confidence:
        return Decision(Action.SKIP, f"confidence {conf:g} < CONFIDENCE={p.confidence:g}",
                        details={"direction": direction, "confidence": conf})
    ask = asks[direction]
    if ask is None:
        return Decision(Action.WAIT, f"no ask shown for {direction}")
    if not _in_range(ask, p):
        return Decision(Action.WAIT, f"ask {ask:.2f} for {direction} outside [MIN_PRICE={p.min_price:g},"
                        f" MAX_PRICE={p.max_price:g}]")
    return Decision(Action.TRADE, f"seed: {direction} with confidence {conf:g} >= {p.confidence:g}",
                    side=direction, price=ask, prob_up=signal.prob_up, details={"confidence": conf})


def _edge(p: Params, signal: SignalDoc, asks: dict[str, float | None]) -> Decision:
    """Buy the side whose edge (prob - ask - expected fee) is at least MIN_EDGE; the larger wins."""
    prob = signal.prob_up
    if prob is None or not 0.0 <= prob <= 1.0:
        return Decision(Action.WAIT, "signal has no valid prob_up")
    candidates = []
    notes = []
    for side, q in (("UP", prob), ("DOWN", 1.0 - prob)):
        ask = asks[side]
        if ask is None:
            notes.append(f"no ask for {side}")
            continue
        if not _in_range(ask, p):
            notes.append(f"ask {ask:.2f} for {side} outside [{p.min_price:g}, {p.max_price:g}]")
            continue
        e = edge_of(q, ask, p)
        notes.append(f"{side} edge {e:+.3f} at {ask:.2f}")
        if e >= p.min_edge:
            candidates.append((e, side, ask))
    if not candidates:
        return Decision(Action.WAIT, f"no edge >= MIN_EDGE={p.min_edge:g} (prob_up {prob:.3f}; {'; '.join(notes)})",
                        prob_up=prob)
    e, side, ask = max(candidates)
    return Decision(Action.TRADE, f"edge: {side} edge {e:+.3f} >= MIN_EDGE={p.min_edge:g} (prob_up {prob:.3f})",
                    side=side, price=ask, prob_up=prob, edge=e)


def parse_cents(text: str | None) -> float | None:
    """'53¢' / '53.5¢' / '$0.53' / '0.53' -> 0.53; None when it is not a price."""
    if not text:
        return None
    t = text.strip().replace(",", "")
    try:
        if t.endswith("¢"):
            value = float(t[:-1].strip()) / 100.0
        else:
            value = float(t.lstrip("$"))
    except ValueError:
        return None
    return value if 0.0 < value < 1.0 else None
