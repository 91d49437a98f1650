"""Results (composition layer): every measured value is a record (value, unit, limits, verdict, bench time),
journaled as it is measured; reports are derived from records. One job per module:

- records: verdicts, Record and the rows of a run (plain data);
- schema, database: the journal's tables and opening a results database;
- journal: Journal, the append-only store of runs, sessions, records, items and attachment hashes;
- documents: results.json and JUnit XML for a whole run.

The names below stay importable from here (`from rig.results import Journal, Record`).
"""

from rig.results.database import JournalError, display_url, normalise_url
from rig.results.documents import effective_records, latest_items, results_document, run_verdict, whole_run_junit
from rig.results.journal import Journal
from rig.results.records import (
    BENCH_FAULT,
    FAIL,
    INFO,
    INTERRUPTED,
    PASS,
    REFUSED,
    Attachment,
    ItemOutcome,
    PinnedKey,
    Record,
    RunRow,
    SealRow,
    SessionRow,
    StoredRecord,
    judge,
    record_to_json,
    stored_to_json,
    utc_now,
)
from rig.results.schema import metadata

__all__ = [
    "BENCH_FAULT", "FAIL", "INFO", "INTERRUPTED", "PASS", "REFUSED", "Attachment", "ItemOutcome", "Journal",
    "JournalError", "PinnedKey", "Record", "RunRow", "SealRow", "SessionRow", "StoredRecord", "display_url",
    "effective_records", "judge", "latest_items", "metadata", "normalise_url", "record_to_json", "results_document",
    "run_verdict", "stored_to_json", "utc_now", "whole_run_junit",
]
