"""The signal document (`state/signal.json`): one typed shape for the engine that writes it and
the executor that reads it.

The writer builds a `SignalDoc` and writes `to_dict()` plus its diagnostic extras; the reader
parses each file once (`parse`) into the same type and never digs in the raw dict. Parsing is
lenient on purpose: a missing or mistyped field becomes None (numbers must be finite), and the
executor's `check_signal` says which one is unusable, in the order that matters (stale first).
Readers ignore fields they do not know.

Strike and reference (issue 14): `strike` is the price prob_up is measured against and
`strike_source` where it came from: "venue" (the market's price to beat, core/strikes.py) or
"feed_open" (the price feed's own price at the window's start); `strike_age_s` is how long ago it
was observed. `reference_price` is the price compared with it, `reference_source` "chainlink" (the
resolution source's stream) or "exchange+basis" (the exchange price corrected by the running
exchange-Chainlink basis, 0 when never measured), `reference_age_s` its age. `model` names the
prob_up model ("prob_up-v2", or "prob_up-v1" when the parameter file is absent or invalid).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from core.window_grid import iso_utc, parse_iso_utc

DIRECTIONS = ("UP", "DOWN", "NO_TRADE")
STRIKE_SOURCES = ("venue", "feed_open")
REFERENCE_SOURCES = ("chainlink", "exchange+basis")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _time(value: Any) -> float | None:
    try:
        return parse_iso_utc(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _choice(value: Any, allowed: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


@dataclass(frozen=True)
class SignalWindow:
    start: float | None            # epoch seconds
    end: float | None
    open_price: float | None
    seconds_left: float | None
    slug: str | None = None

    def to_dict(self) -> dict:
        return {"start": iso_utc(self.start) if self.start is not None else None,
                "end": iso_utc(self.end) if self.end is not None else None,
                "open_price": self.open_price, "seconds_left": self.seconds_left, "slug": self.slug}


@dataclass(frozen=True)
class SignalDoc:
    timestamp: float | None        # epoch seconds of the price the document is about
    asset: str | None
    direction: str                 # UP | DOWN | NO_TRADE (anything else is kept, upper-cased)
    confidence: float | None       # the seed's heuristic, 50..95
    prob_up: float | None          # calibrated P(close >= strike)
    price: float | None
    window: SignalWindow | None
    stale: bool
    seq: int | None = None
    source: str | None = None
    basis: dict = field(default_factory=dict)
    strike: float | None = None
    strike_source: str | None = None         # STRIKE_SOURCES, None when no strike is known
    strike_age_s: float | None = None
    reference_price: float | None = None
    reference_source: str | None = None      # REFERENCE_SOURCES
    reference_age_s: float | None = None
    model: str | None = None

    def to_dict(self) -> dict:
        """The schema's fields (ARCHITECTURE.md, plus issue 14's strike and reference), JSON-ready;
        writers add their diagnostics."""
        return {"timestamp": iso_utc(self.timestamp) if self.timestamp is not None else None,
                "direction": self.direction, "confidence": self.confidence, "price": self.price,
                "basis": dict(self.basis), "asset": self.asset, "prob_up": self.prob_up,
                "window": self.window.to_dict() if self.window else None, "source": self.source,
                "seq": self.seq, "stale": self.stale,
                "strike": self.strike, "strike_source": self.strike_source, "strike_age_s": self.strike_age_s,
                "reference_price": self.reference_price, "reference_source": self.reference_source,
                "reference_age_s": self.reference_age_s, "model": self.model}


def parse(data: Any) -> tuple[SignalDoc | None, str | None]:
    """(doc, None), or (None, why) when the document is not a JSON object at all."""
    if not isinstance(data, dict):
        return None, f"corrupt: expected a JSON object, got {type(data).__name__}"
    win = data.get("window")
    window = None
    if isinstance(win, dict):
        window = SignalWindow(_time(win.get("start")), _time(win.get("end")), _num(win.get("open_price")),
                              _num(win.get("seconds_left")),
                              win.get("slug") if isinstance(win.get("slug"), str) else None)
    seq = data.get("seq")
    return SignalDoc(
        timestamp=_time(data.get("timestamp")),
        asset=str(data["asset"]).upper() if isinstance(data.get("asset"), str) else None,
        direction=str(data.get("direction") or "").upper(),
        confidence=_num(data.get("confidence")),
        prob_up=_num(data.get("prob_up")),
        price=_num(data.get("price")),
        window=window,
        stale=data.get("stale") is True,
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
        source=data.get("source") if isinstance(data.get("source"), str) else None,
        basis=data.get("basis") if isinstance(data.get("basis"), dict) else {},
        strike=_num(data.get("strike")),
        strike_source=_choice(data.get("strike_source"), STRIKE_SOURCES),
        strike_age_s=_num(data.get("strike_age_s")),
        reference_price=_num(data.get("reference_price")),
        reference_source=_choice(data.get("reference_source"), REFERENCE_SOURCES),
        reference_age_s=_num(data.get("reference_age_s")),
        model=data.get("model") if isinstance(data.get("model"), str) else None,
    ), None


__all__ = ["DIRECTIONS", "REFERENCE_SOURCES", "STRIKE_SOURCES", "SignalDoc", "SignalWindow", "parse"]
