"""Benchmark scripts and the suite harness (benchmarks/harness/)."""
