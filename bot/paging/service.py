"""Pages: requested by a person (an event and an outbox item in one transaction), triggered once the
provider accepts, then acknowledged, escalated and resolved as the provider's webhooks say.

Every step is an event on the incident's stream. A responder the provider names by e-mail is
resolved to a Slack user through the people directory.
"""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

from sqlmodel import Session, func, select

from vigil_ir import clock
from vigil_ir.alerts.signals import PAGE_KEY_PREFIX, PageSignal
from vigil_ir.eventlog import append
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.service import IncidentError
from vigil_ir.outbox.service import enqueue
from vigil_ir.paging.models import Page
from vigil_ir.paging.targets import Target
from vigil_ir.people.models import Person

MESSAGE_MAX = 1000
OPEN = ("requested", "triggered", "acknowledged")
TRIGGER_KIND, RESOLVE_KIND = "page.trigger", "page.resolve"


def dedup_key(incident: Incident, page_id: int) -> str:
    return f"{PAGE_KEY_PREFIX}{incident.key.lower()}-page-{page_id}"


def request(session: Session, *, incident: Incident, actor: str, target: Target, message: str) -> Page:
    """Page `target` for `incident`; refused for a closed incident. Sent by the outbox (`page.trigger`)."""
    if incident.status == "closed":
        raise IncidentError(f"{incident.key} is closed; paging for it is refused.")
    message = (message or "").strip() or incident.title
    if len(message) > MESSAGE_MAX:
        raise IncidentError(f"Keep the message under {MESSAGE_MAX} characters (it has {len(message)}).", "message")
    now = clock.now()
    # The key needs the page's id: a unique placeholder first (two requests at once never collide).
    page = Page(incident_id=incident.id, provider=target.provider, target=target.name, dedup_key=f"new-{uuid4().hex}",
                message=message, status="requested", requested_by=actor, requested_at=now)
    session.add(page)
    session.flush()
    page.dedup_key = dedup_key(incident, page.id)
    session.add(page)
    event = append(session, stream=incident.stream, kind="page.requested", actor=actor, data={
        "page_id": page.id, "provider": page.provider, "target": page.target, "dedup_key": page.dedup_key,
        "message": message})
    page.requested_at = event.recorded_at  # the milestone (first page) reads the event: the same instant
    enqueue(session, kind=TRIGGER_KIND, subject=incident.stream, payload={"page_id": page.id},
            dedupe_key=f"page:{page.id}:trigger")
    return page


def _incident(session: Session, page: Page) -> Incident:
    return session.get(Incident, page.incident_id)


def triggered(session: Session, *, page: Page, answer: dict) -> None:
    """The provider accepted the trigger (recorded once, however often it was sent)."""
    if page.triggered_at is not None:
        return
    page.triggered_at = clock.now()
    if page.status == "requested":
        page.status = "triggered"
    session.add(page)
    append(session, stream=_incident(session, page).stream, kind="page.triggered", actor=f"system:{page.provider}",
           data={"page_id": page.id, "dedup_key": page.dedup_key, "target": page.target, "answer": {
               key: answer.get(key) for key in ("status", "message", "dedup_key", "result", "requestId") if key in answer}})


def slack_user_for(session: Session, email: str | None) -> str | None:
    if not email:
        return None
    return session.exec(select(Person.user_id).where(func.lower(Person.email) == email.strip().lower())).first()


def page_for(session: Session, signal: PageSignal) -> Page | None:
    return session.exec(select(Page).where(Page.dedup_key == signal.key, Page.provider == signal.provider)).first()


def record_signal(session: Session, signal: PageSignal) -> bool:
    """A provider's webhook about a page; False when no page has that key (the caller records it as
    unmatched)."""
    page = page_for(session, signal)
    if page is None:
        return False
    incident = _incident(session, page)
    user = slack_user_for(session, signal.responder_email)
    data = {"page_id": page.id, "dedup_key": page.dedup_key, "target": page.target, "responder": signal.responder,
            "responder_email": signal.responder_email, "responder_user": user, "reference": signal.reference}
    actor = f"system:{signal.provider}"
    if signal.action == "triggered":
        if page.triggered_at is None:
            page.triggered_at, page.status = signal.occurred_at, "triggered"
            session.add(page)
            append(session, stream=incident.stream, kind="page.triggered", actor=actor, data=data,
                   occurred_at=signal.occurred_at)
        return True
    if signal.action == "acknowledged" and page.acknowledged_at is None:
        page.acknowledged_at, page.acknowledged_by, page.responder = signal.occurred_at, user, signal.responder
        if page.status != "resolved":
            page.status = "acknowledged"
    if signal.action == "resolved":
        page.status, page.resolved_at = "resolved", page.resolved_at or signal.occurred_at
    session.add(page)
    append(session, stream=incident.stream, kind=f"page.{signal.action}", actor=actor, data=data,
           occurred_at=signal.occurred_at)
    return True


def resolve_open_pages(session: Session, *, incident: Incident, actor: str = "system:worker") -> list[Page]:
    """Ask the providers to resolve the incident's open pages (once each: `page.resolve`)."""
    pages = list(session.exec(select(Page).where(Page.incident_id == incident.id, Page.status.in_(OPEN),
                                                 Page.resolve_requested_at.is_(None))))
    for page in pages:
        page.resolve_requested_at = clock.now()
        session.add(page)
        append(session, stream=incident.stream, kind="page.resolve_requested", actor=actor,
               data={"page_id": page.id, "dedup_key": page.dedup_key, "because": f"{incident.key} is {incident.status}"})
        enqueue(session, kind=RESOLVE_KIND, subject=incident.stream, payload={"page_id": page.id},
                dedupe_key=f"page:{page.id}:resolve")
    return pages


def pages_of(session: Session, incident: Incident) -> list[Page]:
    return list(session.exec(select(Page).where(Page.incident_id == incident.id).order_by(Page.id)))


def first_time_of(pages: list[Page], field: str) -> datetime | None:
    return min((clock.to_utc(getattr(page, field)) for page in pages if getattr(page, field)), default=None)
