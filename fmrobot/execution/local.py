"""Run episodes in this process or in local worker processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.execution import ResultCallback, RunJob, crashed_result, run_one
from fmrobot.runner import Runner


class LocalExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(default=1, ge=1)  # 1 runs in this process


class LocalExecutor:
    Config = LocalExecutorConfig

    def __init__(self, config: LocalExecutorConfig | None = None):
        self.config = config or LocalExecutorConfig()

    def run(self, job: RunJob, on_result: ResultCallback) -> None:
        from fmrobot.stack import build_runner

        if self.config.workers == 1 or len(job.seeds) == 1:
            runner = build_runner(job.config)
            try:
                for seed in job.seeds:
                    on_result(run_one(runner, job, seed))
            finally:
                runner.env.close()
            return
        # spawn, not fork: physics clients, renderers and torch threads do not survive a fork.
        context = multiprocessing.get_context("spawn")
        workers = min(self.config.workers, len(job.seeds))
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(job.config,)) as pool:
            futures = {pool.submit(_run_in_worker, job, seed): seed for seed in job.seeds}
            for future in as_completed(futures):
                seed = futures[future]
                try:
                    on_result(future.result())
                except Exception as error:  # the worker process died
                    on_result(crashed_result(str(job.config.get("task", {}).get("name", "?")), seed, error))


_worker_runner: Runner | None = None


def _init_worker(config: dict[str, Any]) -> None:
    global _worker_runner
    from fmrobot.stack import build_runner

    _worker_runner = build_runner(config)


def _run_in_worker(job: RunJob, seed: int):
    assert _worker_runner is not None, "worker initializer did not run"
    return run_one(_worker_runner, job, seed)
