"""Opening a results database (SQLAlchemy): URLs, SQLite pragmas, the schema check, and database errors
turned into one-line JournalErrors. Knows the tables (rig.results.schema), not what a run is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from drivers.errors import RigError
from rig.results.schema import SCHEMA_LOCK_KEY, metadata


class JournalError(RigError):
    """The results journal cannot be opened or read, or a run is not in it; the message names which."""



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


def reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip() or type(exc).__name__
    return text.splitlines()[0]



def open_engine(url: str, shown_url: str, *, create: bool) -> sa.engine.Engine:
    """An engine on `url` holding the journal's tables (created when `create`); JournalError otherwise."""
    try:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and not create:
            path = parsed.database
            if path and path != ":memory:" and not Path(path).is_file():
                raise JournalError(f"no results journal at {shown_url} (file not found)")
        connect_args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = 10
        engine = sa.create_engine(url, connect_args=connect_args)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        if create:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # Two benches starting at once must not both try to create the tables.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
                metadata.create_all(conn)
        _check_schema(engine, shown_url)
    except JournalError:
        raise
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        raise JournalError(f"cannot open results database {shown_url}: {reason(exc)}") from None
    return engine


def _check_schema(engine: sa.engine.Engine, shown_url: str) -> None:
    inspector = sa.inspect(engine)
    tables = set(inspector.get_table_names())
    wanted = {t.name for t in metadata.sorted_tables}
    if not wanted & tables:
        raise JournalError(f"{shown_url} holds no results journal (no runs or records tables)")
    missing_tables = wanted - tables
    if missing_tables:
        raise JournalError(f"{shown_url} is not a journal of this rig version "
                           f"(missing tables: {', '.join(sorted(missing_tables))})")
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            raise JournalError(f"{shown_url}: table {table.name} was written by another rig version "
                               f"(missing columns: {', '.join(missing)}); use a new journal")


class Reading:
    """`with Reading(engine, shown_url) as conn:` turning database errors into JournalError."""

    def __init__(self, engine: sa.engine.Engine, shown_url: str) -> None:
        self.engine = engine
        self.shown_url = shown_url
        self.conn: Any = None

    def __enter__(self) -> Any:
        try:
            self.conn = self.engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise JournalError(f"cannot read {self.shown_url}: {reason(exc)}") from None
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.conn.close()
        if isinstance(exc, sa.exc.SQLAlchemyError):
            raise JournalError(f"cannot read {self.shown_url}: {reason(exc)}") from None


def loads(text: str | None, what: str) -> Any:
    """JSON text of a journal column (None stays None); JournalError naming `what` when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise JournalError(f"{what} is not valid JSON (the journal is corrupt)") from None
