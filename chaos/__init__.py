"""Fault-injection (chaos) runs of the whole demo system: `python -m chaos --kills N` (docs/bench_chaos.md)."""
