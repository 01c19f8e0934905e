"""Alerts as received, and the groups they are triaged in.

An alert is one thing a source watches (its fingerprint, dedup key or alias), with the state the
source last reported. Alerts that arrive together (the source's group key, else the alert name) share
an *alert group*: the unit a person triages with one Slack message (declare, attach, dismiss), so an
alert storm is one message that is updated, not a thousand. The history of a group and its alerts is
the `alert_group:<id>` event stream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

# Triage states of a group: waiting for a person, or decided.
TRIAGE_STATES = ("open", "declared", "attached", "dismissed")


class AlertGroup(SQLModel, table=True):
    __tablename__ = "alert_group"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    group_key: str = Field(max_length=255)
    # "<source>:<group_key>" while the group takes new alerts (open, or linked to an open incident);
    # cleared when it is dismissed or its incident is over, so the next firing starts a new group.
    active_key: str | None = Field(default=None, max_length=300, unique=True)
    title: str = Field(max_length=300)
    severity: str = Field(max_length=8)
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default="open", max_length=16, index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
    reason: str = ""
    first_started_at: datetime
    created_at: datetime

    @property
    def stream(self) -> str:
        return f"alert_group:{self.id}"


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (UniqueConstraint("source", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    fingerprint: str = Field(max_length=255)
    group_id: int = Field(foreign_key="alert_group.id", index=True)
    title: str = Field(max_length=300)
    summary: str = ""
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    severity: str = Field(max_length=8)
    status: str = Field(max_length=16)  # firing | resolved
    starts_at: datetime
    ends_at: datetime | None = None
    url: str | None = Field(default=None, max_length=2000)
    fired_count: int = 1
    updated_at: datetime
