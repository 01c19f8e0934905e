"""Monotonic human keys (`INC-<n>`, `RISK-<n>`): numbers are handed out once and never reused."""

from __future__ import annotations

import re

from sqlalchemy import update
from sqlmodel import Field, Session, SQLModel

from vigil_ir.db import insert_if_absent


# The largest key number or row id looked up: PostgreSQL's INTEGER (and beyond it SQLite's 64 bits)
# would fail on a bigger one with an error instead of "not found".
MAX_NUMBER = 2**31 - 1


def number_in(pattern: re.Pattern, text: str | None) -> int | None:
    """The number a key pattern captured (group 1), or None if it does not match or is too large to exist."""
    match = pattern.match(text or "")
    if match is None or len(match.group(1)) > 10:
        return None
    number = int(match.group(1))
    return number if number <= MAX_NUMBER else None


class KeyCounter(SQLModel, table=True):
    __tablename__ = "key_counter"

    name: str = Field(primary_key=True, max_length=32)
    last: int = 0


def next_number(session: Session, name: str) -> int:
    """The next number for `name`, inside the caller's transaction (the row is locked until commit)."""
    insert_if_absent(session, KeyCounter, {"name": name, "last": 0}, ["name"])
    return session.execute(update(KeyCounter).where(KeyCounter.name == name)
                           .values(last=KeyCounter.last + 1).returning(KeyCounter.last)).scalar_one()
