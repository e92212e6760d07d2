"""Executors fan episodes out: in this process, over worker processes, or over a cluster."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from fmrobot.errors import ConfigError
from fmrobot.execution.recorders import watching
from fmrobot.outputs import episode_stem, write_annotations, write_trace, write_video
from fmrobot.runner import Runner
from fmrobot.trace import CrashEvent, trace_json
from fmrobot.types import (
    CrashedAttempt,
    EpisodeFailure,
    EpisodeResult,
    FailureStage,
    StageTimes,
)

log = logging.getLogger(__name__)

ResultCallback = Callable[[EpisodeResult], None]
MAX_RETRIES_LIMIT = 10  # executor.max_retries: an episode that crashes this often will not stop crashing


@dataclass(frozen=True)
class RunJob:
    """Everything a worker needs to run episodes: plain data, so it pickles."""

    config: dict[str, Any]  # the composed run config; each worker builds its own stack from it
    run_dir: str
    seeds: tuple[int, ...]
    video_seeds: frozenset[int] = field(default_factory=frozenset)
    annotate: bool = False  # save perception images with boxes, labels and scores
    record_dir: str | None = None  # demonstrations: each episode's frames go to <record_dir>/seed_<seed>.npz
    # camera streams of demonstrations: name -> camera config (fmrobot/data/lerobot_cameras.py)
    cameras: dict[str, dict[str, Any]] | None = None
    instruction: str | None = None  # replaces each episode's generated instruction
    goal: dict[str, Any] | None = None  # goal fields to judge by, instead of each seed's task goal
    rerun: bool = False  # write each episode as a Rerun recording, rerun/seed_<seed>.rrd (fmrobot/viz)


class Executor(Protocol):
    def run(self, job: RunJob, on_result: ResultCallback) -> None: ...


def run_one(runner: Runner, job: RunJob, seed: int) -> EpisodeResult:
    """Run one episode and write its trace (and video); a crash becomes a failed record."""
    run_dir = Path(job.run_dir)
    recorder = None
    if job.record_dir is not None:
        from fmrobot.data.recording import DemoRecorder

        recorder = DemoRecorder()
    rerun = None
    if job.rerun:
        # Imports no rerun-sdk: that waits until the recording is written.
        from fmrobot.viz.rerun_recording import RerunRecorder

        rerun = RerunRecorder()
    try:
        outcome = runner.run_episode(seed, record_video=seed in job.video_seeds or bool(job.cameras),
                                     annotate=job.annotate,
                                     recorder=watching(recorder, rerun), instruction=job.instruction, goal=job.goal)
        if recorder is not None and recorder.record is not None:
            record_path = Path(job.record_dir) / f"{episode_stem(seed)}.npz"
            if job.cameras:  # saved first: a staged episode counts as done once its frames file exists
                from fmrobot.data.lerobot_cameras import row_images, save_episode_streams

                images = row_images(runner.env, job.cameras, recorder.record.steps)
                save_episode_streams(record_path, images, fps=int(job.config["env"].get("control_hz", 20)))
            recorder.record.save(record_path)
    except ConfigError:
        raise
    except Exception as error:  # a bug or a broken component: record it and go on
        log.error("episode with seed %d crashed:\n%s", seed, traceback.format_exc())
        result = crashed_result(str(job.config.get("task", {}).get("name", "?")), seed, error)
        # The trace up to the crash is what tells where it happened: it is written like any other.
        events = [*runner.episode_events(), CrashEvent(error=f"{type(error).__name__}: {error}")]
        trace_path = write_trace(run_dir, seed, trace_json(events))
        rerun_path = rerun.save(rerun_file(run_dir, seed), events) if rerun is not None else None
        return result.model_copy(update={"trace_file": str(trace_path.relative_to(run_dir)),
                                         "rerun_file": str(rerun_path.relative_to(run_dir)) if rerun_path else None})
    trace_path = write_trace(run_dir, seed, outcome.trace)
    video_path = write_video(run_dir, seed, outcome.video if seed in job.video_seeds else [],
                             fps=getattr(runner.env, "video_fps", 10.0))
    write_annotations(run_dir, seed, outcome.annotations)
    rerun_path = None
    if rerun is not None:  # with the video's frames when the episode recorded one: they are drawn already
        frame_steps = getattr(runner.env, "video_frame_steps", None)  # an env that cannot tell: no video in it
        video = outcome.video if frame_steps is not None else []
        rerun_path = rerun.save(rerun_file(run_dir, seed), outcome.events, video, frame_steps() if video else [])
    return outcome.result.model_copy(update={
        "trace_file": str(trace_path.relative_to(run_dir)),
        "video_file": str(video_path.relative_to(run_dir)) if video_path else None,
        "rerun_file": str(rerun_path.relative_to(run_dir)) if rerun_path else None,
    })


def rerun_file(run_dir: Path, seed: int) -> Path:
    """Where an episode's Rerun recording goes: beside videos/, named like its video."""
    return run_dir / "rerun" / f"{episode_stem(seed)}.rrd"


class WorkerLost(RuntimeError):
    """The worker (process or actor) running an episode ended before it returned a result."""


def crashed_result(task: str, seed: int, error: BaseException) -> EpisodeResult:
    kind = "worker_died" if isinstance(error, WorkerLost) else "exception"
    return EpisodeResult(
        task=task, seed=seed, instruction="", success=False, predicates={"success": False}, env_steps=0,
        skill_calls=0, replans=0, failure_reason=f"crashed: {type(error).__name__}: {error}",
        failure=EpisodeFailure(stage=FailureStage.CRASH, kind=kind),
        latency=StageTimes(), wall_time=0.0, crashed=True,
    )


class Retries:
    """Which crashed episodes run again, and the earlier attempts each seed's final record carries.

    Executors pass every attempt's result through `settle`: a crashed one with retries left
    is held back (the executor runs its seed again), anything else is the record to deliver.
    """

    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self._crashed: dict[int, tuple[CrashedAttempt, ...]] = {}  # seed -> its crashed attempts so far

    def settle(self, result: EpisodeResult) -> EpisodeResult | None:
        """The record to deliver for this attempt, or None when its seed should run again."""
        earlier = self._crashed.pop(result.seed, ())
        if result.crashed and len(earlier) < self.max_retries:
            attempt = CrashedAttempt(attempt=len(earlier) + 1, reason=result.failure_reason or "crashed")
            self._crashed[result.seed] = (*earlier, attempt)
            log.warning("episode with seed %d crashed (attempt %d of %d), running it again: %s", result.seed,
                        attempt.attempt, self.max_retries + 1, attempt.reason)
            return None
        return result.model_copy(update={"attempts": earlier}) if earlier else result
