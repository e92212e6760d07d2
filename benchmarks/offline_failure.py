"""How fast a run that names a model it cannot have here fails, offline (HF_HUB_OFFLINE=1).

Each case is `python -m fmrobot.run <overrides> video=none` naming a hub model that is not in the
local cache; the run must stop with one error line (exit 2) before any model library loads
(fmrobot/hub.py; tests/test_hub.py checks the line and that transformers and open_clip stay
unloaded). Reported: the median wall time per case over the rounds, and the load average.

    python -m benchmarks.offline_failure --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

CASES = {
    "perception=owlvit": ["perception=owlvit"],
    "llm=transformers": ["llm=transformers", "planner=llm_scoring"],
    "llm=smollm2 llm.source=hub": ["llm=smollm2", "llm.source=hub"],
}


def time_case(overrides: list[str], folder: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fmrobot.run", *overrides, "video=none",
                           f"hydra.run.dir={folder}"], cwd=folder.parent, capture_output=True, text=True,
                          check=False, env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"))
    elapsed = time.perf_counter() - started
    if done.returncode != 2:
        raise SystemExit(f"{' '.join(overrides)}: expected exit status 2, got {done.returncode}:\n{done.stderr[-1000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/results/offline_failure.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, overrides in CASES.items():
                seconds[name].append(time_case(overrides, Path(tmp) / f"{round_}-{len(seconds[name])}-{name[:3]}"))
    rows = [(name, statistics.median(values), min(values), max(values)) for name, values in seconds.items()]
    print(common.table(["case", "median s", "min s", "max s"], rows))
    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f}; {args.rounds} rounds")
    common.save(args.out, {"rounds": args.rounds, "seconds": seconds, "load_before": load_before,
                           "load_after": load_after})


if __name__ == "__main__":
    main()
