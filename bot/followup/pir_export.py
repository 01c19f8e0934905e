"""Post-incident reviews for a period (E5, PIR part): one row per incident declared in the period."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports import csvsafe
from vigil_ir.followup import pir
from vigil_ir.followup.models import PostIncidentReview
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.queries import declared_between
from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, add_names, with_name_columns

FORMATS = ("csv", "json")
# Names as they were when the review was held and completed. Vigil has no separate approval of a
# review, so there are no approval columns: `completed_by` is who recorded it.
PEOPLE = (PersonColumn("completed_by", at="completed_at"), PersonColumn("facilitator", at="held_at"),
          PersonColumn("attendees", at="held_at", name="attendee_names"))
BASE_COLUMNS = ("pir_id", "incident_ref", "severity", "required_by_policy", "status", "due_at", "held_at",
           "completed_at", "completed_by", "on_time", "facilitator", "attendees", "summary", "root_cause",
           "contributing_factors", "what_went_well", "what_went_poorly", "detection_gap",
           "ir_plan_change_required", "ir_plan_change_ref", "doc_link", "record_hash")
COLUMNS = with_name_columns(BASE_COLUMNS, PEOPLE)
ROW_EVENT_KINDS = ("pir.completed", "pir.document_posted")  # the events a row reads (its hash, the document)
CHUNK = 500  # incidents per query: well under SQLite's bound-parameter limit


def _last_event(session: Session, incident: Incident, kind: str, events: list | None = None) -> Event | None:
    """The incident's last event of `kind`: from `events` (its whole stream, already read) when given."""
    if events is not None:
        return next((event for event in reversed(events) if event.kind == kind), None)
    return session.exec(select(Event).where(Event.stream == incident.stream, Event.kind == kind)
                        .order_by(Event.stream_seq.desc())).first()


def _status(review: PostIncidentReview | None) -> str:
    if review is None:
        return "not scheduled (incident not resolved)"
    return pir.status_label(review)


def pir_row(session: Session, incident: Incident, review: PostIncidentReview | None,
            people: Directory, events: list | None = None) -> dict[str, Any]:
    """`events`: the incident's events in seq order, if the caller has read them (the bundle: the whole
    stream; pir_rows: those of the kinds read here)."""
    completed = _last_event(session, incident, "pir.completed", events)
    document = _last_event(session, incident, "pir.document_posted", events)
    done = review is not None and review.status == "completed"
    return add_names({
        "pir_id": f"PIR-{incident.number}" if review else None, "incident_ref": incident.key,
        "severity": incident.severity, "required_by_policy": review.required if review else None,
        "status": _status(review),
        "due_at": clock.iso(review.due_at) if review else None, "held_at": clock.iso(review.held_at) if review else None,
        "completed_at": clock.iso(review.completed_at) if review else None,
        "completed_by": review.completed_by if review else None,
        "on_time": (review.due_at is None or review.completed_at <= review.due_at) if done else None,
        "facilitator": review.facilitator if review else None,
        "attendees": " ".join(review.attendees) if review else None,
        "summary": review.summary if done else None, "root_cause": review.root_cause if done else None,
        "contributing_factors": review.contributing_factors if done else None,
        "what_went_well": review.went_well if done else None, "what_went_poorly": review.went_poorly if done else None,
        "detection_gap": review.detection_gap if done else None,
        "ir_plan_change_required": review.plan_change_needed if done else None,
        "ir_plan_change_ref": review.plan_change_ref if done else None,
        "doc_link": f"slack-file:{document.data['file_id']}" if document else None,
        "record_hash": completed.hash if completed else None,
    }, people, PEOPLE)


def pir_rows(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One row per incident declared in [start, end); reviews and the events the rows read are
    fetched CHUNK incidents at a time, not queried per incident."""
    rows, people = [], Directory.load(session)
    incidents = declared_between(session, clock.to_utc(start), clock.to_utc(end))
    for offset in range(0, len(incidents), CHUNK):
        chunk = incidents[offset:offset + CHUNK]
        reviews = {review.incident_id: review for review in session.exec(
            select(PostIncidentReview).where(PostIncidentReview.incident_id.in_([i.id for i in chunk])))}
        events: dict[str, list[Event]] = {}
        for event in session.exec(select(Event).where(Event.stream.in_([i.stream for i in chunk]),
                                                      Event.kind.in_(ROW_EVENT_KINDS))
                                  .order_by(Event.stream, Event.stream_seq)):
            events.setdefault(event.stream, []).append(event)
        rows += [pir_row(session, incident, reviews.get(incident.id), people, events.get(incident.stream, []))
                 for incident in chunk]
    return rows


def render_pirs(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{name: row[name] for name in COLUMNS} for row in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return csvsafe.to_csv(COLUMNS, rows)
    raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
