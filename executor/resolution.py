"""Settlement from the market's own resolution, for every venue (paper, demo and live).

    watch = ResolutionWatch(view, cfg, clock)          # or ResolutionWatch.of(view, cfg): one per view
    watch.result(fill, fallback, "feed")               # the `settled` fields, or None: not yet

A filled trade whose window has ended settles from what the market says (MarketData.resolution:
CLOB `winner`, else Gamma `closed` with `outcomePrices`):
- a winner: `outcome` won/lost for the side bought (its `token_id` when the fill names one),
  `payout` = the fill's shares if won else 0, `pnl` = payout - amount, `fee` = the fill's (USD).
  The fee was taken in shares at the fill, so the shares are net of it and the pnl includes it
  (core.fees.buy/settle: the same contract as before). `resolution: "market"`, `estimated: false`.
- no winner yet: None; the settler asks again (every 2 s).
- still none RESOLUTION_WAIT seconds after the window's end (or the APIs cannot be read): the
  venue's own estimate, `fallback()` (the feed's prices in paper, the orders panel in demo and
  live), marked `estimated: true`, `resolution: "feed" | "panel"`, with `resolution_problem`
  saying why; None while the fallback has no answer either (the market is still asked).

The market is asked off the trading loop: a poller thread with its own HTTP session asks, every
POLL_S, for the windows the settler is waiting for, and `result` only reads what it found, so a
slow or down API never delays an order. The thread runs while some window is awaited and ends
FORGET_AFTER_S after the last one is settled or forgotten. API errors are logged once per window;
after an outage (down, slow, 429, 403) the APIs are left alone for ERROR_BACKOFF_S (or the 429's
Retry-After), and after another error for that window only that window waits as long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from core import fees
from core.market_shapes import ApiForbidden, ApiMalformed, ApiUnavailable, Market, MarketDataError, Resolution
from executor.market_data import MarketData
from executor.market_view import MarketView

log = logging.getLogger("executor.resolution")

POLL_S = 2.0
ERROR_BACKOFF_S = 5.0
FORGET_AFTER_S = 30.0        # a window the settler stopped asking about this long ago is no longer polled
MEMORY = 256                 # windows whose answers, problems and log lines are remembered (bounded)
Key = tuple[str, int]
Fallback = Callable[[], "dict | None"]


def kept_shares(fill: dict, cfg) -> float | None:
    """The fill's shares (net of the fee), or the shares `fees.buy` gives for its amount and price
    with the configured fee when the fill did not record them; None when neither is known."""
    shares = fill.get("shares")
    if isinstance(shares, (int, float)) and not isinstance(shares, bool) and shares >= 0:
        return float(shares)
    amount, price = float(fill.get("amount") or 0), float(fill.get("price") or 0)
    if amount > 0 and 0 < price < 1:
        return fees.buy(amount, price, cfg.fee_rate, cfg.fee_exponent).shares
    return None


def fill_fee(fill: dict, cfg) -> float | None:
    fee = fill.get("fee")
    if isinstance(fee, (int, float)) and not isinstance(fee, bool):
        return round(float(fee), 6)
    amount, price = float(fill.get("amount") or 0), float(fill.get("price") or 0)
    return round(fees.buy(amount, price, cfg.fee_rate, cfg.fee_exponent).fee_usd, 6) if amount > 0 and 0 < price < 1 \
        else None


def settle_fields(fill: dict, won: bool, cfg) -> dict | None:
    """outcome, payout, fee, pnl of a filled buy that won or lost; None when a win cannot be paid
    out because the fill's shares are unknown."""
    shares = kept_shares(fill, cfg)
    if won and shares is None:
        return None
    payout = shares if won else 0.0
    return {"outcome": "won" if won else "lost", "payout": round(payout, 6), "fee": fill_fee(fill, cfg),
            "pnl": round(payout - float(fill.get("amount") or 0), 6)}


def side_bought(fill: dict, market: Market) -> str:
    """UP or DOWN: the token bought when the fill names it (checked against its side), else the side."""
    side = str(fill.get("side") or "").upper()
    token = fill.get("token_id")
    if token:
        by_token = market.side_of(str(token))
        if by_token is None:
            raise ApiMalformed(f"the fill's token {str(token)[:24]}... is neither token of {market.slug}")
        if side and side != by_token:
            raise ApiMalformed(f"the fill's token is {market.slug}'s {by_token} token, its side says {side}")
        return by_token
    if side not in ("UP", "DOWN"):
        raise ApiMalformed(f"the fill's side {side!r} is neither UP nor DOWN")
    return side


class ResolutionWatch:
    def __init__(self, view: MarketView, cfg, clock: Callable[[], float] = time.time):
        self.cfg, self.clock = cfg, clock
        self.window_seconds = view.window_seconds
        md = view.md
        self._api = (md.gamma_base, md.clob_base, md.timeout)
        self._lock = threading.Lock()
        self._wanted: dict[Key, float] = {}                        # window -> when the settler last asked
        self._found: OrderedDict[Key, tuple[Market, Resolution]] = OrderedDict()   # resolved windows
        self._problem: dict[Key, str] = {}
        self._retry_at: dict[Key, float] = {}
        self._quiet_until = 0.0
        self._logged: OrderedDict[tuple, None] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.asked: Counter[Key] = Counter()                       # answers (or errors) per window, for status/tests

    @classmethod
    def of(cls, view: MarketView, cfg, clock: Callable[[], float] = time.time) -> ResolutionWatch:
        """The one watch of this view (its memory lives as long as the view)."""
        if not isinstance(view.resolution_watch, cls):
            view.resolution_watch = cls(view, cfg, clock)
        return view.resolution_watch

    # ---- the settler's side (the executor's loop: never waits on the network) ------------------
    def result(self, fill: dict, fallback: Fallback, fallback_name: str) -> dict | None:
        key = (str(fill.get("asset")), int(fill["window_start"]))
        with self._lock:
            found = self._found.get(key)
            self._wanted[key] = time.monotonic()
        if found is None:
            self._ensure_poller()
        else:
            got = self._from_market(fill, key, *found)
            if got is not None:
                return got
        wait = float(self.cfg.resolution_wait)
        if self.clock() < key[1] + self.window_seconds + wait:
            return None
        estimate = fallback()
        if estimate is None:
            self._once(key, "no-estimate", "%s %s: no resolution from the market %gs after the window's end, and no"
                       " %s result yet: still waiting", key[0], key[1], wait, fallback_name)
            return None
        with self._lock:
            why = self._problem.get(key) or f"the market had not resolved {wait:g}s after the window's end"
        log.warning("%s %s (%s): settling from the %s, marked estimated: %s", key[0], key[1], fill.get("trade_id"),
                    fallback_name, why)
        self._forget(key)
        return {**estimate, "estimated": True, "resolution": fallback_name, "resolution_problem": why}

    def _from_market(self, fill: dict, key: Key, market: Market, res: Resolution) -> dict | None:
        try:
            side = side_bought(fill, market)
            fields = settle_fields(fill, res.winner == side, self.cfg)
            if fields is None:
                raise ApiMalformed("the fill records no shares (nor an amount and price) to pay out")
        except ApiMalformed as exc:
            with self._lock:
                self._problem[key] = f"{exc.kind}: {exc}"
            self._once(key, "fill", "%s %s (%s): the market resolved %s but this fill cannot be settled from it (%s)",
                       key[0], key[1], fill.get("trade_id"), res.winner, exc)
            return None
        log.info("%s %s (%s): the market resolved %s (%s)", key[0], key[1], fill.get("trade_id"), res.winner,
                 res.source)
        self._forget(key)
        return {**fields, "winner": res.winner, "resolution": "market", "resolution_source": res.source,
                "estimated": False}

    def known(self, asset: str, start: int) -> Resolution | None:
        with self._lock:
            found = self._found.get((asset, int(start)))
        return found[1] if found else None

    def stop(self) -> None:
        """End the poller (it starts again when a window is awaited)."""
        self._stop.set()

    # ---- the poller ------------------------------------------------------------------------------
    def _ensure_poller(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._poll, args=(self._stop,), name="resolution-poller",
                                            daemon=True)
            self._thread.start()

    def _poll(self, stop: threading.Event) -> None:
        view = MarketView(MarketData(*self._api[:2], timeout=self._api[2]), self.window_seconds)
        try:
            while not stop.is_set():
                keys = self._due()
                if keys is None:
                    return
                for key in keys:
                    if stop.is_set() or not self._ask(view, key):
                        break
                stop.wait(POLL_S)
        finally:
            view.close()

    def _due(self) -> list[Key] | None:
        """The windows to ask about now; None when none is awaited any more (the poller ends)."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k, seen in self._wanted.items() if now - seen > FORGET_AFTER_S]:
                del self._wanted[key]
            if not self._wanted:
                self._thread = None
                return None
            if now < self._quiet_until:
                return []
            return [k for k in self._wanted if k not in self._found and now >= self._retry_at.get(k, 0.0)]

    def _ask(self, view: MarketView, key: Key) -> bool:
        """Ask the market about one window; False when the API as a whole is failing (stop this pass)."""
        try:
            market = view.market(*key)
            res = view.md.resolution(market)
        except MarketDataError as exc:
            self._failed(key, exc)
            return not isinstance(exc, (ApiUnavailable, ApiForbidden))
        with self._lock:
            self.asked[key] += 1
            self._problem.pop(key, None)
            if res.winner is not None:
                self._found[key] = (market, res)
                while len(self._found) > MEMORY:
                    self._found.popitem(last=False)
        return True

    def _failed(self, key: Key, exc: MarketDataError) -> None:
        now = time.monotonic()
        backoff = ERROR_BACKOFF_S
        if isinstance(exc, ApiUnavailable) and exc.retry_after:
            backoff = max(backoff, exc.retry_after)
        with self._lock:
            self.asked[key] += 1
            self._problem[key] = f"{exc.kind}: {exc}"
            if isinstance(exc, (ApiUnavailable, ApiForbidden)):
                self._quiet_until = now + backoff       # the API as a whole: leave it alone a moment
            else:
                self._retry_at[key] = now + backoff     # this window's answer: ask again later
            for memo in (self._problem, self._retry_at, self.asked):
                while len(memo) > MEMORY:
                    memo.pop(next(iter(memo)))
        self._once(key, "error", "%s %s: cannot read the market's resolution (%s); still waiting (asking again in"
                   " %gs, logged once per window)", key[0], key[1], f"{exc.kind}: {exc}", backoff)

    # ---- bookkeeping -------------------------------------------------------------------------------
    def _once(self, key: Key, what: str, msg: str, *args: object) -> None:
        with self._lock:
            if (key, what) in self._logged:
                return
            self._logged[(key, what)] = None
            while len(self._logged) > MEMORY:
                self._logged.popitem(last=False)
        log.warning(msg, *args)

    def _forget(self, key: Key) -> None:
        """A window settled: stop polling it (what the market said stays known, bounded)."""
        with self._lock:
            for memo in (self._wanted, self._problem, self._retry_at):
                memo.pop(key, None)
