"""The signal engine: price feeds -> features -> model -> state/signal.json."""
