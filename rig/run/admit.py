"""Admitting a bench to a session: instrument identities, the calibration gate, the resume's same-bench
check and the ambient conditions, into the session's metadata. A refusal names why (exit 2)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from rig.bench import Bench
from rig.operator import Operator, OperatorError, Question
from rig.results import utc_now
from rig.run.session import Refused, RunSession, run_meta, user


def admit(run: RunSession, bench: Bench, operator: Callable[[], Operator], *, accept_expired: str | None,
          plans: list[str]) -> None:
    """Identities, the calibration gate, resume consistency and conditions, into the session's metadata.

    `operator` makes the session's operator once the bench is admitted. Raises Refused (also kept in
    `run.refused`) when the reference's calibration has expired and nobody accepted it with a reason, or
    when a resume runs on other instruments than the run's first session.
    """
    identities = identify(bench)
    reference = next(i for i in identities if i["role"] == "reference")
    due = dt.date.fromisoformat(reference["calibration_due"])
    today = dt.date.today()
    if today > due:
        if not accept_expired:
            _refuse(run, f"the reference standard's calibration {reference['calibration_certificate']} expired on "
                         f"{due} ({bench.reference.resource}); recalibrate it, or run with "
                         "--accept-expired-calibration \"REASON\" (the certificate will state it)")
        reference["expired_accepted"] = {"reason": str(accept_expired), "by": user(), "utc": utc_now(),
                                         "days_overdue": (today - due).days}
    if run.resume and run.journal is not None:
        first = run.journal.sessions(run.run_id)[0].meta.get("instruments")
        if first and [i["idn"] for i in first] != [i["idn"] for i in identities]:
            _refuse(run, "cannot resume on a different bench: instruments "
                         + ", ".join(i["idn"] for i in identities)
                         + " are not those of the run's first session: " + ", ".join(i["idn"] for i in first))
    run.operator = operator()
    run.session_meta["instruments"] = identities
    run.session_meta["conditions"] = run.ambient or conditions(run.operator)
    if run.run_dir is not None:
        run.open_journal(bench.config.results_db)
        run.save_meta()
    else:
        # No run folder (plain pytest, the suite): an in-memory journal unless the bench names a database.
        run.open_journal(bench.config.results_db).start_run(run.run_id, bench.config.name,
                                                            run_meta(bench.config, plans))


def _refuse(run: RunSession, why: str) -> None:
    run.refused = why
    raise Refused(why)


def identify(bench: Bench) -> list[dict[str, Any]]:
    """Who the source and the reference say they are, and the reference's calibration."""
    source_idn = bench.source.identity()
    calibration = bench.reference.calibration()
    return [
        {"role": "source", "driver": bench.config.instrument("source").driver, "resource": bench.source.resource,
         "idn": source_idn},
        {"role": "reference", "driver": bench.config.instrument("reference").driver,
         "resource": bench.reference.resource, "idn": bench.reference.identity(),
         "calibration_certificate": calibration.certificate, "calibration_due": calibration.due.isoformat()},
    ]


def conditions(operator: Operator) -> dict[str, Any]:
    """Ambient temperature and humidity, asked (not stated when nobody answers)."""
    out: dict[str, Any] = {}
    for key, text, unit in (("temperature_c", "Ambient temperature at the bench?", "°C"),
                            ("humidity_pct", "Relative humidity at the bench?", "%")):
        try:
            answer = operator.ask(Question(text, "number", f"ambient.{key}", unit=unit, timeout_s=120.0))
        except OperatorError as exc:
            out[key] = None
            out["source"] = f"not stated ({exc})"
            continue
        out[key] = answer.value
        out["source"] = f"answered by {answer.by}"
    return out
