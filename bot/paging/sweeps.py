"""Resolving an incident resolves its open pages (VIGIL_RESOLVE_PAGES_WITH_INCIDENT): a sweep finds
pages still open at the providers whose incident is resolved or closed and queues their resolution."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from vigil_ir.config import Settings
from vigil_ir.incidents.models import Incident
from vigil_ir.paging import service
from vigil_ir.paging.models import Page
from vigil_ir.reminders.scheduler import sweep


@sweep("pages.resolve")
def resolve_with_incident(session: Session, now: datetime, settings: Settings) -> int:
    if not settings.resolve_pages_with_incident:
        return 0
    ids = session.exec(select(Page.incident_id).join(Incident, Page.incident_id == Incident.id).where(
        Incident.status.in_(("resolved", "closed")), Page.status.in_(service.OPEN),
        Page.resolve_requested_at.is_(None)).distinct()).all()
    return sum(len(service.resolve_open_pages(session, incident=session.get(Incident, incident_id)))
               for incident_id in ids)
