"""Sanity caps on the loss guards in live mode: a value that effectively switches a guard off is
refused, unless the user says so explicitly (RISK_LIMITS_OVERRIDE=I_UNDERSTAND).

Demo and paper trade no money and keep any value (tests and rehearsals use huge limits on
purpose). The caps are deliberately generous for a retail account; they catch typos (an extra
zero, a limit in cents) and "switch it off" values, not strategy choices.
"""

from __future__ import annotations

from collections.abc import Mapping

OVERRIDE_VAR = "RISK_LIMITS_OVERRIDE"
OVERRIDE_PHRASE = "I_UNDERSTAND"
CAPS = {                      # variable -> (Config field, the largest value accepted without the override)
    "MAX_DAILY_LOSS": ("max_daily_loss", 10_000.0),
    "MAX_OPEN_EXPOSURE": ("max_open_exposure", 10_000.0),
    "MAX_POSITION_SIZE": ("max_position_size", 1_000.0),
    "MAX_CONSECUTIVE_LOSSES": ("max_consecutive_losses", 50),
    "MAX_TRADES_PER_DAY": ("max_trades_per_day", 500),
}


def problems(cfg, env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(variable, what is wrong, a safe example) for each guard value live mode would not accept."""
    if cfg.mode != "live" or env.get(OVERRIDE_VAR, "") == OVERRIDE_PHRASE:
        return []
    out = []
    if cfg.position_size > cfg.max_daily_loss:
        out.append(("POSITION_SIZE", f"is {cfg.position_size:g}, above MAX_DAILY_LOSS ({cfg.max_daily_loss:g}):"
                    " one losing trade would pass the daily loss limit", f"{cfg.max_daily_loss:g}"))
    for var, (name, cap) in CAPS.items():
        value = getattr(cfg, name)
        if value > cap:
            out.append((var, f"is {value:g}, above {cap:g}, which effectively switches that guard off in live"
                        f" mode; lower it, or set {OVERRIDE_VAR}={OVERRIDE_PHRASE} to keep it", f"{cap:g}"))
    return out


__all__ = ["CAPS", "OVERRIDE_PHRASE", "OVERRIDE_VAR", "problems"]
