"""`python -m fmrobot.run task=pick_place ...`: compose the config, run episodes, report.

The run directory (Hydra's `hydra.run.dir`) receives results.json, traces/ and videos/.
The last line printed is a one-line summary with the success count and rate.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fmrobot.cli import hydra_command
from fmrobot.outputs import summarize, summary_line, write_results
from fmrobot.stack import RunSettings, check_run_keys, resolve_components
from fmrobot.types import EpisodeResult


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run every episode the config asks for; return the summary."""
    from tqdm import tqdm

    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    check_run_keys(config)
    settings = RunSettings.from_config(config)
    parts = resolve_components(config)  # fail fast, before anything heavy loads
    executor = parts["executor"].build()

    from fmrobot.execution import RunJob

    seeds = tuple(range(settings.seed, settings.seed + settings.episodes))
    job = RunJob(config=config, run_dir=str(run_dir), seeds=seeds, video_seeds=settings.video_seeds(),
                 annotate=settings.annotate, instruction=settings.instruction, goal=settings.goal)
    results: list[EpisodeResult] = []
    with tqdm(total=len(seeds), desc=str(config["task"].get("name", "episodes")), unit="ep",
              disable=len(seeds) == 1, file=sys.stderr, dynamic_ncols=True) as bar:

        def record(result: EpisodeResult) -> None:
            results.append(result)
            write_results(run_dir, results, config)  # after every episode: nothing is lost on a crash
            bar.update(1)
            bar.set_postfix(success=f"{sum(r.success for r in results)}/{len(results)}")

        executor.run(job, record)
    summary = summarize(results)
    path = write_results(run_dir, results, config)
    print(summary_line(str(config["task"].get("name", "?")), summary, path), flush=True)
    return summary


main = hydra_command("run", lambda cfg: run(cfg, Path(HydraConfig.get().runtime.output_dir)))


if __name__ == "__main__":
    main()
