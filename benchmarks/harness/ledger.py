"""The episode ledger: one JSON line per finished episode, appended and fsync'ed by one process.

Appending whole lines and syncing each one means a crash or SIGKILL can lose at most the
episode being written, and only as a torn last line without a newline, which the next
start cuts away. The (cell, seed) pairs in the ledger are what the harness treats as done,
so an episode is recorded exactly once however often the run is interrupted.

A crashed episode (its worker died, or its code raised) is recorded too, but is not done:
the next start runs it again, and the first record that did not crash is the one that counts.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any, Iterable

LEDGER_FILE = "episodes.jsonl"
LOCK_FILE = ".lock"

Key = tuple[str, int]  # (cell id, seed)


class LedgerError(Exception):
    """A ledger that cannot be trusted (corrupt inside, not just torn at the end) or is in use."""


def read_ledger(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a ledger file and the byte length of its intact part.

    A last line that is unterminated or does not parse is a torn write: it is left out, and
    the intact length stops before it. A bad line anywhere else means the file was edited
    or damaged, which the harness must not paper over.
    """
    if not path.exists():
        return [], 0
    *complete, tail = path.read_bytes().split(b"\n")  # tail: bytes after the last newline
    records: list[dict[str, Any]] = []
    intact = 0
    for number, line in enumerate(complete, start=1):
        try:
            record = json.loads(line) if line.strip() else None
            if record is not None and not (isinstance(record, dict) and "cell" in record and "seed" in record):
                raise ValueError("not an episode record")
        except ValueError as error:
            if number == len(complete) and not tail:
                break  # a last line damaged by a crash of the machine, not just of the process
            raise LedgerError(f"{path}: line {number} is not an episode record ({error}); "
                              f"the ledger was changed by hand or damaged") from None
        if record is not None:
            records.append(record)
        intact += len(line) + 1
    return records, intact


def record_key(record: dict[str, Any]) -> Key:
    return str(record["cell"]), int(record["seed"])


def is_crashed(record: dict[str, Any]) -> bool:
    """The episode never finished. Ledgers written before results had a `crashed` field say so in the reason."""
    result = record.get("result") or {}
    return bool(result.get("crashed")) or str(result.get("failure_reason") or "").startswith("crashed:")


def lock_folder(out: Path) -> IO[str]:
    """Hold <out>/.lock exclusively until the returned file is closed."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / LOCK_FILE, "a+")
    try:
        # flock dies with its process, even on SIGKILL: a stale lock cannot block a restart.
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LedgerError(f"another benchmark process is writing to {out}; wait for it or use another --out") from None
    return handle


class Ledger:
    """Exclusive, append-only access to <out>/episodes.jsonl for the harness process."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LEDGER_FILE
        self._counted: dict[Key, dict[str, Any]] = {}  # the record that counts, one per (cell, seed)
        self.done: set[Key] = set()  # keys with a record that did not crash
        self.duplicates = 0
        self.repaired_bytes = 0
        self._lock = None
        self._handle = None

    def __enter__(self) -> "Ledger":
        self._lock = lock_folder(self.out)
        try:
            records, intact = read_ledger(self.path)
        except LedgerError:
            self._lock.close()
            raise
        if self.path.exists() and self.path.stat().st_size > intact:
            self.repaired_bytes = self.path.stat().st_size - intact
            with open(self.path, "r+b") as handle:
                handle.truncate(intact)
                os.fsync(handle.fileno())
        for record in records:
            self._remember(record)
        self._handle = open(self.path, "ab")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._lock is not None:
            self._lock.close()  # releases the flock

    def _remember(self, record: dict[str, Any]) -> bool:
        key = record_key(record)
        if key in self.done:
            self.duplicates += 1
            return False
        self._counted[key] = record  # replaces a crashed record of the key
        if not is_crashed(record):
            self.done.add(key)
        return True

    def append(self, record: dict[str, Any]) -> bool:
        """Write one record durably; False (and nothing written) if its (cell, seed) is already done.
        A crashed record is written, but its (cell, seed) stays to be done."""
        assert self._handle is not None, "use the ledger inside `with`"
        if record_key(record) in self.done:
            self.duplicates += 1
            return False
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        self._handle.write(line)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._remember(record)
        return True

    @property
    def records(self) -> list[dict[str, Any]]:
        """The record that counts for each (cell, seed) seen, in the order they were first recorded."""
        return list(self._counted.values())

    def done_seeds(self, cell: str) -> set[int]:
        return {seed for c, seed in self.done if c == cell}


def unique_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (cell, seed), in first-seen order: the first that did not crash, else the last crash.
    What a report counts, even if a ledger was merged by hand."""
    kept: dict[Key, dict[str, Any]] = {}
    for record in records:
        key = record_key(record)
        if key not in kept or is_crashed(kept[key]):
            kept[key] = record
    return list(kept.values())
