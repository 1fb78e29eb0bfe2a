"""Helpers for the control surfaces' tests (dashboard, /metrics, Telegram bot, pause): a config on
tmp dirs and the agent's files as the real processes write them (signal.json through the signal
document's own type, journal lines through core.durable_files)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from core.config import Config, load_config
from core.durable_files import append_jsonl, atomic_write_json
from core.signal_doc import SignalDoc, SignalWindow
from core.window_grid import iso_utc, window_slug

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"   # the shape @BotFather gives; not a real token
CHAT = 424242
OTHER_CHAT = 1000001
W = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def control_cfg(tmp_path: Path, **over: object) -> Config:
    env = {"DOTENV_PATH": str(tmp_path / "no.env"), "STATE_DIR": str(tmp_path / "state"),
           "LOG_DIR": str(tmp_path / "logs"), "PROFILE_DIR": str(tmp_path / "profiles"), "MODE": "demo",
           "WINDOW_SECONDS": str(W), "ASSETS": "BTC,ETH", "DASHBOARD_PORT": str(free_port())}
    env.update({k: str(v) for k, v in over.items()})
    return load_config(env)


def write_signal(cfg: Config, asset: str, prob_up: float, seq: int, now: float | None = None,
                 open_price: float = 100.0, price: float = 101.0, source: str = "sim", stale: bool = False) -> None:
    now = time.time() if now is None else now
    start = int(now // cfg.window_seconds) * cfg.window_seconds
    doc = SignalDoc(timestamp=now, asset=asset, direction="UP" if prob_up >= 0.5 else "DOWN", confidence=80.0,
                    prob_up=prob_up, price=price,
                    window=SignalWindow(float(start), float(start + cfg.window_seconds), open_price,
                                        round(start + cfg.window_seconds - now, 3),
                                        window_slug(asset, start, cfg.window_seconds)),
                    stale=stale, seq=seq, source=source)
    atomic_write_json(cfg.signal_path_for(asset), doc.to_dict())


def journal_trade(cfg: Config, asset: str, start: int, trade_id: str, ts: float, *, fill_after: float = 0.8,
                  pnl: float | None = None, side: str = "UP", amount: float = 10.0, price: float = 0.5,
                  events: tuple[str, ...] = ("intent", "submitted", "filled")) -> None:
    """Journal lines like the executor's (executor/journal.py): ts, event, mode, asset, window_start, trade_id."""
    slug = window_slug(asset, start, cfg.window_seconds)
    base = {"mode": cfg.mode, "asset": asset, "window_start": start, "trade_id": trade_id, "slug": slug}
    for i, ev in enumerate(events):
        rec = {"ts": iso_utc(ts + (fill_after if ev == "filled" else 0.1 * i)), "event": ev, **base}
        if ev == "intent":
            rec.update(side=side, amount=amount, price=price, strategy="edge", reason="edge 0.1 >= 0.03",
                       prob_up=0.7)
        elif ev == "filled":
            rec.update(side=side, amount=amount, price=price, timings={"click": 0.2})
        elif ev == "wallet_rejected":
            rec.update(reason="wallet guard: price 0.71 is worse than the decision's 0.50 by more than MAX_SLIPPAGE")
        elif ev == "failed":
            rec.update(reason="the venue refused the order")
        append_jsonl(cfg.trades_path, rec)
    if pnl is not None:
        append_jsonl(cfg.trades_path, {"ts": iso_utc(ts + cfg.window_seconds), "event": "settled", **base, "side": side,
                                       "amount": amount, "outcome": "won" if pnl > 0 else "lost",
                                       "payout": amount + pnl if pnl > 0 else 0.0, "fee": 0.1, "pnl": pnl})


def write_decision(cfg: Config, asset: str, start: int, action: str, reason: str, ts: float) -> None:
    append_jsonl(cfg.decisions_path, {"ts": iso_utc(ts), "mode": cfg.mode, "asset": asset, "window_start": start,
                                      "slug": window_slug(asset, start, cfg.window_seconds), "action": action,
                                      "reason": reason, "strategy": "edge"})


__all__ = ["CHAT", "OTHER_CHAT", "TOKEN", "W", "control_cfg", "free_port", "journal_trade", "write_decision",
           "write_signal"]
