"""The incident table and its vocabulary."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

SEVERITIES = {
    "sev1": "Critical: customer-facing outage or confirmed breach; all hands now.",
    "sev2": "Major: significant degradation or likely security impact; respond now.",
    "sev3": "Minor: limited impact or a workaround exists; respond in business hours.",
    "sev4": "Low: no customer impact yet; track and fix.",
}
TYPES = {
    "security": "Security",
    "availability": "Availability",
    "data_privacy": "Data / privacy",
    "other": "Other",
}
STATUSES = ("investigating", "identified", "monitoring", "resolved", "closed")
ACTIVE_STATUSES = ("investigating", "identified", "monitoring")
ROLES = {"lead": "Incident lead", "comms": "Communications", "scribe": "Scribe"}
# Chosen when closing, so the periodic review can count recurring causes (CC7.4).
CAUSE_CATEGORIES = {
    "change": "Change (deploy, configuration, migration)",
    "capacity": "Capacity or load",
    "dependency": "Third-party or dependency failure",
    "infrastructure": "Infrastructure or hardware",
    "defect": "Software defect",
    "attack": "Malicious activity",
    "access": "Access or credential handling",
    "human": "Human error or process gap",
    "unknown": "Unknown",
}
# A rehearsal of the response (CC7.5): numbered EX-<n> on its own `exercise:<n>` stream, run like an
# incident, and left out of the incident population and its metrics (docs/architecture.md, "Exercises").
EXERCISE_KINDS = {"tabletop": "Tabletop exercise", "game_day": "Game day"}
EXERCISE_BANNER = ":test_tube: EXERCISE — not a real incident"
STREAM_PREFIXES = {False: "incident:", True: "exercise:"}  # an incident's stream, an exercise's


def key_of(number: int, exercise: bool = False) -> str:
    return f"EX-{number}" if exercise else f"INC-{number}"


def stream_of(number: int, exercise: bool = False) -> str:
    return f"{STREAM_PREFIXES[exercise]}{number}"


class Incident(SQLModel, table=True):
    """Current state of an incident. Its history is the `incident:<number>` event stream."""

    __tablename__ = "incident"
    # INC-<n> and EX-<n> are numbered apart (key counters `incident` and `exercise`), so a number is
    # unique among incidents and among exercises.
    __table_args__ = (UniqueConstraint("exercise", "number", name="uq_incident_exercise_number"),)

    id: int | None = Field(default=None, primary_key=True)
    number: int
    exercise: bool = False
    exercise_kind: str | None = Field(default=None, max_length=16)
    scenario: str = ""
    title: str = Field(max_length=150)
    type: str = Field(max_length=32)
    security: bool = False
    # Set at declaration: a private Slack channel named inc-<n>, a redacted feed line, and outside the
    # channel only its members (access grants), commanders and admins see it (docs/permissions.md).
    private: bool = False
    severity: str = Field(max_length=8)
    initial_severity: str = Field(max_length=8)
    status: str = Field(max_length=16, index=True)
    description: str = ""
    declared_by: str = Field(max_length=64)
    declared_at: datetime = Field(index=True)
    detected_at: datetime
    origin_channel: str | None = Field(default=None, max_length=32)
    lead: str | None = Field(default=None, max_length=64)
    comms: str | None = Field(default=None, max_length=64)
    scribe: str | None = Field(default=None, max_length=64)
    channel_id: str | None = Field(default=None, max_length=32, unique=True)
    channel_name: str | None = Field(default=None, max_length=80)
    summary_ts: str | None = Field(default=None, max_length=32)
    feed_channel: str | None = Field(default=None, max_length=32)
    feed_ts: str | None = Field(default=None, max_length=32)
    current_summary: str = ""
    next_update_due: datetime | None = None
    customer_impact: str = ""
    root_cause: str = ""
    cause_category: str | None = Field(default=None, max_length=32)
    lessons_learned: str = ""
    follow_ups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    @property
    def key(self) -> str:
        return key_of(self.number, self.exercise)

    @property
    def stream(self) -> str:
        return stream_of(self.number, self.exercise)

    @property
    def ref(self) -> str:
        """The number as reminder and post keys carry it: `ex-<n>` for an exercise, so keys never clash."""
        return f"ex-{self.number}" if self.exercise else str(self.number)

    @property
    def is_open(self) -> bool:
        return self.status in ACTIVE_STATUSES


class IncidentAccess(SQLModel, table=True):
    """Who was granted access to a private incident: one row per person, its `incident.access_granted`
    event says who granted it, when and how (declared, role, invite, security group)."""

    __tablename__ = "incident_access"
    __table_args__ = (UniqueConstraint("incident_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    user_id: str = Field(max_length=64, index=True)
    granted_by: str = Field(max_length=64)
    granted_at: datetime
    via: str = Field(max_length=32)
