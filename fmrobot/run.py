"""`python -m fmrobot.run task=pick_place ...`: compose the config, run episodes, report.

The run directory (Hydra's `hydra.run.dir`) receives results.json, traces/ and videos/.
A directory that already holds a run of the same config is resumed (fmrobot/resume.py).
The summary line comes last but for the failure reasons under it. The exit status is 0,
or 3 if episodes crashed (unless allow_crashes=true), or 4 if every episode failed in
planning (a planner or language-model error); 2 is a config error (fmrobot/cli.py).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fmrobot import registry, security

from fmrobot.cli import hydra_command
from fmrobot.errors import ConfigError
from fmrobot.outputs import summarize, summary_line, write_results
from fmrobot.resume import check_resumable, earlier_crashes, split_recorded, with_earlier_crashes
from fmrobot.stack import RunSettings, check_run_keys, resolve_components
from fmrobot.types import EpisodeFailure, EpisodeResult, FailureStage

# Records go to run.log in the run directory (configs/run.yaml, hydra.job_logging). Named, not
# __name__, which is "__main__" under `python -m`.
log = logging.getLogger("fmrobot.run")

EXIT_CRASHED = 3
EXIT_PLANNING_FAILED = 4


def run(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Run every episode the config asks for that `run_dir` does not hold yet; return the summary."""
    from tqdm import tqdm

    config = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(config, dict)
    check_run_keys(config)
    settings = RunSettings.from_config(config)
    parts = resolve_components(config)  # fail fast, before anything heavy loads
    recorded = _recorded(run_dir, config, settings)
    executor = parts["executor"].build()

    from fmrobot.execution import RunJob

    seeds = tuple(range(settings.seed, settings.seed + settings.episodes))
    results, pending = split_recorded(recorded, seeds)
    crashes = earlier_crashes(recorded)
    if recorded is not None:
        redone = sum(s in crashes for s in pending)
        print(f"resuming the run in {run_dir}: {len(results)} of {len(seeds)} episodes recorded, running "
              f"{len(pending)}" + (f" ({redone} crashed before)" if redone else ""), file=sys.stderr, flush=True)
    log.info("task %s, seeds %d..%d, %d to run; %s", config["task"].get("name"), seeds[0], seeds[-1], len(pending),
             ", ".join(f"{group}={parts[group].name}" for group in parts))
    job = RunJob(config=config, run_dir=str(run_dir), seeds=tuple(pending), video_seeds=settings.video_seeds(),
                 annotate=settings.annotate, instruction=settings.instruction, goal=settings.goal,
                 rerun=settings.record.rerun)
    with tqdm(total=len(pending), desc=str(config["task"].get("name", "episodes")), unit="ep",
              disable=len(pending) <= 1, file=sys.stderr, dynamic_ncols=True) as bar:

        def record(result: EpisodeResult) -> None:
            log.info("seed %d: %s in %.1f s%s", result.seed, "succeeded" if result.success else
                     f"{'crashed' if result.crashed else 'failed'}: {result.failure_reason}", result.wall_time,
                     f" ({len(result.attempts)} crashed attempts before)" if result.attempts else "")
            results.append(with_earlier_crashes(result, crashes.get(result.seed, ())))
            write_results(run_dir, results, config)  # after every episode: nothing is lost on a crash
            bar.update(1)
            bar.set_postfix(success=f"{sum(r.success for r in results)}/{len(results)}")

        if pending:
            executor.run(job, record)
    summary = summarize(results)
    path = write_results(run_dir, results, config)
    line = summary_line(str(config["task"].get("name", "?")), summary, path)
    log.info("%s", line)
    print(line, flush=True)
    return summary


def _recorded(run_dir: Path, config: dict[str, Any], settings: RunSettings):
    """The run `run_dir` holds, to be continued; refuse to overwrite one that may not be."""
    if settings.resume:
        return check_resumable(run_dir, config)
    if (run_dir / "results.json").exists():
        # `python -m fmrobot.run` moves such a run to a new directory before Hydra writes anything.
        raise ConfigError(f"{run_dir} holds a recorded run and resume=false: choose a new hydra.run.dir")
    return None


def exit_status(summary: dict[str, Any], settings: RunSettings) -> tuple[int, str | None]:
    """(status, why) for a finished run: crashes and runs lost wholly to planning errors are not a pass."""
    if summary["crashed"] and not settings.allow_crashes:
        return EXIT_CRASHED, (f"{summary['crashed']} episode(s) crashed (reasons above); pass allow_crashes=true "
                              f"to accept a run with crashed episodes")
    reasons = summary["failure_reasons"]
    # By the typed stage; a result without one (written before failures were typed) by its words.
    lost_to_planning = all(r["stage"] == FailureStage.PLANNING.value if r.get("stage")
                           else is_planning_failure(r["reason"]) for r in reasons)
    if summary["episodes"] and not summary["successes"] and lost_to_planning:
        return EXIT_PLANNING_FAILED, "every episode failed in planning (the planner or its language model; above)"
    return 0, None


def is_planning_failure(failure: EpisodeFailure | str) -> bool:
    """Whether an episode failed in planning: by its typed failure's stage; by the words of a bare
    reason (results written before failures were typed)."""
    if isinstance(failure, EpisodeFailure):
        return failure.stage is FailureStage.PLANNING
    return failure.startswith("planning:")


def prepare_arguments(arguments: Sequence[str]) -> list[str]:
    """Before Hydra writes into the run directory: refuse a config that may not continue the run there,
    and with resume=false, move the new run to a fresh directory beside it."""
    from fmrobot.compose import compose_command_line
    from fmrobot.resume import fresh_dir

    cfg = compose_command_line("run", arguments)
    if cfg is None:
        return list(arguments)
    try:
        run_dir = Path(str(cfg.hydra.run.dir)).absolute()
        config = OmegaConf.to_container(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True)
    except OmegaConfBaseException:  # an interpolation that does not resolve: the run reports it in one line
        return list(arguments)
    assert isinstance(config, dict)
    resume = config.get("resume", True)
    if resume is False:
        target = fresh_dir(run_dir)
        if target != run_dir:
            if registry.untrusted_configs():
                security.check_untrusted_outputs({}, [("hydra.run.dir (resume=false)", str(target))])
            print(f"resume=false: {run_dir} holds a run, which is kept; this one goes to {target}",
                  file=sys.stderr, flush=True)
            return [*arguments, f"hydra.run.dir={target}"]
        return list(arguments)
    check_resumable(run_dir, config)
    return list(arguments)


def _job(cfg: DictConfig) -> None:
    summary = run(cfg, Path(HydraConfig.get().runtime.output_dir))
    status, why = exit_status(summary, RunSettings.from_config(OmegaConf.to_container(cfg, resolve=True)))
    if status:
        print(f"fmrobot: {why}; exit status {status}", file=sys.stderr, flush=True)
        sys.exit(status)


main = hydra_command("run", _job, prepare=prepare_arguments)


if __name__ == "__main__":
    main()
