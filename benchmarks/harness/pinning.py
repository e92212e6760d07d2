"""<out>/suite.json: what a results folder was made from, pinned at its first start.

It holds the suite definition, every cell's overrides and resolved run config, the code's
git commit (and whether the tree was dirty) and each start's command line. A restart whose
definition or configs differ is refused, so one folder never mixes two experiments. The
executor is left out of that comparison: how episodes are spread over processes does not
change what they compute, and a resumed run may well use more workers.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any, Mapping, Sequence

from benchmarks.harness.definition import Cell, Suite, SuiteError

SUITE_FILE = "suite.json"
UNPINNED_KEYS = ("executor",)  # run mechanics, not part of what an episode computes


def git_state(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def pinned_config(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in UNPINNED_KEYS}


def definition(suite: Suite, cells: Mapping[str, tuple[Cell, dict[str, Any]]]) -> dict[str, Any]:
    """What must match between starts into one folder."""
    return {
        "suite": suite.model_dump(mode="json"),
        "cells": {
            cell_id: {"task": cell.task, "configuration": cell.configuration, "level": cell.level,
                      "variant": cell.variant, "overrides": list(cell.overrides), "config": pinned_config(config)}
            for cell_id, (cell, config) in cells.items()
        },
    }


def fingerprint(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def differences(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 6) -> list[str]:
    """Human-readable differences between two definitions, most telling first."""
    found = []
    for key in sorted(set(old["suite"]) | set(new["suite"])):
        if old["suite"].get(key) != new["suite"].get(key):
            found.append(f"suite {key}: {old['suite'].get(key)!r} -> {new['suite'].get(key)!r}")
    old_cells, new_cells = old["cells"], new["cells"]
    if set(old_cells) != set(new_cells):
        gone, added = sorted(set(old_cells) - set(new_cells)), sorted(set(new_cells) - set(old_cells))
        found.append(f"cells removed: {', '.join(gone) or 'none'}; added: {', '.join(added) or 'none'}")
    for cell_id in sorted(set(old_cells) & set(new_cells)):
        before, after = old_cells[cell_id]["config"], new_cells[cell_id]["config"]
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                found.append(f"{cell_id} config {key}: {before.get(key)!r} -> {after.get(key)!r}")
    return found[:limit]


def pin(out: Path, suite: Suite, cells: Mapping[str, tuple[Cell, dict[str, Any]]], *, source: str,
        argv: Sequence[str], executor: Mapping[str, Any], repo: Path, environment: Mapping[str, Any]) -> dict[str, Any]:
    """Write suite.json on the first start; on a restart check it matches and add this start to it."""
    path = out / SUITE_FILE
    document = definition(suite, cells)
    git = git_state(repo)
    start = {"time": _now(), **git, "argv": list(argv), "executor": dict(executor)}
    if path.exists():
        pinned = json.loads(path.read_text())
        if pinned.get("fingerprint") != fingerprint(document):
            changes = "; ".join(differences(pinned, document)) or "resolved configs differ"
            raise SuiteError(f"{out} holds results of a different suite definition ({changes}); "
                             f"rerun with --fresh to discard them, or choose another --out")
        pinned["starts"].append(start)
    else:
        pinned = {
            "fingerprint": fingerprint(document), "source": source, "created": start["time"], **git,
            "environment": dict(environment), **document, "starts": [start],
        }
    write_json(path, pinned)
    return pinned


def read_pinned(out: Path) -> dict[str, Any]:
    path = out / SUITE_FILE
    if not path.exists():
        raise SuiteError(f"{out} has no {SUITE_FILE}: no suite has been started there")
    return json.loads(path.read_text())


def write_json(path: Path, payload: Any) -> Path:
    """Write whole or not at all: a kill mid-write leaves the previous file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False))
    tmp.replace(path)
    return path
