"""The end of a session: its verdict, its traffic hashed, the session closed and signed in the journal,
results.json for the whole run, the whole-run junit.xml of an interrupted session, the key held for the seal.

Runs after the source was driven safe and the runner wrote its own reports (README "Endings").
"""

from __future__ import annotations

import json
import time
from enum import IntEnum
from pathlib import Path
from typing import Any

from drivers.errors import RigError
from rig.endings import STOP
from rig.integrity.seal import hash_attachments, hold_for_seal, sign_session
from rig.results import BENCH_FAULT, FAIL, INTERRUPTED, PASS, REFUSED, results_document, whole_run_junit
from rig.run.session import RunSession, traffic_name


class Status(IntEnum):
    """How the runner ended the session (the values of pytest's exit codes, which `rig run` maps)."""

    OK = 0
    TESTS_FAILED = 1
    INTERRUPTED = 2
    INTERNAL_ERROR = 3
    USAGE_ERROR = 4
    NO_TESTS_COLLECTED = 5


def settle(run: RunSession, status: int) -> tuple[str, int]:
    """The session's verdict and the runner's status as it should stand.

    A session that did not complete every selected item is never a pass: it is `interrupted` when a stop
    signal ended it or nothing failed, whatever the runner's status says (and the status becomes 2).
    """
    tally = run.tally
    unfinished = tally.unfinished()
    meter_failed = tally.meter_failed()
    if status == Status.INTERRUPTED and STOP.interrupted and tally.selected is not None and not unfinished:
        # Every item had completed when the signal came (it only stopped the ending's waiting): the items'
        # outcomes are the verdict; the signal is in the session's metadata and `rig run` exits 130.
        status = Status.TESTS_FAILED if meter_failed else Status.OK
    verdict = PASS if status == Status.OK else FAIL
    if verdict == FAIL and tally.bench_faults and not tally.failed_tests and status == Status.TESTS_FAILED:
        verdict = BENCH_FAULT  # nothing failed for the meter: only points the bench could not measure
    if status == Status.NO_TESTS_COLLECTED and run.resume:
        verdict = PASS  # everything had completed before: nothing failed in this session
    if status == Status.INTERRUPTED:
        verdict = INTERRUPTED
    if unfinished and (verdict == PASS or STOP.interrupted or (verdict == FAIL and not meter_failed)):
        verdict = INTERRUPTED  # FAIL without a failed item: the runner itself failed (an internal error)
    if run.refused is not None:
        verdict = REFUSED
    if verdict == INTERRUPTED and status == Status.OK:
        status = Status.INTERRUPTED
    return verdict, int(status)


def finish(run: RunSession, verdict: str, status: int, *, junit: Path | None) -> None:
    """Close the session in the journal: hash the traffic, sign, write results.json for the whole run
    (and `junit` from the journal when the session was interrupted)."""
    unfinished = run.tally.unfinished()
    run.session_meta["ending"] = {
        "signals": list(STOP.received), "source_confirmed_safe": run.bench.safe_confirmed,
        "unfinished_items": len(unfinished),
        **({"problem": run.bench.safe_problem} if run.bench.safe_problem else {}),
    }
    if run.journal is None:
        return
    if run.run_dir is None:
        run.journal.finish_run(run.run_id, verdict)
        return
    _close_session(run, verdict, status)
    open_items = set(run.tally.open_items)
    if verdict == INTERRUPTED:
        open_items |= set(unfinished) - {"<collection>"}
    document = _results(run, sorted(open_items))
    run.journal.finish_run(run.run_id, document["verdict"])
    run.run_dir.mkdir(parents=True, exist_ok=True)
    (run.run_dir / "results.json").write_text(json.dumps(document, indent=2))
    if verdict == INTERRUPTED and junit is not None:
        # The runner's junit.xml lists only what ran: the one from the journal names every unfinished item.
        junit.write_text(whole_run_junit(document))
    if run.signer is not None:
        # `rig run` writes more reports after the runner: it seals them with this key (rig.integrity.seal.seal_folder).
        hold_for_seal(run.run_dir, run.journal, run.run_id, run.session, run.signer)


def _close_session(run: RunSession, verdict: str, status: int) -> None:
    """Hash the traffic, store the metadata, close and sign the session."""
    journal, run_dir = run.journal, run.run_dir
    assert journal is not None and run_dir is not None
    bench_s = 0.0
    if run.bench.opened is not None:
        try:
            bench_s = run.bench_time_s()
        except RigError:
            bench_s = run.tally.records[-1].bench_time_s if run.tally.records else 0.0
    if run.bench.traffic is not None:
        run.bench.traffic.close()
    # This session's traffic, and that of an earlier session killed before it could hash its own.
    names = [traffic_name(s.session) for s in journal.sessions(run.run_id)]
    hash_attachments(journal, run.run_id, run.session, run_dir, names[-1:])
    hash_attachments(journal, run.run_id, run.session, run_dir, names[:-1],
                     note=f"hashed by session {run.session}: the session that wrote it was killed")
    journal.update_session_meta(run.run_id, run.session, run.session_meta)
    journal.finish_session(run.run_id, run.session, verdict=verdict, exit_status=status,
                           wall_s=round(time.monotonic() - run.wall_start, 3), bench_s=round(bench_s, 3))
    if run.signer is not None:
        sign_session(journal, run.run_id, run.session, run.signer)


def _results(run: RunSession, open_items: list[str]) -> dict[str, Any]:
    """results.json: the whole run from the journal, and why this session ended early (if it did)."""
    assert run.journal is not None
    document = results_document(run.journal, run.run_id, open_items=open_items)
    if run.refused is not None:
        document["refused_because"] = run.refused
    if run.stopped_because is not None:
        document["stopped_because"] = run.stopped_because + " (finish it with: rig run --resume " + run.run_id + ")"
    if run.stopped_by is not None:
        document["stopped_by"] = run.stopped_by
    return document
