"""The replica's state and rules: markets, wallet requests, orders, settlement, faults, snapshots.

All of it lives in memory behind one lock; every change that matters (an order, a settlement,
a fault, a reset) is snapshotted atomically to the optional state file before the caller is
answered, so a replica killed with SIGKILL and restarted still knows every order it accepted.
The HTTP layer (replica.server) only translates requests into these calls.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import fees
from core.durable_files import atomic_write_json, read_json
from core.window_grid import ASSET_NAMES, Window, iso_utc, window_at

from . import typed_order
from .faults import ADVERSARY_KINDS, PAGE_FAULTS, Fault, FaultError, parse_fault
from .pricing import PricePath, window_title
from .resolution import resolution_delay

log = logging.getLogger("replica")

SNAPSHOT_VERSION = 1
MAX_SETTLEMENTS = 500
MAX_EVENTS = 200
MAX_REQUESTS = 500
OTHER_ORIGIN = "https://po1ymarket-rewards.com"
_AMOUNT_RE = re.compile(r"^\$?\s*(\d+(?:\.\d*)?|\.\d+)$")


class OrderError(Exception):
    """An order or wallet request was refused; the message is shown to the user as is."""


@dataclass(frozen=True)
class Settings:
    window_seconds: int = 900
    seed: int = 7
    assets: tuple[str, ...] = ("BTC", "ETH")
    price_to_beat_delay: float = 30.0
    unlock_seconds: float = 900.0
    password: str = "replica"
    fee_rate: float = fees.DEFAULT_FEE_RATE
    fee_exponent: float = fees.DEFAULT_FEE_EXPONENT
    balance: float = 1000.0
    spread: float = 0.01
    request_timeout: float = 90.0
    state_file: Path | None = None
    resolution_delay: float | None = None   # s after a window's end until it resolves (None: replica/resolution.py)


def parse_amount(text: object) -> tuple[float | None, str | None]:
    """(USD amount, None) or (None, why not): the page's and the API's common reading."""
    if isinstance(text, bool):
        return None, "Enter a valid amount"
    if isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str):
        raw = text.strip().replace(",", "")
        if raw.startswith("-") or raw.startswith("$-"):
            return None, "Amount must be positive"
        m = _AMOUNT_RE.match(raw)
        if not m:
            return None, "Enter a valid amount"
        value = float(m.group(1))
    else:
        return None, "Enter a valid amount"
    if not math.isfinite(value):
        return None, "Enter a valid amount"
    if value < 0:
        return None, "Amount must be positive"
    if value == 0:
        return None, "Enter an amount greater than $0"
    return round(value, 2), None


class ReplicaState:
    """Everything the replica knows. Thread-safe; `clock` is injectable for tests."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.s = settings
        self.clock = clock
        self.lock = threading.RLock()
        self.paths = {a: PricePath(a, settings.seed, settings.window_seconds) for a in settings.assets}
        self.unlocked_until = 0.0
        self.requests: dict[str, dict] = {}
        self._highs: dict[tuple[str, str], tuple[float, float]] = {}   # (slug, side) -> (sampled to, high)
        self.wallet_settings = typed_order.WalletSettings.from_env()   # account type, exchange version, alert
        self._fresh()
        self.load()

    # ---- life cycle -------------------------------------------------------------------------------
    def _fresh(self) -> None:
        now = self.clock()
        self.orders: list[dict] = []
        self.settlements: list[dict] = []
        self.events: list[dict] = []
        self.faults: list[Fault] = []
        self.balance = self.s.balance
        self.next_order = 1
        self.next_fault = 1
        self.settled_through = {a: self.window(a, now).start for a in self.s.assets}

    def load(self) -> None:
        if not self.s.state_file:
            return
        res = read_json(self.s.state_file)
        if not res.ok:
            if res.problem != "missing":
                log.warning("state file %s is %s: starting empty; it is overwritten at the next change",
                            self.s.state_file, res.problem)
            return
        data = res.data
        if not isinstance(data, dict) or data.get("version") != SNAPSHOT_VERSION:
            log.warning("state file %s has an unknown layout: starting empty", self.s.state_file)
            return
        self.orders = list(data.get("orders", []))
        self.settlements = list(data.get("settlements", []))
        self.events = list(data.get("events", []))
        self.balance = float(data.get("balance", self.s.balance))
        self.next_order = int(data.get("next_order", len(self.orders) + 1))
        self.next_fault = int(data.get("next_fault", 1))
        self.faults = []
        for f in data.get("faults", []):
            try:
                fault = parse_fault(f, int(f.get("id", 0)), float(f.get("created", 0)), self.s.assets)
            except (FaultError, TypeError, ValueError) as exc:
                log.warning("dropping a saved fault %r: %s", f, exc)
                continue
            fault.fired = int(f.get("fired", 0))
            self.faults.append(fault)
        for asset, start in dict(data.get("settled_through", {})).items():
            if asset in self.settled_through:
                self.settled_through[asset] = int(start)
        log.info("state loaded from %s: %d orders, balance %.2f", self.s.state_file, len(self.orders),
                 self.balance)

    def snapshot(self) -> None:
        """Write the state file atomically (no-op without one). Called with the lock held."""
        if not self.s.state_file:
            return
        with self.lock:
            data = {
                "version": SNAPSHOT_VERSION,
                "saved_at": self.clock(),
                "orders": self.orders,
                "settlements": self.settlements[-MAX_SETTLEMENTS:],
                "events": self.events[-MAX_EVENTS:],
                "balance": self.balance,
                "next_order": self.next_order,
                "next_fault": self.next_fault,
                "faults": [f.to_dict() for f in self.faults],
                "settled_through": self.settled_through,
            }
            atomic_write_json(self.s.state_file, data)

    def reset(self) -> None:
        with self.lock:
            self._fresh()
            self.requests.clear()
            self.unlocked_until = 0.0
            self.wallet_settings = typed_order.WalletSettings.from_env()
            self.snapshot()
        log.info("state reset: orders, settlements, faults and wallet requests cleared; wallet locked, its"
                 " settings back to the defaults")

    # ---- markets ----------------------------------------------------------------------------------
    def window(self, asset: str, now: float) -> Window:
        return window_at(asset, now, self.s.window_seconds)

    def _persistent_unavailable(self, asset: str) -> bool:
        return any(f.kind == "market_unavailable" and f.mode == "persistent" and f.matches_asset(asset)
                   for f in self.faults)

    def market_view(self, asset: str, now: float, start: int | None = None) -> dict:
        """The window at `now` (or the one starting at `start`: an event page's, maybe past or
        listed ahead; a future one is quoted as at its start, a past one is `closed`)."""
        w = self.window(asset, now) if start is None else Window(asset, int(start), self.s.window_seconds)
        q = self.paths[asset].quote(w, min(max(now, w.start), w.end), self.s.spread)
        open_price = self.paths[asset].price(w.start)
        shown = now - w.start >= self.s.price_to_beat_delay
        status = "unavailable" if self._persistent_unavailable(asset) else "open"
        return {
            "asset": asset,
            "name": ASSET_NAMES.get(asset, asset),
            "slug": w.slug,
            "window_start": w.start,
            "window_end": w.end,
            "title": window_title(w),
            "seconds_left": round(w.seconds_left(now), 3),
            "up": q.up,
            "down": q.down,
            "price": q.price,
            "price_to_beat": open_price if shown else None,
            "price_to_beat_at": w.start + self.s.price_to_beat_delay,
            "status": "closed" if now >= w.end else status,
        }

    def markets(self) -> list[dict]:
        now = self.clock()
        with self.lock:
            return [self.market_view(a, now) for a in self.s.assets]

    def page_state(self, event: tuple[str, int] | None = None) -> dict:
        """What the pages render; with `event` (asset, window start), that event page's market too."""
        now = self.clock()
        with self.lock:
            self.settle_due(now)
            out = {
                "now": now,
                "window_seconds": self.s.window_seconds,
                "balance": round(self.balance, 2),
                "markets": [self.market_view(a, now) for a in self.s.assets],
                "orders": [dict(o) for o in reversed(self.orders[-100:])],
                "variant": any(f.kind == "markup_variant" and f.mode == "persistent" for f in self.faults),
                "min_shares": fees.MIN_SHARES,
                "min_notional": fees.MIN_NOTIONAL,
                "fee_rate": self.s.fee_rate,
                "fee_exponent": self.s.fee_exponent,
                # persistent event-page faults, applied live: kind -> assets ("*": every asset)
                "page_faults": {f.kind: f.asset or "*" for f in self.faults
                                if f.mode == "persistent" and f.kind in PAGE_FAULTS},
            }
            if event is not None:
                out["event"] = self.market_view(event[0], now, event[1])
            return out

    # ---- faults -----------------------------------------------------------------------------------
    def add_faults(self, specs: object) -> list[dict]:
        items = specs if isinstance(specs, list) else [specs]
        now = self.clock()
        with self.lock:
            new = []
            for spec in items:
                new.append(parse_fault(spec, self.next_fault + len(new), now, self.s.assets))
            self.next_fault += len(new)
            self.faults.extend(new)
            self.snapshot()
        for f in new:
            log.info("fault armed: %s (%s)", f.kind, f.mode)
        return [f.to_dict() for f in new]

    def list_faults(self) -> list[dict]:
        with self.lock:
            return [f.to_dict() for f in self.faults]

    def clear_faults(self) -> int:
        with self.lock:
            n = len(self.faults)
            self.faults = []
            self.snapshot()
        return n

    def consume(self, fault: Fault) -> bool:
        """Fire this very fault (a one-shot one is removed); False if it is no longer armed."""
        with self.lock:
            if fault not in self.faults:
                return False
            fault.fired += 1
            if fault.mode == "once":
                self.faults.remove(fault)
            self.snapshot()
        log.info("fault fired: %s (%s)", fault.kind, fault.mode)
        return True

    def take_fault(self, kinds: tuple[str, ...] | str, asset: str | None = None) -> Fault | None:
        """The first armed fault of these kinds (for this asset); a one-shot one is consumed."""
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        with self.lock:
            for f in self.faults:
                if f.kind in kinds and (asset is None or f.matches_asset(asset)):
                    self.consume(f)
                    return f
        return None

    # ---- wallet requests (Buy -> popup -> confirm) ------------------------------------------------
    def _expire_requests(self, now: float) -> None:
        for r in self.requests.values():
            if r["status"] == "pending" and now - r["created"] > self.s.request_timeout:
                r["status"] = "expired"
                r["error"] = "The wallet request expired"
        if len(self.requests) > MAX_REQUESTS:   # forget the oldest answered ones (dicts keep insertion order)
            done = [k for k, r in self.requests.items() if r["status"] != "pending"]
            for k in done[:len(self.requests) - MAX_REQUESTS]:
                del self.requests[k]

    def _validate(self, asset: str, amount: float, price: float) -> None:
        why = fees.below_minimum(amount, price)
        if why:
            raise OrderError(f"Minimum order is ${fees.MIN_NOTIONAL:.0f} and {fees.MIN_SHARES:.0f} shares: {why}")
        if amount > self.balance + 1e-9:
            raise OrderError(f"Insufficient balance: ${amount:.2f} asked, ${self.balance:.2f} available")

    def create_request(self, asset: object, side: object, amount_text: object, slug: object,
                       origin: str) -> dict:
        """Buy clicked: validate and open a wallet request (or return the same pending one)."""
        now = self.clock()
        if not isinstance(asset, str) or asset.upper() not in self.paths:
            raise OrderError(f"Unknown market {asset!r}")
        asset = asset.upper()
        if not isinstance(side, str) or side.upper() not in ("UP", "DOWN"):
            raise OrderError(f"Choose Up or Down (got {side!r})")
        side = side.upper()
        amount, why = parse_amount(amount_text)
        if why:
            raise OrderError(why)
        with self.lock:
            self._expire_requests(now)
            market = self.market_view(asset, now)
            if slug is not None and slug != market["slug"]:
                raise OrderError(f"This market has closed ({slug}); the current one is {market['slug']}")
            if market["status"] != "open":
                raise OrderError("Market unavailable")
            price = market["up"] if side == "UP" else market["down"]
            self._validate(asset, amount, price)
            for r in self.requests.values():
                if (r["status"] == "pending" and r["asset"] == asset and r["slug"] == market["slug"]
                        and r["side"] == side and r["amount"] == amount):
                    # The same Buy again (a double click, or after a reload): the same request, and
                    # its popup opens now even if a one-shot fault hid or delayed it the first time.
                    r["popup"], r["popup_delay_ms"] = True, 0
                    return self._intent_answer(r, reused=True)
            for r in self.requests.values():
                if r["status"] == "pending" and r["asset"] == asset:
                    r["status"] = "superseded"
                    r["error"] = "Replaced by a newer request"
            req = {
                "id": f"req-{secrets.token_hex(6)}",
                "asset": asset, "slug": market["slug"], "window_start": market["window_start"],
                "window_end": market["window_end"], "side": side, "amount": amount, "price": price,
                "up": market["up"], "down": market["down"],
                "origin": origin, "created": now, "status": "pending", "order_id": None, "error": None,
                "adversary": None, "popup_delay_ms": 0, "popup": True,
            }
            delay = self.take_fault("popup_delay", asset)
            if delay:
                req["popup_delay_ms"] = delay.ms
            if self.take_fault("popup_never", asset):
                req["popup"] = False
            kinds = ADVERSARY_KINDS
            worse_than = self._window_high(asset, side, market, now) if self._armed(
                "wallet_worse_price", asset) else price
            if worse_than + float(typed_order.WORSE_PRICE_STEP) > 0.99:
                # near 1 a "worse price" cannot be 0.10 worse (prices end at 0.99): that fault waits
                # for a request it can really harm, so what it produces is always an attack
                kinds = tuple(k for k in ADVERSARY_KINDS if k != "wallet_worse_price")
            adv = self.take_fault(kinds, asset)
            req["worse_than"] = max(price, worse_than)
            if adv:
                req["adversary"] = adv.kind
            req["display"] = self._display(req)
            self.requests[req["id"]] = req
            log.info("wallet request %s: %s %s $%.2f at %.2f (%s)", req["id"], asset, side, amount, price,
                     req["adversary"] or "as asked")
            return self._intent_answer(req, reused=False)

    def _armed(self, kind: str, asset: str) -> bool:
        return any(f.kind == kind and f.matches_asset(asset) for f in self.faults)

    def _window_high(self, asset: str, side: str, market: dict, now: float) -> float:
        """The highest ask of `side` the window has quoted up to now (sampled every 0.25 s on the
        deterministic path). A "worse price" attack is 0.10 above it, not above the ask at the click:
        the executor decided on some ask of this window, maybe seconds earlier and higher, and an
        attack within its MAX_SLIPPAGE of that decision is no attack (chaos counted one as confirmed)."""
        w = Window(asset, int(market["window_start"]), self.s.window_seconds)
        key = (w.slug, side)
        t, high = self._highs.get(key, (float(w.start), 0.0))
        path = self.paths[asset]
        while t <= now:       # 0.25 s steps (integer seconds included: the quote's jitter steps there)
            q = path.quote(w, t, self.s.spread)
            high = max(high, q.up if side == "UP" else q.down)
            t += 0.25
        self._highs.pop(key, None)
        self._highs[key] = (t, high)                 # newest last; keep the last 32 (window, side)
        while len(self._highs) > 32:
            del self._highs[next(iter(self._highs))]
        return high

    @staticmethod
    def _intent_answer(req: dict, reused: bool) -> dict:
        return {"ok": True, "request_id": req["id"], "reused": reused,
                "popup": {"open": req["popup"], "delay_ms": req["popup_delay_ms"]}}

    def _display(self, req: dict) -> dict:
        """What the wallet shows (and what confirming signs): the order's typed data in the real shape
        (replica/typed_order.py), or the adversary's request."""
        return typed_order.wallet_request(req, self.wallet_settings, self.s.seed, self.clock(), OTHER_ORIGIN,
                                          self.balance)

    def wallet_view(self, req_id: str | None) -> dict:
        """What the popup shows: the lock screen or the request (the given one, else the latest pending)."""
        now = self.clock()
        with self.lock:
            self._expire_requests(now)
            locked = now >= self.unlocked_until
            req = self.requests.get(req_id or "")
            if req is None:
                pending = [r for r in self.requests.values() if r["status"] == "pending"]
                req = pending[-1] if pending else None
            view = {"locked": locked, "request": None}
            if req is not None:
                view["request"] = {"id": req["id"], "status": req["status"]}
                if not locked:
                    view["request"].update(req["display"])
            return view

    def unlock(self, password: object) -> bool:
        ok = isinstance(password, str) and hmac.compare_digest(password.encode(), self.s.password.encode())
        with self.lock:
            if ok:
                self.unlocked_until = self.clock() + self.s.unlock_seconds
        log.info("wallet unlock %s", "accepted" if ok else "refused: wrong password")
        return ok

    def lock_wallet(self) -> None:
        with self.lock:
            self.unlocked_until = 0.0

    def set_wallet_settings(self, changes: object) -> dict:
        """Change the wallet's account type, exchange version, danger alert or reject button for the
        requests opened from now on; OrderError names a bad value."""
        with self.lock:
            try:
                self.wallet_settings = self.wallet_settings.updated(changes)
            except ValueError as exc:
                raise OrderError(str(exc)) from None
            log.info("wallet settings: %s", self.wallet_settings.to_dict())
            return self.wallet_settings.to_dict()

    def _pending(self, req_id: object) -> dict:
        req = self.requests.get(req_id) if isinstance(req_id, str) else None
        if req is None:
            raise OrderError(f"No such wallet request {req_id!r}")
        if req["status"] != "pending":
            raise OrderError(f"The wallet request is already {req['status']}")
        if self.clock() >= self.unlocked_until:
            raise OrderError("The wallet is locked")
        return req

    def _event(self, req: dict, action: str) -> None:
        self.events.append({"time": self.clock(), "request_id": req["id"], "action": action,
                            "adversary": req["adversary"], "asset": req["asset"], "slug": req["slug"],
                            "display": req["display"]})
        del self.events[:-MAX_EVENTS]

    def reject(self, req_id: object) -> dict:
        with self.lock:
            self._expire_requests(self.clock())
            req = self._pending(req_id)
            req["status"] = "rejected"
            req["error"] = "Order cancelled"
            self._event(req, "rejected")
            self.snapshot()
        log.info("wallet request %s rejected in the wallet", req["id"])
        return {"ok": True, "status": "rejected"}

    def confirm(self, req_id: object) -> dict:
        """The wallet signed: place the order it signed (or record what the adversary got)."""
        now = self.clock()
        with self.lock:
            self._expire_requests(now)
            req = self._pending(req_id)
            self._event(req, "confirmed")
            shown = req["display"]
            signed = typed_order.signed_order(shown, req, self.s.seed)
            if shown["origin"] != req["origin"]:
                signed = "Order not placed: the wallet signed a request from another site"
            if isinstance(signed, str):
                if shown.get("transaction"):
                    self.balance = max(0.0, self.balance - float(shown["transaction"]["value_usd"]))
                req["status"] = "failed"
                req["error"] = signed
                self.snapshot()
                log.warning("wallet request %s: %s was SIGNED: %s", req["id"], req["adversary"] or "the request",
                            signed)
                return {"ok": True, "status": "failed", "error": signed}
            try:
                if now >= req["window_end"]:
                    raise OrderError(f"Market closed: the window {req['slug']} ended")
                if self._persistent_unavailable(req["asset"]):
                    raise OrderError("Market unavailable")
                rejected = self.take_fault("order_reject", req["asset"])
                if rejected:
                    raise OrderError(rejected.message or "Order rejected by the venue: please try again")
                side, amount = signed                       # placed as signed, at that side's ask
                price = req["up"] if side == "UP" else req["down"]
                self._validate(req["asset"], amount, price)
            except OrderError as exc:
                req["status"] = "failed"
                req["error"] = str(exc)
                self.snapshot()
                log.info("wallet request %s failed: %s", req["id"], exc)
                return {"ok": True, "status": "failed", "error": str(exc)}
            order = self._place(req, side, amount, price, now)
            req["status"] = "confirmed"
            req["order_id"] = order["id"]
            self.snapshot()
        log.info("order %s placed: %s %s $%.2f at %.2f, %.4f shares, fee %.4f shares", order["id"],
                 order["asset"], side, amount, price, order["shares"], order["fee_shares"])
        return {"ok": True, "status": "confirmed", "order_id": order["id"]}

    def _place(self, req: dict, side: str, amount: float, price: float, now: float) -> dict:
        fill = fees.buy(amount, price, self.s.fee_rate, self.s.fee_exponent)
        order = {
            "id": f"ORD-{self.next_order:06d}",
            "asset": req["asset"], "window_start": req["window_start"], "window_end": req["window_end"],
            "slug": req["slug"], "side": side, "amount": amount, "price": price,
            "title": window_title(Window(req["asset"], req["window_start"], req["window_end"] - req["window_start"])),
            "shares": fill.shares, "gross_shares": fill.gross_shares,
            "fee": fill.fee_usd, "fee_shares": fill.fee_shares,
            "time": now, "time_iso": iso_utc(now), "status": "filled", "result": None, "payout": None,
            "pnl": None, "open_price": None, "close_price": None, "request_id": req["id"],
            "origin": req["display"]["origin"],
        }
        self.next_order += 1
        self.balance -= amount
        self.orders.append(order)
        return order

    def request_status(self, req_id: str) -> dict | None:
        """What the page needs to show the outcome of its Buy."""
        with self.lock:
            self._expire_requests(self.clock())
            req = self.requests.get(req_id)
            if req is None:
                return None
            out = {"id": req["id"], "status": req["status"], "order_id": req["order_id"], "error": req["error"]}
            if req["order_id"]:
                out["order"] = next((dict(o) for o in self.orders if o["id"] == req["order_id"]), None)
            return out

    def wallet_summary(self) -> dict:
        with self.lock:
            now = self.clock()
            self._expire_requests(now)
            return {"locked": now >= self.unlocked_until,
                    "unlocked_for": max(0.0, round(self.unlocked_until - now, 3)),
                    "requests": [{k: v for k, v in r.items()} for r in self.requests.values()],
                    "events": list(self.events)}

    # ---- settlement -------------------------------------------------------------------------------
    def settle_due(self, now: float | None = None) -> int:
        """Settle every window (and every order in it) whose market has resolved (its end plus the
        resolution delay, as the APIs publish it); returns how many orders."""
        now = self.clock() if now is None else now
        delay = resolution_delay(self.s)
        changed = 0
        with self.lock:
            for asset in self.s.assets:
                start = self.settled_through[asset]
                length = self.s.window_seconds
                current = self.window(asset, now).start
                if (current - start) // length > MAX_SETTLEMENTS:
                    start = current - MAX_SETTLEMENTS * length
                while start + length + delay <= now:
                    w = Window(asset, start, length)
                    o, c = self.paths[asset].open_close(w)
                    self.settlements.append({"asset": asset, "window_start": w.start, "window_end": w.end,
                                             "slug": w.slug, "open": o, "close": c,
                                             "outcome": "UP" if fees.up_wins(o, c) else "DOWN",
                                             "resolved_at": w.end + delay, "settled_at": now})
                    start += length
                    changed += 1
                self.settled_through[asset] = start
            del self.settlements[:-MAX_SETTLEMENTS]
            n_orders = 0
            for order in self.orders:
                if order["status"] == "filled" and order["window_end"] + delay <= now:
                    self._settle_order(order)
                    n_orders += 1
            if changed or n_orders:
                self.snapshot()
        return n_orders

    def _settle_order(self, order: dict) -> None:
        w = Window(order["asset"], order["window_start"], order["window_end"] - order["window_start"])
        o, c = self.paths[order["asset"]].open_close(w) if order["asset"] in self.paths else (0.0, 0.0)
        fill = fees.Fill(order["amount"], order["price"], order["gross_shares"], order["fee_shares"],
                         order["shares"])
        res = fees.settle(fill, order["side"], o, c)
        order.update({"status": "settled", "result": res["outcome"], "payout": res["payout"],
                      "pnl": res["pnl"], "open_price": o, "close_price": c})
        self.balance += res["payout"]
        log.info("order %s settled: %s (open %s, close %s), payout %.4f", order["id"], res["outcome"], o, c,
                 res["payout"])
