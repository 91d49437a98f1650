"""The results journal: every record committed as it is measured through SQLAlchemy Core (SQLite by default,
any URL for a lab database). A run is made of sessions (the first `rig run`, then each `--resume`): records are
chained by SM3 across them (rig.integrity.chain), each test item's completion is journaled so a resume re-runs
only what did not complete, and each finished session stores its signed manifest and addendum.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rig.integrity.chain import finite_or_none, genesis, normalise_detail, record_digest
from rig.results.database import JournalError, Reading, display_url, loads, normalise_url, open_engine
from rig.results.records import (
    Attachment,
    ItemOutcome,
    PinnedKey,
    Record,
    RunRow,
    SealRow,
    SessionRow,
    StoredRecord,
    utc_now,
)
from rig.results.schema import attachments, bench_keys, items, keys_metadata, records, run_seals, run_sessions, runs


class Journal:
    """Append-only store of runs, sessions, records, item outcomes and attachment hashes.

    Each record is committed as soon as it is taken. `create=False` opens an existing journal only
    (for reports, verify, history) and never creates an empty database by accident.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = normalise_url(url)
        self.shown_url = display_url(self.url)
        self._heads: dict[str, tuple[int, str]] = {}
        self.engine = open_engine(self.url, self.shown_url, create=create)

    @classmethod
    def in_folder(cls, folder: Path, *, create: bool = True) -> Journal:
        """SQLite journal `journal.sqlite` in a run folder."""
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{folder / 'journal.sqlite'}", create=create)

    def _read(self) -> Any:
        """A connection for reading; database errors become JournalError."""
        return Reading(self.engine, self.shown_url)

    # ------------------------------------------------------------------------------ runs, sessions

    def start_run(self, run_id: str, bench: str, meta: dict[str, Any]) -> None:
        """Register a run (idempotent, so a resumed run keeps its id and first metadata)."""
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
                      bench=row.bench, verdict=row.verdict, meta=loads(row.meta, f"run {run_id} meta"))

    def has_run(self, run_id: str) -> bool:
        """True when the run is in this journal."""
        with self._read() as conn:
            return conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is not None

    def runs(self) -> list[RunRow]:
        """Every run, oldest first."""
        with self._read() as conn:
            rows = conn.execute(sa.select(runs).order_by(runs.c.started_utc, runs.c.run_id)).all()
        return [RunRow(run_id=r.run_id, started_utc=r.started_utc, finished_utc=r.finished_utc, bench=r.bench,
                       verdict=r.verdict, meta=loads(r.meta, f"run {r.run_id} meta")) for r in rows]

    def sessions(self, run_id: str) -> list[SessionRow]:
        """The run's sessions in order."""
        with self._read() as conn:
            rows = conn.execute(sa.select(run_sessions).where(run_sessions.c.run_id == run_id)
                                .order_by(run_sessions.c.session)).all()
        return [SessionRow(session=r.session, started_utc=r.started_utc, finished_utc=r.finished_utc,
                           verdict=r.verdict, exit_status=r.exit_status, wall_s=r.wall_s, bench_s=r.bench_s,
                           host=r.host, pid=r.pid, meta=loads(r.meta, f"run {run_id} session {r.session} meta"),
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
                                           meta=loads(r.run_meta, f"run {r.run_id} meta"))
            out.append((headers[r.run_id], _stored(r)))
        return out

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()



def _stored(row: Any) -> StoredRecord:
    record = Record(test=row.test, position=row.position, quantity=row.quantity, value=row.value, unit=row.unit,
                    low=row.low, high=row.high, verdict=row.verdict, bench_time_s=row.bench_time_s,
                    detail=loads(row.detail, f"record {row.seq} detail") if row.detail else None, meter=row.meter)
    return StoredRecord(record=record, run_id=row.run_id, seq=row.seq, session=row.session,
                        recorded_utc=row.recorded_utc, hash=row.hash, detail_text=row.detail)

