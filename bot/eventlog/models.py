"""Event log tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class Event(SQLModel, table=True):
    """One thing that happened. Rows are inserted once and never updated or deleted."""

    __tablename__ = "event"
    __table_args__ = (UniqueConstraint("stream", "stream_seq", name="uq_event_stream_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=64, index=True)
    stream_seq: int
    kind: str = Field(max_length=64, index=True)
    actor: str = Field(max_length=64)
    occurred_at: datetime
    recorded_at: datetime = Field(index=True)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    corrects: int | None = Field(default=None, foreign_key="event.id")
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class StreamHead(SQLModel, table=True):
    """The last sequence number and hash of each stream: the row writers lock to serialise."""

    __tablename__ = "stream_head"

    stream: str = Field(primary_key=True, max_length=64)
    seq: int
    hash: str = Field(max_length=64)
    updated_at: datetime
