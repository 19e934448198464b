"""Benchmark suite: `python -m benchmarks NAME [--json]` from the source tree."""
