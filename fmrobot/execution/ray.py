"""Run episodes on a Ray cluster: a local instance started here, or a running cluster joined by address.

Each worker is a Ray actor that builds its own stack from the run config once, then runs
one episode at a time; results come back as they finish, in any order. An actor that
dies (a segfault, os._exit, the OOM killer, a lost node) costs exactly the episode it was
running: a replacement actor starts, and that episode runs again up to executor.max_retries
times; its record keeps every crashed attempt.

Episode files (traces, videos, annotations) are written by the actors straight into the
run directory. With a local instance that is this machine's disk; on a multi-node cluster
the run directory must be on a filesystem every node mounts at the same path.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
from collections import deque
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

_ADDRESS = re.compile(r"^(ray://)?(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):(\d{1,5})$")
_CONNECT_TIMEOUT = 5.0  # seconds; Ray itself waits 30-60 s before giving up on a dead address


class RayExecutorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # None starts a private Ray instance for this run; "auto" joins the cluster running on
    # this machine (or RAY_ADDRESS); "host:port" joins a cluster's head; "ray://host:port"
    # connects through Ray Client (a head node on another machine).
    address: str | None = None
    workers: int = Field(default=2, ge=1)  # actors, each with its own stack
    num_cpus_per_worker: float = Field(default=1.0, gt=0)
    # Passed to every actor: working_dir, py_modules, pip, env_vars, ... (Ray's runtime_env).
    runtime_env: dict[str, Any] = Field(default_factory=dict)
    log_to_driver: bool = False  # true: print the actors' stdout/stderr here
    # How often an episode whose attempt crashed (its actor died, or its code raised) runs again.
    max_retries: int = Field(default=1, ge=0, le=MAX_RETRIES_LIMIT)

    @field_validator("address")
    @classmethod
    def _known_address_form(cls, value: str | None) -> str | None:
        if value is None or value == "auto" or _ADDRESS.match(value):
            return value
        raise ValueError("expected null (start a local Ray instance), 'auto', 'host:port' or 'ray://host:port'")


class RayWorkerDied(WorkerLost):
    """The actor running an episode died before it returned a result."""


class RayExecutor:
    Config = RayExecutorConfig

    def __init__(self, config: RayExecutorConfig | None = None):
        self.config = config or RayExecutorConfig()
        self._actors: list[_Actor] = []  # the live actors of the current run
        self._running: dict[Any, tuple[_Actor, int]] = {}  # result ref -> (actor, seed), in hand-out order

    def running_episodes(self) -> list[tuple[int, int]]:
        """(actor process id on its node, seed) of each episode the current run's actors are running, in
        the order they were handed out; actors still starting are left out. Lets a test kill a busy actor."""
        if not self._running:
            return []
        import ray
        from ray.exceptions import RayError

        episodes = []
        for actor, seed in list(self._running.values()):
            if ray.wait([actor.pid], timeout=0)[0]:
                try:
                    episodes.append((ray.get(actor.pid), seed))
                except RayError:  # it died while starting
                    pass
        return episodes

    def run(self, job: RunJob, on_result: ResultCallback) -> None:
        try:
            import ray
        except ImportError as error:
            raise ConfigError(f"executor=ray needs Ray: pip install 'fmrobot[ray]' ({error})") from None

        # Actors may not share the driver's working directory (Ray Client, other nodes).
        job = replace(job, run_dir=str(Path(job.run_dir).resolve()))
        started = self._connect(ray, workers=min(self.config.workers, len(job.seeds)))
        try:
            # A job-level runtime_env (given to ray.init) lets actors start in Ray's prestarted
            # workers; a per-actor one makes Ray start fresh processes, about a second more each.
            self._run(ray, job, on_result, runtime_env=None if started else self._runtime_env())
        finally:
            if started:
                ray.shutdown()  # stops a local instance; only disconnects from a cluster

    def _connect(self, ray: Any, workers: int) -> bool:
        """Start or join Ray; True when this executor called ray.init (and so must shut it down)."""
        if ray.is_initialized():
            if self.config.address is not None:
                log.warning("this process is already connected to Ray; executor.address=%r is not used",
                            self.config.address)
            return False
        options: dict[str, Any] = {"log_to_driver": self.config.log_to_driver, "runtime_env": self._runtime_env()}
        if not (self.config.address or "").startswith("ray://"):
            # Ray logs each start step otherwise. Ray Client forwards it to the server's ray.init, whose
            # client server then fails to start (Ray 2.60), so not there.
            options["logging_level"] = logging.ERROR
        if self.config.address is None:
            # "local", not None: None would join any cluster `ray start` left on this machine.
            cpus = max(os.cpu_count() or 1, math.ceil(workers * self.config.num_cpus_per_worker))
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, **options)
            return True
        _check_reachable(self.config.address)
        try:
            ray.init(address=self.config.address, **options)
        except Exception as error:  # ConnectionError, a version mismatch, an auth failure, ...
            raise ConfigError(f"could not join the Ray cluster at {self.config.address!r}: {error} (it must run the "
                              f"same Ray version; with token authentication, set RAY_AUTH_MODE=token here)") from None
        return True

    def _run(self, ray: Any, job: RunJob, on_result: ResultCallback, runtime_env: dict[str, Any] | None) -> None:
        from ray.exceptions import RayError, RayTaskError

        task = str(job.config.get("task", {}).get("name", "?"))
        options: dict[str, Any] = {"runtime_env": runtime_env} if runtime_env is not None else {}
        # No restarts by Ray: a dead actor is replaced here, where the episode it lost is known.
        actor_class = ray.remote(_EpisodeWorker).options(num_cpus=self.config.num_cpus_per_worker, max_restarts=0,
                                                         max_task_retries=0, **options)
        job_ref = ray.put(job)
        retries = Retries(self.config.max_retries)
        pending = deque(job.seeds)
        idle: list[_Actor] = []  # live actors with nothing to run, while others still run
        running = self._running = {}

        def hand_out(actor: _Actor) -> None:
            seed = pending.popleft()
            running[actor.handle.run.remote(job_ref, seed)] = (actor, seed)

        try:
            size = self._actor_count(ray, len(job.seeds))
            while pending and len(self._actors) < size:
                self._actors.append(_Actor.start(actor_class, job.config))
                hand_out(self._actors[-1])
            while running:
                [ref], _ = ray.wait(list(running), num_returns=1)
                actor, seed = running.pop(ref)
                try:
                    attempt = ray.get(ref)
                except RayTaskError as error:  # the episode code raised past run_one
                    if isinstance(error.cause, ConfigError):
                        raise ConfigError(str(error.cause)) from None
                    attempt = crashed_result(task, seed, error.cause or error)
                except RayError as error:  # above all RayActorError: the actor's process is gone
                    attempt = crashed_result(task, seed, RayWorkerDied(_died_reason(error)))
                    _kill(ray, actor.handle)  # in case it is only unreachable
                    self._actors.remove(actor)
                if actor in self._actors:
                    idle.append(actor)
                record = retries.settle(attempt)
                if record is None:
                    pending.appendleft(seed)  # first in line, so the next free actor takes it
                # Work goes to idle actors first, then to new ones in place of those that died.
                while pending and idle:
                    hand_out(idle.pop())
                while pending and len(self._actors) < size:
                    self._actors.append(_Actor.start(actor_class, job.config))
                    hand_out(self._actors[-1])
                if record is not None:
                    on_result(record)
        finally:
            for actor in self._actors:
                _kill(ray, actor.handle)
            self._actors, self._running = [], {}

    def _runtime_env(self) -> dict[str, Any]:
        env = dict(self.config.runtime_env)
        # One thread per actor, as everywhere else here: N actors x M threads thrash the cores.
        env["env_vars"] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **dict(env.get("env_vars") or {})}
        return env

    def _actor_count(self, ray: Any, episodes: int) -> int:
        """As many actors as asked for, but no more than the cluster can place: an actor that waits
        for CPUs forever would hold its episode forever."""
        wanted = min(self.config.workers, episodes)
        resources = ray.cluster_resources()
        fits = int(resources.get("CPU", 0) // self.config.num_cpus_per_worker)
        if fits < 1:
            raise ConfigError(f"the Ray cluster has {resources.get('CPU', 0):g} CPUs; each worker needs "
                              f"{self.config.num_cpus_per_worker:g} (executor.num_cpus_per_worker)")
        if fits < wanted:
            log.warning("the Ray cluster fits %d workers of %g CPUs, not %d; running %d",
                        fits, self.config.num_cpus_per_worker, wanted, fits)
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        if nodes > 1:
            log.warning("the Ray cluster has %d nodes: the run directory must be on a filesystem they all share",
                        nodes)
        return min(wanted, fits)


class _Actor:
    """A started actor; `pid` resolves to its process id once it has started."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.pid = handle.pid.remote()  # queued before any episode, so it answers as soon as the actor is up

    @classmethod
    def start(cls, actor_class: Any, config: dict[str, Any]) -> _Actor:
        return cls(actor_class.remote(config))


class _EpisodeWorker:
    """One Ray actor: builds the stack once, then runs one episode per call."""

    def __init__(self, config: dict[str, Any]):
        from fmrobot.stack import build_runner

        self._error: Exception | None = None
        try:
            self.runner = build_runner(config)
        except Exception as error:  # raised from run(), where the driver tells a config error from a crash
            self._error = error

    def pid(self) -> int:
        return os.getpid()

    def run(self, job: RunJob, seed: int) -> EpisodeResult:
        if self._error is not None:
            raise self._error
        return run_one(self.runner, job, seed)


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception as error:  # already gone, or the cluster is: nothing left to free
        log.debug("could not kill a Ray actor: %s", error)


def _check_reachable(address: str) -> None:
    """Fail in seconds with one line, instead of Ray's long retries, when nothing listens there."""
    if address == "auto":
        return  # Ray finds the local cluster itself and fails at once when there is none
    match = _ADDRESS.match(address)
    assert match is not None  # the config validated the form
    host, port = match.group(2).strip("[]"), int(match.group(3))
    try:
        with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT):
            pass
    except OSError as error:
        raise ConfigError(f"cannot reach the Ray cluster at {address!r} ({error.strerror or error}); start one "
                          f"with `ray start --head`, or leave executor.address unset for a local instance") from None


def _died_reason(error: BaseException) -> str:
    """Ray's message runs to a page of possible causes; keep where the actor ran and why it exited."""
    text = " ".join(str(error).split())
    where = ", ".join(f"{key} {match.group(1)}" for key in ("pid", "ip")
                      if (match := re.search(rf"\b{key}: (\S+)", text)))
    detail = re.search(r"Worker exit detail: (.+?\.)(?: |$)", text)
    why = detail.group(1) if detail else text[:200]
    return f"the Ray worker running this episode died ({where or type(error).__name__}): {why}"
