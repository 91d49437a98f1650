"""The results journal: records chained as they are taken (across processes and sessions), item
completion for resume, superseded attempts, and clear errors for a bad, missing or foreign database."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rig.integrity import genesis, record_digest
from rig.integrity.verify import verify_run
from rig.results import ItemOutcome, Journal, JournalError, Record, display_url, effective_records, judge, utc_now

RIG = [sys.executable, "-m", "rig.cli"]


def rec(test: str, value: float | None, position: str | None = "P1") -> Record:
    return Record(test, position, "error at Ib PF 1", value, "%", -1.0, 1.0, judge(value, -1.0, 1.0), 12.5,
                  {"readings_pct": [0.1, math.nan], "pf": "1"}, meter="000000000001")


def done(nodeid: str, session: int, outcome: str = "passed") -> ItemOutcome:
    return ItemOutcome(nodeid, session, "P1", outcome, 0.1, utc_now(), None, None)


def test_records_chain_across_journal_instances(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    first = Journal(url)
    first.start_run("run-1", "twin", {})
    session = first.start_session("run-1", {})
    a = first.add("run-1", rec("t::a", 0.2), session)
    first.close()
    second = Journal(url)  # a resumed process: the chain goes on from the journal's last record
    b = second.add("run-1", rec("t::b", math.nan), second.start_session("run-1", {}))
    assert (a.seq, b.seq, b.session) == (1, 2, 1)
    assert a.hash == record_digest(genesis("run-1"), a.body())
    assert b.hash == record_digest(a.hash, b.body())
    stored = second.stored_records("run-1")
    assert stored[1].record.value is None, "NaN is stored as missing (SQLite has no NaN)"
    assert stored[1].record.verdict == "fail"
    assert [s.hash for s in stored] == [a.hash, b.hash]
    result = verify_run(second, "run-1")
    assert not result.altered and "2 journal record(s): SM3 chain intact" in result.text()
    assert "no session signed it" in result.text(), "an unsigned run is reported, not passed"


def test_a_resumed_attempt_supersedes_the_interrupted_one(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    journal.start_run("r", "twin", {})
    journal.start_session("r", {})
    journal.add("r", rec("t::a", 0.1), 0)
    journal.item_done("r", 0, done("t::a", 0))
    journal.add("r", rec("t::b", 0.2), 0)  # killed before t::b completed
    journal.add("r", rec("t::c", 0.3), 0)  # never completed, never resumed
    journal.start_session("r", {})
    journal.add("r", rec("t::b", 0.25), 1)
    journal.item_done("r", 1, done("t::b", 1, "failed"))
    kept, superseded = effective_records(journal, "r")
    assert [(s.record.test, s.session) for s in kept] == [("t::a", 0), ("t::c", 0), ("t::b", 1)]
    assert [(s.record.test, s.session) for s in superseded] == [("t::b", 0)]
    assert journal.completed_items("r") == {"t::a": "passed", "t::b": "failed"}


def test_running_session_sees_a_live_process(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'journal.sqlite'}")
    journal.start_run("r", "twin", {})
    journal.start_session("r", {})
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with sqlite3.connect(tmp_path / "journal.sqlite") as conn:
            conn.execute("UPDATE run_sessions SET pid = ?", (holder.pid,))
        running = journal.running_session("r")
        assert running is not None and running.pid == holder.pid
    finally:
        holder.communicate(b"")
    assert journal.running_session("r") is None, "a dead process no longer holds the run"


def test_bad_missing_corrupt_and_foreign_databases_are_named(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="not a database URL"):
        Journal("no url at all")
    with pytest.raises(JournalError, match=r"cannot open results database nosuch://"):
        Journal("nosuch://host/db")
    with pytest.raises(JournalError, match=r"no results journal at sqlite:///.*missing\.sqlite"):
        Journal(f"sqlite:///{tmp_path / 'missing.sqlite'}", create=False)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not sqlite" * 200)
    with pytest.raises(JournalError, match=r"garbage\.sqlite"):
        Journal(f"sqlite:///{garbage}")
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_utc TEXT, finished_utc TEXT, bench TEXT,"
                     " verdict TEXT, meta TEXT)")
        conn.execute("CREATE TABLE records (id INTEGER PRIMARY KEY, run_id TEXT, test TEXT, quantity TEXT)")
    with pytest.raises(JournalError, match="another rig version"):
        Journal(f"sqlite:///{old}")
    empty = Journal(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    with pytest.raises(JournalError, match="no run 'nope'"):
        empty.run("nope")


def test_passwords_never_show_in_messages() -> None:
    shown = display_url("postgresql+psycopg://rig:hunter2@db.lab:5432/results")
    assert "hunter2" not in shown and "db.lab" in shown
    with pytest.raises(JournalError) as caught:
        Journal("postgresql://rig:hunter2@127.0.0.1:1/results")
    assert "hunter2" not in str(caught.value) and "127.0.0.1" in str(caught.value)


def test_rig_run_with_an_unreachable_database_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run([*RIG, "run", "testplans/smoke", "--reports", str(tmp_path),
                           "--set", "results_db=postgresql://rig:hunter2@127.0.0.1:1/results"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cannot open results database postgresql+psycopg://rig:***@127.0.0.1:1/results" in proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr + proc.stdout
