"""The executor: watches the market page, decides once per window, clicks through, journals.

Modules: `profiles` (selector maps), `decision` (pure strategy), `wallet_guard` (pure check of a
wallet request), `signals` (signal.json reader + watchdog holder), `journal` (trades/decisions
JSONL, exactly-once bookkeeping), `state` (state/executor.json), `pages` (MarketPage,
WalletPopup page objects), `browser` (persistent context, relaunch), `trade` (click-through),
`settlement`, `probe`, `runner` (the loop) and `__main__` (exit codes).
"""
