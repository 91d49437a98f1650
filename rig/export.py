"""A finished run's measurements for other systems (composition layer): a flat CSV, one row per measured
value, and a JSON document a LIMS imports as samples (the meters) with their results.

Both are read from the run's journal (the records that count: a resume's superseded attempts left out),
in the journal's order. Values are written as stored (no rounding); limits that do not exist are empty
(CSV) or null (JSON). Written outside the run folder (or to stdout): the run folder holds only signed files.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rig.results import FAIL, INFO, PASS, Journal, StoredRecord, effective_records

LIMS_FORMAT = "meter-hil-rig/lims-export/1"

CSV_COLUMNS = ("run_id", "bench", "session", "seq", "recorded_utc", "bench_time_s", "position", "meter", "test",
               "quantity", "value", "unit", "low", "high", "verdict")


def _rows(journal: Journal, run_id: str) -> list[StoredRecord]:
    kept, _superseded = effective_records(journal, run_id)
    return sorted(kept, key=lambda s: s.seq)


def to_csv(journal: Journal, run_id: str) -> str:
    """One header line (CSV_COLUMNS), then one row per measured value."""
    bench = journal.run(run_id).bench
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in _rows(journal, run_id):
        r = s.record
        writer.writerow([run_id, bench, s.session, s.seq, s.recorded_utc, repr(r.bench_time_s), r.position or "",
                         r.meter or "", r.test, r.quantity, _number(r.value), r.unit, _number(r.low),
                         _number(r.high), r.verdict])
    return out.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


def to_lims(journal: Journal, run_id: str) -> dict[str, Any]:
    """`{format, run: {...}, samples: [{sample_id, position, verdict, results: [...]}]}`: one sample per meter
    (its address; a bench-wide record goes to a sample named after its position, or `bench`)."""
    run = journal.run(run_id)
    sessions = journal.sessions(run_id)
    samples: dict[str, dict[str, Any]] = {}
    for s in _rows(journal, run_id):
        r = s.record
        sample_id = r.meter or r.position or "bench"
        sample = samples.setdefault(sample_id, {"sample_id": sample_id, "meter_address": r.meter,
                                                "position": r.position, "verdict": PASS, "results": []})
        sample["results"].append({
            "test": r.test, "parameter": r.quantity, "value": r.value, "unit": r.unit, "lower_limit": r.low,
            "upper_limit": r.high, "verdict": r.verdict, "measured_utc": s.recorded_utc,
            "bench_time_s": r.bench_time_s, "record_seq": s.seq, "record_sm3": s.hash,
        })
        if r.verdict == FAIL or (r.verdict not in (PASS, INFO) and sample["verdict"] == PASS):
            sample["verdict"] = r.verdict  # a failed value decides; else the first that is not a pass
    meta = run.meta or {}
    return {
        "format": LIMS_FORMAT,
        "run": {
            "run_id": run.run_id, "bench": run.bench, "started_utc": run.started_utc,
            "finished_utc": run.finished_utc, "verdict": run.verdict,
            "meter_type": (meta.get("meter_type") or {}).get("nameplate"),
            "rig_version": next((x.meta.get("rig_version") for x in sessions if x.meta.get("rig_version")), None),
            "sessions": len(sessions),
        },
        "samples": list(samples.values()),
    }
