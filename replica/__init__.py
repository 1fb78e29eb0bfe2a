"""A local replica of the 15-minute Up/Down market page and of the wallet popup.

The demo venue (`MODE=demo`) and the ground truth of every browser test: `python -m replica`
serves the market page on one 127.0.0.1 port and the wallet popup on another (a different
origin, as an extension is). Its pages copy the 2026 site (hub, event pages, trade widget:
profiles/sites/polymarket.json), its popup MetaMask 13's signature page (profiles/wallets/
metamask.json), and it serves Polymarket's public Gamma/CLOB API shapes under /gamma and /clob.
See docs/replica.md for the CLI, the JSON API and the faults.

Modules: pricing (seeded price paths, quotes, titles), faults (what can be injected),
state (orders, wallet requests, settlement, snapshots), site_pages (hub and event pages),
typed_order (the CLOB V2 Order / TypedDataSign the popup asks to sign), market_api and
resolution (the public APIs, one resolution rule), server (the two HTTP servers),
__main__ (the CLI). Page and popup are static files under replica/static/.
"""
