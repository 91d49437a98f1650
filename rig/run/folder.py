"""The run folder after the runner: the seal, reports/latest, the whole-run documents after a resume, and
the exit code of a run.

Exit codes: 0 all passed, 1 a meter failed, 2 bad usage or refused, 3 nothing failed but the bench could not
measure some points, 4 stopped by the operator step (incomplete, not a meter failure), 130 interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.errors import RigError
from rig.endings import STOP
from rig.results import BENCH_FAULT, Journal, JournalError, whole_run_junit
from rig.run.exits import EXIT_BENCH_FAULT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_OPERATOR, EXIT_USAGE
from rig.run.finish import Status

Say = Callable[[str], None]  # a line for the person running the command (rich markup)


def results(run_dir: Path) -> dict[str, Any] | None:
    """The run's results.json (None when missing or not a JSON object)."""
    try:
        document = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def refusal(run_dir: Path) -> str | None:
    """Why the run was refused at its start (expired calibration, bench not reachable), if it was."""
    reason = (results(run_dir) or {}).get("refused_because")
    return str(reason) if reason else None


def operator_stop(run_dir: Path) -> str | None:
    """Why the operator step stopped the run, if it did."""
    document = results(run_dir)
    if document is None or document.get("stopped_by") != "operator":
        return None
    return str(document.get("stopped_because") or "stopped by the operator step")


def seal(run_dir: Path, say: Say, *, final: bool = True) -> None:
    """Sign the hash of every file of the run folder with the session's key (rig.integrity.seal.seal_folder)."""
    from rig.integrity.seal import seal_folder

    try:
        seal_folder(run_dir, final=final)
    except (RigError, OSError) as exc:
        say(f"[red]error:[/red] could not seal the reports of {run_dir.name}: {exc}; "
            "`rig verify` will report them as covered by no signature")


def link_latest(reports: Path, run_dir: Path) -> None:
    """Point reports/latest at the run, unless it was refused or never started (latest keeps the last real run)."""
    if not (run_dir / "results.json").is_file() or refusal(run_dir):
        return
    latest = reports / "latest"
    try:
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(run_dir.name, target_is_directory=True)
    except OSError:
        (reports / "LATEST").write_text(run_dir.name + "\n")


def _run_journal(run_dir: Path, run_id: str, db: str | None) -> Journal:
    """The journal holding the run: `db`, else the folder's journal.sqlite, else RIG_DB."""
    if db:
        journal = Journal(db, create=False)
    elif (run_dir / "journal.sqlite").is_file():
        journal = Journal.in_folder(run_dir, create=False)
    elif os.environ.get("RIG_DB"):
        journal = Journal(os.environ["RIG_DB"], create=False)
    else:
        raise JournalError(f"no journal in {run_dir}")
    journal.run(run_id)
    return journal


def finish_resume(run_dir: Path, status: int, db: str | None, say: Say) -> int:
    """After a resume: whole-run junit.xml and certificate.html; the runner status of the whole run."""
    document = results(run_dir)
    results_file = run_dir / "results.json"
    if status not in (Status.OK, Status.TESTS_FAILED, Status.NO_TESTS_COLLECTED) or document is None:
        return status
    first_junit = run_dir / "junit.xml"
    if first_junit.is_file() and not (run_dir / "junit.s0.xml").exists():
        first_junit.rename(run_dir / "junit.s0.xml")
    first_junit.write_text(whole_run_junit(document))
    seal(run_dir, say, final=False)  # the certificate states the verification at issue: seal what is written so far
    try:
        run_id = run_id_of(document, run_dir)
        journal = _run_journal(run_dir, run_id, db)
        from rig.certificate import certificate_data, render_html

        (run_dir / "certificate.html").write_text(render_html(certificate_data(journal, run_id, run_dir)))
    except JournalError:
        pass
    say(f"whole run: {document['verdict']}; results: {results_file}  junit: {first_junit}  "
        f"certificate: {run_dir / 'certificate.html'}")
    return {"pass": 0, "fail": 1, "interrupted": 2, "bench-fault": 1}.get(str(document["verdict"]), 4)


def run_id_of(document: dict[str, Any], run_dir: Path) -> str:
    """The run id a results.json names (the folder's name when it names none)."""
    value = document.get("run_id")
    return value if isinstance(value, str) and value else run_dir.resolve().name


def exit_code(status: int) -> int:
    """`rig run`'s exit code for the runner's status."""
    codes: dict[int, int] = {Status.OK: EXIT_OK, Status.TESTS_FAILED: EXIT_FAILED,
                             Status.INTERRUPTED: EXIT_INTERRUPTED, Status.NO_TESTS_COLLECTED: EXIT_USAGE}
    return codes.get(status, EXIT_USAGE)


def bench_faults(run_dir: Path, code: int, say: Say, *, resumed: bool) -> int:
    """After a run with bench faults: junit.xml from the journal (bench-fault points are errors of type
    bench-fault, not meter failures), what to do next, and exit 3 when only the bench failed."""
    document = results(run_dir)
    faults = int((document or {}).get("bench_faults") or 0)
    if document is None or not faults:
        return code
    if not resumed:
        (run_dir / "junit.xml").write_text(whole_run_junit(document))
    stopped = document.get("stopped_because")
    say(f"[yellow]bench faults:[/yellow] {faults} point(s) not measured because an instrument or link "
        f"failed{'; the run stopped: ' + stopped if stopped else ''}; measure them again with "
        f"rig run --resume {document.get('run_id')}")
    if document.get("verdict") == BENCH_FAULT and code == EXIT_FAILED:
        return EXIT_BENCH_FAULT
    return code


def conclude(run_dir: Path, status: int, say: Say, *, resumed: bool, db: str | None) -> int:
    """The exit code of `rig run` once the runner has ended, after the whole-run documents of a resume:
    130 for a stop signal, 4 for the operator step, 2 for a refusal, else from the whole run's verdict."""
    run_id = run_dir.name
    if STOP.interrupted:
        if resumed:  # a signal after every item completed: the whole-run reports still follow
            finish_resume(run_dir, status, db, say)
        say(f"[yellow]interrupted[/yellow] by {', '.join(STOP.received)}; source driven safe; "
            f"if an item did not complete, finish the run with: rig run --resume {run_id}")
        return EXIT_INTERRUPTED
    stopped = operator_stop(run_dir)
    if stopped:
        say(f"[yellow]stopped:[/yellow] {stopped}")
        return EXIT_OPERATOR
    refused = refusal(run_dir)
    if refused:
        say(f"[red]refused:[/red] {refused}")
        return EXIT_USAGE
    if resumed:
        status = finish_resume(run_dir, status, db, say)
    else:
        say(f"report: {run_dir / 'report.html'}  results: {run_dir / 'results.json'}")
    return bench_faults(run_dir, exit_code(status), say, resumed=resumed)
