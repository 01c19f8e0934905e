"""A page: one request to a provider to call people to an incident. Its history is on the
incident's stream (`page.requested`, `page.triggered`, `page.acknowledged`, `page.escalated`,
`page.resolve_requested`, `page.resolved`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

STATUSES = ("requested", "triggered", "acknowledged", "resolved")


class Page(SQLModel, table=True):
    __tablename__ = "page"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    provider: str = Field(max_length=16)  # pagerduty | opsgenie
    target: str = Field(max_length=64)  # the configured service or responder name
    # PagerDuty dedup_key / Opsgenie alias: derived from the incident and the page, so a retried send
    # is the same page at the provider, and the provider's webhooks find it again.
    dedup_key: str = Field(max_length=255, unique=True)
    message: str = Field(max_length=1000)
    status: str = Field(default="requested", max_length=16)
    requested_by: str = Field(max_length=64)
    requested_at: datetime
    triggered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=64)  # Slack user id, when the e-mail matched
    responder: str | None = Field(default=None, max_length=320)  # as the provider named them
    resolve_requested_at: datetime | None = None
    resolved_at: datetime | None = None
