"""Benchmarks (never part of the test run): `python -m bench.run <name>`, bench/run_all.sh."""
