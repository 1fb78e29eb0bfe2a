"""The risk book: guards that halt trading or skip a window, persisted so no restart clears them.

State lives in `<STATE_DIR>/risk.json`. Every method is one read-modify-write under a file
lock (`risk.json.lock`) with an atomic replace, so `python -m risk resume` (another process)
can run while the executor trades and neither loses the other's update. Halts, resumes and
day roll-overs are also appended to `<LOG_DIR>/risk.jsonl` (the journal).

Guards:
- daily loss (`MAX_DAILY_LOSS`): a loss that takes today's P&L to -limit or below halts;
- consecutive losses (`MAX_CONSECUTIVE_LOSSES`): the Nth loss in a row halts;
  both halts stay until `resume`, or until the next UTC day when `RESUME_NEXT_DAY=1`;
- trades a day (`MAX_TRADES_PER_DAY`), open exposure (`MAX_OPEN_EXPOSURE`, the sum of filled
  and not yet settled amounts) and the cooldown between trades (`COOLDOWN_SECONDS`) skip a
  window without halting.
Days are UTC days (`core.window_grid.utc_day`).
"""

from __future__ import annotations

import copy
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from core.config import Config
from core.durable_files import LOCK_TIMEOUT_S, append_jsonl, atomic_write_json, read_json, read_jsonl
from core.window_grid import iso_utc, parse_iso_utc, utc_day

log = logging.getLogger("risk.guards")

STATE_VERSION = 1
STATE_NAME = "risk.json"
JOURNAL_NAME = "risk.jsonl"
SETTLED_MEMORY = 2000  # trade ids remembered to make on_settled idempotent
AUTO_RESUMABLE = ("daily_loss", "consecutive_losses")
EPS = 1e-9
LOCK_POLL_S = 0.005  # transactions last ~1-3 ms: poll often so a waiting `resume` is not starved


def _fresh_state(day: str) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "day": day,
        "trades_today": 0,
        "wins": 0,
        "losses": 0,
        "pnl_today": 0.0,
        "fees_today": 0.0,
        "consecutive_losses": 0,
        "last_trade_at": None,
        "halted": False,
        "halt_reason": None,
        "halt_kind": None,
        "halted_at": None,
        "halt_day": None,
        "halt_streak": None,   # the losing streak when the halt tripped (settlements may move it after)
        "open": {},
        "settled_ids": [],
    }


_TYPES: dict[str, tuple[type, ...]] = {
    "day": (str,), "trades_today": (int,), "wins": (int,), "losses": (int,),
    "pnl_today": (int, float), "fees_today": (int, float), "consecutive_losses": (int,),
    "halted": (bool,), "open": (dict,), "settled_ids": (list,),
}


def _validate(data: dict) -> str | None:
    for key, types in _TYPES.items():
        if key in data and not isinstance(data[key], types):
            return f"field {key!r} has type {type(data[key]).__name__}"
    return None


def _norm_window_start(value: Any) -> Any:
    """Window starts as epoch seconds (int) whether given as a number, digits or ISO text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            return int(parse_iso_utc(text))
        except ValueError:
            return text
    return value


def state_path(cfg: Config) -> Path:
    """Where the risk book's cached state lives (the one place that names it)."""
    return Path(cfg.state_dir) / STATE_NAME


def _open_exposure(state: dict) -> float:
    return float(sum(float(p.get("amount", 0.0)) for p in state["open"].values()))


def record(journal: list[dict], now: float, mode: str, event: str, **fields: Any) -> None:
    journal.append({"ts": iso_utc(now), "event": event, "mode": mode, **fields})


def set_halt(state: dict, reason: str, kind: str, now: float, journal: list[dict], mode: str,
             quiet: bool = False) -> None:
    """`quiet`: a replay re-deriving a past halt (risk/replay.py): no HALTED line in the log."""
    state.update(halted=True, halt_reason=reason, halt_kind=kind, halted_at=now, halt_day=utc_day(now),
                 halt_streak=state.get("consecutive_losses"))
    record(journal, now, mode, "halt", kind=kind, reason=reason)
    if not quiet:
        log.warning("HALTED (%s): %s", kind, reason)


def halt_applies(state: dict, kind: str) -> bool:
    """A new halt takes effect unless already halted; one only `resume` clears (an error, a broken
    state) supersedes one the new day would clear (daily loss, losing streak)."""
    if not state["halted"]:
        return True
    return kind not in AUTO_RESUMABLE and state.get("halt_kind") in AUTO_RESUMABLE


def clear_halt(state: dict) -> None:
    state.update(halted=False, halt_reason=None, halt_kind=None, halted_at=None, halt_day=None,
                 halt_streak=None, consecutive_losses=0)


def roll(state: dict, now: float, journal: list[dict], cfg: Config) -> None:
    """Start a new UTC day's counters (and clear an auto-resumable halt when RESUME_NEXT_DAY=1)."""
    day = utc_day(now)
    if day <= state["day"]:
        return  # same day, or the clock went back: never roll backwards
    record(journal, now, cfg.mode, "day_rollover", previous_day=state["day"], day=day,
           trades=state["trades_today"], wins=state["wins"], losses=state["losses"],
           pnl=round(state["pnl_today"], 6), fees=round(state["fees_today"], 6))
    state.update(day=day, trades_today=0, wins=0, losses=0, pnl_today=0.0, fees_today=0.0)
    if (state["halted"] and cfg.resume_next_day and state.get("halt_kind") in AUTO_RESUMABLE
            and (state.get("halt_day") or "") < day):
        record(journal, now, cfg.mode, "auto_resume", cleared=state["halt_reason"],
               halted_at=state["halted_at"], reason="new UTC day and RESUME_NEXT_DAY=1")
        log.warning("halt cleared by the new UTC day %s (RESUME_NEXT_DAY=1): was %s", day, state["halt_reason"])
        clear_halt(state)


def apply_fill(st: dict, trade_id: str, asset: str, window_start: Any, side: str, amount: float, price: float,
               shares: float, fee: float, now: float) -> bool:
    """Count a fill (open exposure, today's trades, cooldown); False if already counted."""
    if trade_id in st["open"] or trade_id in st["settled_ids"]:
        return False
    st["open"][trade_id] = {
        "asset": asset.upper(), "window_start": _norm_window_start(window_start),
        "side": side.upper(), "amount": float(amount), "price": float(price),
        "shares": float(shares), "fee": float(fee), "filled_at": now,
    }
    st["trades_today"] += 1
    st["fees_today"] += float(fee)
    st["last_trade_at"] = now
    return True


def apply_settled(st: dict, cfg: Config, trade_id: str, pnl: float, now: float, outcome: str | None,
                  journal: list[dict], quiet: bool = False) -> tuple[bool, str | None]:
    """Book a settlement: (counted, the halt reason if it tripped a halt). `quiet`: a replay (no log line)."""
    if trade_id in st["settled_ids"]:
        return False, None
    if st["open"].pop(trade_id, None) is None:
        log.warning("settlement of %s without a known fill: P&L counted, no exposure to release", trade_id)
    st["settled_ids"] = (st["settled_ids"] + [trade_id])[-SETTLED_MEMORY:]
    pnl = float(pnl)
    st["pnl_today"] += pnl
    won = outcome == "won" if outcome in ("won", "lost") else (pnl > 0 if pnl != 0 else None)
    if won is True:
        st["wins"] += 1
        st["consecutive_losses"] = 0
    elif won is False:
        st["losses"] += 1
        st["consecutive_losses"] += 1
    if won is not False or st["halted"]:
        return True, None
    breach = limit_breach(st, cfg)
    if breach is None:
        return True, None
    set_halt(st, breach[0], breach[1], now, journal, cfg.mode, quiet=quiet)
    return True, breach[0]


def limit_breach(st: dict, cfg: Config) -> tuple[str, str] | None:
    """(reason, kind) when today's P&L or the losing streak is at its limit, else None."""
    if st["pnl_today"] <= -cfg.max_daily_loss + EPS:
        return (f"daily loss limit: today's P&L ${st['pnl_today']:.2f} reached MAX_DAILY_LOSS"
                f" ${cfg.max_daily_loss:.2f} (UTC day {st['day']})"), "daily_loss"
    if st["consecutive_losses"] >= cfg.max_consecutive_losses:
        return (f"{st['consecutive_losses']} consecutive losses"
                f" (MAX_CONSECUTIVE_LOSSES={cfg.max_consecutive_losses})"), "consecutive_losses"
    return None


class RiskBook:
    """Guard state shared by the executor (check/on_fill/on_settled) and `python -m risk`."""

    def __init__(self, cfg: Config, clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.clock = clock
        self.path = state_path(cfg)
        self.journal_path = Path(cfg.log_dir) / JOURNAL_NAME

    # ---- persistence -------------------------------------------------------------------
    def _load(self, now: float, journal: list[dict]) -> tuple[dict, bool]:
        """(state, must_save): a fresh or repaired state must be written even if unchanged."""
        res = read_json(self.path)
        if res.problem == "missing":
            # risk.json is a cache: gone (deleted while running, a first start), it is what the journals
            # imply, never a fresh book that would forget today's losses or a halt.
            from risk.replay import derive_state  # here: risk.replay builds on this module

            state = derive_state(self.cfg, read_jsonl(self.cfg.trades_path), read_jsonl(self.journal_path), now)
            if state["trades_today"] or state["halted"] or state["open"] or state["settled_ids"]:
                log.warning("%s was missing: rebuilt from %s and %s", self.path, self.cfg.trades_path.name,
                            self.journal_path.name)
            return state, True
        problem = res.problem or _validate(res.data or {})
        if problem is None and res.data is not None:
            state = _fresh_state(utc_day(now))
            state.update(res.data)
            return state, False
        # Unreadable guard state: never trade on a guess. Keep a copy, start halted.
        copy_path = self.path.with_name(f"{STATE_NAME}.corrupt-{int(now)}")
        try:
            shutil.copy2(self.path, copy_path)
            where = f"a copy is at {copy_path}"
        except OSError as exc:
            where = f"could not keep a copy ({exc.strerror or exc})"
        reason = (f"risk state {self.path} was unreadable ({problem}); {where}; "
                  f"check it, then run ./supervisor.sh resume")
        log.error("%s: starting HALTED with fresh counters", reason)
        state = _fresh_state(utc_day(now))
        self._set_halt(state, reason, "state", now, journal)
        return state, True

    @contextmanager
    def _txn(self, now: float) -> Iterator[tuple[dict, list[dict]]]:
        """Lock, load, roll the day over, let the caller mutate, save if changed, journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        journal: list[dict] = []
        lock = FileLock(str(self.path) + ".lock", timeout=LOCK_TIMEOUT_S, mode=0o600)
        with lock.acquire(poll_interval=LOCK_POLL_S):
            state, must_save = self._load(now, journal)
            before = copy.deepcopy(state)
            self._roll(state, now, journal)
            yield state, journal
            if must_save or state != before:
                atomic_write_json(self.path, state)
            for record in journal:
                try:
                    append_jsonl(self.journal_path, record)
                except OSError as exc:
                    # The state file (above) is what guards rely on; the journal is the record.
                    log.error("could not append %s to the risk journal %s (%s); state is saved, going on",
                              record.get("event"), self.journal_path, exc)

    # ---- state transitions (pure functions of the state, shared with risk.replay) --------
    def _record(self, journal: list[dict], now: float, event: str, **fields: Any) -> None:
        record(journal, now, self.cfg.mode, event, **fields)

    def _set_halt(self, state: dict, reason: str, kind: str, now: float, journal: list[dict]) -> None:
        set_halt(state, reason, kind, now, journal, self.cfg.mode)

    def _roll(self, state: dict, now: float, journal: list[dict]) -> None:
        roll(state, now, journal, self.cfg)

    @staticmethod
    def _clear_halt(state: dict) -> None:
        clear_halt(state)

    # ---- the interface -------------------------------------------------------------------
    def check(self, asset: str, window_start: Any, amount: float, now: float | None = None) -> str | None:
        """Why this trade must be skipped (halted, trade cap, exposure cap, cooldown), or None."""
        now = self.clock() if now is None else now
        cfg = self.cfg
        with self._txn(now) as (st, _journal):
            if st["halted"]:
                return f"halted: {st['halt_reason']}"
            if st["trades_today"] >= cfg.max_trades_per_day:
                return (f"daily trade cap reached ({st['trades_today']}/{cfg.max_trades_per_day}"
                        f" trades on UTC day {st['day']})")
            exposure = _open_exposure(st)
            if exposure + amount > cfg.max_open_exposure + EPS:
                return (f"open exposure cap: ${exposure:.2f} open + ${amount:.2f} would exceed"
                        f" MAX_OPEN_EXPOSURE ${cfg.max_open_exposure:.2f}")
            last = st["last_trade_at"]
            if cfg.cooldown_seconds > 0 and last is not None and now - last < cfg.cooldown_seconds:
                left = cfg.cooldown_seconds - (now - last)
                return f"cooldown: {left:.0f}s left of COOLDOWN_SECONDS={cfg.cooldown_seconds:g} since the last trade"
            ws = _norm_window_start(window_start)
            for tid, pos in st["open"].items():
                if pos.get("asset") == asset.upper() and pos.get("window_start") == ws:
                    return f"already holding {tid} in this {asset.upper()} window"
        return None

    def on_fill(self, trade_id: str, asset: str, window_start: Any, side: str, amount: float, price: float,
                shares: float, fee: float, now: float | None = None) -> None:
        """Count a filled trade: opens exposure, counts toward today's trades, starts the cooldown.

        `fee` is in USD (core.fees.Fill.fee_usd). Idempotent per trade_id.
        """
        now = self.clock() if now is None else now
        with self._txn(now) as (st, _journal):
            if not apply_fill(st, trade_id, asset, window_start, side, amount, price, shares, fee, now):
                log.info("fill %s already counted; ignored", trade_id)

    def on_settled(self, trade_id: str, pnl: float, now: float | None = None, *,
                   outcome: str | None = None) -> str | None:
        """Book a settlement; returns the halt reason if this settlement tripped a halt, else None.

        Won/lost comes from `outcome` ("won"/"lost") when given, else from the sign of pnl
        (0 is a push: neither). Idempotent per trade_id.
        """
        now = self.clock() if now is None else now
        with self._txn(now) as (st, journal):
            counted, reason = apply_settled(st, self.cfg, trade_id, pnl, now, outcome, journal)
            if not counted:
                log.info("settlement of %s already counted; ignored", trade_id)
            return reason

    def halt(self, reason: str, now: float | None = None, kind: str = "error") -> bool:
        """Halt for another cause (e.g. the executor's error halt). True if newly halted.

        Only `resume` clears it (never the new day)."""
        now = self.clock() if now is None else now
        with self._txn(now) as (st, journal):
            if not halt_applies(st, kind):
                return False
            self._set_halt(st, reason, kind, now, journal)   # supersedes a halt the new day would clear
            return True

    def resume(self, now: float | None = None, by: str = "resume") -> dict | None:
        """Clear the halt (and the losing streak); journaled. Returns what was cleared, or None."""
        now = self.clock() if now is None else now
        with self._txn(now) as (st, journal):
            if not st["halted"]:
                return None
            cleared = {"halt_reason": st["halt_reason"], "halt_kind": st.get("halt_kind"),
                       "halted_at": st["halted_at"], "consecutive_losses": st["consecutive_losses"],
                       "halt_streak": st.get("halt_streak")}
            self._clear_halt(st)
            self._record(journal, now, "resume", by=by, cleared=cleared["halt_reason"],
                         kind=cleared["halt_kind"], halted_at=cleared["halted_at"])
            # INFO: risk.jsonl is the record and the caller reports it (the CLI prints it; the dashboard and
            # the bot log at INFO); a WARNING was a second line on the terminal of `python -m risk resume`.
            log.info("halt cleared by %s: was %s", by, cleared["halt_reason"])
            return cleared

    def status(self, now: float | None = None) -> dict:
        now = self.clock() if now is None else now
        cfg = self.cfg
        with self._txn(now) as (st, _journal):
            decided = st["wins"] + st["losses"]
            last = st["last_trade_at"]
            cooldown_left = 0.0
            if cfg.cooldown_seconds > 0 and last is not None:
                cooldown_left = max(0.0, cfg.cooldown_seconds - (now - last))
            return {
                "halted": st["halted"],
                "halt_reason": st["halt_reason"],
                "halt_kind": st.get("halt_kind"),
                "halted_at": st["halted_at"],
                "day": st["day"],
                "trades_today": st["trades_today"],
                "wins": st["wins"],
                "losses": st["losses"],
                "pnl_today": round(st["pnl_today"], 6),
                "fees_today": round(st["fees_today"], 6),
                "open_exposure": round(_open_exposure(st), 6),
                "open_positions": len(st["open"]),
                "consecutive_losses": st["consecutive_losses"],
                "win_rate": (st["wins"] / decided) if decided else None,
                "last_trade_at": last,
                "cooldown_left": round(cooldown_left, 3),
                "limits": {
                    "max_daily_loss": cfg.max_daily_loss,
                    "max_consecutive_losses": cfg.max_consecutive_losses,
                    "max_trades_per_day": cfg.max_trades_per_day,
                    "max_open_exposure": cfg.max_open_exposure,
                    "cooldown_seconds": cfg.cooldown_seconds,
                    "resume_next_day": cfg.resume_next_day,
                },
            }
