"""The local dashboard and Prometheus /metrics (`python -m dashboard`, a supervised child).

One page on 127.0.0.1:DASHBOARD_PORT: the processes and their states, per asset the current
window with a live prob_up line, the quoted Up price (when the quote recorder writes it) and the
strike, the last decisions and trades, today's P&L and guards, the equity curve; buttons to pause,
unpause and resume (they need the token in STATE_DIR/dashboard_token). Everything is read from
the agent's files (dashboard/views.py): the dashboard never talks to the executor, and a crash of
the dashboard never touches trading. Charts: uPlot (MIT, vendored in static/ with its licence).
"""
