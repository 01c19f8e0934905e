"""Tables for playbooks attached to incidents. History is on the incident's event stream."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

STEP_STATES = ("open", "done", "skipped")
EVIDENCE_KINDS = ("none", "note", "link")


class PlaybookRun(SQLModel, table=True):
    """A playbook attached to an incident, with the exact file content that was followed."""

    __tablename__ = "playbook_run"
    __table_args__ = (UniqueConstraint("incident_id", "playbook_id", name="uq_playbook_run_incident_playbook"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    playbook_id: str = Field(max_length=64)
    version: str = Field(max_length=32)
    title: str = Field(max_length=150)
    sha256: str = Field(max_length=64)
    content: str
    attached_by: str = Field(max_length=64)
    attached_at: datetime
    checklist_ts: str | None = Field(default=None, max_length=32)


class PlaybookStep(SQLModel, table=True):
    """The current state of one step of a run (each change is also an event)."""

    __tablename__ = "playbook_step"
    __table_args__ = (UniqueConstraint("run_id", "step_id", name="uq_playbook_step_run_step"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_run.id", index=True)
    step_id: str = Field(max_length=64)
    phase_id: str = Field(max_length=64)
    phase_title: str = Field(max_length=150)
    position: int
    title: str = Field(max_length=200)
    instructions: str = ""
    role: str | None = Field(default=None, max_length=32)
    required: bool = True
    evidence: str = Field(default="none", max_length=8)
    due_at: datetime | None = Field(default=None, index=True)
    status: str = Field(default="open", max_length=16)
    assignee: str | None = Field(default=None, max_length=64)
    completed_by: str | None = Field(default=None, max_length=64)
    completed_at: datetime | None = None
    evidence_text: str | None = None
    skip_reason: str | None = None


class PlaybookDeadline(SQLModel, table=True):
    """A regulatory or policy clock (e.g. GDPR Art. 33: 72 h from awareness)."""

    __tablename__ = "playbook_deadline"
    __table_args__ = (UniqueConstraint("run_id", "deadline_id", name="uq_playbook_deadline_run_deadline"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_run.id", index=True)
    deadline_id: str = Field(max_length=64)
    label: str = Field(max_length=200)
    duration: str = Field(max_length=32)
    business_days: bool = False
    starts_from: str = Field(max_length=80)
    met_by: str | None = Field(default=None, max_length=80)
    # None until the clock starts (a deadline counted from a step's completion).
    starts_at: datetime | None = None
    due_at: datetime | None = Field(default=None, index=True)
    status: str = Field(default="pending", max_length=16)  # pending, met, missed, decided
    resolved_at: datetime | None = None
    # A clock ended by a recorded decision instead of the step that meets it (e.g. "not reportable").
    decision: str | None = Field(default=None, max_length=32)
    decision_reason: str | None = Field(default=None, max_length=1000)
    decided_by: str | None = Field(default=None, max_length=64)
