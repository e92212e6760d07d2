"""What the viewer shows of a folder, read into plain JSON: a run (`python -m fmrobot.run`) or a benchmark
suite's results folder (`python -m benchmarks.suite`), its episodes, and one episode's trace, video and images."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from fmrobot.errors import FmrobotError, shown
from fmrobot.outputs import RESULTS_FILE, episode_stem

RUN, SUITE = "run", "suite"
SUITE_FILE = "suite.json"  # the suite definition the harness pins next to its report
LEDGER_FILE = "episodes.jsonl"  # the harness's record of every finished episode, full results included
RUNS_FOLDER = "runs"  # a suite's per-cell run folders (traces, videos, annotations)
PLOTS = (("success.png", "success by task and configuration (Wilson 95% intervals)"),
         ("latency.png", "median seconds per episode, by stage"))
FILES_ROUTE = "/files/"  # the app serves the folder's own files under this prefix
LISTED = 12  # folder entries named in the error for a folder that is neither


def files_url(relative: str | Path) -> str:
    return FILES_ROUTE + quote(Path(relative).as_posix())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FmrobotError(f"cannot read {path}: {type(error).__name__}: {error}") from None


def _holds(root: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    listed = ", ".join(names[:LISTED]) + (f", ... ({len(names)} entries)" if len(names) > LISTED else "")
    return listed or "nothing (it is empty)"


@dataclass(frozen=True)
class Folder:
    """A run or suite folder the viewer serves; `document` is its results.json."""

    root: Path
    kind: str
    document: Mapping[str, Any]

    @cached_property  # the folder is read once: a viewer shows a finished run
    def index(self) -> dict[str, Any]:
        """The page's first view: the summary and a row per episode."""
        return _run_index(self) if self.kind == RUN else _suite_index(self)

    def run_dir(self, run: str) -> Path:
        """The folder of one run: the run itself (""), or a suite cell's run folder (its cell id)."""
        if self.kind == RUN and run == "":
            return self.root
        if self.kind == SUITE and run in {c["cell"] for c in self.document["cells"]}:
            return self.root / RUNS_FOLDER / run
        raise FmrobotError(f"unknown run {shown(run)}: expected "
                           + ("'' (this run)" if self.kind == RUN else "a cell id of this suite"))

    def episode(self, run: str, seed: int) -> dict[str, Any]:
        """One episode: its row, its full result when the folder keeps it, its trace events, video and images."""
        run_dir = self.run_dir(run)
        rows = [r for r in self.index["episodes"] if r["run"] == run and r["seed"] == seed]
        if not rows:
            raise FmrobotError(f"no episode with seed {seed} in run {shown(run)} of {self.root}")
        result = self._result(run, seed) or {}
        trace = _existing(run_dir, result.get("trace_file"), Path("traces") / f"{episode_stem(seed)}.jsonl")
        video = _existing(run_dir, result.get("video_file"), Path("videos") / f"{episode_stem(seed)}.mp4")
        images = sorted((run_dir / "annotations").glob(f"{episode_stem(seed)}_*.png"), key=_natural)
        prefix = len(episode_stem(seed)) + 1
        return {
            "row": rows[0],
            "result": result or None,
            "trace": _read_trace(trace) if trace else None,
            "trace_url": self._url(trace) if trace else None,
            "video_url": self._url(video) if video else None,
            "video_annotated": self._annotated(run),
            "images": [{"name": p.stem[prefix:], "url": self._url(p)} for p in images],
        }

    def _url(self, path: Path) -> str:
        return files_url(path.relative_to(self.root))

    def _result(self, run: str, seed: int) -> dict[str, Any] | None:
        if self.kind == RUN:
            return next((e for e in self.document["episodes"] if e["seed"] == seed), None)
        return _ledger_results(self.root).get((run, seed))

    def _annotated(self, run: str) -> bool:
        """Whether the run drew perception boxes into its videos (video.annotate=true)."""
        config = self.document.get("config") if self.kind == RUN else self.document.get("configs", {}).get(run)
        video = (config or {}).get("video")
        return bool(video.get("annotate")) if isinstance(video, Mapping) else False


def open_folder(path: str | Path) -> Folder:
    """The run or suite in `path`, or one error line saying what was expected and what the folder holds."""
    root = Path(path).expanduser()
    if not root.is_dir():
        what = "a file" if root.exists() else "nothing there"
        raise FmrobotError(f"expected a run folder or a suite results folder, got {shown(str(path))}: {what}")
    results = root / RESULTS_FILE
    document = _read_json(results) if results.is_file() else None
    if isinstance(document, dict) and {"suite", "cells", "episodes"} <= document.keys():
        return Folder(root.resolve(), SUITE, document)
    if isinstance(document, dict) and {"summary", "episodes"} <= document.keys():
        return Folder(root.resolve(), RUN, document)
    if document is None and (root / SUITE_FILE).is_file():
        raise FmrobotError(f"{root} is a suite results folder without its report ({RESULTS_FILE}): build it with "
                           "python -m benchmarks.suite --suite <suite> --out <folder> --report-only")
    found = f"a {RESULTS_FILE} with keys {sorted(document)[:8]}" if isinstance(document, dict) else _holds(root)
    raise FmrobotError(
        f"expected a run folder ({RESULTS_FILE} with summary and episodes, from python -m fmrobot.run) or a suite "
        f"results folder ({RESULTS_FILE} with suite and cells, from python -m benchmarks.suite); {root} holds: {found}")


def _row(run: str, result: Mapping[str, Any]) -> dict[str, Any]:
    failure = result.get("failure") or {}
    return {
        "run": run, "seed": int(result["seed"]), "task": result.get("task"), "instruction": result.get("instruction"),
        "success": bool(result.get("success")), "crashed": bool(result.get("crashed")),
        "failure_stage": failure.get("stage"), "failure_kind": failure.get("kind"),
        "failure_skill": failure.get("skill"),
        "failure_reason": result.get("failure_reason"), "replans": result.get("replans"),
        "wall_time": result.get("wall_time"), "latency": dict(result.get("latency") or {}),
    }


def _run_index(folder: Folder) -> dict[str, Any]:
    document = folder.document
    config = document.get("config") or {}
    components = {group: (value.get("name") if isinstance(value, Mapping) else value)
                  for group, value in config.items() if group in ("task", "perception", "planner", "llm", "policy",
                                                                   "safety", "fault", "robot", "executor")}
    episodes = [_row("", e) for e in document["episodes"]]
    _mark_kept(folder, episodes)
    return {"kind": RUN, "name": folder.root.name, "path": str(folder.root), "summary": document["summary"],
            "components": components, "stages": _stages(episodes, document["summary"].get("median_stage_seconds")),
            "episodes": episodes}


def _suite_index(folder: Folder) -> dict[str, Any]:
    document = folder.document
    results = _ledger_results(folder.root)
    cells = {c["cell"]: c for c in document["cells"]}
    episodes = []
    for entry in document["episodes"]:
        cell = cells.get(entry["cell"], {})
        full = results.get((entry["cell"], int(entry["seed"])))
        row = _row(entry["cell"], full) if full else _row(entry["cell"], {
            "seed": entry["seed"], "task": cell.get("task"), "instruction": entry.get("instruction"),
            "success": entry["success"], "failure_reason": entry.get("failure_reason"),
            "wall_time": entry.get("wall_time")})
        row.update(configuration=cell.get("configuration"), level=cell.get("level"), variant=entry.get("variant"),
                   suite_stage=entry.get("failure_stage"))
        episodes.append(row)
    _mark_kept(folder, episodes)
    plots = [{"url": files_url(name), "title": title} for name, title in PLOTS if (folder.root / name).is_file()]
    suite = document["suite"]
    return {"kind": SUITE, "name": suite.get("name") or folder.root.name, "description": suite.get("description"),
            "path": str(folder.root), "commit": document.get("commit"), "dirty": document.get("dirty"),
            "complete": document.get("complete"), "generated": document.get("generated"),
            "cells": document["cells"], "attribution": document.get("attribution") or [], "plots": plots,
            "report_url": files_url("results.md") if (folder.root / "results.md").is_file() else None,
            "stages": _stages(episodes, next(iter(cells.values()), {}).get("median_stage_seconds")),
            "episodes": episodes}


def _mark_kept(folder: Folder, rows: list[dict[str, Any]]) -> None:
    """Add to each row what its run folder keeps of it: a trace, a video, perception images."""
    listings: dict[str, set[str]] = {}
    for row in rows:
        if row["run"] not in listings:
            run_dir = folder.run_dir(row["run"])
            listings[row["run"]] = {p.relative_to(run_dir).as_posix() for sub in ("traces", "videos", "annotations")
                                    if (run_dir / sub).is_dir() for p in (run_dir / sub).iterdir()}
        names, stem = listings[row["run"]], episode_stem(row["seed"])
        row["kept"] = {"trace": f"traces/{stem}.jsonl" in names, "video": f"videos/{stem}.mp4" in names,
                       "images": sum(n.startswith(f"annotations/{stem}_") for n in names)}


def _stages(episodes: list[dict[str, Any]], summary: Mapping[str, Any] | None) -> list[str]:
    """The stages in the order the summary gives them (the loop's order), then any only episodes have; each row's
    times are put in that order too (a suite's ledger stores them sorted by name)."""
    stages = list(dict.fromkeys([*(summary or {}), *(stage for e in episodes for stage in e["latency"])]))
    for row in episodes:
        row["latency"] = {stage: row["latency"][stage] for stage in stages if stage in row["latency"]}
    return stages


def _ledger_results(root: Path) -> dict[tuple[str, int], dict[str, Any]]:
    """Each (cell, seed)'s full result from the suite's ledger, counted as the report counts it: the first that
    did not crash, else the last crash. A torn or unreadable line is skipped: this only adds detail to the rows."""
    kept: dict[tuple[str, int], dict[str, Any]] = {}
    path = root / LEDGER_FILE
    if not path.is_file():
        return kept
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
            key, result = (str(record["cell"]), int(record["seed"])), dict(record["result"])
        except (ValueError, KeyError, TypeError):
            continue
        if key not in kept or kept[key].get("crashed"):
            kept[key] = result
    return kept


def _existing(run_dir: Path, recorded: str | None, default: Path) -> Path | None:
    """The file a result names (relative to its run folder), else the usual name, if it exists."""
    for candidate in ([Path(recorded)] if recorded else []) + [default]:
        path = (run_dir / candidate).resolve()
        if path.is_file() and path.is_relative_to(run_dir.resolve()):
            return path
    return None


def _read_trace(path: Path) -> list[dict[str, Any]]:
    """A trace's events in order, as written; a line that does not parse becomes an event saying so."""
    events = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except ValueError:
                events.append({"event": "unreadable", "line": number, "text": line[:300]})
    return events


def _natural(path: Path) -> list[Any]:
    """perception2 before perception10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]
