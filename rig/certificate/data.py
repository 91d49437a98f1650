"""Everything a test certificate shows, gathered from the journal alone (and the run folder, for `rig verify`):
the lab (its profile, kept in the run's meta), per meter its certificate number, identity as the meter reported it,
lines, curves and verdict (the table of checks in rig.certificate.checks), the bench, instruments, conditions, the
operator's overrides, a twin run's knob settings, and the run's integrity. Knows nothing of pytest or rendering.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rig.certificate.checks import INCOMPLETE, Scope, verdict
from rig.certificate.lines import ErrorPoint, TestLine, error_curves, test_line
from rig.certificate.numbers import rounding_interval_pct
from rig.config.lab import certificate_number
from rig.integrity import key_fingerprint
from rig.integrity.report import Verification
from rig.integrity.verify import verify_run
from rig.results import (
    FAIL,
    INTERRUPTED,
    PASS,
    ItemOutcome,
    Journal,
    SessionRow,
    StoredRecord,
    effective_records,
    latest_items,
)


@dataclass
class MeterSheet:
    """The page set of one meter."""

    position: str
    address: str
    lines: list[TestLine]
    items: list[ItemOutcome]
    incomplete: list[str]
    curves: dict[str, list[ErrorPoint]]
    verdict: str
    number: str = ""  # the meter's certificate number
    identity: dict[str, str | None] | None = None  # as the meter reported it; None: not read in this run

    @property
    def serial(self) -> str | None:
        """The meter number the meter reported (never its communication address), None when not read."""
        return (self.identity or {}).get("serial")


@dataclass
class CertificateData:
    """Everything a certificate shows, derived from the journal (and the run folder for attachments)."""

    number: str
    run_id: str
    issued_utc: str
    run_started_utc: str
    bench: dict[str, Any]
    meter_type: dict[str, Any]
    sessions: list[SessionRow]
    instruments: list[dict[str, Any]]
    conditions: dict[str, Any]
    overrides: list[str]
    sheets: list[MeterSheet]
    bench_lines: list[TestLine]
    verification: Verification
    signing: list[str] = field(default_factory=list)
    lab: dict[str, Any] | None = None  # the lab profile as the run's meta keeps it; None: the bench named none
    simulation: bool = False  # the meters or instruments were the software twin
    knob_overrides: list[str] = field(default_factory=list)  # --set settings of the run, as given
    rounding_pct: float | None = None  # the rounding interval of a reported error for the meters' class

    @property
    def overall_verdict(self) -> str:
        """pass when every meter passed, else fail (or incomplete)."""
        verdicts = {s.verdict for s in self.sheets}
        return next((v for v in (FAIL, INCOMPLETE) if v in verdicts), PASS)


def _expired_calibrations(sessions: Sequence[SessionRow]) -> list[str]:
    """The operator's acceptance of an expired reference calibration, per session that opened the bench."""
    out = []
    for s in sessions:
        for inst in s.meta.get("instruments") or []:
            accepted = inst.get("expired_accepted")
            if accepted:
                out.append(
                    f"Session {s.session}: the reference standard's calibration {inst.get('calibration_certificate')} "
                    f"had expired on {inst.get('calibration_due')} ({accepted.get('days_overdue')} days overdue); "
                    f"the run was accepted by {accepted.get('by')} at {accepted.get('utc')} for this reason: "
                    f"\"{accepted.get('reason')}\". Results traceable only as far as that calibration.")
    return out


def _accepted_changes(sessions: Sequence[SessionRow]) -> list[str]:
    """Resumes that ran although their inputs had changed since the first session (--accept-changed)."""
    return [f"Session {s.session} resumed the run although its inputs had changed since the first session "
            f"({'; '.join(str(d) for d in changed.get('differences', []))}); accepted by {changed.get('by')} at "
            f"{changed.get('utc')} for this reason: \"{changed.get('reason')}\"."
            for s in sessions if isinstance(changed := s.meta.get("accepted_changes"), dict)]


def _stopped(sessions: Sequence[SessionRow], run_id: str) -> str | None:
    """Why the last session did not run every selected item (it was interrupted or killed), else None."""
    last = sessions[-1] if sessions else None
    if last is None or last.verdict not in (None, INTERRUPTED):
        return None
    unfinished = (last.meta.get("ending") or {}).get("unfinished_items")
    return (f"session {last.session} was {'interrupted' if last.verdict else 'killed'}"
            + (f" with {unfinished} selected test item(s) not completed" if unfinished else "")
            + f"; finish it with rig run --resume {run_id}")


@dataclass(frozen=True)
class _Taken:
    """What the journal holds of one meter (or of the bench-wide checks: position None)."""

    records: list[StoredRecord]
    lines: list[TestLine]
    items: list[ItemOutcome]
    incomplete: list[str]

    @classmethod
    def of(cls, position: str | None, effective: Sequence[StoredRecord], items: Sequence[ItemOutcome],
           docs: dict[str, str]) -> _Taken:
        mine = [s for s in effective if s.record.position == position]
        completed = {i.nodeid for i in items}
        return cls(records=mine, lines=[test_line(s, docs) for s in mine],
                   items=[i for i in items if i.position == position],
                   incomplete=sorted({s.record.test for s in mine} - completed))


IDENTITY_DETAIL = "meter_identity"  # a record's detail key holding what the meter reported of itself
IDENTITY_FIELDS = ("manufacturer", "model", "serial", "firmware", "checksum")


def _identity(records: Sequence[StoredRecord]) -> dict[str, str | None] | None:
    """What the meter reported of itself (the last record that carries it), None when no test read it."""
    for stored in reversed(records):
        reported = (stored.record.detail or {}).get(IDENTITY_DETAIL)
        if isinstance(reported, dict):
            return {k: (str(reported[k]) if reported.get(k) is not None else None) for k in IDENTITY_FIELDS}
    return None


def _sheet(pos: dict[str, Any], taken: _Taken, bench_verdict: str, stopped: str | None) -> MeterSheet:
    incomplete = [*taken.incomplete, *([stopped] if stopped else [])]
    scope = Scope(lines=taken.lines, items=taken.items, incomplete=taken.incomplete, bench=bench_verdict,
                  stopped=stopped)
    return MeterSheet(position=pos["name"], address=pos["address"], lines=taken.lines,
                      items=taken.items, incomplete=incomplete, curves=error_curves(taken.records),
                      verdict=verdict(scope), identity=_identity(taken.records))


def _set_overrides(sessions: Sequence[SessionRow]) -> list[str]:
    """The `--set KEY=VALUE` settings the run was started with (each session's command line), in order."""
    out: list[str] = []
    for s in sessions:
        argv = [str(a) for a in s.meta.get("argv") or []]
        for n, arg in enumerate(argv):
            given = argv[n + 1] if arg == "--set" and n + 1 < len(argv) else arg.removeprefix("--set=")
            if (arg == "--set" or arg.startswith("--set=")) and given not in out:
                out.append(given)
    return out


def _number_sheets(sheets: Sequence[MeterSheet], lab: dict[str, Any] | None, run_id: str, started: str) -> None:
    year = int(started[:4]) if started[:4].isdigit() else dt.datetime.now(dt.UTC).year
    for index, sheet in enumerate(sheets, start=1):
        sheet.number = (certificate_number(str(lab["numbering"]), lab=str(lab["code"]), run_id=run_id,
                                           position=index, name=sheet.position, address=sheet.address, year=year)
                        if lab else f"RIG-{run_id}-{index:02d}")


def certificate_data(journal: Journal, run_id: str, folder: Path | None = None) -> CertificateData:
    """Gather a run's certificate from its journal (JournalError when the run is not there)."""
    run = journal.run(run_id)
    meta = run.meta or {}
    sessions = journal.sessions(run_id)
    items = latest_items(journal.items(run_id))
    effective, _superseded = effective_records(journal, run_id)
    docs = {i.nodeid: i.doc or "" for i in items}
    bench = _Taken.of(None, effective, items, docs)
    bench_verdict = verdict(Scope(lines=bench.lines, items=bench.items, incomplete=bench.incomplete))
    stopped = _stopped(sessions, run_id)
    sheets = [_sheet(pos, _Taken.of(pos["name"], effective, items, docs), bench_verdict, stopped)
              for pos in meta.get("positions", [])]
    opened = [s for s in sessions if s.meta.get("instruments")]  # the last session that opened the bench
    signing = [f"session {s.session}: SM2 {('bench key' if s.key_kind == 'bench' else 'throwaway key')} "
               f"{key_fingerprint(s.public_key)}" for s in sessions if s.public_key and s.signature]
    lab = meta.get("lab")
    _number_sheets(sheets, lab, run_id, run.started_utc)
    kind = str(meta.get("bench", {}).get("kind", "bench"))
    return CertificateData(
        number=f"{lab['code']}-{run_id}" if lab else f"RIG-{run_id}", run_id=run_id,
        issued_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        run_started_utc=run.started_utc, bench=meta.get("bench", {"name": run.bench}),
        meter_type=meta.get("meter_type", {}), sessions=sessions,
        instruments=opened[-1].meta["instruments"] if opened else [],
        conditions=opened[-1].meta.get("conditions", {}) if opened else {},
        overrides=[*_expired_calibrations(sessions), *_accepted_changes(sessions)], sheets=sheets,
        bench_lines=bench.lines, verification=verify_run(journal, run_id, folder), signing=signing,
        lab=lab, simulation=kind != "bench", knob_overrides=_set_overrides(sessions),
        rounding_pct=rounding_interval_pct(str(meta.get("meter_type", {}).get("accuracy_class", ""))),
    )
