"""Run a suite's cells through their executors, recording each finished episode once in the ledger."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from benchmarks.harness.definition import BASE, Cell, Suite, compose_cells
from benchmarks.harness.ledger import LEDGER_FILE, Ledger, is_crashed, lock_folder
from benchmarks.harness.pinning import SUITE_FILE, pin

RUNS_FOLDER = "runs"  # per-cell run directories: traces/ and videos/
OWNED = (LEDGER_FILE, SUITE_FILE, RUNS_FOLDER, "results.json", "results.md", "success.png", "latency.png")


def discard(out: Path) -> None:
    """--fresh: remove what an earlier run of the harness left in `out` (and nothing else)."""
    for name in OWNED:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def executor_overrides(executor: str | None, workers: int | None) -> list[str]:
    overrides = [f"executor={executor}"] if executor else []
    if workers is not None:
        overrides.append(f"executor.workers={workers}")
    return overrides


def video_seeds(config: Mapping[str, Any], seeds: Sequence[int], first: int) -> frozenset[int]:
    video = config.get("video") or "none"
    video = video.get("episodes", "none") if isinstance(video, Mapping) else video  # the `video` group
    if video == "all":
        return frozenset(seeds)
    return frozenset({first}) & frozenset(seeds) if video == "first" else frozenset()


class SuiteRun:
    def __init__(self, suite: Suite, out: Path, *, source: str, argv: Sequence[str], repo: Path,
                 environment: Mapping[str, Any], extra_overrides: Sequence[str] = (), progress: bool = True):
        self.suite, self.out, self.source, self.argv = suite, Path(out), source, list(argv)
        self.repo, self.environment = repo, dict(environment)
        self.extra_overrides = list(extra_overrides)
        self.progress = progress
        self.started = False  # episodes may have been recorded: a report is worth writing even after an error

    def run(self, fresh: bool = False) -> dict[str, Any]:
        """Validate every cell, pin the folder, then run what the ledger does not hold yet."""
        cells = compose_cells(self.suite, self.extra_overrides)  # fails in seconds, before any episode
        if fresh:
            prepare(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        with Ledger(self.out) as ledger:
            first_cell = next(iter(cells.values()))[1]
            pinned = pin(self.out, self.suite, cells, source=self.source, argv=self.argv,
                         executor=first_cell.get("executor", {}), repo=self.repo, environment=self.environment)
            session = len(pinned["starts"]) - 1
            self.started = True
            if ledger.repaired_bytes:
                self._say(f"ledger: cut a torn last line ({ledger.repaired_bytes} bytes) left by an interrupted run")
            if ledger.records:
                crashed = sum(is_crashed(r) for r in ledger.records)
                self._say(f"ledger: {len(ledger.records) - crashed} episodes already recorded; running the rest"
                          + (f" and redoing {crashed} that crashed" if crashed else ""))
            bases = [(cell, config) for cell, config in cells.values() if cell.variant == BASE]
            for number, (cell, config) in enumerate(bases, start=1):
                self._run_cell(ledger, cell, config, self.suite.seeds.values(), session, f"[{number}/{len(bases)}]")
                failed = self._failed_seeds(ledger, cell.id)
                for variant_cell, variant_config in cells.values():
                    if variant_cell.variant != BASE and variant_cell.base_id == cell.id:
                        # Counterfactuals only for the seeds that failed: a success needs no explanation.
                        self._run_cell(ledger, variant_cell, variant_config, failed, session,
                                       f"[{number}/{len(bases)}]")
        return pinned

    def run_and_report(self, fresh: bool = False) -> dict[str, Any]:
        """`run`, then rebuild the report and return it. When the run fails after episodes may have
        been recorded, the report of what finished is written first (it says it is incomplete)."""
        from benchmarks.harness.report import write_report

        try:
            self.run(fresh=fresh)
        except BaseException:
            if self.started:
                write_report(self.out)
            raise
        return write_report(self.out)

    @staticmethod
    def _failed_seeds(ledger: Ledger, cell_id: str) -> list[int]:
        # A crash is not a failure of the stack for the counterfactual variants to explain.
        return sorted(int(r["seed"]) for r in ledger.records
                      if r["cell"] == cell_id and not r["result"]["success"] and not is_crashed(r))

    def _run_cell(self, ledger: Ledger, cell: Cell, config: dict[str, Any], seeds: Sequence[int], session: int,
                  tag: str) -> None:
        from tqdm import tqdm

        from fmrobot import registry
        from fmrobot.execution import RunJob
        from fmrobot.stack import RunSettings

        done = ledger.done_seeds(cell.id)
        pending = tuple(s for s in seeds if s not in done)
        label = f"{cell.task} / {cell.configuration} / {cell.level}" + (
            f" / {cell.variant}" if cell.variant != BASE else "")
        if not pending:
            if seeds:
                self._say(f"{tag} {label}: all {len(seeds)} episodes recorded")
            return
        self._say(f"{tag} {label}: {len(pending)} episodes to run ({len(seeds) - len(pending)} recorded)")
        settings = RunSettings.from_config(config)
        job = RunJob(config=config, run_dir=str(self.out / RUNS_FOLDER / cell.id), seeds=pending,
                     video_seeds=video_seeds(config, pending, self.suite.seeds.start), annotate=settings.annotate)
        executor = registry.resolve("executor", config["executor"]).build()
        expected = set(pending)
        delivered: set[int] = set()
        successes = 0
        with tqdm(total=len(pending), desc=cell.id, unit="ep", file=sys.stderr, dynamic_ncols=True,
                  disable=not self.progress) as bar:

            def record(result) -> None:
                nonlocal successes
                if result.seed not in expected:
                    self._say(f"{cell.id}: ignored a result for seed {result.seed}, which was not asked for")
                    return
                written = ledger.append({
                    "cell": cell.id, "task": cell.task, "configuration": cell.configuration, "level": cell.level,
                    "variant": cell.variant, "seed": int(result.seed), "session": session,
                    "result": result.model_dump(mode="json"),
                })
                if written:  # an executor that retries may deliver a seed twice; the first one counts
                    delivered.add(int(result.seed))
                    successes += bool(result.success)
                    bar.update(1)
                    bar.set_postfix(success=f"{successes}/{bar.n}")

            executor.run(job, record)
        missing = expected - delivered - ledger.done_seeds(cell.id)
        if missing:
            raise RuntimeError(f"executor {config['executor'].get('name')!r} returned without results for seeds "
                               f"{sorted(missing)} of {cell.id}")

    def _say(self, message: str) -> None:
        if self.progress:
            print(message, file=sys.stderr, flush=True)


def resolved_out(out: str | None, suite: Suite, repo: Path) -> Path:
    return Path(out) if out else repo / "benchmarks" / "results" / suite.name


def prepare(out: Path) -> None:
    """--fresh: discard earlier results in `out`, unless another run is writing there."""
    if out.exists():
        with lock_folder(out):  # refuses while another run writes there; a damaged ledger is fine to discard
            discard(out)
