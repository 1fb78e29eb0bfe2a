"""Tools a person runs against the trading browser profile, beside the browser code they drive
(core/browser_discovery.py, the executor's page objects): `doctor` (is this machine ready? config,
browser, permissions, the page's selectors through `python -m executor --probe`) and `login` (a
visible browser on the profile, once, to install and unlock the wallet and log in).

They are commands of the supervisor (`./supervisor.sh doctor|login`, run as
`python -m monitor doctor|login`) but not part of the monitor: they use its preflight and its
start lock (to refuse, or to probe on a throw-away profile, while it runs), nothing else.
"""
