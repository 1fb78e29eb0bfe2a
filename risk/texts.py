"""What the risk book says to people: `python -m risk status`, and what `resume` cleared (the CLI, the
dashboard and the Telegram bot say the same)."""

from __future__ import annotations

import json

from core.window_grid import iso_utc


def format_status(s: dict) -> str:
    """Human-readable lines for `python -m risk status` and the supervisor."""
    lim = s["limits"]
    if s["halted"]:
        since = iso_utc(s["halted_at"]) if s.get("halted_at") else "?"
        head = f"risk: HALTED since {since}: {s['halt_reason']} (clear with ./supervisor.sh resume)"
    else:
        head = "risk: ok (trading allowed)"
    wr = "n/a" if s["win_rate"] is None else f"{100 * s['win_rate']:.0f}%"
    lines = [
        head,
        f"today {s['day']} UTC: trades {s['trades_today']}, wins {s['wins']}, losses {s['losses']},"
        f" win rate {wr}, P&L {s['pnl_today']:+.2f} USD (fees {s['fees_today']:.2f})",
        f"open exposure {s['open_exposure']:.2f} USD in {s['open_positions']} position(s);"
        f" consecutive losses {s['consecutive_losses']}",
        f"limits: daily loss {lim['max_daily_loss']:g}, consecutive losses {lim['max_consecutive_losses']},"
        f" trades/day {lim['max_trades_per_day']}, open exposure {lim['max_open_exposure']:g},"
        f" cooldown {lim['cooldown_seconds']:g}s, resume next day {'yes' if lim['resume_next_day'] else 'no'}",
    ]
    return "\n".join(lines)


def streak_reset_text(cleared: dict) -> str:
    """What `resume` did to the losing streak, consistent with the halt's own reason: settlements of
    positions opened before the halt are booked while halted, so the streak may have moved since."""
    now_n, at_halt = cleared.get("consecutive_losses"), cleared.get("halt_streak")
    text = f"losing streak of {now_n} reset"
    if not isinstance(at_halt, int) or not isinstance(now_n, int) or at_halt == now_n:
        return text
    if now_n > at_halt:
        more = now_n - at_halt
        losses = f"{more} more loss{'es' if more > 1 else ''}"
        return f"{text}: {at_halt} when it halted, then {losses} settled after the halt"
    return f"{text}: {at_halt} when it halted, then a win settled after the halt"


def cleared_text(cleared: dict, lead: str = "cleared halt") -> str:
    """The one line about a halt `resume` cleared: its kind and reason, since when, the streak reset."""
    since = iso_utc(cleared["halted_at"]) if cleared.get("halted_at") else "?"
    return (f"{lead} ({cleared['halt_kind']}): {cleared['halt_reason']} (halted since {since};"
            f" {streak_reset_text(cleared)})")


def status_json(s: dict) -> str:
    return json.dumps(s, indent=2)
