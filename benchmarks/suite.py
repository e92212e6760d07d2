"""Run a benchmark suite (configs/benchmark/<name>.yaml): tasks x configurations x levels x seeds.

Every finished episode is appended once to <out>/episodes.jsonl, so an interrupted run
resumes where it stopped when started again with the same arguments. The report
(results.json, results.md, success.png, latency.png) is rebuilt at the end, or alone
with --report-only.

    python -m benchmarks.suite --suite smoke
    python -m benchmarks.suite --suite tasks_oracle --seeds 5 --workers 2
    python -m benchmarks.suite --suite components --out /tmp/components --report-only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from benchmarks import common


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", required=True, help="suite name in configs/benchmark/ or path to a YAML file")
    parser.add_argument("--out", help="results folder (default benchmarks/results/<suite>/)")
    parser.add_argument("--seeds", type=int, help="seeds per cell, instead of the suite's count")
    parser.add_argument("--tasks", help="comma-separated tasks, instead of the suite's")
    parser.add_argument("--executor", help="executor config (local, ray, ...): adds executor=<name>")
    parser.add_argument("--workers", type=int, help="adds executor.workers=<n>")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out first")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from the ledger; run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from benchmarks.harness.definition import SuiteError, load_suite, with_changes
    from benchmarks.harness.ledger import LedgerError
    from benchmarks.harness.report import write_report
    from benchmarks.harness.suite_run import SuiteRun, executor_overrides, resolved_out
    from fmrobot.errors import FmrobotError

    run = None
    try:
        if args.report_only and args.out:
            out = Path(args.out)  # the pinned suite.json says everything; the suite file may have changed since
        else:
            suite, source = load_suite(args.suite)
            if args.seeds is not None or args.tasks is not None:
                tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
                suite = with_changes(suite, tasks=tasks, seed_count=args.seeds)
            out = resolved_out(args.out, suite, REPO)
            if not args.report_only:
                run = SuiteRun(suite, out, source=str(source), argv=["-m", "benchmarks.suite", *sys.argv[1:]],
                               repo=REPO, environment=common.environment(),
                               extra_overrides=executor_overrides(args.executor, args.workers),
                               progress=not args.quiet)
        report = run.run_and_report(fresh=args.fresh) if run is not None else write_report(out)
    except (SuiteError, LedgerError, FmrobotError) as error:
        print(f"suite: error: {error}", file=sys.stderr, flush=True)
        if run is not None and run.started:  # run_and_report wrote what did finish
            print(f"suite: partial report in {out / 'results.md'}; rerun the same command to resume",
                  file=sys.stderr, flush=True)
        return 2
    cells = [c for c in report["cells"] if c["variant"] == "base"]
    rows = [[c["task"], c["configuration"], c["level"], f"{c['successes']}/{c['episodes']}",
             "-" if c["success_rate"] is None else f"{100 * c['success_rate']:.1f}%",
             f"{100 * c['wilson_95'][0]:.1f}-{100 * c['wilson_95'][1]:.1f}%"] for c in cells]
    print(common.table(["task", "configuration", "level", "succeeded", "rate", "95% CI"], rows))
    total = sum(c["episodes"] for c in report["cells"])
    crashed = sum(len(c["crashed_seeds"]) for c in report["cells"])
    state = ("complete" if report["complete"] else
             f"INCOMPLETE: {crashed} crashed, rerun the same command to redo them" if crashed else "INCOMPLETE")
    print(f"{report['suite']['name']}: {total} episodes recorded ({state}); report in {out / 'results.md'}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
