"""Engine, sessions, SQLite pragmas and the migration runner."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from importlib import resources
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, event, exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from vigil_ir.jsontext import canonical_json

log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """The Alembic scripts, wherever the package is installed (a wheel, or editable from a checkout)."""
    return Path(str(resources.files("vigil_ir.migrations")))


class CommitUncertain(Exception):
    """The connection was lost while COMMIT was in flight: the transaction may or may not have been
    recorded. (A failure before COMMIT was sent always means nothing was recorded.)"""


def is_unreachable(error: BaseException) -> bool:
    """True when the database could not be reached or was lost (a restart, a network cut), as opposed
    to a bug or a constraint: worth a "try again in a minute", not a traceback."""
    return isinstance(error, (CommitUncertain, exc.OperationalError, exc.InterfaceError, exc.DisconnectionError,
                              exc.TimeoutError))


def one_line(error: BaseException) -> str:
    """The error's type and first line, for a log line without a traceback."""
    text = str(error).strip()
    line = f"{type(error).__name__}: {text.splitlines()[0][:300]}" if text else type(error).__name__
    statement = getattr(error, "statement", None)  # the SQL only, never its parameters
    return f"{line} [during: {' '.join(statement.split())[:80]}]" if statement else line


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = str(url_or_engine.url) if isinstance(url_or_engine, Engine) else url_or_engine
    return url.startswith("sqlite")


# JSON columns are stored as canonical JSON: an event's `data` is then stored as the very text its
# hash covers, so `vigil verify` hashes it without a JSON round trip (vigil_ir.eventlog.stored).
def make_engine(url: str) -> Engine:
    if not is_sqlite(url):
        engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=POOL_RECYCLE_SECONDS,
                               json_serializer=canonical_json)
        ping_when_idle(engine)
        return engine
    # Each transaction starts with BEGIN IMMEDIATE: SQLite then serialises writers up front instead
    # of failing a read transaction that later tries to write (SQLITE_BUSY_SNAPSHOT under WAL).
    return _sqlite_engine(url, ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=15000", "foreign_keys=ON"),
                          begin="BEGIN IMMEDIATE")


# A pooled PostgreSQL connection idle this long is pinged before use; one in steady use is not. The
# ping is a round trip (SELECT 1) on every checkout with `pool_pre_ping`: a fifth of a note's round
# trips. A connection that died while busy fails its statement instead, which invalidates the whole
# pool (SQLAlchemy's disconnect handling), so the next checkouts reconnect: the request caught by
# it answers "database unavailable" and writes nothing, as it would had the server died a moment later.
PING_IF_IDLE_SECONDS = 5.0
POOL_RECYCLE_SECONDS = 1800  # and no connection lives for ever (a server-side or proxy idle timeout)


def ping_when_idle(engine: Engine, idle_seconds: float = PING_IF_IDLE_SECONDS) -> None:
    """Pessimistic disconnect handling, for idle connections only: a failed ping raises
    DisconnectionError, on which the pool throws the connection away and checks out another."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection, record):
        if record is not None:
            record.info["vigil_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy):
        since = record.info.get("vigil_idle_since")
        if since is None or time.monotonic() - since < idle_seconds:  # just connected, or in steady use
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as failure:
            raise exc.DisconnectionError(str(failure)) from failure


def make_sqlite_reader(url: str) -> Engine:
    """A second engine on the same SQLite file that only reads: a plain deferred BEGIN (under WAL a
    snapshot taken at the first read) instead of BEGIN IMMEDIATE, so reads never wait for the write
    lock, nor hold it."""
    return _sqlite_engine(url, ("busy_timeout=15000", "query_only=ON"), begin="BEGIN")


def _sqlite_engine(url: str, pragmas: tuple[str, ...], *, begin: str) -> Engine:
    # isolation_level=None hands transaction control to us, so `begin` says how each one starts.
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15, "isolation_level": None},
                           json_serializer=canonical_json)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql(begin)

    return engine


def is_in_memory(url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(url).database in (None, "", ":memory:")


class Database:
    """The app's handle on its database: one engine, short sessions."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        # SQLite has one writer at a time, and threads waiting in its busy handler retry with
        # growing sleeps while newcomers jump the queue (multi-second tails under load). A
        # process-wide lock makes this process's sessions take turns in order instead.
        self._turns = threading.RLock() if self.is_sqlite else contextlib.nullcontext()
        self._reader: Engine | None = None
        self._reader_lock = threading.Lock()
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        if self.is_sqlite:
            event.listen(self.engine, "connect", self._autocheckpoint_pragma)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error.

        Raises CommitUncertain when the connection drops during COMMIT itself; pending changes are
        flushed first, so that is the only step whose outcome can be unknown.
        """
        with self._turns, Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.flush()
            except BaseException:
                session.rollback()
                raise
            try:
                session.commit()
            except exc.DBAPIError as failure:
                if failure.connection_invalidated:
                    raise CommitUncertain(str(failure.orig or failure).strip()) from failure
                raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A Core connection in one transaction that commits on success, for a few statements that
        need no ORM (the outbox sender's per-item outcome): a third of the cost of a Session's.
        Raises CommitUncertain like `session()`."""
        with self._turns, self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                yield connection
            except BaseException:
                transaction.rollback()
                raise
            try:
                transaction.commit()
            except exc.DBAPIError as failure:
                if failure.connection_invalidated:
                    raise CommitUncertain(str(failure.orig or failure).strip()) from failure
                raise

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        """A session for reads only, which never waits for writers: on a SQLite file it uses a
        reading engine and skips the writers' turns; elsewhere it is a session that rolls back."""
        if self.is_sqlite and is_in_memory(self.url):  # one connection only: take turns with the writers
            with self.session() as session:
                yield session
            return
        with Session(self._reading_engine(), expire_on_commit=False, autoflush=False) as session:
            try:
                yield session
            finally:
                session.expunge_all()  # what was read stays usable (a rollback would expire it)
                session.rollback()

    def _reading_engine(self) -> Engine:
        if not self.is_sqlite:
            return self.engine
        with self._reader_lock:
            if self._reader is None:
                self._reader = make_sqlite_reader(self.url)
            return self._reader

    def checkpoint_in_background(self, every: float = 0.5) -> bool:
        """Move SQLite's WAL checkpoint off the request path (a SQLite file only; True if started).

        By default the commit that pushes the WAL past 1,000 pages copies it into the database file
        and syncs it, inside that request: p99 of plain writes was 16-24 ms, 1.6 ms without. Here the
        write connections never checkpoint (`wal_autocheckpoint=0`); a thread runs a PASSIVE
        checkpoint every `every` seconds on a connection of its own, which neither takes the write
        lock nor waits for readers (sqlite3 releases the GIL while it copies). Writers restart the WAL
        from its beginning once it has all been copied, so it stays about `every` seconds of writes.
        """
        if not self.is_sqlite or is_in_memory(self.url) or self._checkpointer is not None:
            return False
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, args=(every,), daemon=True,
                                              name="vigil-wal-checkpoint")
        self.engine.dispose()  # pooled connections reopen with wal_autocheckpoint=0
        self._checkpointer.start()
        return True

    def _autocheckpoint_pragma(self, dbapi_connection, _record) -> None:
        if self._checkpointer is not None:
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")

    def _checkpoint_loop(self, every: float) -> None:
        from sqlalchemy.engine import make_url

        connection = sqlite3.connect(make_url(self.url).database, check_same_thread=False, isolation_level=None)
        try:
            while not self._stop_checkpoints.wait(every):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as failure:  # e.g. a disk error: the next round tries again
                    log.warning("WAL checkpoint failed: %s", failure)
        finally:
            connection.close()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._stop_checkpoints.set()
            self._checkpointer.join(timeout=10)
        self.engine.dispose()
        if self._reader is not None:
            self._reader.dispose()


def insert_if_absent(session, model, values: dict, key: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True if this call inserted the row.

    On PostgreSQL a concurrent transaction inserting the same key makes this wait for it, so of
    two simultaneous callers exactly one sees True.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    column = getattr(model, key[0])
    statement = insert(model).values(**values).on_conflict_do_nothing(index_elements=key).returning(column)
    return session.execute(statement).first() is not None


def alembic_config(url: str):
    from alembic.config import Config  # imported here: only migrating needs Alembic (start-up of other commands)

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
