"""Fault-injection suite: every injected fault ends in recovery or a clean failure, and no record is lost.

Runs the `faults` suite (configs/benchmark/faults.yaml: one configuration per fault) through
the benchmark harness, like benchmarks/suite.py, then reads each episode's record and trace:

- fired: episodes in whose trace the fault left an event (a fault that never fired tests nothing);
- recovered: succeeded although the fault fired (replanned: of those, after at least one replan);
- clean failures: failed with a reason that is not a crash, and the most common such reason;
- crashed: failure reasons starting with "crashed:" (the target is 0);
- records: episodes with a ledger record and a trace file on disk, of the seeds asked for.

    python -m benchmarks.fault_injection                    # 10 seeds per fault
    python -m benchmarks.fault_injection --seeds 3 --workers 2 --out /tmp/faults
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

from benchmarks import common

TABLE_FILE = "faults.md"
SUMMARY_FILE = "faults.json"
# Object labels and numbers vary from seed to seed; without them, reasons of one kind count as one.
_LABEL = re.compile(r"(?<![a-z'])(the )?'?[a-z]+ (block|bowl|cylinder|zone|tray)'?")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def reason_kind(reason: str) -> str:
    """A failure reason without its injected-fault note, object labels and numbers."""
    text = reason.split(" [injected faults: ")[0]
    text = _LABEL.sub(lambda m: "the <object>" if m.group(1) else "<object>", text)
    return _NUMBER.sub("#", text)


def fault_rows(out: Path) -> list[dict[str, Any]]:
    """One summary per configuration of the results folder `out` (ledger, pinned suite, run traces)."""
    from benchmarks.harness.ledger import LEDGER_FILE, read_ledger, unique_records
    from benchmarks.harness.pinning import read_pinned
    from benchmarks.harness.suite_run import RUNS_FOLDER

    pinned = read_pinned(out)
    records = unique_records(read_ledger(out / LEDGER_FILE)[0])
    seeds = pinned["suite"]["seeds"]
    asked = seeds["count"]
    rows = []
    for cell_id, cell in pinned["cells"].items():
        mine = [r for r in records if r["cell"] == cell_id]
        fault = (cell["config"].get("fault") or {}).get("name", "none")
        fired = recovered = replanned = crashed = traced = 0
        reasons: Counter[str] = Counter()
        for record in mine:
            result = record["result"]
            trace_path = out / RUNS_FOLDER / cell_id / (result.get("trace_file") or "missing")
            events = [json.loads(line) for line in trace_path.read_text().splitlines()] if trace_path.is_file() else []
            traced += bool(events)
            hit = any(e.get("event") == "fault" for e in events)
            fired += hit
            reason = result.get("failure_reason") or ""
            if result["success"]:
                recovered += hit
                replanned += hit and result["replans"] > 0
            elif reason.startswith("crashed:"):
                crashed += 1
            else:
                reasons[reason_kind(reason)] += 1
        common_reason, count = reasons.most_common(1)[0] if reasons else ("", 0)
        rows.append({"configuration": cell["configuration"], "fault": fault,
                     "planner": cell["config"]["planner"].get("name"), "asked": asked, "episodes": len(mine),
                     "fired": fired, "successes": sum(bool(r["result"]["success"]) for r in mine),
                     "recovered": recovered, "replanned": replanned, "clean_failures": sum(reasons.values()), "crashed": crashed,
                     "traces": traced, "most_common_reason": common_reason, "most_common_count": count})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["configuration", "fault", "planner", "episodes", "fired", "succeeded", "recovered", "replanned",
               "clean failures", "most common reason", "crashed", "records + traces"]
    body = [[r["configuration"], r["fault"], r["planner"], r["episodes"], r["fired"], r["successes"], r["recovered"],
             r["replanned"], r["clean_failures"],
             f"{r['most_common_reason'][:110]} ({r['most_common_count']})" if r["most_common_reason"] else "-",
             r["crashed"], f"{min(r['episodes'], r['traces'])}/{r['asked']}"] for r in rows]
    return common.table(headers, body)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="faults", help="suite name in configs/benchmark/ or a YAML path")
    parser.add_argument("--out", help="results folder (default benchmarks/results/<suite>/)")
    parser.add_argument("--seeds", type=int, help="seeds per fault, instead of the suite's count")
    parser.add_argument("--workers", type=int, help="adds executor.workers=<n>")
    parser.add_argument("--fresh", action="store_true", help="discard earlier results in --out first")
    parser.add_argument("--report-only", action="store_true", help="rebuild the tables from --out; run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    from benchmarks.harness.definition import SuiteError, load_suite, with_changes
    from benchmarks.harness.ledger import LedgerError
    from benchmarks.harness.report import write_report
    from benchmarks.harness.suite_run import SuiteRun, executor_overrides, resolved_out
    from fmrobot.errors import FmrobotError

    try:
        if args.report_only and args.out:
            out = Path(args.out)
        else:
            suite, source = load_suite(args.suite)
            if args.seeds is not None:
                suite = with_changes(suite, seed_count=args.seeds)
            out = resolved_out(args.out, suite, REPO)
        if args.report_only:
            write_report(out)  # the harness's own results.md, success.png and latency.png beside the fault table
        else:
            SuiteRun(suite, out, source=str(source), argv=["-m", "benchmarks.fault_injection", *sys.argv[1:]],
                     repo=REPO, environment=common.environment(), extra_overrides=executor_overrides(None, args.workers),
                     progress=not args.quiet).run_and_report(fresh=args.fresh)
    except (SuiteError, LedgerError, FmrobotError) as error:
        print(f"fault_injection: error: {error}", file=sys.stderr, flush=True)
        return 2
    rows = fault_rows(out)
    text = render(rows)
    (out / TABLE_FILE).write_text(text + "\n")
    (out / SUMMARY_FILE).write_text(json.dumps({"environment": common.environment(), "rows": rows}, indent=2))
    print(text)
    crashed = sum(r["crashed"] for r in rows)
    lost = sum(r["asked"] - min(r["episodes"], r["traces"]) for r in rows)
    print(f"{sum(r['episodes'] for r in rows)} episodes; crashed: {crashed}; records or traces missing: {lost}; "
          f"table in {out / TABLE_FILE}", flush=True)
    return 0 if crashed == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
