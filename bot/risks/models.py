"""Risk register tables and their vocabulary. History lives on each risk's `risk:<n>` event stream."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

CATEGORIES = {
    "security": "Information security",
    "availability": "Availability / resilience",
    "data_privacy": "Data protection / privacy",
    "vendor": "Vendors and partners",
    "compliance": "Legal and compliance",
    "operational": "Operations and process",
    "financial": "Financial / fraud",
    "people": "People",
}
RISK_TYPES = ("internal", "external", "vendor", "fraud", "compliance", "operational")
TREATMENTS = ("untreated", "mitigate", "accept", "transfer", "avoid")
STATUSES = ("open", "in_treatment", "accepted", "closed")
CLOSURE_REASONS = {
    "fully_mitigated": "Fully mitigated",
    "system_retired": "System retired",
    "duplicate": "Duplicate of another risk",
    "no_longer_applicable": "No longer applicable",
    "transferred_out": "Transferred out",
}
OUTCOMES = {
    "no_change": "No change",
    "rescored": "Rescored",
    "treatment_changed": "Treatment changed",
    "acceptance_requested": "Acceptance requested",
    "closure_requested": "Closure requested",
    "escalated": "Escalated",
}
TRIGGERS = ("scheduled", "incident", "acceptance_expiry", "manual")
# Closing an incident of this type asks for an ad-hoc review of risks in the mapped category.
INCIDENT_TYPE_CATEGORY = {"security": "security", "availability": "availability", "data_privacy": "data_privacy"}


def status_for(treatment: str) -> str:
    """Status follows treatment while a risk is not closed."""
    return {"untreated": "open", "accept": "accepted"}.get(treatment, "in_treatment")


def key_of(number: int) -> str:
    """A risk's key from its number: RISK-<n>."""
    return f"RISK-{number}"


class Risk(SQLModel, table=True):
    """Current state of a risk. Every change goes through vigil_ir.risks and appends to its stream."""

    __tablename__ = "risk"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    title: str = Field(max_length=120)
    statement: str
    description: str = ""
    category: str = Field(max_length=32)
    risk_type: str = Field(max_length=16)
    owner: str = Field(max_length=64, index=True)
    methodology: str = Field(max_length=16)
    inherent_likelihood: int
    inherent_impact: int
    residual_likelihood: int
    residual_impact: int
    treatment: str = Field(max_length=16)
    treatment_plan: str = ""
    treatment_due: date | None = None
    status: str = Field(max_length=16, index=True)
    closure_reason: str | None = Field(default=None, max_length=32)
    cadence: str | None = Field(default=None, max_length=200)
    next_review_due: date | None = None
    last_reviewed_at: datetime | None = None
    last_reviewed_by: str | None = Field(default=None, max_length=64)
    acceptance_expires: date | None = None
    tsc_refs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    linked_incidents: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="manual", max_length=16)
    created_at: datetime
    created_by: str = Field(max_length=64)
    updated_at: datetime
    version: int = 1

    @property
    def key(self) -> str:
        return key_of(self.number)

    @property
    def stream(self) -> str:
        return f"risk:{self.number}"


class RiskReview(SQLModel, table=True):
    """One review occurrence of one risk: scheduled (per cadence) or ad hoc (incident, expiry, manual).

    The natural key (risk, trigger, trigger_ref) makes creating it idempotent. Once completed the
    row does not change again except for the approval state of its proposal.
    """

    __tablename__ = "risk_review"
    __table_args__ = (UniqueConstraint("risk_id", "trigger", "trigger_ref", name="uq_risk_review_natural"),
                      # the reminder sweep's candidates: one index range per reminder rank
                      Index("ix_risk_review_reminder", "status", "reminder_rank", "due_on"))

    id: int | None = Field(default=None, primary_key=True)
    risk_id: int = Field(foreign_key="risk.id", index=True)
    trigger: str = Field(max_length=24)
    trigger_ref: str = Field(max_length=80)
    due_on: date = Field(index=True)
    reviewer: str = Field(max_length=64, index=True)
    status: str = Field(default="open", max_length=16, index=True)  # open, completed, cancelled
    created_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, max_length=32)
    rationale: str | None = None
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    changed_fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    on_time: bool | None = None
    days_late: int | None = None
    requires_approval: bool = False
    approval_state: str | None = Field(default=None, max_length=16)  # pending, approved, rejected
    cancelled_reason: str | None = Field(default=None, max_length=200)
    # Reminders: rank of the latest reminder sent (see vigil_ir.risks.reminders.KINDS), set by compare-and-set.
    reminder_rank: int = 0
    reminders_sent: int = 0

    @property
    def ref(self) -> str:
        return f"RRV-{self.id}"


class RiskApproval(SQLModel, table=True):
    """A second person's decision on a review's proposal (one per review: double clicks decide once)."""

    __tablename__ = "risk_approval"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="risk_review.id", unique=True)
    risk_id: int = Field(foreign_key="risk.id", index=True)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    proposal: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    requested_by: str = Field(max_length=64)
    requested_at: datetime
    state: str = Field(default="pending", max_length=16, index=True)  # pending, approved, rejected
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None
    comment: str | None = None


class RiskAcceptance(SQLModel, table=True):
    """An approved acceptance of a risk, until it expires (then the risk goes back to review)."""

    __tablename__ = "risk_acceptance"

    id: int | None = Field(default=None, primary_key=True)
    risk_id: int = Field(foreign_key="risk.id", index=True)
    review_id: int = Field(foreign_key="risk_review.id", unique=True)
    requested_by: str = Field(max_length=64)
    approved_by: str = Field(max_length=64)
    approved_at: datetime
    justification: str
    residual_level: str = Field(max_length=16)
    expires_on: date = Field(index=True)
    state: str = Field(default="active", max_length=16, index=True)  # active, expired
    ended_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"RAC-{self.id}"
