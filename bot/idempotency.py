"""Natural keys of requests already handled, so a retry or a double click changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel

from vigil_ir import clock
from vigil_ir.db import insert_if_absent


class ProcessedKey(SQLModel, table=True):
    __tablename__ = "processed_key"

    key: str = Field(primary_key=True, max_length=255)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime


def first_time(session: Session, key: str, result: dict[str, Any] | None = None) -> bool:
    """Record `key` in the caller's transaction; False if it was already recorded."""
    return insert_if_absent(session, ProcessedKey, {"key": key[:255], "result": result or {},
                                                    "created_at": clock.now()}, ["key"])


def previous_result(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(ProcessedKey, key[:255])
    return row.result if row else None


def remember_result(session: Session, key: str, result: dict[str, Any]) -> None:
    row = session.get(ProcessedKey, key[:255])
    if row is not None:
        row.result = result
        session.add(row)
