"""What a run leaves in its directory: results.json, one trace per episode, videos."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fmrobot.types import EpisodeResult

RESULTS_FILE = "results.json"


def episode_stem(seed: int) -> str:
    return f"seed_{seed:06d}"


def write_trace(run_dir: Path, seed: int, events: Sequence[dict[str, Any]]) -> Path:
    path = run_dir / "traces" / f"{episode_stem(seed)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for event in events:
            handle.write(json.dumps(event, sort_keys=True) + "\n")
    return path


def write_video(run_dir: Path, seed: int, frames: Sequence[np.ndarray], fps: float) -> Path | None:
    if not frames:
        return None
    import imageio.v2 as imageio  # heavy; only when a video is asked for

    path = run_dir / "videos" / f"{episode_stem(seed)}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1 keeps odd frame sizes as they are instead of resizing them. The veryfast
    # preset encodes in about 60% of the default's time at the same size for these small frames.
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1,
                            ffmpeg_params=["-preset", "veryfast"]) as writer:
        for frame in frames:
            writer.append_data(np.ascontiguousarray(frame))
    return path


def write_annotations(run_dir: Path, seed: int, images: Sequence[tuple[str, np.ndarray]]) -> list[Path]:
    from PIL import Image

    paths = []
    for name, image in images:
        path = run_dir / "annotations" / f"{episode_stem(seed)}_{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(image)).save(path)
        paths.append(path)
    return paths


def summarize(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    n = len(results)
    successes = sum(r.success for r in results)
    stages = list(type(results[0].latency).model_fields) if results else []
    return {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n if n else 0.0,
        "median_wall_time": statistics.median(r.wall_time for r in results) if results else None,
        "median_stage_seconds": {
            stage: statistics.median(getattr(r.latency, stage) for r in results) for stage in stages
        },
        "crashed": sum(r.crashed for r in results),
        "failures": {str(r.seed): r.failure_reason for r in results if not r.success},
        "failure_reasons": failure_reasons(results),
        # A user's instruction is judged by each seed's task goal unless a goal came with it.
        "given_instruction": any(r.given_instruction for r in results),
        "judged_by": sorted({r.judged_by for r in results}),
    }


def failure_reasons(results: Sequence[EpisodeResult]) -> list[dict[str, Any]]:
    """The reasons of failed episodes, each with its count and seeds, most frequent first."""
    seeds: dict[str, list[int]] = {}
    stages: dict[str, str | None] = {}
    for result in results:
        if not result.success:
            reason = result.failure_reason or "no reason recorded"
            seeds.setdefault(reason, []).append(result.seed)
            stages.setdefault(reason, result.failure.stage.value if result.failure else None)
    counts = Counter({reason: len(s) for reason, s in seeds.items()})
    return [{"reason": reason, "count": count, "seeds": sorted(seeds[reason]), "stage": stages[reason]}
            for reason, count in counts.most_common()]


def write_results(run_dir: Path, results: Sequence[EpisodeResult], config: dict[str, Any]) -> Path:
    ordered = sorted(results, key=lambda r: r.seed)
    document = {
        "summary": summarize(ordered),
        "episodes": [r.model_dump(mode="json") for r in ordered],
        "config": config,
    }
    path = run_dir / RESULTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2))
    tmp.replace(path)  # never leave a half-written results file behind
    return path


def summary_line(task: str, summary: dict[str, Any], results_path: Path) -> str:
    shown = results_path
    try:
        shown = results_path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        pass  # outside the working directory: keep it absolute
    crashed = f"; {summary['crashed']} crashed" if summary.get("crashed") else ""
    line = (
        f"{task}: {summary['successes']}/{summary['episodes']} episodes succeeded "
        f"({100 * summary['success_rate']:.1f}%){crashed}; results in {shown}"
    )
    if summary.get("given_instruction"):
        judged = ("the goal given with it" if summary.get("judged_by") == ["given"]
                  else "each seed's task goal (recorded per episode as `goal` in results.json)")
        line += f"\n  your instruction was judged by {judged}"
    return line + failure_report(summary.get("failure_reasons") or [])


#: Reasons listed on the terminal; the rest are in results.json.
SHOWN_REASONS = 5


def failure_report(reasons: Sequence[dict[str, Any]], width: int = 300) -> str:
    """Lines under the summary line: why episodes failed, grouped by reason, most frequent first."""
    if not reasons:
        return ""
    lines = ["", "  why episodes failed (count: reason [seeds]):"]
    for entry in reasons[:SHOWN_REASONS]:
        reason = " ".join(str(entry["reason"]).split())
        reason = reason if len(reason) <= width else reason[:width - 3] + "..."
        seeds = entry["seeds"]
        listed = ", ".join(map(str, seeds[:6])) + (", ..." if len(seeds) > 6 else "")
        lines.append(f"  {entry['count']:>4}: {reason} [seed{'s' if len(seeds) > 1 else ''} {listed}]")
    hidden = reasons[SHOWN_REASONS:]
    if hidden:
        lines.append(f"  and {sum(e['count'] for e in hidden)} more failures with {len(hidden)} other reasons "
                     "(results.json: summary.failure_reasons)")
    return "\n".join(lines)
