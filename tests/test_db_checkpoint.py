"""SQLite's WAL checkpoint runs in the background for long-running processes, never inside a commit."""

from __future__ import annotations

import time
from pathlib import Path

from vigil_ir.db import Database, migrate
from vigil_ir.eventlog import append


def autocheckpoint(database: Database) -> int:
    with database.session() as session:
        return session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()


def test_background_checkpoints_take_the_wal_off_the_commit_path(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    migrate(url)
    database = Database(url)
    try:
        assert autocheckpoint(database) == 1000  # a one-shot command keeps SQLite's default
        assert database.checkpoint_in_background(every=0.01)
        assert not database.checkpoint_in_background()  # one thread per database
        assert autocheckpoint(database) == 0  # pooled connections were reopened without it
        main_file = tmp_path / "vigil.db"
        before = main_file.stat().st_size
        for n in range(200):  # new pages land in the WAL; only a checkpoint copies them to the file
            with database.session() as session:
                append(session, stream=f"test:{n}", kind="test.written", actor="U1", data={"text": "x" * 2000})
        deadline = time.monotonic() + 60
        while main_file.stat().st_size <= before and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for the background thread's progress
        assert main_file.stat().st_size > before, "the background checkpoint never copied the WAL"
        thread = database._checkpointer
    finally:
        database.dispose()
    assert not thread.is_alive()


def test_in_memory_and_postgresql_databases_need_no_checkpoint_thread(db):
    if db.is_sqlite:
        assert not Database("sqlite://").checkpoint_in_background()
    else:
        assert not db.checkpoint_in_background()
