"""Results: every measured value is a record (value, unit, limits, verdict, bench time), journaled
as it is measured through SQLAlchemy Core (SQLite by default, any URL for a lab database).

Reports are derived from records; an interrupted run keeps every completed record. A run is made of
sessions (the first `rig run`, then each `--resume`): records are chained by SM3 across them, each test
item's completion is journaled so a resume re-runs only what did not complete, and each finished
session stores its signed manifest (rig.integrity).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from drivers.errors import RigError
from rig.integrity import finite_or_none, genesis, normalise_detail, record_digest

PASS = "pass"
FAIL = "fail"
INFO = "info"  # recorded without limits: context, not a verdict
INTERRUPTED = "interrupted"
REFUSED = "refused"  # the run did not start: e.g. the reference standard's calibration had expired
# An instrument or link of the bench failed (after bounded retries): the point was not measured. Never a
# verdict on the meter; a resume measures the point again.
BENCH_FAULT = "bench-fault"

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

run_sessions = sa.Table(
    "run_sessions", metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started_utc", sa.String(32), nullable=False),
    sa.Column("finished_utc", sa.String(32)),
    sa.Column("verdict", sa.String(16)),
    sa.Column("exit_status", sa.Integer),
    sa.Column("wall_s", sa.Float),
    sa.Column("bench_s", sa.Float),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("public_key", sa.String(130)),
    sa.Column("key_kind", sa.String(16)),
    sa.Column("manifest", sa.Text),
    sa.Column("signature", sa.String(130)),
)

records = sa.Table(
    "records", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("session", sa.Integer, nullable=False),
    sa.Column("test", sa.String(500), nullable=False),
    sa.Column("position", sa.String(64)),
    sa.Column("meter", sa.String(32), index=True),
    sa.Column("quantity", sa.String(200), nullable=False),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("low", sa.Float),
    sa.Column("high", sa.Float),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("bench_time_s", sa.Float, nullable=False),
    sa.Column("recorded_utc", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("run_id", "seq", name="uq_records_run_seq"),
)

items = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("session", sa.Integer, nullable=False),
    sa.Column("nodeid", sa.String(500), nullable=False),
    sa.Column("position", sa.String(64)),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("finished_utc", sa.String(32), nullable=False),
    sa.Column("doc", sa.Text),
    sa.Column("message", sa.Text),
    sa.UniqueConstraint("run_id", "session", "nodeid", name="uq_items_run_session_node"),
)

attachments = sa.Table(
    "attachments", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False, index=True),
    sa.Column("session", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("sm3", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("recorded_utc", sa.String(32), nullable=False),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("run_id", "name", name="uq_attachments_run_name"),
)

# A session's signed addendum: the hash of every run-folder file and the run columns written after the
# session signed its manifest (the reports are written later, by pytest-html, junitxml and rig itself).
run_seals = sa.Table(
    "run_seals", metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("addendum", sa.Text, nullable=False),
    sa.Column("signature", sa.String(130), nullable=False),
)

# The lab's pinned bench keys. Its own metadata: created only by `rig keys pin` in a lab database, never
# in a run folder's journal (a pin next to the run it vouches for would prove nothing).
keys_metadata = sa.MetaData()
bench_keys = sa.Table(
    "bench_keys", keys_metadata,
    sa.Column("bench", sa.String(200), primary_key=True),
    sa.Column("public_key", sa.String(130), primary_key=True),
    sa.Column("pinned_utc", sa.String(32), nullable=False),
    sa.Column("pinned_by", sa.String(200), nullable=False),
    sa.Column("note", sa.Text),
)

# Any number works; it only has to be the same for every rig process sharing a PostgreSQL database.
_SCHEMA_LOCK_KEY = 0x52494701


class JournalError(RigError):
    """The results journal cannot be opened or read, or a run is not in it; the message names which."""


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


def display_url(url: str) -> str:
    """A database URL fit for messages and reports: the password masked."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return re.sub(r"//[^/@]*@", "//***@", url)


def normalise_url(url: str) -> str:
    """SQLAlchemy URL with PostgreSQL going through psycopg 3 (`postgresql://` alone means psycopg2)."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise JournalError(
            f"results database URL {display_url(url)!r} is not a database URL; use e.g. "
            "sqlite:///path/journal.sqlite or postgresql+psycopg://user@host:5432/dbname"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL: a committed record survives the process being killed (only an OS
    # crash could lose the last commits), at a fraction of the cost of a full fsync per record.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class Journal:
    """Append-only store of runs, sessions, records, item outcomes and attachment hashes.

    Each record is committed as soon as it is taken. `create=False` opens an existing journal only
    (for reports, verify, history) and never creates an empty database by accident.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = normalise_url(url)
        self.shown_url = display_url(self.url)
        self._heads: dict[str, tuple[int, str]] = {}
        try:
            parsed = sa.engine.make_url(self.url)
            if parsed.get_backend_name() == "sqlite" and not create:
                path = parsed.database
                if path and path != ":memory:" and not Path(path).is_file():
                    raise JournalError(f"no results journal at {self.shown_url} (file not found)")
            connect_args: dict[str, Any] = {}
            if parsed.get_backend_name() == "postgresql":
                connect_args["connect_timeout"] = 10
            self.engine = sa.create_engine(self.url, connect_args=connect_args)
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            if create:
                with self.engine.begin() as conn:
                    if conn.dialect.name == "postgresql":
                        # Two benches starting at once must not both try to create the tables.
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
                    metadata.create_all(conn)
            self._check_schema()
        except JournalError:
            raise
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            raise JournalError(f"cannot open results database {self.shown_url}: {_reason(exc)}") from None

    def _check_schema(self) -> None:
        inspector = sa.inspect(self.engine)
        tables = set(inspector.get_table_names())
        wanted = {t.name for t in metadata.sorted_tables}
        if not wanted & tables:
            raise JournalError(f"{self.shown_url} holds no results journal (no runs or records tables)")
        missing_tables = wanted - tables
        if missing_tables:
            raise JournalError(f"{self.shown_url} is not a journal of this rig version "
                               f"(missing tables: {', '.join(sorted(missing_tables))})")
        for table in metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in have]
            if missing:
                raise JournalError(f"{self.shown_url}: table {table.name} was written by another rig version "
                                   f"(missing columns: {', '.join(missing)}); use a new journal")

    @classmethod
    def in_folder(cls, folder: Path, *, create: bool = True) -> Journal:
        """SQLite journal `journal.sqlite` in a run folder."""
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{folder / 'journal.sqlite'}", create=create)

    def _read(self) -> Any:
        """A connection for reading; database errors become JournalError."""
        return _Reading(self)

    # ------------------------------------------------------------------------------ runs, sessions

    def start_run(self, run_id: str, bench: str, meta: dict[str, Any]) -> None:
        """Register a run (idempotent, so a resumed run keeps its id and first metadata)."""
        with self.engine.begin() as conn:
            existing = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
            if existing is None:
                conn.execute(runs.insert().values(run_id=run_id, started_utc=utc_now(), bench=bench,
                                                  meta=json.dumps(meta)))

    def update_run_meta(self, run_id: str, meta: dict[str, Any]) -> None:
        """Replace a run's metadata (the first session completes it once the bench is open)."""
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(meta=json.dumps(meta)))

    def finish_run(self, run_id: str, verdict: str, meta: dict[str, Any] | None = None) -> None:
        """Close a run with its verdict (and updated metadata)."""
        values: dict[str, Any] = {"finished_utc": utc_now(), "verdict": verdict}
        if meta is not None:
            values["meta"] = json.dumps(meta)
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))

    def start_session(self, run_id: str, meta: dict[str, Any]) -> int:
        """A new session of the run (0 for the first `rig run`, then one per resume); its number."""
        with self.engine.begin() as conn:
            last = conn.execute(sa.select(sa.func.max(run_sessions.c.session))
                                .where(run_sessions.c.run_id == run_id)).scalar()
            session = 0 if last is None else int(last) + 1
            conn.execute(run_sessions.insert().values(
                run_id=run_id, session=session, started_utc=utc_now(), host=socket.gethostname(),
                pid=os.getpid(), meta=json.dumps(meta)))
        return session

    def update_session_meta(self, run_id: str, session: int, meta: dict[str, Any]) -> None:
        """Replace a session's metadata (instrument identities once the bench is open)."""
        with self.engine.begin() as conn:
            conn.execute(run_sessions.update().where(run_sessions.c.run_id == run_id,
                                                     run_sessions.c.session == session).values(meta=json.dumps(meta)))

    def finish_session(self, run_id: str, session: int, *, verdict: str, exit_status: int, wall_s: float,
                       bench_s: float) -> None:
        """Close a session."""
        with self.engine.begin() as conn:
            conn.execute(run_sessions.update().where(run_sessions.c.run_id == run_id,
                                                     run_sessions.c.session == session).values(
                finished_utc=utc_now(), verdict=verdict, exit_status=exit_status, wall_s=wall_s, bench_s=bench_s))

    def sign_session(self, run_id: str, session: int, *, public_key: str, key_kind: str, manifest: str,
                     signature: str) -> None:
        """Store a session's signed manifest."""
        with self.engine.begin() as conn:
            conn.execute(run_sessions.update().where(run_sessions.c.run_id == run_id,
                                                     run_sessions.c.session == session).values(
                public_key=public_key, key_kind=key_kind, manifest=manifest, signature=signature))

    def seal_session(self, run_id: str, session: int, *, addendum: str, signature: str) -> None:
        """Store (or replace) a session's signed addendum."""
        with self.engine.begin() as conn:
            conn.execute(run_seals.delete().where(run_seals.c.run_id == run_id, run_seals.c.session == session))
            conn.execute(run_seals.insert().values(run_id=run_id, session=session, addendum=addendum,
                                                   signature=signature))

    def seals(self, run_id: str) -> list[SealRow]:
        """The run's signed addenda, by session."""
        with self._read() as conn:
            rows = conn.execute(sa.select(run_seals).where(run_seals.c.run_id == run_id)
                                .order_by(run_seals.c.session)).all()
        return [SealRow(session=r.session, addendum=r.addendum, signature=r.signature) for r in rows]

    def pin_key(self, bench: str, public_key: str, *, pinned_by: str, note: str | None = None) -> bool:
        """Pin a bench's public key in this (lab) database; False when it was pinned already."""
        with self.engine.begin() as conn:
            keys_metadata.create_all(conn)
            known = conn.execute(sa.select(bench_keys.c.bench).where(bench_keys.c.bench == bench,
                                                                     bench_keys.c.public_key == public_key)).first()
            if known is not None:
                return False
            conn.execute(bench_keys.insert().values(bench=bench, public_key=public_key, pinned_utc=utc_now(),
                                                    pinned_by=pinned_by, note=note))
        return True

    def pinned_keys(self) -> list[PinnedKey]:
        """Every pinned bench key of this database (none when nothing was ever pinned here)."""
        with self._read() as conn:
            if not sa.inspect(conn).has_table(bench_keys.name):
                return []
            rows = conn.execute(sa.select(bench_keys).order_by(bench_keys.c.bench, bench_keys.c.pinned_utc)).all()
        return [PinnedKey(bench=r.bench, public_key=r.public_key, pinned_utc=r.pinned_utc, pinned_by=r.pinned_by,
                          note=r.note) for r in rows]

    def run(self, run_id: str) -> RunRow:
        """A run's header; JournalError naming the run when it is not in this journal."""
        with self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise JournalError(f"no run {run_id!r} in {self.shown_url}")
        return RunRow(run_id=row.run_id, started_utc=row.started_utc, finished_utc=row.finished_utc,
                      bench=row.bench, verdict=row.verdict, meta=_loads(row.meta, f"run {run_id} meta"))

    def has_run(self, run_id: str) -> bool:
        """True when the run is in this journal."""
        with self._read() as conn:
            return conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is not None

    def runs(self) -> list[RunRow]:
        """Every run, oldest first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(runs).order_by(runs.c.started_utc, runs.c.run_id)).all()
        return [RunRow(run_id=r.run_id, started_utc=r.started_utc, finished_utc=r.finished_utc, bench=r.bench,
                       verdict=r.verdict, meta=_loads(r.meta, f"run {r.run_id} meta")) for r in rows]

    def sessions(self, run_id: str) -> list[SessionRow]:
        """The run's sessions in order."""
        with self._read() as conn:
            rows = conn.execute(sa.select(run_sessions).where(run_sessions.c.run_id == run_id)
                                .order_by(run_sessions.c.session)).all()
        return [SessionRow(session=r.session, started_utc=r.started_utc, finished_utc=r.finished_utc,
                           verdict=r.verdict, exit_status=r.exit_status, wall_s=r.wall_s, bench_s=r.bench_s,
                           host=r.host, pid=r.pid, meta=_loads(r.meta, f"run {run_id} session {r.session} meta"),
                           public_key=r.public_key, key_kind=r.key_kind, manifest=r.manifest,
                           signature=r.signature) for r in rows]

    def running_session(self, run_id: str) -> SessionRow | None:
        """An unfinished session of the run whose process is still alive on this host, if any."""
        for row in self.sessions(run_id):
            if row.finished_utc is None and row.host == socket.gethostname() and row.pid != os.getpid():
                try:
                    os.kill(row.pid, 0)
                except ProcessLookupError:
                    continue
                except PermissionError:
                    return row
                return row
        return None

    # ------------------------------------------------------------------------------------ records

    def _head(self, conn: Any, run_id: str) -> tuple[int, str]:
        if run_id not in self._heads:
            row = conn.execute(sa.select(records.c.seq, records.c.hash).where(records.c.run_id == run_id)
                               .order_by(records.c.seq.desc()).limit(1)).first()
            self._heads[run_id] = (0, genesis(run_id)) if row is None else (int(row.seq), str(row.hash))
        return self._heads[run_id]

    def add(self, run_id: str, record: Record, session: int = 0) -> StoredRecord:
        """Commit one record, chained to the run's previous one."""
        stored_record = Record(
            test=record.test, position=record.position, quantity=record.quantity,
            value=finite_or_none(record.value), unit=record.unit, low=finite_or_none(record.low),
            high=finite_or_none(record.high), verdict=record.verdict, bench_time_s=float(record.bench_time_s),
            detail=record.detail, meter=record.meter,
        )
        with self.engine.begin() as conn:
            seq, previous = self._head(conn, run_id)
            stored = StoredRecord(record=stored_record, run_id=run_id, seq=seq + 1, session=session,
                                  recorded_utc=utc_now(), hash="", detail_text=normalise_detail(record.detail))
            digest = record_digest(previous, stored.body())
            body = stored.body()
            body.pop("run_id")
            conn.execute(records.insert().values(run_id=run_id, hash=digest, **body))
        self._heads[run_id] = (stored.seq, digest)
        return StoredRecord(record=stored_record, run_id=run_id, seq=stored.seq, session=session,
                            recorded_utc=stored.recorded_utc, hash=digest, detail_text=stored.detail_text)

    def stored_records(self, run_id: str) -> list[StoredRecord]:
        """Every record of a run (superseded ones included), in the order taken."""
        with self._read() as conn:
            rows = conn.execute(sa.select(records).where(records.c.run_id == run_id).order_by(records.c.seq)).all()
        return [_stored(r) for r in rows]

    def records(self, run_id: str) -> list[Record]:
        """Every record of a run, in the order taken."""
        return [s.record for s in self.stored_records(run_id)]

    def effective_records(self, run_id: str) -> tuple[list[StoredRecord], list[StoredRecord]]:
        """(the run's records, superseded ones).

        An item's records are those of the session in which it completed; an item that never
        completed keeps those of its latest attempt (partial). Records of an attempt that a resume
        re-ran are superseded: kept in the journal and the chain, left out of reports.
        """
        completed = {i.nodeid: i.session for i in self.items(run_id)}
        every = self.stored_records(run_id)
        latest: dict[str, int] = {}
        for s in every:
            latest[s.record.test] = max(latest.get(s.record.test, -1), s.session)
        kept: list[StoredRecord] = []
        superseded: list[StoredRecord] = []
        for s in every:
            wanted = completed.get(s.record.test, latest[s.record.test])
            (kept if s.session == wanted else superseded).append(s)
        return kept, superseded

    # -------------------------------------------------------------------------------------- items

    def item_done(self, run_id: str, session: int, outcome: ItemOutcome) -> None:
        """Journal that a test item completed (and how), so a resume can skip it."""
        with self.engine.begin() as conn:
            conn.execute(items.insert().values(
                run_id=run_id, session=session, nodeid=outcome.nodeid, position=outcome.position,
                outcome=outcome.outcome, duration_s=outcome.duration_s, finished_utc=outcome.finished_utc,
                doc=outcome.doc, message=outcome.message))

    def items(self, run_id: str) -> list[ItemOutcome]:
        """Completed items of a run, in completion order."""
        with self._read() as conn:
            rows = conn.execute(sa.select(items).where(items.c.run_id == run_id).order_by(items.c.id)).all()
        return [ItemOutcome(nodeid=r.nodeid, session=r.session, position=r.position, outcome=r.outcome,
                            duration_s=r.duration_s, finished_utc=r.finished_utc, doc=r.doc, message=r.message)
                for r in rows]

    def completed_items(self, run_id: str) -> dict[str, str]:
        """node id -> outcome of every completed item."""
        return {i.nodeid: i.outcome for i in self.items(run_id)}

    # -------------------------------------------------------------------------------- attachments

    def add_attachment(self, run_id: str, session: int, name: str, digest: str, size_bytes: int,
                       note: str | None = None) -> None:
        """Record a run-folder file's SM3 hash (once per name)."""
        with self.engine.begin() as conn:
            conn.execute(attachments.insert().values(run_id=run_id, session=session, name=name, sm3=digest,
                                                     size_bytes=size_bytes, recorded_utc=utc_now(), note=note))

    def attachments(self, run_id: str) -> list[Attachment]:
        """The run's hashed attachments."""
        with self._read() as conn:
            rows = conn.execute(sa.select(attachments).where(attachments.c.run_id == run_id)
                                .order_by(attachments.c.id)).all()
        return [Attachment(name=r.name, session=r.session, sm3=r.sm3, size_bytes=r.size_bytes,
                           recorded_utc=r.recorded_utc, note=r.note) for r in rows]

    # ------------------------------------------------------------------------------------ history

    def history(self, *, meter: str | None = None, test: str | None = None, since_utc: str | None = None,
                quantity: str | None = None) -> list[tuple[RunRow, StoredRecord]]:
        """Records across every run of this journal, filtered; oldest run first."""
        query = sa.select(records, runs.c.started_utc.label("run_started"), runs.c.bench.label("run_bench"),
                          runs.c.verdict.label("run_verdict"), runs.c.finished_utc.label("run_finished"),
                          runs.c.meta.label("run_meta")).join(runs, runs.c.run_id == records.c.run_id)
        if meter:
            query = query.where(records.c.meter == meter)
        if test:
            query = query.where(records.c.test.contains(test, autoescape=True))
        if quantity:
            query = query.where(records.c.quantity.contains(quantity, autoescape=True))
        if since_utc:
            query = query.where(records.c.recorded_utc >= since_utc)
        query = query.order_by(runs.c.started_utc, records.c.run_id, records.c.seq)
        with self._read() as conn:
            rows = conn.execute(query).all()
        headers: dict[str, RunRow] = {}
        out = []
        for r in rows:
            if r.run_id not in headers:
                headers[r.run_id] = RunRow(run_id=r.run_id, started_utc=r.run_started, finished_utc=r.run_finished,
                                           bench=r.run_bench, verdict=r.run_verdict,
                                           meta=_loads(r.run_meta, f"run {r.run_id} meta"))
            out.append((headers[r.run_id], _stored(r)))
        return out

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()


class _Reading:
    """`with journal._read() as conn:` turning database errors into JournalError."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.conn: Any = None

    def __enter__(self) -> Any:
        try:
            self.conn = self.journal.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise JournalError(f"cannot read {self.journal.shown_url}: {_reason(exc)}") from None
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.conn.close()
        if isinstance(exc, sa.exc.SQLAlchemyError):
            raise JournalError(f"cannot read {self.journal.shown_url}: {_reason(exc)}") from None


def _loads(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise JournalError(f"{what} is not valid JSON (the journal is corrupt)") from None


def _stored(row: Any) -> StoredRecord:
    record = Record(test=row.test, position=row.position, quantity=row.quantity, value=row.value, unit=row.unit,
                    low=row.low, high=row.high, verdict=row.verdict, bench_time_s=row.bench_time_s,
                    detail=_loads(row.detail, f"record {row.seq} detail") if row.detail else None, meter=row.meter)
    return StoredRecord(record=record, run_id=row.run_id, seq=row.seq, session=row.session,
                        recorded_utc=row.recorded_utc, hash=row.hash, detail_text=row.detail)


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


# ------------------------------------------------------------------------------- whole-run results


def latest_items(item_outcomes: Iterable[ItemOutcome]) -> list[ItemOutcome]:
    """Each item's latest completion (a bench-faulted item completes again when a resume measures it)."""
    latest = {i.nodeid: i for i in item_outcomes}
    return [i for i in item_outcomes if latest[i.nodeid] is i]


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


def results_document(journal: Journal, run_id: str, *, open_items: Iterable[str] = ()) -> dict[str, Any]:
    """results.json for the whole run (every session), derived from the journal alone.

    `open_items`: node ids the current session started but did not complete (shown as interrupted).
    """
    run = journal.run(run_id)
    sessions = journal.sessions(run_id)
    item_list = latest_items(journal.items(run_id))
    effective, superseded = journal.effective_records(run_id)
    meta = run.meta or {}
    last = sessions[-1] if sessions else None
    incomplete = sorted(({s.record.test for s in effective} - {i.nodeid for i in item_list}) | set(open_items or ()))
    verdict = run_verdict(item_list, effective, last_session=last.verdict if last else None)
    tests = [{"test": i.nodeid, "outcome": i.outcome, "session": i.session}
             | ({"message": i.message} if i.outcome == BENCH_FAULT else {}) for i in item_list]
    tests += [{"test": nodeid, "outcome": "interrupted", "session": last.session if last else 0}
              for nodeid in incomplete]
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
        "sessions": [
            {"session": s.session, "started_utc": s.started_utc, "finished_utc": s.finished_utc,
             "verdict": s.verdict, "exit_status": s.exit_status, "wall_s": s.wall_s, "bench_s": s.bench_s,
             "signed": s.signature is not None, "key_kind": s.key_kind}
            for s in sessions
        ],
        # Resumes that ran although their inputs had changed since the first session (rig run --accept-changed).
        "accepted_changes": [{"session": s.session, **s.meta["accepted_changes"]} for s in sessions
                             if isinstance(s.meta.get("accepted_changes"), dict)],
        "wall_s": round(sum(s.wall_s or 0.0 for s in sessions), 3),
        "bench_s": round(sum(s.bench_s or 0.0 for s in sessions), 3),
        "verdict": verdict,
        "bench_faults": sum(1 for i in item_list if i.outcome == BENCH_FAULT),
        "exit_status": last.exit_status if last else None,
        "tests": tests,
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
