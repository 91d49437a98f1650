"""Results: every measured value is a record (value, unit, limits, verdict, bench time), journaled
as it is measured through SQLAlchemy Core (SQLite by default, any URL for a lab database).

Reports are derived from records; an interrupted run keeps every completed record.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

PASS = "pass"
FAIL = "fail"
INFO = "info"  # recorded without limits: context, not a verdict

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("started_utc", sa.String(32), nullable=False),
    sa.Column("finished_utc", sa.String(32)),
    sa.Column("bench", sa.String(200), nullable=False),
    sa.Column("verdict", sa.String(16)),
    sa.Column("meta", sa.Text, nullable=False),
)

records = sa.Table(
    "records", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("test", sa.String(500), nullable=False),
    sa.Column("position", sa.String(64)),
    sa.Column("quantity", sa.String(200), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("low", sa.Float),
    sa.Column("high", sa.Float),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("bench_time_s", sa.Float, nullable=False),
    sa.Column("recorded_utc", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
)


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

    def describe(self) -> str:
        """`P1 error at Ib PF 1 = 0.512 % (limits -1 .. 1): fail`."""
        limits = f" (limits {_fmt(self.low)} .. {_fmt(self.high)})" if self.verdict != INFO else ""
        where = f"{self.position} " if self.position else ""
        return f"{where}{self.quantity} = {_fmt(self.value)} {self.unit}{limits}: {self.verdict}"


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a committed record survives the process being killed (only an OS
    # crash could lose the last commits), at a fraction of the cost of a full fsync per record.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Journal:
    """Append-only store of runs and records; each record is committed as soon as it is taken."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    @classmethod
    def in_folder(cls, folder: Path) -> Journal:
        """SQLite journal `journal.sqlite` in a run folder."""
        folder.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{folder / 'journal.sqlite'}")

    def start_run(self, run_id: str, bench: str, meta: dict[str, Any]) -> None:
        """Register a run (idempotent, so a resumed run keeps its id)."""
        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
            if existing is None:
                conn.execute(runs.insert().values(run_id=run_id, started_utc=utc_now(), bench=bench,
                                                  meta=json.dumps(meta)))

    def finish_run(self, run_id: str, verdict: str, meta: dict[str, Any] | None = None) -> None:
        """Close a run with its verdict (and updated metadata)."""
        values: dict[str, Any] = {"finished_utc": utc_now(), "verdict": verdict}
        if meta is not None:
            values["meta"] = json.dumps(meta)
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))

    def add(self, run_id: str, record: Record) -> None:
        """Commit one record."""
        row = asdict(record)
        detail = row.pop("detail")
        with self.engine.begin() as conn:
            conn.execute(records.insert().values(run_id=run_id, recorded_utc=utc_now(),
                                                 detail=json.dumps(detail) if detail else None, **row))

    def records(self, run_id: str) -> list[Record]:
        """Every record of a run, in the order taken."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(records).where(records.c.run_id == run_id).order_by(records.c.id)).all()
        return [
            Record(test=r.test, position=r.position, quantity=r.quantity, value=r.value, unit=r.unit,
                   low=r.low, high=r.high, verdict=r.verdict, bench_time_s=r.bench_time_s,
                   detail=json.loads(r.detail) if r.detail else None)
            for r in rows
        ]

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


def record_to_json(record: Record) -> dict[str, Any]:
    """A record as it appears in results.json (non-finite values become null)."""
    data = asdict(record)
    for key in ("value", "low", "high"):
        if isinstance(data[key], float) and not math.isfinite(data[key]):
            data[key] = None
    return data
