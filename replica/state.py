"""The replica's state and rules: markets, wallet requests, orders, settlement, faults, snapshots.

All of it lives in memory behind one lock; every change that matters (an order, a settlement,
a fault, a reset) is snapshotted atomically to the optional state file before the caller is
answered, so a replica killed with SIGKILL and restarted still knows every order it accepted.
The HTTP layer (replica.server) only translates requests into these calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import fees
from core.durable_files import atomic_write_json, read_json
from core.window_grid import ASSET_NAMES, Window, window_at

from . import typed_order
from .faults import PAGE_FAULTS, Fault, FaultError, parse_fault
from .pricing import PricePath, window_title
from .resolution import resolution_delay
from .wallet_requests import MAX_EVENTS, OTHER_ORIGIN, OrderError, WalletRequests, parse_amount  # noqa: F401 - re-exported

log = logging.getLogger("replica")

SNAPSHOT_VERSION = 1
MAX_SETTLEMENTS = 500


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


class ReplicaState(WalletRequests):
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

    def _armed(self, kind: str, asset: str, persistent: bool = False) -> bool:
        """A fault of `kind` is armed for `asset` (only a persistent one, with `persistent`)."""
        return any(f.kind == kind and f.matches_asset(asset) and (not persistent or f.mode == "persistent")
                   for f in self.faults)

    def _persistent_unavailable(self, asset: str) -> bool:
        return self._armed("market_unavailable", asset, persistent=True)

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
