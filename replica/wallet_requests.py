"""The replica's wallet requests: Buy -> popup (MetaMask 13's signature page, maybe an adversary's
request) -> confirm or reject -> order. A mixin of replica.state.ReplicaState: its lock, clock,
settings, faults, balance and orders are the state's own."""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets

from core import fees
from core.window_grid import Window, iso_utc

from . import typed_order
from .faults import ADVERSARY_KINDS
from .pricing import window_title

log = logging.getLogger("replica")

MAX_REQUESTS = 500
MAX_EVENTS = 200
_AMOUNT_RE = re.compile(r"^\$?\s*(\d+(?:\.\d*)?|\.\d+)$")
OTHER_ORIGIN = "https://po1ymarket-rewards.com"


class OrderError(Exception):
    """An order or wallet request was refused; the message is shown to the user as is."""


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


class WalletRequests:
    """ReplicaState's wallet-request methods (see the module's doc)."""

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
