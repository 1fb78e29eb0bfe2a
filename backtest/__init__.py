"""The backtest: 1-minute history replayed through the live model (`signal_engine.model`), scored.

    python -m backtest [--data FILE ...] [--out DIR] [--asset BTC]

Modules: cli (the command), data (windows on the UTC grid), engine (the model over every decision
instant, walk-forward), strategy (the assumed market and the simulated trades), metrics (scores),
report (terminal summary and plots). `python -m signal_engine.backtest` is an alias of the command.
"""
