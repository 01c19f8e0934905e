"""Post-incident reviews and follow-up action items."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

ACTION_TYPES = {"preventive": "Preventive", "detective": "Detective", "corrective": "Corrective",
                "process": "Process"}
ACTION_STATUSES = ("open", "in_progress", "done", "cancelled")


class PostIncidentReview(SQLModel, table=True):
    """One per resolved incident; completed through the PIR modal. History: the incident's stream."""

    __tablename__ = "post_incident_review"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", unique=True)
    required: bool = True
    due_at: datetime | None = Field(default=None, index=True)
    facilitator: str | None = Field(default=None, max_length=64)
    status: str = Field(default="pending", max_length=16)
    held_at: datetime | None = None
    attendees: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    summary: str = ""
    root_cause: str = ""
    contributing_factors: str = ""
    went_well: str = ""
    went_poorly: str = ""
    detection_gap: str = ""
    plan_change_needed: bool = False
    plan_change_ref: str = ""
    completed_by: str | None = Field(default=None, max_length=64)
    completed_at: datetime | None = None
    created_at: datetime


class ActionItem(SQLModel, table=True):
    """A follow-up action (`ACT-<n>`), from an incident or a risk's treatment. History: `action:<n>`."""

    __tablename__ = "action_item"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    risk_id: int | None = Field(default=None, index=True)
    description: str
    owner: str | None = Field(default=None, max_length=64, index=True)
    due_on: date | None = Field(default=None, index=True)
    type: str = Field(default="corrective", max_length=16)
    status: str = Field(default="open", max_length=16, index=True)
    status_reason: str = ""
    ticket_url: str = ""
    evidence: str = ""
    created_by: str = Field(max_length=64)
    created_at: datetime
    completed_by: str | None = Field(default=None, max_length=64)
    completed_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"ACT-{self.number}"

    @property
    def stream(self) -> str:
        return f"action:{self.number}"
