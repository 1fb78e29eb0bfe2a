"""Benchmarks of the project: `python -m bench.run_all` runs them all (see docs/bench_chaos.md)."""
