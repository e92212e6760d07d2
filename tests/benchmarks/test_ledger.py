"""The episode ledger: torn last lines are cut, damage elsewhere is refused, one writer at a time."""

import json

import pytest

from benchmarks.harness.ledger import LEDGER_FILE, Ledger, LedgerError, read_ledger, unique_records


def record(cell: str, seed: int, success: bool = True) -> dict:
    return {"cell": cell, "seed": seed, "result": {"success": success}}


def write_lines(path, records, tail: bytes = b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


def test_a_torn_last_line_is_ignored_when_read_and_cut_away_when_opened(tmp_path):
    path = tmp_path / LEDGER_FILE
    write_lines(path, [record("a", 0), record("a", 1)], tail=b'{"cell": "a", "seed": 2, "res')
    intact = len(path.read_bytes()) - len(b'{"cell": "a", "seed": 2, "res')
    records, length = read_ledger(path)
    assert [r["seed"] for r in records] == [0, 1] and length == intact
    with Ledger(tmp_path) as ledger:
        assert ledger.repaired_bytes > 0 and ledger.done == {("a", 0), ("a", 1)}
        assert ledger.append(record("a", 2))
    assert [json.loads(line)["seed"] for line in path.read_text().splitlines()] == [0, 1, 2]


def test_a_complete_but_garbled_last_line_counts_as_torn(tmp_path):
    path = tmp_path / LEDGER_FILE
    write_lines(path, [record("a", 0)], tail=b"\x00\x00\x00\n")
    with Ledger(tmp_path) as ledger:
        assert ledger.done == {("a", 0)}
    assert path.read_text().count("\n") == 1


def test_a_damaged_line_before_the_end_is_refused(tmp_path):
    path = tmp_path / LEDGER_FILE
    path.write_text(json.dumps(record("a", 0)) + "\nnot json\n" + json.dumps(record("a", 1)) + "\n")
    with pytest.raises(LedgerError, match="line 2 is not an episode record"):
        read_ledger(path)


def test_each_cell_and_seed_is_appended_once_and_survives_reopening(tmp_path):
    with Ledger(tmp_path) as ledger:
        assert ledger.append(record("a", 0)) and ledger.append(record("b", 0))
        assert not ledger.append(record("a", 0, success=False))
        assert ledger.duplicates == 1 and ledger.done_seeds("a") == {0}
    with Ledger(tmp_path) as ledger:
        assert ledger.done == {("a", 0), ("b", 0)} and not ledger.append(record("b", 0))
    lines = (tmp_path / LEDGER_FILE).read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["result"]["success"] is True


def test_a_second_writer_is_refused_while_the_first_holds_the_folder(tmp_path):
    with Ledger(tmp_path):
        with pytest.raises(LedgerError, match="another benchmark process is writing"):
            Ledger(tmp_path).__enter__()
    with Ledger(tmp_path):  # released on exit
        pass


def test_unique_records_keep_the_first_of_each_cell_and_seed():
    kept = unique_records([record("a", 0, True), record("a", 0, False), record("a", 1)])
    assert [(r["seed"], r["result"]["success"]) for r in kept] == [(0, True), (1, True)]


def test_fresh_discards_only_what_the_harness_wrote_even_from_a_damaged_ledger(tmp_path):
    from benchmarks.harness.suite_run import prepare

    (tmp_path / LEDGER_FILE).write_text("damaged\n" + json.dumps(record("a", 0)) + "\n")
    (tmp_path / "suite.json").write_text("{}")
    (tmp_path / "runs" / "a" / "traces").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LedgerError):
        Ledger(tmp_path).__enter__()
    prepare(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == ["notes.txt"]
    with Ledger(tmp_path) as ledger:  # the lock was released by the failed open and by prepare
        assert ledger.records == []
