"""The outbox table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel


class OutboxItem(SQLModel, table=True):
    """One side effect to carry out (create a channel, post or update a message).

    `status` is pending until delivered (done). A worker claims an item by setting `claimed_by`
    and `claimed_until`; a claim that expires (crashed worker) can be taken over.
    """

    __tablename__ = "outbox_item"
    __table_args__ = (Index("ix_outbox_due", "status", "available_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64)
    subject: str = Field(max_length=64, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    dedupe_key: str | None = Field(default=None, max_length=255, unique=True)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    available_at: datetime
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = None
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    last_error: str | None = None
    created_at: datetime
    done_at: datetime | None = None
