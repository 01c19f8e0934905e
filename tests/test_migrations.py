"""The migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from vigil_ir.db import migrate
from vigil_ir.tables import metadata


def test_models_match_migrated_schema(db):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_migrate_is_idempotent(db):
    migrate(db.url)
    migrate(db.url)
    tables = set(inspect(db.engine).get_table_names())
    assert {"event", "stream_head", "incident", "outbox_item", "processed_key", "key_counter",
            "alembic_version"} <= tables


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(db):
    if not db.is_sqlite:
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
