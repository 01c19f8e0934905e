"""Shared fixtures: a migrated database per backend (SQLite always, PostgreSQL when configured).

Set TEST_DATABASE_URL to a PostgreSQL database the tests may wipe; every test that takes `db` then
runs against both backends.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from bot.db import Database, migrate
from bot.tables import metadata

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def _fresh_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request, tmp_path_factory) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'vigil.db'}"
    else:
        url = os.environ["TEST_DATABASE_URL"]
        _fresh_postgres(url)
    migrate(url)
    return url


def empty_all_tables(database: Database) -> None:
    names = [table.name for table in metadata.sorted_tables]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in reversed(names):
                connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            quoted = ", ".join(f'"{name}"' for name in names)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture
def db(database_url) -> Database:
    database = Database(database_url)
    empty_all_tables(database)
    yield database
    database.dispose()
