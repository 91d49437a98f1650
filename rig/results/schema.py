"""The journal's tables (SQLAlchemy Core): runs, sessions, records, items, attachment hashes, seals, and
the lab's pinned bench keys. Data only.
"""

from __future__ import annotations

import sqlalchemy as sa

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
SCHEMA_LOCK_KEY = 0x52494701
