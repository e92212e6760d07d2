"""Planning benchmark (issue 14): instruction items x seeds x planners, symbolic or end to end.

    python -m benchmarks.planning_benchmark --mode symbolic --split dev --planners oracle,scripted
    python -m benchmarks.planning_benchmark --mode symbolic --planners llm_scoring --llm smollm2 \\
        --tasks pick_place,stack_blocks --per-item-seeds 2 --workers 2
    python -m benchmarks.planning_benchmark --mode e2e --planners scripted --perception oracle --tasks pick_place

Each item (benchmarks/planning/items.py) is run on `--per-item-seeds` seeds of its split
with its own instruction and the goal it resolves to. Components come from the same
config as `python -m fmrobot.run` (composed with Hydra; trailing `key=value` arguments are
overrides, e.g. `responder=oracle runner.max_decisions=10`):

- symbolic: the real runner over the symbolic world (benchmarks/planning/symbolic.py):
  the scene from the seed, the symbolic executor as policy, the symbolic scene as
  perception; planner, shield, responder and runner limits from the config;
- e2e: the real environment and components (`--perception` chooses perception).

Every episode gets an error type (benchmarks/planning/errors.py). Planners that hold a
language model are built once per process. Output in --out: episodes.jsonl (one line per
episode), report.md and report.json (benchmarks/planning/report.py), and the traces of
failed episodes under traces/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

from benchmarks import common
from benchmarks.planning.items import SPLITS

MODES = ("symbolic", "e2e")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="symbolic")
    parser.add_argument("--split", choices=SPLITS, default="dev")
    parser.add_argument("--planners", default="oracle,scripted", help="comma-separated planner configs")
    parser.add_argument("--llm", default="smollm2", help="language model for planners that need one")
    parser.add_argument("--tasks", default="all", help="comma-separated tasks, or all")
    parser.add_argument("--items", help="comma-separated item ids or id prefixes (pick_place/base), instead of all")
    parser.add_argument("--per-item-seeds", type=int, default=3, help="seeds per item")
    parser.add_argument("--perception", default="oracle", help="perception config (e2e mode)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "planning"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run, e.g. responder=oracle")
    args = parser.parse_args(list(argv))
    if args.per_item_seeds < 1 or args.workers < 1:
        parser.error("--per-item-seeds and --workers must be at least 1")
    return args


# --------------------------------------------------------------------------- configs and stacks


def compose(tasks: Sequence[str], planners: Sequence[str], llm: str, perception: str,
            overrides: Sequence[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(planner, task) -> the run config `python -m fmrobot.run` would use, validated (one line on a mistake)."""
    from benchmarks.harness.definition import compose_config, validate_config

    configs = {}
    for planner in planners:
        for task in tasks:
            config = compose_config([f"task={task}", f"planner={planner}", f"llm={llm}",
                                     f"perception={perception}", "video=none", *overrides])
            validate_config(config)
            configs[planner, task] = config
    return configs


def with_task_options(config: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    return {**config, "task": {**config["task"], **dict(options)}}


def model_name(config: Mapping[str, Any]) -> str:
    """The language model behind the planner, or "-" for planners without one."""
    from fmrobot import registry

    planner = registry.resolve("planner", config["planner"])
    return str(config["llm"].get("name", "?")) if getattr(planner.cls, "needs_llm", False) else "-"


class Stacks:
    """One process's components: planners (and their language models) built once; environments
    once per task and task options, the last few kept (a world holds ~100 MB), shared by planners."""

    KEEP_ENVS = 4

    def __init__(self) -> None:
        self.planners: dict[str, Any] = {}
        self.envs: OrderedDict[tuple, Any] = OrderedDict()

    def planner(self, key: str, config: Mapping[str, Any]) -> Any:
        from fmrobot import registry
        from fmrobot.stack import build_planner

        if key not in self.planners:
            self.planners[key] = build_planner(registry.resolve("planner", config["planner"]), config)
        return self.planners[key]

    def runner(self, mode: str, planner_key: str, config: Mapping[str, Any]) -> Any:
        key = (mode, json.dumps(config["task"], sort_keys=True), json.dumps(config["env"], sort_keys=True))
        if key in self.envs:
            self.envs.move_to_end(key)
        else:
            self.envs[key] = build_env_parts(mode, config)
            while len(self.envs) > self.KEEP_ENVS:
                self.envs.popitem(last=False)[1][0].close()
        env, perceptor, policy = self.envs[key]
        return build_runner(config, env, perceptor, policy, self.planner(planner_key, config))

    def close(self) -> None:
        while self.envs:
            self.envs.popitem()[1][0].close()


def build_env_parts(mode: str, config: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """(environment, perceptor, policy): the symbolic stand-ins, or the real ones from the config."""
    from fmrobot import registry
    from fmrobot.stack import build_env

    if mode == "symbolic":
        from benchmarks.planning.symbolic import (
            ScenePerceptor,
            SymbolicEnv,
            SymbolicPolicy,
        )

        # Nothing is rendered: the tiny renderer spares loading the EGL plugin.
        env = SymbolicEnv(build_env({**config, "env": {**config["env"], "renderer": "tiny"}}))
        return env, ScenePerceptor(env), SymbolicPolicy(env)
    env = build_env(config)
    try:
        return (env, registry.resolve("perception", config["perception"]).build(),
                registry.resolve("policy", config["policy"]).build())
    except BaseException:
        env.close()
        raise


def build_runner(config: Mapping[str, Any], env: Any, perceptor: Any, policy: Any, planner: Any) -> Any:
    """The real runner, with the config's shield, responder and limits."""
    from fmrobot import registry
    from fmrobot.runner import Runner
    from fmrobot.stack import RunSettings

    shield = registry.resolve("safety", config["safety"]).build()
    responder = registry.resolve("responder", config["responder"]).build() if config.get("responder") else None
    return Runner(env, perceptor, planner, policy, shield, RunSettings.from_config(config).runner, responder)


# --------------------------------------------------------------------------- episodes


_STACKS: Stacks | None = None  # this process's


def run_item(mode: str, planner_key: str, config: Mapping[str, Any], item: Any, seeds: Sequence[int],
             out: str | None = None) -> list[dict[str, Any]]:
    """Every seed of one item through one planner: a record per episode."""
    global _STACKS
    from benchmarks.planning.items import resolve

    if _STACKS is None:
        _STACKS = Stacks()
    runner = _STACKS.runner(mode, planner_key, with_task_options(config, item.task_options))
    llm = getattr(runner.planner, "llm", None)
    records = []
    for seed in seeds:
        base = {"mode": mode, "planner": planner_key, "model": model_name(config), "task": item.task,
                "item": item.id, "subset": item.subset, "expect": item.expect, "seed": seed}
        try:
            episode, _ = runner.env.reset_episode(seed)  # the seed's own goal and objects, to resolve the item on
            start = runner.env.start if mode == "symbolic" else start_state(runner.env)
            objects = {label: thing.position for label, thing in start.things.items()}
            text, goal = resolve(item, seed, episode.goal, objects)
            before = dict(getattr(llm, "stats", None) or {})
            outcome = runner.run_episode(seed, instruction=text, goal=goal)
            after = dict(getattr(llm, "stats", None) or {})
        except Exception as error:  # noqa: BLE001 (a bug in a component: one crashed episode, not a lost run)
            records.append({**base, "success": False, "error": "crashed", "achieved": False, "decisions": 0,
                            "planning_seconds": 0.0, "failure_reason": f"crashed: {type(error).__name__}: {error}"})
            continue
        used = {k: after[k] - before.get(k, 0) for k in after} if after else None
        records.append({**base, **episode_record(runner, outcome, item.expect, start, used)})
        if out is not None and not records[-1]["success"]:
            from fmrobot.outputs import write_trace

            write_trace(Path(out) / "traces" / planner_key / item.id, seed, outcome.trace)
    return records


def start_state(env: Any) -> Any:
    """The symbolic start of the real env's scene (just reset), to judge e2e plans as facts."""
    from benchmarks.planning.symbolic import NO_SMALLER_SUPPORT, SymbolicState

    return SymbolicState.from_world(env.world, no_smaller_support=env.task.name in NO_SMALLER_SUPPORT)


def episode_record(runner: Any, outcome: Any, expect: str, start: Any,
                   tokens: Mapping[str, int] | None) -> dict[str, Any]:
    from benchmarks.planning.errors import classify, decisions

    result, episode = outcome.result, runner.env.episode  # the episode as judged: its goal's oracle plan
    error = classify(result, outcome.trace, expect, episode.oracle_plan, episode.task.skills, start=start)
    return {
        "instruction": result.instruction, "goal": dict(result.goal), "success": error is None, "error": error,
        "achieved": result.success, "decisions": len(decisions(outcome.trace)),
        "help_requests": result.help_requests, "skill_calls": result.skill_calls, "replans": result.replans,
        "planning_seconds": result.latency.planning, "wall_seconds": result.wall_time,
        "tokens": dict(tokens) if tokens else None, "failure_reason": result.failure_reason,
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from benchmarks.harness.definition import SuiteError
    from benchmarks.planning.items import TASKS, item_seeds, load_items
    from benchmarks.planning.report import write_report
    from fmrobot.errors import FmrobotError

    out = Path(args.out)
    tasks = list(TASKS) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]
    planners = [p.strip() for p in args.planners.split(",") if p.strip()]
    started = time.perf_counter()
    # The commit the run's code comes from, read before anything runs: a commit made while it runs is not it.
    commit = common.environment()["commit"]
    try:
        items = load_items(args.split, tasks)
        if args.items:
            wanted = [w.strip() for w in args.items.split(",") if w.strip()]
            items = [item for item in items if any(item.id.startswith(w) for w in wanted)]
            if not items:
                raise ValueError(f"no item of {', '.join(tasks)} in split {args.split} matches --items {args.items}")
        configs = compose(sorted({item.task for item in items}), planners, args.llm, args.perception, args.overrides)
    except (ValueError, SuiteError, FmrobotError) as error:
        print(f"planning_benchmark: error: {error}", file=sys.stderr)
        return 2
    seeds, skipped = {}, {}
    for item in items:
        try:
            seeds[item.id] = item_seeds(item, args.split, args.per_item_seeds)
        except ValueError as error:  # an item no scene fits: report it, run the rest
            skipped[item.id] = str(error)
            print(f"planning_benchmark: skipping item {item.id}: {error}", file=sys.stderr)
    items = [item for item in items if item.id in seeds]
    # Item-major: a task's scenes are built once and shared by the planners before the next task's.
    jobs = [(args.mode, p, configs[p, item.task], item, seeds[item.id], str(out)) for item in items for p in planners]
    print(f"{len(items)} items x {args.per_item_seeds} seeds x {len(planners)} planners = "
          f"{sum(len(j[4]) for j in jobs)} episodes ({args.mode}); setup {time.perf_counter() - started:.1f} s",
          file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    ran = time.perf_counter()
    with (out / "episodes.jsonl").open("w") as ledger:
        def keep(batch: list[dict[str, Any]]) -> None:
            records.extend(batch)
            for record in batch:
                ledger.write(json.dumps(record) + "\n")
            ledger.flush()

        if args.workers == 1:
            for job in jobs:
                keep(run_item(*job))
        else:
            import multiprocessing

            # spawn: physics clients and torch threads do not survive a fork
            with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for future in as_completed([pool.submit(run_item, *job) for job in jobs]):
                    keep(future.result())
    seconds = time.perf_counter() - ran
    meta = {"mode": args.mode, "split": args.split, "planners": ",".join(planners), "llm": args.llm,
            "tasks": ",".join(tasks), "per_item_seeds": args.per_item_seeds,
            "perception": args.perception if args.mode == "e2e" else "symbolic",
            "overrides": " ".join(args.overrides) or "-", "episodes": len(records), "workers": args.workers,
            "episode_seconds": round(seconds, 1), "commit": commit,
            "skipped_items": "; ".join(f"{i}: {why}" for i, why in skipped.items()) or "-"}
    report = write_report(out, records, meta)
    for row in report["overall"]:
        low, high = row["wilson_95"]
        print(f"{row['planner']} ({row['model']}): {row['successes']}/{row['episodes']} "
              f"({100 * (row['success_rate'] or 0):.1f}%, 95% CI {100 * low:.1f}-{100 * high:.1f}%); "
              f"errors: {row['errors'] or 'none'}")
    print(f"{len(records)} episodes in {seconds:.1f} s; report in {out / 'report.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
