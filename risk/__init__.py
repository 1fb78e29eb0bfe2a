"""Risk: guards (halts and skip reasons), position sizing, notifications, accounting views.

- `risk.guards.RiskBook`: the persisted guard state (`<STATE_DIR>/risk.json`).
- `risk.sizing.position_size`: fixed or fractional-Kelly sizing, never below the venue minimum.
- `risk.notify.Notifier`: non-blocking Discord webhook notifications.
- `risk.report`: per-day table and equity curve from `logs/trades.jsonl`.
- `python -m risk resume | status [--json] | report [--out DIR]`.
"""
