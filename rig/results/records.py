"""Records and verdicts (composition layer): one measured value with its unit, limits and verdict, and the
rows of a run as the journal gives them back. Plain data; no database, no pytest.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from typing import Any

PASS = "pass"
FAIL = "fail"
INFO = "info"  # recorded without limits: context, not a verdict
INTERRUPTED = "interrupted"
REFUSED = "refused"  # the run did not start: e.g. the reference standard's calibration had expired
# An instrument or link of the bench failed (after bounded retries): the point was not measured. Never a
# verdict on the meter; a resume measures the point again.
BENCH_FAULT = "bench-fault"


@dataclass(frozen=True)
class Record:
    """One measured value with its limits and verdict."""

    test: str
    position: str | None
    quantity: str
    value: float | None
    unit: str
    low: float | None
    high: float | None
    verdict: str
    bench_time_s: float
    detail: dict[str, Any] | None = None
    meter: str | None = None  # the meter's address, for history across runs

    def describe(self) -> str:
        """`P1 error at Ib PF 1 = 0.512 % (limits -1 .. 1): fail`."""
        limits = f" (limits {_fmt(self.low)} .. {_fmt(self.high)})" if self.verdict != INFO else ""
        where = f"{self.position} " if self.position else ""
        return f"{where}{self.quantity} = {_fmt(self.value)} {self.unit}{limits}: {self.verdict}"


@dataclass(frozen=True)
class StoredRecord:
    """A record as the journal holds it: its place in the run's chain and the session that took it."""

    record: Record
    run_id: str
    seq: int
    session: int
    recorded_utc: str
    hash: str
    detail_text: str | None

    def body(self) -> dict[str, Any]:
        """The fields the SM3 chain covers (rig.integrity.RECORD_FIELDS)."""
        r = self.record
        return {"run_id": self.run_id, "seq": self.seq, "session": self.session, "test": r.test,
                "position": r.position, "meter": r.meter, "quantity": r.quantity, "value": r.value,
                "unit": r.unit, "low": r.low, "high": r.high, "verdict": r.verdict,
                "bench_time_s": r.bench_time_s, "recorded_utc": self.recorded_utc, "detail": self.detail_text}


@dataclass(frozen=True)
class ItemOutcome:
    """A test item that completed (all of setup, call and teardown ran) in one session."""

    nodeid: str
    session: int
    position: str | None
    outcome: str  # passed / failed / skipped / error
    duration_s: float | None
    finished_utc: str
    doc: str | None
    message: str | None


@dataclass(frozen=True)
class Attachment:
    """A file of the run folder (e.g. the instrument traffic) with its SM3 hash."""

    name: str
    session: int
    sm3: str
    size_bytes: int
    recorded_utc: str
    note: str | None


@dataclass(frozen=True)
class SessionRow:
    """One `rig run` (or `--resume`) of a run."""

    session: int
    started_utc: str
    finished_utc: str | None
    verdict: str | None
    exit_status: int | None
    wall_s: float | None
    bench_s: float | None
    host: str
    pid: int
    meta: dict[str, Any]
    public_key: str | None
    key_kind: str | None
    manifest: str | None
    signature: str | None


@dataclass(frozen=True)
class SealRow:
    """A session's signed addendum (canonical JSON text) and its SM2 signature by the session's key."""

    session: int
    addendum: str
    signature: str


@dataclass(frozen=True)
class PinnedKey:
    """A bench's SM2 public key as the lab pinned it."""

    bench: str
    public_key: str
    pinned_utc: str
    pinned_by: str
    note: str | None


@dataclass(frozen=True)
class RunRow:
    """A run's header."""

    run_id: str
    started_utc: str
    finished_utc: str | None
    bench: str
    verdict: str | None
    meta: dict[str, Any]



def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def judge(value: float | None, low: float | None, high: float | None) -> str:
    """`pass` when `value` lies within [low, high] (open ends allowed), `info` without limits."""
    if low is None and high is None:
        return INFO
    if value is None or not math.isfinite(value):
        return FAIL
    if low is not None and value < low:
        return FAIL
    if high is not None and value > high:
        return FAIL
    return PASS


def utc_now() -> str:
    """ISO-8601 UTC timestamp."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")



def record_to_json(record: Record) -> dict[str, Any]:
    """A record as it appears in results.json (non-finite values become null)."""
    data = asdict(record)
    for key in ("value", "low", "high"):
        if isinstance(data[key], float) and not math.isfinite(data[key]):
            data[key] = None
    return data


def stored_to_json(stored: StoredRecord) -> dict[str, Any]:
    """A journaled record for results.json: the record plus its chain fields (seq, session, hash)."""
    return record_to_json(stored.record) | {"seq": stored.seq, "session": stored.session,
                                            "recorded_utc": stored.recorded_utc, "hash": stored.hash}
