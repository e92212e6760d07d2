"""Start-up cost of the default run against the floor of what it must load, side by side.

Each round runs, in alternating order:
  run    - `python -m fmrobot.run task=pick_place video=none hydra.run.dir=<tmp>` (one episode of the
           default stack: clip perception, llm_goal with smollm2, scripted policy, basic shield);
           wall and CPU time of the process, and the time outside the episode (wall minus the
           episode's wall_time in results.json);
  floor  - one `python -c` that imports torch and pybullet and loads the weights the run loads, the
           way the code loads them but without fmrobot around it: the CLIP image tower (timm +
           safetensors) and the language model with its tokenizer from the converted cache folder
           (transformers). It builds no Hydra config, simulator or text tower.
  bare   - `python -c "import torch, pybullet"` alone, for reference (outside / bare is also shown).
Reported: medians over the rounds, outside / floor (the target is <= 1.5) and the load average.
Caches are warmed by one run first (a first run ever converts the GGUF and embeds the vocabulary;
that is a one-off and not what this measures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

ROOT = Path(__file__).resolve().parent.parent
RUN = [sys.executable, "-m", "fmrobot.run", "task=pick_place", "video=none"]

# The floor: no fmrobot import, so the framework's own cost is not in it.
FLOOR = """
import json, sys
from pathlib import Path
import torch, pybullet
import timm
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer
clip_dir, lm_dir = Path(sys.argv[1]), sys.argv[2]
cfg = json.loads((clip_dir / "open_clip_config.json").read_text())["model_cfg"]
tower = timm.create_model(cfg["vision_cfg"]["timm_model_name"], num_classes=cfg["embed_dim"], global_pool="avg",
                          pretrained=False)
state = load_file(str(clip_dir / "open_clip_model.safetensors"))
tower.load_state_dict({k[len("visual.trunk."):]: v for k, v in state.items() if k.startswith("visual.trunk.")})
tokenizer = AutoTokenizer.from_pretrained(lm_dir)
model = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32).eval()
"""


def timed(command: list[str], **kwargs) -> tuple[float, float]:
    """(wall, CPU) seconds of a child process, CPU being user + system time of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_once(work: Path, index: int) -> dict[str, float]:
    run_dir = work / f"run_{index}"
    wall, cpu = timed([*RUN, f"hydra.run.dir={run_dir}"])
    episode = json.loads((run_dir / "results.json").read_text())["episodes"][0]
    return {"wall": wall, "cpu": cpu, "episode": episode["wall_time"], "outside": wall - episode["wall_time"]}


def floor_once(clip_dir: Path, lm_dir: Path) -> dict[str, float]:
    wall, cpu = timed([sys.executable, "-c", FLOOR, str(clip_dir), str(lm_dir)])
    return {"wall": wall, "cpu": cpu}


def bare_once() -> dict[str, float]:
    wall, cpu = timed([sys.executable, "-c", "import torch, pybullet"])
    return {"wall": wall, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "startup.json"))
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"

    from fmrobot.llm.smollm2 import converted_folder
    from fmrobot.perception.clip_model import SHIPPED

    clip_dir, lm_dir = SHIPPED["tabletop-lit"], converted_folder()  # the converted LM exists after this
    measured: dict[str, list[dict[str, float]]] = {"run": [], "floor": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="fmrobot-startup-") as tmp:
        work = Path(tmp)
        run_once(work, -1)  # warm caches (text embeddings) and the page cache; not counted
        measure = {"run": lambda i: run_once(work, i), "floor": lambda i: floor_once(clip_dir, lm_dir),
                   "bare": lambda i: bare_once()}
        for i in range(args.rounds):
            order = ("run", "floor", "bare") if i % 2 == 0 else ("bare", "floor", "run")
            for what in order:
                measured[what].append(measure[what](i))
                print(f"round {i + 1}: {what} {measured[what][-1]}", file=sys.stderr, flush=True)
    load = os.getloadavg()
    runs, floors, bares = measured["run"], measured["floor"], measured["bare"]

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    outside, floor = median(runs, "outside"), median(floors, "wall")
    rows = [
        ("run: wall", median(runs, "wall")),
        ("run: CPU", median(runs, "cpu")),
        ("run: episode wall_time", median(runs, "episode")),
        ("run: outside the episode", outside),
        ("floor: wall", floor),
        ("floor: CPU", median(floors, "cpu")),
        ("bare import torch, pybullet: wall", median(bares, "wall")),
        ("ratio outside / floor (target <= 1.5)", outside / floor),
        ("ratio outside / bare", outside / median(bares, "wall")),
    ]
    print(common.table(["measure (median s)", "value"], rows))
    print(f"rounds {args.rounds}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    path = common.save(args.out, {"rounds": args.rounds, "runs": runs, "floors": floors, "bare": bares, "load_average": load,
                                  "medians": dict(rows)})
    print(f"saved {path}")


if __name__ == "__main__":
    main()
