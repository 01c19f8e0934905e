"""PostgreSQL's pool: no ping on a connection in steady use, a ping (and a fresh connection) for one
that sat idle and died meanwhile (a server restart, an idle timeout)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from vigil_ir.db import ping_when_idle

BACKEND_PID = text("SELECT pg_backend_pid()")


def test_a_connection_in_steady_use_is_not_pinged(db):
    if db.is_sqlite:
        pytest.skip("SQLite has no server to lose")
    pings, original = [], db.engine.dialect.do_ping
    db.engine.dialect.do_ping = lambda dbapi_connection: pings.append(1) or original(dbapi_connection)
    try:
        with db.engine.connect() as connection:
            first = connection.execute(BACKEND_PID).scalar_one()
        with db.engine.connect() as connection:  # checked in a moment ago: used as it is
            assert connection.execute(BACKEND_PID).scalar_one() == first
    finally:
        db.engine.dialect.do_ping = original
    assert pings == []


def test_an_idle_connection_the_server_ended_is_replaced_before_use(db):
    if db.is_sqlite:
        pytest.skip("SQLite has no server to lose")
    engine = create_engine(db.engine.url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle_seconds=0)  # every checked-in connection counts as idle
    try:
        with engine.connect() as connection:
            victim = connection.execute(BACKEND_PID).scalar_one()
        with db.engine.connect() as other:  # the server ends it while it sits in the pool
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim}).scalar_one()
        with engine.connect() as connection:  # the ping notices; the pool connects afresh
            assert connection.execute(BACKEND_PID).scalar_one() != victim
    finally:
        engine.dispose()
