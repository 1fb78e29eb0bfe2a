"""A local replica of the 15-minute Up/Down market page and of the wallet popup.

The demo venue (`MODE=demo`) and the ground truth of every browser test: `python -m replica`
serves the market page on one 127.0.0.1 port and the wallet popup on another (a different
origin, as an extension is). Its markup follows profiles/sites/replica.json and
profiles/wallets/metamask.json. See docs/replica.md for the CLI, the JSON API and the faults.

Modules: pricing (seeded price paths, quotes, titles), faults (what can be injected),
state (orders, wallet requests, settlement, snapshots), server (the two HTTP servers),
__main__ (the CLI). Page and popup are static files under replica/static/.
"""
