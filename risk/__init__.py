"""Risk: guards (halts and skip reasons), position sizing, accounting views (notifications: `notify`).

- `risk.guards.RiskBook`: the persisted guard state (`<STATE_DIR>/risk.json`).
- `risk.sizing.position_size`: fixed or fractional-Kelly sizing, never below the venue minimum.
- `risk.report`: per-day table and equity curve from `logs/trades.jsonl`.
- `python -m risk resume | status [--json] | report [--out DIR]`.
"""
