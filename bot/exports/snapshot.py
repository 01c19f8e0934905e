"""A read-only, consistent view of the database for a long export.

Every file in a bundle must describe the same moment: an event appended half-way through would
otherwise be in the event log but not in the packet, or move a chain head after it was listed.

* PostgreSQL: one REPEATABLE READ, READ ONLY transaction (a snapshot; writers are not blocked).
* SQLite: the app's engine starts every transaction with BEGIN IMMEDIATE (the write lock), which
  would stall Slack requests for the whole export. A second engine on the same file starts a
  plain deferred BEGIN instead: under WAL that is a snapshot taken at the first read, and writers
  carry on. An in-memory database cannot be opened twice, so it falls back to the app's session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlmodel import Session

from vigil_ir.db import Database, is_in_memory, make_sqlite_reader


@contextlib.contextmanager
def read_snapshot(database: Database) -> Iterator[Session]:
    """A session whose reads all see one committed state; nothing it does is committed."""
    if database.is_sqlite and is_in_memory(database.url):
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
                yield session
            finally:
                session.rollback()
    finally:
        if owned:
            engine.dispose()
