"""Alias kept for old commands: `python -m signal_engine.backtest` runs `python -m backtest`.

The backtest lives in the `backtest` package (backtest/cli.py); it uses the same model code
(`signal_engine.model`) as the live engine.
"""

from __future__ import annotations

import sys

from backtest.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
