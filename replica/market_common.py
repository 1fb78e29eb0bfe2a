"""What the replica's Gamma and CLOB answers share (replica/market_api.py routes them): the replies, the
deterministic ids, the window of a slug or a token id, and a window's state (quote, resolution)."""

from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from core import fees
from core.window_grid import Window, parse_slug, window_slug

from . import resolution as rules
from .pricing import MIN_PRICE, TICK
from .state import ReplicaState

DEFAULT_RESOLUTION_DELAY = rules.DEFAULT_RESOLUTION_DELAY   # seconds after the end (real: median ~28 s)
RESOLUTION_DELAY_ENV = rules.RESOLUTION_DELAY_ENV
LISTED_AHEAD = 4                  # windows listed (and resolvable by slug) ahead of the current one
LOOKBACK_WINDOWS = 500            # token/condition ids found by search this far back
BOOK_LEVELS = 5
CLOB_VERSION = 2
BASE_FEE_BPS = 1000               # the `base_fee` flag of fee-enabled markets (py-clob-client-v2 tests)
REBATE_RATE = 0.25
MIN_ORDER_SIZE = 5


class Reply(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: dict


def json_reply(obj: object, status: int = 200, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(obj).encode(), "application/json", headers or {})


def error_reply(status: int, message: str) -> Reply:
    return json_reply({"error": message}, status)


# ---- identities ---------------------------------------------------------------------------------
def digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


def token_id(seed: int, slug: str, outcome: str) -> str:
    """A deterministic uint256 as a decimal string (the real ids look the same: ~77 digits)."""
    return str(int.from_bytes(digest("replica-token", seed, slug, outcome), "big"))


def condition_id(seed: int, slug: str) -> str:
    return "0x" + digest("replica-condition", seed, slug).hex()


def small_id(seed: int, slug: str, kind: str) -> str:
    return str(100_000 + int.from_bytes(digest(kind, seed, slug)[:4], "big") % 9_000_000)


def resolution_delay(state: ReplicaState) -> float:
    """Seconds from a window's end to its published resolution (replica/resolution.py: the same
    rule settles the replica's own orders): Settings.resolution_delay (`--resolution-delay`), else
    $REPLICA_RESOLUTION_DELAY, else min(28, window / 4)."""
    return rules.resolution_delay(state.s)


class Lookup:
    """token id / condition id -> (window, outcome), found by search over the replica's windows."""

    def __init__(self, state: ReplicaState):
        self.state = state
        self.tokens: dict[str, tuple[Window, str]] = {}
        self.conditions: dict[str, Window] = {}

    def remember(self, w: Window) -> None:
        seed = self.state.s.seed
        for outcome in ("Up", "Down"):
            self.tokens[token_id(seed, w.slug, outcome)] = (w, outcome)
        self.conditions[condition_id(seed, w.slug)] = w
        if len(self.tokens) > 8 * LOOKBACK_WINDOWS:   # bounded: forget all, the search rebuilds it
            self.tokens.clear()
            self.conditions.clear()
            self.remember(w)

    def _search(self) -> None:
        st = self.state
        now = st.clock()
        length = st.s.window_seconds
        for asset in st.s.assets:
            current = st.window(asset, now)
            for k in range(-LOOKBACK_WINDOWS, LISTED_AHEAD + 1):
                self.remember(Window(asset, current.start + k * length, length))

    def token(self, tid: str) -> tuple[Window, str] | None:
        if tid not in self.tokens:
            self._search()
        return self.tokens.get(tid)

    def condition(self, cid: str) -> Window | None:
        if cid not in self.conditions:
            self._search()
        return self.conditions.get(cid)


LOOKUPS: dict[int, Lookup] = {}


def lookup(state: ReplicaState) -> Lookup:
    found = LOOKUPS.get(id(state))
    if found is None or found.state is not state:
        found = Lookup(state)
        LOOKUPS[id(state)] = found
    return found


# ---- the market's life ------------------------------------------------------------------------
def window_for_slug(state: ReplicaState, slug: str) -> Window | None:
    """The replica's window for this slug, or None (unknown asset, other grid, not listed yet)."""
    try:
        asset, start = parse_slug(slug)
    except ValueError:
        return None
    length = state.s.window_seconds
    if asset not in state.paths or start % length or window_slug(asset, start, length) != slug:
        return None
    if start > state.window(asset, state.clock()).start + LISTED_AHEAD * length:
        return None
    return Window(asset, start, length)


class Status(NamedTuple):
    now: float
    resolved: bool
    winner: str | None          # "Up" / "Down" once resolved
    up_ask: float
    down_ask: float
    open_price: float
    close_price: float | None


def status_of(state: ReplicaState, w: Window) -> Status:
    now = state.clock()
    path = state.paths[w.asset]
    q = path.quote(w, min(max(now, w.start), w.end), state.s.spread)   # a listed future window: fair 0.5
    resolved = now >= w.end + resolution_delay(state)
    o, c = path.open_close(w)
    winner = ("Up" if fees.up_wins(o, c) else "Down") if resolved else None
    return Status(now, resolved, winner, q.up, q.down, o, c if now >= w.end else None)


def bid_ask(s: Status, outcome: str) -> tuple[float | None, float]:
    """This outcome's best bid and ask: ask = the page's price, bid = 1 - the other side's ask,
    kept one tick below the ask (None: no bid above the minimum price)."""
    ask = s.up_ask if outcome == "Up" else s.down_ask
    bid = min(round(1.0 - (s.down_ask if outcome == "Up" else s.up_ask), 2), round(ask - TICK, 2))
    return (bid if bid >= MIN_PRICE else None), ask
