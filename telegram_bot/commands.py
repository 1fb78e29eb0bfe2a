"""The bot's commands: each reads the agent's files (dashboard.views) or does one of the shared
actions (dashboard.control), and returns the answer's text. Nothing here talks to Telegram.

    /status  /signal  /trades [n]  /profit [days]  /daily [n]  /pause (/stopentry)  /unpause
    /resume (then /resume yes within 60 s)  /logs [process] [n]  /health  /help
"""

from __future__ import annotations

import html
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.config import Config
from dashboard import control, views
from monitor.status import _dur

RESUME_CONFIRM_S = 60.0
LOG_TAIL_BYTES = 64 * 1024
MAX_LOG_LINES = 50
MAX_PRE = 3900   # characters of a <pre> answer's body (Telegram: 4096 a message)
HELP = """Commands:
/status - processes, signal, executor, today's P&L, risk, pause
/signal - per asset: direction, prob_up, strike, price, age
/trades [n] - the last n trades (default 5, at most 20)
/profit [days] - realised P&L over the last days (default: all time)
/daily [n] - per-day table of the last n days (default 7)
/pause (or /stopentry) - no new trades; processes keep running, positions settle
/unpause - trade again
/resume - clear a risk halt (asks for /resume yes within 60 s)
/logs [process] [n] - the last n lines of a log (default executor, 20)
/health - is everything alive, how old the signal is, disk, this bot's queue
/help - this list"""


@dataclass(frozen=True)
class Reply:
    text: str
    pre: bool = False   # sent as a monospaced block (HTML <pre>, escaped)

    def render(self) -> tuple[str, bool]:
        """(text, is_html): a <pre> block stays whole within Telegram's 4096 characters (clipped before
        escaping, so no entity and no closing tag is ever cut)."""
        if not self.pre:
            return self.text, False
        raw = self.text[:MAX_PRE]
        body = html.escape(raw)
        while len(body) > MAX_PRE:
            raw = raw[: len(raw) * 4 // 5]
            body = html.escape(raw)
        return f"<pre>{body}</pre>", True


def _int_arg(args: list[str], i: int, default: int, lo: int, hi: int) -> int | None:
    if len(args) <= i:
        return default
    if not re.fullmatch(r"[0-9]{1,6}", args[i]):
        return None
    return min(hi, max(lo, int(args[i])))


def _money(v) -> str:
    return f"{v:+.2f}" if isinstance(v, (int, float)) else "-"


class Commands:
    def __init__(self, cfg: Config, stats: Callable[[], dict] | None = None, clock=time.time):
        self.cfg, self.clock = cfg, clock
        self.reports = views.ReportCache(cfg)
        self.pending_resume: dict[int, float] = {}
        self.stats = stats or (lambda: {})
        self.table: dict[str, Callable[[int, list[str]], Reply]] = {
            "status": self.status, "signal": self.signal, "trades": self.trades, "profit": self.profit,
            "daily": self.daily, "pause": self.pause, "stopentry": self.pause, "unpause": self.unpause,
            "resume": self.resume, "logs": self.logs, "health": self.health, "help": self.help,
            "start": self.help,
        }

    def handle(self, chat_id: int, text: str) -> Reply | None:
        """The answer to one message from an allowed chat (None: not a command, nothing to say)."""
        parts = text.strip().split()
        if not parts or not parts[0].startswith("/"):
            return Reply("Send a command: /help lists them.")
        name = parts[0][1:].split("@", 1)[0].lower()
        fn = self.table.get(name)
        if fn is None:
            return Reply(f"Unknown command /{name[:30]}. /help lists the commands.")
        return fn(chat_id, parts[1:])

    # ---- reading ----------------------------------------------------------------------------------
    def status(self, _chat: int, _args: list[str]) -> Reply:
        st = views.status(self.cfg, self.clock())
        lines = [f"mode {st['mode']}  monitor {st['monitor']['state']}"]
        for name, p in st["processes"].items():
            extra = f" up {_dur(p.get('uptime_s'))}" if p.get("uptime_s") is not None else ""
            lines.append(f"{name:<13} {p['state']}{extra} r{p.get('restarts', 0)}")
        for asset, sig in views.signals(self.cfg, st["at"]).items():
            lines.append(f"{asset:<13} " + self._signal_line(sig))
        ex = st.get("executor") or {}
        if ex:
            lines.append(f"executor      {ex.get('status')}" + (f" ({ex['reason']})" if ex.get("reason") else ""))
        lines.extend(self._today_lines(st))
        return Reply("\n".join(lines), pre=True)

    def _today_lines(self, st: dict) -> list[str]:
        risk, today, pause = st.get("risk") or {}, st["trades"]["today"], st.get("pause") or {}
        out = [f"today         {risk.get('trades_today', today['filled'])} trades, {risk.get('wins', today['wins'])}W"
               f"/{risk.get('losses', today['losses'])}L, P&L {_money(risk.get('pnl_today', today['pnl']))}"]
        if risk.get("halted"):
            out.append(f"risk          HALTED ({risk.get('halt_kind')}): {risk.get('halt_reason')} -> /resume")
        elif risk.get("problem"):
            out.append(f"risk          risk.json unreadable ({risk['problem']})")
        else:
            out.append(f"risk          ok (losing streak {risk.get('consecutive_losses', 0)})")
        out.append(f"pause         {'PAUSED: ' + str(pause.get('reason')) if pause.get('paused') else 'not paused'}")
        return out

    @staticmethod
    def _signal_line(sig: dict) -> str:
        if sig.get("problem"):
            return f"no signal ({sig['problem']})"
        prob = sig.get("prob_up")
        strike = sig.get("strike")
        return (f"{sig.get('direction')} prob_up {prob:.3f}" if isinstance(prob, (int, float)) else
                f"{sig.get('direction')} prob_up -") + \
            (f" strike {strike:,.2f}" if isinstance(strike, (int, float)) else " strike -") + \
            (f" age {sig['age_s']:.1f}s" if isinstance(sig.get("age_s"), (int, float)) else "") + \
            (" STALE" if sig.get("stale") else "")

    def signal(self, _chat: int, _args: list[str]) -> Reply:
        lines = []
        for asset, sig in views.signals(self.cfg, self.clock()).items():
            lines.append(f"{asset}: {self._signal_line(sig)}")
            if not sig.get("problem"):
                price = sig.get("price")
                left = sig.get("seconds_left")
                lines.append(f"  price {price:,.2f}" if isinstance(price, (int, float)) else "  price -")
                if isinstance(left, (int, float)):
                    lines[-1] += f", {left:.0f}s left in the window"
                lines[-1] += f", source {sig.get('source') or '-'}"
        return Reply("\n".join(lines) or "no assets configured", pre=True)

    def trades(self, _chat: int, args: list[str]) -> Reply:
        n = _int_arg(args, 0, 5, 1, 20)
        if n is None:
            return Reply("usage: /trades [n] (n from 1 to 20)")
        rows = views.recent_trades(self.cfg, n)
        if not rows:
            return Reply(f"no trades yet ({self.cfg.trades_path.name} is empty)")
        lines = []
        for t in rows:
            price, pnl = t.get("price"), t.get("pnl")
            bits = [str(t.get("ts") or "")[5:19], str(t.get("asset")), str(t.get("side") or "-"),
                    f"${float(t.get('amount') or 0):.2f}", f"@{price:.3f}" if isinstance(price, (int, float)) else "",
                    str(t.get("state")), str(t.get("outcome") or ""),
                    _money(pnl) if isinstance(pnl, (int, float)) else ""]
            lines.append(" ".join(b for b in bits if b))
        return Reply("\n".join(lines), pre=True)

    def profit(self, _chat: int, args: list[str]) -> Reply:
        days = _int_arg(args, 0, 0, 1, 3650) if args else None
        if args and days is None:
            return Reply("usage: /profit [days] (1 to 3650; none: all time)")
        p = self.reports.profit(days, self.clock())
        span = f"last {days} day(s)" if days else "all time"
        wr = "n/a" if p["win_rate"] is None else f"{100 * p['win_rate']:.0f}%"
        return Reply(f"P&L {span}: {_money(p['pnl'])} USD over {p['trades']} settled trade(s)"
                     f" ({p['wins']}W/{p['losses']}L, win rate {wr}), fees {p['fees']:.2f};"
                     f" worst daily drawdown {p['worst_day_drawdown']:.2f}; {p['open_trades']} open")

    def daily(self, _chat: int, args: list[str]) -> Reply:
        n = _int_arg(args, 0, 7, 1, 60)
        if n is None:
            return Reply("usage: /daily [n] (1 to 60 days)")
        rows = self.reports.daily(n)
        if not rows:
            return Reply("no settled trades yet")
        lines = [f"{'day':<10} {'n':>3} {'W':>3} {'L':>3} {'P&L':>8}"]
        lines += [f"{r['day']:<10} {r['trades']:>3} {r['wins']:>3} {r['losses']:>3} {r['pnl']:>+8.2f}" for r in rows]
        return Reply("\n".join(lines), pre=True)

    # ---- acting -----------------------------------------------------------------------------------
    def _act(self, fn: Callable[[Config, str], str], chat: int) -> Reply:
        try:
            return Reply(fn(self.cfg, f"telegram chat {chat}"))
        except control.ControlError as exc:
            return Reply(f"FAILED: {exc}")

    def pause(self, chat: int, _args: list[str]) -> Reply:
        return self._act(control.pause, chat)

    def unpause(self, chat: int, _args: list[str]) -> Reply:
        return self._act(control.unpause, chat)

    def resume(self, chat: int, args: list[str]) -> Reply:
        now = self.clock()
        if args[:1] == ["yes"]:
            asked = self.pending_resume.pop(chat, None)
            if asked is None or now - asked > RESUME_CONFIRM_S:
                return Reply(f"No /resume is waiting for confirmation (they expire after {RESUME_CONFIRM_S:.0f} s):"
                             " send /resume first.")
            return self._act(control.resume, chat)
        risk = views.status(self.cfg, now).get("risk") or {}
        if not risk.get("halted"):
            self.pending_resume.pop(chat, None)
            return Reply("not halted; nothing to clear" + (f" (risk.json: {risk['problem']})" if risk.get("problem")
                                                          else ""))
        self.pending_resume[chat] = now
        return Reply(f"Risk is HALTED ({risk.get('halt_kind')}): {risk.get('halt_reason')}\n"
                     f"Send /resume yes within {RESUME_CONFIRM_S:.0f} s to clear it and allow trading again.")

    # ---- diagnosing -------------------------------------------------------------------------------
    def logs(self, _chat: int, args: list[str]) -> Reply:
        name = args[0] if args and not args[0].isdigit() else "executor"
        rest = args[1:] if args and not args[0].isdigit() else args
        n = _int_arg(rest, 0, 20, 1, MAX_LOG_LINES)
        if n is None or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name):
            return Reply("usage: /logs [process] [n] (process: monitor, executor, signal_engine ...; n up to 50)")
        path = self.cfg.log_dir / f"{name}.log"
        known = sorted(p.stem for p in self.cfg.log_dir.glob("*.log"))
        if not path.is_file():
            return Reply(f"no log named {name} (there: {', '.join(known) or 'none'})")
        lines = _tail_lines(path, n)
        return Reply(f"{path.name}, last {len(lines)} line(s):\n" + "\n".join(lines), pre=True)

    def health(self, _chat: int, _args: list[str]) -> Reply:
        st = views.status(self.cfg, self.clock())
        procs = st["processes"]
        down = [n for n, p in procs.items() if p["state"] != "running"]
        lines = [f"{'OK' if st['ok'] else 'NOT ALL UP'}: monitor {st['monitor']['state']}, "
                 f"{len(procs) - len(down)}/{len(procs)} processes running"
                 + (f" (not: {', '.join(down)})" if down else "")]
        for asset, sig in views.signals(self.cfg, st["at"]).items():
            seen = (f"none ({sig['problem']})" if sig.get("problem") else
                    f"age {sig.get('age_s')}s, source {sig.get('source')}" + (" STALE" if sig.get("stale") else ""))
            lines.append(f"{asset} signal: {seen}")
        ex = st.get("executor") or {}
        lines.append(f"executor: {ex.get('status', 'unknown')}" + (f" ({ex['reason']})" if ex.get("reason") else ""))
        lines.extend(self._today_lines(st)[1:])
        for label, d in (("logs", self.cfg.log_dir), ("state", self.cfg.state_dir)):
            try:
                free = shutil.disk_usage(d).free
                lines.append(f"disk ({label}): {free / 1e9:.1f} GB free")
            except OSError as exc:
                lines.append(f"disk ({label}): cannot tell ({exc.strerror or exc})")
        s = self.stats()
        if s:
            lines.append("this bot: " + ", ".join(f"{k} {v}" for k, v in s.items()))
        return Reply("\n".join(lines), pre=True)

    def help(self, _chat: int, _args: list[str]) -> Reply:
        return Reply(HELP)


def _tail_lines(path, n: int) -> list[str]:
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - LOG_TAIL_BYTES))
        data = fh.read().decode("utf-8", "replace")
    lines = data.splitlines()
    if size > LOG_TAIL_BYTES:
        lines = lines[1:]
    return [ln[:300] for ln in lines[-n:]]


__all__ = ["HELP", "Commands", "Reply"]
