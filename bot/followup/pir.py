"""Post-incident reviews: scheduled on resolution, completed through the PIR form."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.followup.models import PostIncidentReview
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.queries import severity_reached
from vigil_ir.incidents.service import IncidentError

TEXT_MAX = 3000
SECURITY_PIR_DAYS = 5  # a security incident always gets a review, even where no severity requires one
TEXT_FIELDS = ("summary", "root_cause", "contributing_factors", "went_well", "went_poorly", "detection_gap",
               "plan_change_ref")


NOT_REQUIRED = "not required (optional at this severity)"


def status_label(review: PostIncidentReview) -> str:
    """The review's status as every rendering shows it: one the policy does not require and nobody
    held says "not required", not "pending" (an auditor would read that as overdue work)."""
    if not review.required and review.status != "completed":
        return NOT_REQUIRED
    return review.status


def for_incident(session: Session, incident: Incident) -> PostIncidentReview | None:
    return session.exec(select(PostIncidentReview).where(PostIncidentReview.incident_id == incident.id)).first()


def schedule(session: Session, *, incident: Incident, policy: Policy, actor: str = "system:vigil") -> PostIncidentReview:
    """Create the PIR when an incident is resolved (once; a later re-resolution keeps the first)."""
    existing = for_incident(session, incident)
    if existing is not None:
        return existing
    # Decided from the worst severity reached and the security flag, never the current severity:
    # downgrading a sev1 before resolving it must not make its review optional.
    reached = severity_reached(session, incident)
    now, days = clock.now(), policy.pir_business_days.get(reached)
    if days is None and incident.security:
        days = min((d for d in policy.pir_business_days.values() if d is not None), default=SECURITY_PIR_DAYS)
    review = PostIncidentReview(incident_id=incident.id, required=days is not None, facilitator=incident.lead,
                                due_at=policy.add_business_days(now, days) if days else None, created_at=now)
    session.add(review)
    session.flush()
    append(session, stream=incident.stream, kind="pir.scheduled", actor=actor, data={
        "required": review.required, "due_at": clock.iso(review.due_at), "facilitator": review.facilitator,
        "policy_business_days": days, "severity_reached": reached, "security": incident.security})
    return review


def validate(*, held_at: datetime | None, attendees: list[str], values: dict[str, str]) -> dict[str, str]:
    """Field errors for the PIR form, keyed by field name (empty when valid)."""
    errors = {}
    if held_at is None:
        errors["held_at"] = "When was the review held?"
    elif clock.to_utc(held_at) > clock.now():
        errors["held_at"] = "The review cannot be held in the future; record it once it has happened."
    if not attendees:
        errors["attendees"] = "Who attended? Add at least one person."
    for name, message in (("summary", "Summarise the incident."), ("root_cause", "Record the root cause.")):
        if not values.get(name, "").strip():
            errors[name] = message
    for name in TEXT_FIELDS:
        if len(values.get(name, "")) > TEXT_MAX:
            errors[name] = f"Keep this under {TEXT_MAX} characters."
    return errors


def complete(session: Session, *, incident: Incident, actor: str, policy: Policy, held_at: datetime,
             attendees: list[str], values: dict[str, str], plan_change_needed: bool) -> Event:
    if incident.status not in ("resolved", "closed"):
        raise IncidentError(f"Resolve {incident.key} before its post-incident review.")
    problems = validate(held_at=held_at, attendees=attendees, values=values)
    if problems:
        raise IncidentError(" ".join(problems.values()))
    review = schedule(session, incident=incident, policy=policy, actor=actor)
    if review.status == "completed":
        raise IncidentError(f"The review of {incident.key} was already completed by {review.completed_by} "
                            f"at {clock.iso(review.completed_at)}.")
    now = clock.now()
    review.held_at, review.attendees, review.plan_change_needed = clock.to_utc(held_at), list(attendees), plan_change_needed
    for name in TEXT_FIELDS:
        setattr(review, name, values.get(name, "").strip())
    review.status, review.completed_by, review.completed_at = "completed", actor, now
    session.add(review)
    return append(session, stream=incident.stream, kind="pir.completed", actor=actor, data={
        "held_at": clock.iso(review.held_at), "attendees": review.attendees,
        **{name: getattr(review, name) for name in TEXT_FIELDS}, "plan_change_needed": plan_change_needed,
        "due_at": clock.iso(review.due_at),
        "on_time": review.due_at is None or now <= clock.to_utc(review.due_at)})
