"""Whole-run documents derived from the journal alone: which records and outcomes count (a resume supersedes
an earlier attempt), the run's verdict, results.json and JUnit XML for every session of a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rig.results.journal import Journal
from rig.results.records import (
    BENCH_FAULT,
    FAIL,
    INTERRUPTED,
    PASS,
    REFUSED,
    ItemOutcome,
    SessionRow,
    StoredRecord,
    stored_to_json,
    utc_now,
)


def latest_items(item_outcomes: Iterable[ItemOutcome]) -> list[ItemOutcome]:
    """Each item's latest completion (a bench-faulted item completes again when a resume measures it)."""
    latest = {i.nodeid: i for i in item_outcomes}
    return [i for i in item_outcomes if latest[i.nodeid] is i]


def effective_records(journal: Journal, run_id: str) -> tuple[list[StoredRecord], list[StoredRecord]]:
    """(the run's records, superseded ones).

    An item's records are those of the session in which it completed; an item that never
    completed keeps those of its latest attempt (partial). Records of an attempt that a resume
    re-ran are superseded: kept in the journal and the chain, left out of reports.
    """
    completed = {i.nodeid: i.session for i in journal.items(run_id)}
    every = journal.stored_records(run_id)
    latest: dict[str, int] = {}
    for s in every:
        latest[s.record.test] = max(latest.get(s.record.test, -1), s.session)
    kept: list[StoredRecord] = []
    superseded: list[StoredRecord] = []
    for s in every:
        wanted = completed.get(s.record.test, latest[s.record.test])
        (kept if s.session == wanted else superseded).append(s)
    return kept, superseded


def run_verdict(item_outcomes: Sequence[ItemOutcome], effective: Sequence[StoredRecord], *,
                last_session: str | None) -> str:
    """pass / fail / bench-fault / interrupted / refused for the whole run, from the journal."""
    if last_session in (INTERRUPTED, REFUSED):
        return last_session
    item_outcomes = latest_items(item_outcomes)
    if any(i.outcome in ("failed", "error") for i in item_outcomes) or any(
            s.record.verdict == FAIL for s in effective):
        return FAIL
    if any(i.outcome == BENCH_FAULT for i in item_outcomes) or any(s.record.verdict == BENCH_FAULT for s in effective):
        return BENCH_FAULT
    return PASS


def _tests(items: Sequence[ItemOutcome], incomplete: Iterable[str], last: SessionRow | None) -> list[dict[str, Any]]:
    """Each item's latest outcome (with the bench fault's reason), then the items left unfinished."""
    done = [{"test": i.nodeid, "outcome": i.outcome, "session": i.session}
            | ({"message": i.message} if i.outcome == BENCH_FAULT else {}) for i in items]
    return done + [{"test": nodeid, "outcome": INTERRUPTED, "session": last.session if last else 0}
                   for nodeid in incomplete]


def _session(s: SessionRow) -> dict[str, Any]:
    return {"session": s.session, "started_utc": s.started_utc, "finished_utc": s.finished_utc,
            "verdict": s.verdict, "exit_status": s.exit_status, "wall_s": s.wall_s, "bench_s": s.bench_s,
            "signed": s.signature is not None, "key_kind": s.key_kind}


def results_document(journal: Journal, run_id: str, *, open_items: Iterable[str] = ()) -> dict[str, Any]:
    """results.json for the whole run (every session), derived from the journal alone.

    `open_items`: node ids the current session started but did not complete (shown as interrupted).
    """
    run = journal.run(run_id)
    sessions = journal.sessions(run_id)
    item_list = latest_items(journal.items(run_id))
    effective, superseded = effective_records(journal, run_id)
    meta = run.meta or {}
    last = sessions[-1] if sessions else None
    incomplete = sorted(({s.record.test for s in effective} - {i.nodeid for i in item_list}) | set(open_items))
    return {
        "run_id": run_id,
        "started_utc": run.started_utc,
        "finished_utc": utc_now(),
        "bench": meta.get("bench", {"name": run.bench, "description": ""}),
        "meter_type": meta.get("meter_type", {}),
        "positions": meta.get("positions", []),
        # The last session that opened the bench (a resume with nothing left to run opens none).
        "instruments": next((s.meta["instruments"] for s in reversed(sessions) if s.meta.get("instruments")), []),
        "journal": journal.shown_url,
        "sessions": [_session(s) for s in sessions],
        # Resumes that ran although their inputs had changed since the first session (rig run --accept-changed).
        "accepted_changes": [{"session": s.session, **changed} for s in sessions
                             if isinstance(changed := s.meta.get("accepted_changes"), dict)],
        "wall_s": round(sum(s.wall_s or 0.0 for s in sessions), 3),
        "bench_s": round(sum(s.bench_s or 0.0 for s in sessions), 3),
        "verdict": run_verdict(item_list, effective, last_session=last.verdict if last else None),
        "bench_faults": sum(1 for i in item_list if i.outcome == BENCH_FAULT),
        "exit_status": last.exit_status if last else None,
        "tests": _tests(item_list, incomplete, last),
        "records": [stored_to_json(s) for s in effective],
        "superseded_records": [stored_to_json(s) for s in superseded],
        "attachments": [{"name": a.name, "session": a.session, "sm3": a.sm3, "size_bytes": a.size_bytes}
                        for a in journal.attachments(run_id)],
    }


def whole_run_junit(document: dict[str, Any]) -> str:
    """JUnit XML (xunit2) for a whole run from its results.json: one testcase per item, every session."""
    import xml.etree.ElementTree as ET

    by_test: dict[str, list[dict[str, Any]]] = {}
    for rec in document.get("records", []):
        by_test.setdefault(rec["test"], []).append(rec)
    tests = document.get("tests", [])
    counts = {k: sum(1 for t in tests if t["outcome"] == k)
              for k in ("failed", "error", "skipped", "interrupted", BENCH_FAULT)}
    suite = ET.Element("testsuite", name=f"rig run {document['run_id']}", tests=str(len(tests)),
                       failures=str(counts["failed"]),
                       errors=str(counts["error"] + counts["interrupted"] + counts[BENCH_FAULT]),
                       skipped=str(counts["skipped"]), time=f"{document.get('wall_s', 0.0):.3f}",
                       timestamp=str(document.get("started_utc", "")))
    for test in tests:
        module, _, name = test["test"].rpartition("::")
        case = ET.SubElement(suite, "testcase", classname=module.replace("/", ".").removesuffix(".py"), name=name)
        lines = [f"{r.get('position') or ''} {r['quantity']} = {r['value']} {r['unit']} "
                 f"(limits {r['low']} .. {r['high']}): {r['verdict']}" for r in by_test.get(test["test"], [])]
        text = "\n".join(lines)
        if test["outcome"] == "failed":
            ET.SubElement(case, "failure", message="record(s) outside limits or assertion failed").text = text
        elif test["outcome"] == BENCH_FAULT:
            # An error, not a failure: the bench could not measure the point; the meter was not judged.
            ET.SubElement(case, "error", type=BENCH_FAULT,
                          message=f"bench fault: {test.get('message') or 'an instrument or link failed'}").text = text
        elif test["outcome"] in ("error", "interrupted"):
            ET.SubElement(case, "error", message=test["outcome"]).text = text
        elif test["outcome"] == "skipped":
            ET.SubElement(case, "skipped")
        ET.SubElement(case, "system-out").text = f"session {test.get('session', 0)}\n{text}"
    root = ET.Element("testsuites")
    root.append(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")
