"""Run episodes in this process or in warm local worker processes.

With workers > 1, each worker process builds the stack once, then runs the seeds this process
hands it, one at a time. A worker that dies (a segfault, os._exit, the OOM killer, a kill)
costs only the episode it was running: a replacement starts, and that episode runs again up
to executor.max_retries times; its record keeps every crashed attempt.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fmrobot.errors import ConfigError
from fmrobot.execution import (
    MAX_RETRIES_LIMIT,
    ResultCallback,
    Retries,
    RunJob,
    WorkerLost,
    crashed_result,
    run_one,
)
from fmrobot.types import EpisodeResult

log = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0  # seconds a worker gets to close its env and exit before it is killed


class LocalExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int = Field(default=1, ge=1)  # 1 runs in this process
    # How often an episode whose attempt crashed (its worker died, or its code raised) runs again.
    max_retries: int = Field(default=1, ge=0, le=MAX_RETRIES_LIMIT)


class WorkerDied(WorkerLost):
    """The worker process running an episode ended before it returned a result."""


class LocalExecutor:
    Config = LocalExecutorConfig

    def __init__(self, config: LocalExecutorConfig | None = None):
        self.config = config or LocalExecutorConfig()
        self._pool: _WorkerPool | None = None

    def running_episodes(self) -> list[tuple[int, int]]:
        """(worker process id, seed) of each episode the current run's workers are running, in the order
        they were handed out; empty when episodes run in this process. Lets a test kill a busy worker."""
        return self._pool.running() if self._pool is not None else []

    def run(self, job: RunJob, on_result: ResultCallback) -> None:
        retries = Retries(self.config.max_retries)
        if self.config.workers == 1 or len(job.seeds) == 1:
            _run_here(job, on_result, retries)
            return
        self._pool = _WorkerPool(job, min(self.config.workers, len(job.seeds)), retries)
        try:
            self._pool.run(on_result)
        finally:
            self._pool = None


def _run_here(job: RunJob, on_result: ResultCallback, retries: Retries) -> None:
    from fmrobot.stack import build_runner

    runner = build_runner(job.config)
    try:
        for seed in job.seeds:
            record = None
            while record is None:  # run_one turns an exception into a crashed attempt
                record = retries.settle(run_one(runner, job, seed))
            on_result(record)
    finally:
        runner.env.close()


class _Worker:
    """One worker process and this side of its pipe; `seed` is the episode it was sent and has not answered."""

    def __init__(self, context: Any, job: RunJob):
        self.conn, child_end = context.Pipe()
        # Not a daemon: a daemonic process may not start processes of its own, and a stack may.
        self.process = context.Process(target=_serve, args=(child_end, job), name="fmrobot-episode-worker")
        self.process.start()
        child_end.close()  # else this process keeps the worker's end open and never sees it close
        self.seed: int | None = None
        self.handed_out = 0.0  # when it was sent `seed`

    def assign(self, seed: int) -> bool:
        """Send the worker its next episode; False if it is already gone (and so never got it)."""
        try:
            self.conn.send(seed)
        except OSError:
            return False
        self.seed = seed
        self.handed_out = time.monotonic()
        return True

    def receive(self) -> tuple[str, Any] | None:
        """The worker's message, or None when it is dead (its pipe closed, or it exited without a word)."""
        try:
            if self.conn.poll():
                return self.conn.recv()
        except (EOFError, OSError):  # a message cut off by its death arrives as EOF
            pass
        return None

    def death(self) -> str:
        self.process.join(_STOP_TIMEOUT)
        code = self.process.exitcode
        if code is None:
            self.stop()
            how = "closed its pipe but did not exit"
        elif code < 0:
            how = f"killed by {_signal_name(-code)}"
        else:
            how = f"exit code {code}"
        return f"the worker process running this episode died (pid {self.process.pid}, {how})"

    def stop(self, wait_first: float = 0.0) -> None:
        self.process.join(wait_first)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class _WorkerPool:
    """The worker processes of one run, the seeds still to hand out, and the retries of crashed ones."""

    def __init__(self, job: RunJob, size: int, retries: Retries):
        self.job = job
        self.size = size
        self.retries = retries
        self.task = str(job.config.get("task", {}).get("name", "?"))
        self.pending = deque(job.seeds)
        self.busy: list[_Worker] = []
        self.finished: list[_Worker] = []  # sent the stop message; joined at the end
        # spawn, not fork: physics clients, renderers and torch threads do not survive a fork.
        self.context = multiprocessing.get_context("spawn")

    def running(self) -> list[tuple[int, int]]:
        workers = sorted((w for w in list(self.busy) if w.seed is not None), key=lambda w: w.handed_out)
        return [(w.process.pid, w.seed) for w in workers if w.process.is_alive()]

    def run(self, on_result: ResultCallback) -> None:
        try:
            self._fill()
            while self.busy:
                ready = set(wait([w.conn for w in self.busy] + [w.process.sentinel for w in self.busy]))
                for worker in [w for w in self.busy if w.conn in ready or w.process.sentinel in ready]:
                    record = self._step(worker)
                    if record is not None:
                        on_result(record)
            for worker in self.finished:
                worker.stop(wait_first=_STOP_TIMEOUT)
        finally:
            for worker in self.busy + self.finished:  # left over only after an error: stop them now
                worker.stop()

    def _step(self, worker: _Worker) -> EpisodeResult | None:
        """Take one message (or the death) of a worker, hand out work, and return the record to deliver."""
        message = worker.receive()
        if message is None:
            self.busy.remove(worker)
            attempt = (crashed_result(self.task, worker.seed, WorkerDied(worker.death()))
                       if worker.seed is not None else None)
            worker.stop()
        elif message[0] == "config_error":
            raise ConfigError(message[1])
        else:
            attempt = message[1]
            worker.seed = None
        record = self.retries.settle(attempt) if attempt is not None else None
        if attempt is not None and record is None:
            self.pending.appendleft(attempt.seed)  # first in line, so a replacement takes it
        if message is not None:
            self._hand_out(worker)
        self._fill()
        return record

    def _hand_out(self, worker: _Worker) -> None:
        """Give an idle worker its next seed, or let it go when none is left."""
        if self.pending and worker.process.is_alive():
            seed = self.pending.popleft()
            if worker.assign(seed):
                return
            self.pending.appendleft(seed)  # it died between episodes: its sentinel reports it next
            return
        if not self.pending:
            self.busy.remove(worker)
            self.finished.append(worker)
            try:
                worker.conn.send(None)
            except OSError:
                pass  # already gone: nothing to stop

    def _fill(self) -> None:
        """Start workers (first ones, or replacements) while seeds wait and the pool is short."""
        while self.pending and len(self.busy) < self.size:
            worker = _Worker(self.context, self.job)
            self.busy.append(worker)
            seed = self.pending.popleft()
            if not worker.assign(seed):
                self.pending.appendleft(seed)


def _serve(conn: Connection, job: RunJob) -> None:
    """A worker process: build the stack once, then run each seed it is sent, until it is sent None."""
    # Ctrl-C reaches every process in the terminal's group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from fmrobot.stack import build_runner

    task = str(job.config.get("task", {}).get("name", "?"))
    runner, broken = None, None
    try:
        runner = build_runner(job.config)
    except ConfigError as error:
        conn.send(("config_error", str(error)))
        return
    except Exception as error:  # as on a Ray actor: each episode it is sent becomes a crashed record
        log.exception("the worker could not build the stack")
        broken = error
    try:
        while (seed := _next_seed(conn)) is not None:
            if broken is not None:
                conn.send(("result", crashed_result(task, seed, broken)))
                continue
            try:
                result = run_one(runner, job, seed)
            except ConfigError as error:
                conn.send(("config_error", str(error)))
                return
            conn.send(("result", result))
    finally:
        if runner is not None:
            runner.env.close()


def _next_seed(conn: Connection) -> int | None:
    try:
        return conn.recv()
    except EOFError:  # the parent is gone: nobody is waiting for results
        return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
