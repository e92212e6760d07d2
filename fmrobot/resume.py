"""Resuming a run: what a run directory already holds, and whether the run asked for may continue it.

`python -m fmrobot.run ... hydra.run.dir=<dir>` into a directory whose results.json holds a
run of the same resolved config continues that run: recorded seeds are kept, crashed and
missing ones are run. A different config is refused with one line naming the first
difference, before Hydra writes its copies into `.hydra/`. `resume=false` starts over in a
new directory next to it (`<dir>-2`, `<dir>-3`, ...): a recorded run is never overwritten.

Settings that cannot change an episode's result (how episodes are fanned out, which get a
video, whether to resume, whether crashes are acceptable) may differ between the two runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pydantic import ValidationError

from fmrobot.errors import ConfigError, shown
from fmrobot.outputs import RESULTS_FILE
from fmrobot.types import CrashedAttempt, EpisodeResult

#: Top-level keys that do not change what an episode does, so a resumed run may set them differently.
NOT_COMPARED = frozenset({"executor", "resume", "allow_crashes", "video"})


@dataclass(frozen=True)
class RecordedRun:
    config: dict[str, Any]
    results: tuple[EpisodeResult, ...]


def recorded_run(run_dir: Path) -> RecordedRun | None:
    """The run results.json in `run_dir` records, or None if there is none."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
        results = tuple(EpisodeResult.model_validate(e) for e in document["episodes"])
        config = document["config"]
        if not isinstance(config, dict):
            raise TypeError("its config is not a mapping")
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as error:
        problem = f"{type(error).__name__}: {error}".splitlines()[0]
        raise ConfigError(f"{path} cannot be read to resume its run ({problem}); move it away, or choose another "
                          f"hydra.run.dir") from None
    return RecordedRun(config=config, results=results)


def config_difference(recorded: Mapping[str, Any], current: Mapping[str, Any], path: str = "") -> str | None:
    """The first setting (dotted path) whose value differs, described in a few words; None if none does."""
    keys = sorted({*recorded, *current}, key=str)
    for key in keys:
        if not path and key in NOT_COMPARED:
            continue
        where = f"{path}.{key}" if path else str(key)
        if key not in recorded:
            return f"{where} is set now ({shown(current[key], 80)}) but not in the recorded run"
        if key not in current:
            return f"{where} is {shown(recorded[key], 80)} in the recorded run but not set now"
        old, new = recorded[key], current[key]
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            difference = config_difference(old, new, where)
            if difference:
                return difference
        elif old != new:
            return f"{where} is {shown(old, 80)} in the recorded run, {shown(new, 80)} now"
    return None


def check_resumable(run_dir: Path, config: Mapping[str, Any]) -> RecordedRun | None:
    """The recorded run in `run_dir` if this config may continue it; ConfigError if it holds another run."""
    recorded = recorded_run(run_dir)
    if recorded is None:
        return None
    difference = config_difference(recorded.config, config)
    if difference:
        raise ConfigError(f"{run_dir} holds a run of another config ({difference}); choose another "
                          f"hydra.run.dir, or pass resume=false to start over in a new directory beside it")
    return recorded


def fresh_dir(run_dir: Path) -> Path:
    """`run_dir` itself if it holds no run, else the first `<run_dir>-N` (N = 2, 3, ...) that holds none."""
    run_dir = Path(run_dir)
    candidate, number = run_dir, 1
    while (candidate / RESULTS_FILE).exists():
        number += 1
        candidate = run_dir.with_name(f"{run_dir.name}-{number}")
    return candidate


def split_recorded(recorded: RecordedRun | None, seeds: Sequence[int]) -> tuple[list[EpisodeResult], list[int]]:
    """(results to keep, seeds to run): a seed's record is kept unless it crashed."""
    kept = {r.seed: r for r in (recorded.results if recorded else ()) if not r.crashed and r.seed in set(seeds)}
    return [kept[s] for s in seeds if s in kept], [s for s in seeds if s not in kept]


def earlier_crashes(recorded: RecordedRun | None) -> dict[int, tuple[CrashedAttempt, ...]]:
    """seed -> the crashed attempts a recorded run made at it (its earlier attempts and its last one)."""
    crashes = {}
    for result in recorded.results if recorded else ():
        if result.crashed:
            last = CrashedAttempt(attempt=len(result.attempts) + 1, reason=result.failure_reason or "crashed")
            crashes[result.seed] = (*result.attempts, last)
    return crashes


def with_earlier_crashes(result: EpisodeResult, earlier: Sequence[CrashedAttempt]) -> EpisodeResult:
    """`result` of a redone seed, with the crashed attempts of the interrupted run before its own."""
    if not earlier:
        return result
    renumbered = tuple(a.model_copy(update={"attempt": len(earlier) + a.attempt}) for a in result.attempts)
    return result.model_copy(update={"attempts": (*earlier, *renumbered)})
