"""A read-only, consistent view of the database for a long export, which other processes can join.

Every file in a bundle must describe the same moment: an event appended half-way through would
otherwise be in the event log but not in the packet, or move a chain head after it was listed.

* PostgreSQL: one REPEATABLE READ, READ ONLY transaction (a snapshot; writers are not blocked).
* SQLite: the app's engine starts every transaction with BEGIN IMMEDIATE (the write lock), which
  would stall Slack requests for the whole export. A second engine on the same file starts a
  plain deferred BEGIN instead: under WAL that is a snapshot taken at the first read, and writers
  carry on. An in-memory database cannot be opened twice, so it falls back to the app's session.

When the export is split across processes, each must read that same moment (`joined_snapshot`):

* PostgreSQL exports the snapshot (`pg_export_snapshot()`, as `pg_dump --jobs` does) and the other
  process starts its transaction with `SET TRANSACTION SNAPSHOT`, at any time while ours is open.
* SQLite has no snapshot that another connection can name. Instead, writers are held off for the
  moment it takes every reader to begin: a connection takes the write lock (BEGIN IMMEDIATE, which
  does not wait for readers), then this session and the other process's each make their first read,
  then the lock is released. No commit can fall between those reads, so they see the same state.
  Writers wait for a few milliseconds (their busy timeout is 15 s), never for the export.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator
from typing import Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session

from vigil_ir.db import Database, is_in_memory, is_sqlite, make_sqlite_reader

BUSY_SECONDS = 15  # as long as the app's writers wait for the lock (vigil_ir.db)
_PG_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")  # what pg_export_snapshot() returns


class Joiners(Protocol):
    """The other processes that read the same snapshot."""

    def ready(self) -> None:
        """Return once they can begin reading without delay (SQLite holds writers off meanwhile)."""

    def join(self, token: str | None) -> None:
        """Let them begin on the snapshot `token` names (PostgreSQL; None on SQLite, where this must
        return only once they have made their first read)."""


def shareable(database: Database) -> bool:
    """Whether another process can read the same snapshot (not an in-memory SQLite database)."""
    return not (database.is_sqlite and is_in_memory(database.url))


@contextlib.contextmanager
def read_snapshot(database: Database, *, joiners: Joiners | None = None) -> Iterator[Session]:
    """A session whose reads all see one committed state; nothing it does is committed.

    With `joiners`, the other processes are let in on the same state before this returns the session
    (`shareable(database)` must be true)."""
    if database.is_sqlite and is_in_memory(database.url):
        if joiners is not None:
            raise ValueError("an in-memory SQLite database cannot be read from another process")
        with database.session() as session:
            yield session
        return
    if database.is_sqlite:
        engine, owned = make_sqlite_reader(database.url), True
    else:
        engine = database.engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        owned = False
    try:
        with Session(engine, expire_on_commit=False, autoflush=False) as session:
            try:
                if joiners is not None:
                    _share(database, session, joiners)
                yield session
            finally:
                session.rollback()
    finally:
        if owned:
            engine.dispose()


def _share(database: Database, session: Session, joiners: Joiners) -> None:
    if not database.is_sqlite:
        joiners.join(session.execute(text("SELECT pg_export_snapshot()")).scalar_one())
        return
    joiners.ready()
    with writers_held_off(database.url):
        _first_read(session)
        joiners.join(None)


@contextlib.contextmanager
def writers_held_off(url: str) -> Iterator[None]:
    """Hold SQLite's write lock (without writing) for the block: no commit can happen in it."""
    connection = sqlite3.connect(make_url(url).database, timeout=BUSY_SECONDS, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
    finally:
        connection.close()


def _first_read(session: Session) -> None:
    # Under WAL a deferred transaction's snapshot is taken at its first read, not at BEGIN.
    session.execute(text("SELECT count(*) FROM sqlite_master")).one()


@contextlib.contextmanager
def joined_snapshot(url: str, token: str | None) -> Iterator[Session]:
    """In another process: a read-only session on the snapshot another session shared (see above).

    On SQLite it must be entered while that session's `Joiners.join` waits; its first read is made here."""
    if is_sqlite(url):
        engine = make_sqlite_reader(url)
    else:
        if token is None or not _PG_SNAPSHOT_ID.fullmatch(token):
            raise ValueError(f"not an exported snapshot id: {token!r}")
        engine = create_engine(url, poolclass=NullPool).execution_options(isolation_level="REPEATABLE READ",
                                                                          postgresql_readonly=True)
    try:
        with Session(engine, expire_on_commit=False, autoflush=False) as session:
            try:
                if is_sqlite(url):
                    _first_read(session)
                else:  # must be the transaction's first statement; the id was checked above
                    session.execute(text(f"SET TRANSACTION SNAPSHOT '{token}'"))
                yield session
            finally:
                session.rollback()
    finally:
        engine.dispose()
