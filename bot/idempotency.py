"""Natural keys of requests already handled, so a retry or a double click changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from bot import clock


class ProcessedKey(SQLModel, table=True):
    __tablename__ = "processed_key"

    key: str = Field(primary_key=True, max_length=255)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime


def first_time(session: Session, key: str, result: dict[str, Any] | None = None) -> bool:
    """Record `key` in the caller's transaction; False if it was already recorded.

    On PostgreSQL a concurrent transaction holding the same key makes this wait for it, so of two
    simultaneous deliveries exactly one sees True.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (insert(ProcessedKey)
                 .values(key=key[:255], result=result or {}, created_at=clock.now())
                 .on_conflict_do_nothing(index_elements=["key"]))
    return session.execute(statement).rowcount == 1


def previous_result(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(ProcessedKey, key[:255])
    return row.result if row else None


def remember_result(session: Session, key: str, result: dict[str, Any]) -> None:
    row = session.get(ProcessedKey, key[:255])
    if row is not None:
        row.result = result
        session.add(row)
