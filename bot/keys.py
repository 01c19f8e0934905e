"""Monotonic human keys (`INC-<n>`, `RISK-<n>`): numbers are handed out once and never reused."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel

from vigil_ir.db import insert_if_absent


# The largest record number or id anyone can type that a database column can hold (both SQLite and
# PostgreSQL take 64-bit integers; no installation hands out anywhere near this many keys).
MAX_NUMBER = 2**63 - 1


def bounded_number(digits: str) -> int | None:
    """The number typed, or None when it could not name a record (too long to fit a column)."""
    number = int(digits)
    return number if 0 < number <= MAX_NUMBER else None


class KeyCounter(SQLModel, table=True):
    __tablename__ = "key_counter"

    name: str = Field(primary_key=True, max_length=32)
    last: int = 0


def next_number(session: Session, name: str) -> int:
    """The next number for `name`, inside the caller's transaction (the row is locked until commit)."""
    insert_if_absent(session, KeyCounter, {"name": name, "last": 0}, ["name"])
    return session.execute(update(KeyCounter).where(KeyCounter.name == name)
                           .values(last=KeyCounter.last + 1).returning(KeyCounter.last)).scalar_one()
