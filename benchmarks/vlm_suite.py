"""A vision-language model as planner and success detector: plan success, detector accuracy, latency, image tokens.

    python -m benchmarks.vlm_suite --model <folder | hub id | http(s)://server/v1> [--api-model NAME]
                                   [--tasks pick_place,stack_blocks] [--episodes 3] [--out PATH]

Every episode runs `planner=vlm success_detector=vlm` with the model, oracle perception (the object
names a plan may use; the model itself reads the rendered camera images) and the oracle responder
(answers the planner's questions). Reported:
- plans: decisions made, those that were valid on the first attempt, failed decisions (no valid
  answer within the attempts), and task success judged by the simulator's predicates;
- the detector against the simulator: per step, its verdict against the status the policy read
  from simulator state; per episode, its verdict on the last step against the task's success
  predicate (confusion counts, accuracy);
- seconds, image tokens and prompt tokens per decision, for plans and verdicts apart: with a local
  model both counts are the processor's; a server reports only its prompt tokens (image tokens
  included), so image tokens read "n/a" there.

Without --model it builds the tiny random Idefics3 model of the tests (fmrobot/llm/tiny_vlm.py)
and says so in the report's first line: those figures test the code path, not a VLM.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import save, table

RANDOM_NOTE = "random tiny model: figures test the code path, not a VLM"


class MeteredModel:
    """The model the planner and the detector share, timing each call and counting its image tokens."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.calls: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:  # reads_images, grammar_constrained, stats, ...
        return getattr(self.inner, name)

    def generate(self, messages, schema=None) -> str:
        before = dict(getattr(self.inner, "stats", {}) or {})
        started = time.perf_counter()
        answer = self.inner.generate(messages, schema=schema)
        after = getattr(self.inner, "stats", {}) or {}
        counted = {key: after[key] - before.get(key, 0) if key in after else None
                   for key in ("image_tokens", "prompt_tokens")}  # transformers: both; a server: its usage's prompt
        kind = "verdict" if getattr(schema, "__name__", "") == "VerdictJSON" else "plan"
        self.calls.append({"kind": kind, "seconds": time.perf_counter() - started, **counted,
                           "images": sum(len(m.images) for m in messages)})
        return answer

    def score(self, prompt, continuations):
        return self.inner.score(prompt, continuations)


def llm_overrides(model: str, api_model: str | None) -> list[str]:
    if model.startswith(("http://", "https://")):
        return ["llm=openai", f"llm.base_url={model}"] + ([f"llm.model={api_model}"] if api_model else [])
    return ["llm=transformers", f"llm.model={model}", "llm.max_new_tokens=400"]


def confusion(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """(truth, verdict) pairs as confusion counts; `positive` is success."""
    counts = {"true_yes": sum(t and v for t, v in pairs), "false_yes": sum(v and not t for t, v in pairs),
              "false_no": sum(t and not v for t, v in pairs), "true_no": sum(not t and not v for t, v in pairs)}
    counts["accuracy"] = (counts["true_yes"] + counts["true_no"]) / len(pairs) if pairs else None
    return counts


def spread(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean": None, "median": None}
    return {"count": len(values), "mean": statistics.fmean(values), "median": statistics.median(values)}


def run(model: str | None, tasks: list[str], episodes: int, seed: int, api_model: str | None,
        max_steps: int | None) -> dict[str, Any]:
    from fmrobot.compose import compose_plain
    from fmrobot.stack import build_runner
    from fmrobot.trace import DecisionEvent, PlanningErrorEvent

    random_tiny = model is None
    if random_tiny:
        from fmrobot.llm.tiny_vlm import tiny_vlm

        model = str(tiny_vlm("idefics3", Path(tempfile.mkdtemp(prefix="vlm-suite-")) / "idefics3"))
        max_steps = max_steps or 3  # random weights fill every step the schema admits
    rows, step_pairs, final_pairs, calls = [], [], [], []
    for task in tasks:
        overrides = [f"task={task}", "perception=oracle", "planner=vlm", "success_detector=vlm", "responder=oracle",
                     "video=none", *llm_overrides(model, api_model)]
        if max_steps:
            overrides.append(f"planner.max_steps={max_steps}")
        runner = build_runner(compose_plain("run", overrides))
        metered = MeteredModel(runner.planner.llm)
        runner.planner.llm = metered
        runner.success_detector.llm = metered
        try:
            for index in range(episodes):
                outcome = runner.run_episode(seed + index)
                result = outcome.result
                decisions = sum(isinstance(e, DecisionEvent) for e in outcome.events)
                first_try = sum(isinstance(e, DecisionEvent) and e.decision.rationale.endswith("attempt 1")
                                for e in outcome.events)
                failed = sum(isinstance(e, PlanningErrorEvent) for e in outcome.events)
                record = result.detector
                checks = record.steps if record else ()
                step_pairs += [(c.skill_status.value == "success", c.achieved) for c in checks]
                if record is not None and record.final is not None:
                    final_pairs.append((result.success, record.final))
                rows.append({"task": task, "seed": seed + index, "success": result.success,
                             "failure": result.failure.kind if result.failure else None, "decisions": decisions,
                             "valid_first_attempt": first_try, "failed_decisions": failed,
                             "detector_steps": len(checks),
                             "detector_final": record.final if record else None})
        finally:
            runner.env.close()
        calls += metered.calls
    by_kind = {kind: [c for c in calls if c["kind"] == kind] for kind in ("plan", "verdict")}
    return {
        "model": model, "random_tiny": random_tiny, "note": RANDOM_NOTE if random_tiny else "",
        "tasks": tasks, "episodes_per_task": episodes,
        "plans": {"episodes": len(rows), "task_success": sum(r["success"] for r in rows),
                  "decisions": sum(r["decisions"] for r in rows),
                  "valid_first_attempt": sum(r["valid_first_attempt"] for r in rows),
                  "failed_decisions": sum(r["failed_decisions"] for r in rows)},
        "detector": {"steps": confusion(step_pairs), "final": confusion(final_pairs)},
        "latency_seconds": {kind: spread([c["seconds"] for c in found]) for kind, found in by_kind.items()},
        "image_tokens": {kind: spread([c["image_tokens"] for c in found if c["image_tokens"] is not None])
                         for kind, found in by_kind.items()},
        "prompt_tokens": {kind: spread([c["prompt_tokens"] for c in found if c["prompt_tokens"] is not None])
                          for kind, found in by_kind.items()},
        "episodes": rows,
    }


def report(figures: dict[str, Any]) -> str:
    header = (f"# VLM suite: {figures['model']}\n\n"
              + (f"**{RANDOM_NOTE}.**\n\n" if figures["random_tiny"] else ""))
    plans = figures["plans"]
    lines = [header, table(["episodes", "task success", "decisions", "valid on first attempt", "failed decisions"],
                           [[plans["episodes"], plans["task_success"], plans["decisions"],
                             plans["valid_first_attempt"], plans["failed_decisions"]]]), "",
             "Success detector against the simulator (yes = success):", "",
             table(["judged", "true yes", "false yes", "false no", "true no", "accuracy"],
                   [[name, c["true_yes"], c["false_yes"], c["false_no"], c["true_no"],
                     "n/a" if c["accuracy"] is None else f"{c['accuracy']:.2f}"]
                    for name, c in (("steps (policy status)", figures["detector"]["steps"]),
                                    ("episodes (success predicate)", figures["detector"]["final"]))]), "",
             table(["decision", "count", "mean s", "median s", "mean image tokens", "mean prompt tokens"],
                   [[kind, s["count"], _or_na(s["mean"]), _or_na(s["median"]),
                     _or_na(figures["image_tokens"][kind]["mean"], "n/a (the backend does not count them)"),
                     _or_na(figures["prompt_tokens"][kind]["mean"])]
                    for kind, s in figures["latency_seconds"].items()])]
    return "\n".join(lines) + "\n"


def _or_na(value: Any, missing: str = "n/a") -> Any:
    return missing if value is None else value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a VLM folder, hub id or OpenAI-compatible URL; none: the tiny random model")
    parser.add_argument("--api-model", help="the model name to ask an OpenAI-compatible server for")
    parser.add_argument("--tasks", default="pick_place,stack_blocks")
    parser.add_argument("--episodes", type=int, default=3, help="episodes per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, help="longest plan the schema admits (planner.max_steps)")
    parser.add_argument("--out", default="benchmarks/results/vlm_suite.json")
    args = parser.parse_args(argv)
    figures = run(args.model, [t for t in args.tasks.split(",") if t], args.episodes, args.seed, args.api_model,
                  args.max_steps)
    path = save(args.out, figures)
    text = report(figures)
    path.with_suffix(".md").write_text(text)
    print(text)
    print(f"saved {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
