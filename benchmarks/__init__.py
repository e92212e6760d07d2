"""Benchmark scripts and the suite harness (benchmarks/harness/), run as `python -m benchmarks.<script>`.

Importing the package comes before any script's own imports, so this is where the one thread
every figure is measured with is set: before numpy or torch load and size their thread pools.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
