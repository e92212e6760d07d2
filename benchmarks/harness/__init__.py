"""The benchmark harness: suites of tasks x configurations x levels x seeds, run exactly once each."""
