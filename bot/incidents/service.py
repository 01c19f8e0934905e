"""Lifecycle commands. Each one changes the incident and appends its event in the caller's transaction.

Functions take plain values and a session; they know nothing about Slack. They raise
`IncidentError` with a message fit to show the user, before changing anything.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog import Event, append, events_for_stream
from vigil_ir.incidents import access
from vigil_ir.incidents.models import (CAUSE_CATEGORIES, EXERCISE_KINDS, ROLES, SEVERITIES, STATUSES, TYPES,
                                       Incident)
from vigil_ir.idempotency import first_time
from vigil_ir.incidents.queries import locked_in_this_transaction
from vigil_ir.keys import next_number

TITLE_MAX = 150
TEXT_MAX = 3000


class IncidentError(ValueError):
    """A request that cannot be carried out; the message says why, for the person who asked, and
    `field` names the form field it is about, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _event(session: Session, incident: Incident, kind: str, actor: str, data: dict[str, Any],
           occurred_at: datetime | None = None, corrects: int | None = None) -> Event:
    session.add(incident)
    return append(session, stream=incident.stream, kind=kind, actor=actor, data=data,
                  occurred_at=occurred_at, corrects=corrects)


def _text(value: str | None, field: str, *, required: bool = False, limit: int = TEXT_MAX) -> str:
    value = (value or "").strip()
    if required and not value:
        raise IncidentError(f"The {field} cannot be empty.")
    if len(value) > limit:
        raise IncidentError(f"The {field} is {len(value)} characters; the limit is {limit}.")
    return value


def _require_open(session: Session, incident: Incident) -> None:
    """Re-read the incident under a row lock first, so concurrent changes to one incident take turns
    and each event's `from` is the value it really replaced (PostgreSQL; SQLite write transactions
    already take turns). Skipped when the caller has already changed it in this session, or this
    transaction locked it already (read with `queries.by_channel(..., lock=True)`, or an earlier check)."""
    session.add(incident)
    locks_rows = session.get_bind().dialect.name != "sqlite"
    if (locks_rows and incident.id is not None and not session.is_modified(incident)
            and incident.id not in locked_in_this_transaction(session)):
        session.refresh(incident, with_for_update=True)
        locked_in_this_transaction(session).add(incident.id)
    if incident.status == "closed":
        raise IncidentError(f"{incident.key} is closed; its record can no longer change.")


def validate_declaration(*, title: str, severity: str, type: str, detected_at: datetime | None,
                         exercise: str | None = None, scenario: str = "") -> dict[str, str]:
    """Field errors for a declaration, keyed by field name (empty when valid). `exercise`: the kind of
    exercise (tabletop, game_day) when this is one, which then needs its `scenario`."""
    errors = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = "Give the incident a short title."
    elif len(title) > TITLE_MAX:
        errors["title"] = f"Keep the title under {TITLE_MAX} characters (it has {len(title)})."
    if severity not in SEVERITIES:
        errors["severity"] = "Choose a severity from sev1 to sev4."
    if type not in TYPES:
        errors["type"] = "Choose an incident type."
    if detected_at is not None and clock.to_utc(detected_at) > clock.now():
        errors["detected_at"] = "Detection time cannot be in the future."
    if exercise is not None:
        scenario = (scenario or "").strip()
        if exercise not in EXERCISE_KINDS:
            errors["exercise_kind"] = "Choose the kind of exercise: a tabletop exercise or a game day."
        if not scenario:
            errors["scenario"] = "Describe the exercise's scenario (what the participants rehearse)."
        elif len(scenario) > TEXT_MAX:
            errors["scenario"] = f"Keep the scenario under {TEXT_MAX} characters (it has {len(scenario)})."
    return errors


def declare(session: Session, *, actor: str, title: str, severity: str, type: str,
            description: str = "", detected_at: datetime | None = None, security: bool = False,
            origin_channel: str | None = None, private: bool = False, exercise: str | None = None,
            scenario: str = "") -> Incident:
    """Declare an incident. A `private` one (fixed at declaration: Slack cannot turn a channel public
    or private afterwards through the API) starts with its declarer granted access.

    With `exercise` (tabletop, game_day) and its `scenario`, declare an exercise instead: EX-<n> from its
    own key counter, so exercises leave no gap in the INC-<n> numbers, on its own `exercise:<n>` stream."""
    errors = validate_declaration(title=title, severity=severity, type=type, detected_at=detected_at,
                                  exercise=exercise, scenario=scenario)
    if errors:
        raise IncidentError(" ".join(errors.values()), next(iter(errors)))
    now = clock.now()
    is_exercise = exercise is not None
    incident = Incident(
        number=next_number(session, "exercise" if is_exercise else "incident"), exercise=is_exercise,
        exercise_kind=exercise, scenario=(scenario or "").strip() if is_exercise else "", title=title.strip(), type=type,
        security=bool(security or type == "security"), severity=severity, initial_severity=severity,
        status="investigating", description=_text(description, "description"), declared_by=actor,
        declared_at=now, detected_at=clock.to_utc(detected_at) if detected_at else now,
        origin_channel=origin_channel, private=bool(private))
    session.add(incident)
    session.flush()
    _event(session, incident, "incident.declared", actor, {
        "key": incident.key, "title": incident.title, "type": incident.type,
        "security": incident.security, "severity": severity, "status": incident.status,
        "description": incident.description, "detected_at": clock.iso(incident.detected_at),
        "origin_channel": origin_channel, "private": incident.private,
        **({"exercise": {"kind": exercise, "scenario": incident.scenario}} if is_exercise else {}),
    })
    access.grant(session, incident=incident, actor=actor, user=actor, via="declared")
    return incident


def set_status(session: Session, *, incident: Incident, actor: str, status: str) -> Event:
    _require_open(session, incident)
    if status not in STATUSES or status == "closed":
        raise IncidentError("Status must be one of investigating, identified, monitoring, resolved "
                            "(use `/incident close` to close).")
    if status == incident.status:
        raise IncidentError(f"{incident.key} is already {status}.")
    previous, incident.status = incident.status, status
    return _event(session, incident, "incident.status_changed", actor, {"from": previous, "to": status})


def set_severity(session: Session, *, incident: Incident, actor: str, severity: str) -> Event:
    _require_open(session, incident)
    if severity not in SEVERITIES:
        raise IncidentError("Severity must be one of sev1, sev2, sev3, sev4.")
    if severity == incident.severity:
        raise IncidentError(f"{incident.key} is already {severity}.")
    previous, incident.severity = incident.severity, severity
    return _event(session, incident, "incident.severity_changed", actor, {"from": previous, "to": severity})


def set_security(session: Session, *, incident: Incident, actor: str, admins: frozenset[str], security: bool,
                 reason: str) -> Event:
    """Mark an incident as a security incident or not (the selection behind the security population).
    The lead, a commander or an admin decides, with a reason; a closed incident can still be reclassified."""
    if not can_close(incident, actor, admins):
        raise IncidentError(f"Only the incident lead or a Vigil admin can change whether {incident.key} is a "
                            "security incident.")
    reason = _text(reason, "reason", required=True)
    if bool(security) == incident.security:
        raise IncidentError(f"{incident.key} is already {'a' if security else 'not a'} security incident.")
    previous, incident.security = incident.security, bool(security)
    return _event(session, incident, "incident.security_changed", actor,
                  {"from": previous, "to": incident.security, "reason": reason})


def assign_role(session: Session, *, incident: Incident, actor: str, role: str, user: str) -> Event:
    _require_open(session, incident)
    if role not in ROLES:
        raise IncidentError(f"Role must be one of {', '.join(ROLES)}.")
    previous = getattr(incident, role)
    if previous == user:
        raise IncidentError(f"That person already holds the {role} role.")
    setattr(incident, role, user)
    event = _event(session, incident, "incident.role_assigned", actor, {"role": role, "from": previous, "to": user})
    # Whoever holds a role of a private incident is one of its members.
    access.grant(session, incident=incident, actor=actor, user=user, via="role", data={"role": role})
    return event


def add_note(session: Session, *, incident: Incident, actor: str, text: str) -> Event:
    _require_open(session, incident)
    return _event(session, incident, "incident.note_added", actor, {"text": _text(text, "note", required=True)})


def correct_note(session: Session, *, incident: Incident, actor: str, note_event_id: int, text: str) -> Event:
    """A correction is a new event pointing at the note; the original stays in the log."""
    _require_open(session, incident)
    original = session.get(Event, note_event_id)
    if original is None or original.stream != incident.stream or original.kind not in (
            "incident.note_added", "incident.note_corrected"):
        raise IncidentError(f"There is no note #{note_event_id} on {incident.key}.")
    return _event(session, incident, "incident.note_corrected", actor,
                  {"text": _text(text, "corrected note", required=True), "original_text": original.data["text"],
                   "corrects_seq": original.stream_seq},
                  corrects=original.id)


def post_update(session: Session, *, incident: Incident, actor: str, status: str, summary: str,
                next_update_due: datetime | None = None) -> Event:
    _require_open(session, incident)
    summary = _text(summary, "summary", required=True)
    if next_update_due is not None and clock.to_utc(next_update_due) <= clock.now():
        raise IncidentError("The next update must be due in the future.")
    if status != incident.status:
        set_status(session, incident=incident, actor=actor, status=status)
    incident.current_summary = summary
    incident.next_update_due = clock.to_utc(next_update_due) if next_update_due else None
    return _event(session, incident, "incident.update_posted", actor, {
        "status": status, "summary": summary, "next_update_due": clock.iso(incident.next_update_due)})


def resolve(session: Session, *, incident: Incident, actor: str) -> Event:
    return set_status(session, incident=incident, actor=actor, status="resolved")


def can_close(incident: Incident, user: str, privileged: frozenset[str]) -> bool:
    """The lead, or someone the permissions policy privileges for the action (user ids, groups
    expanded: `Permissions.holders_of`)."""
    return user == incident.lead or user in privileged


def _close_values(*, customer_impact: str, root_cause: str, lessons_learned: str, follow_ups: list[str] | None,
                  open_items: list[str] | None, override_reason: str, cause_category: str | None) -> dict[str, Any]:
    """The close form's data, checked (the same for a close and for a request to close)."""
    override_reason = _text(override_reason, "override reason")
    if open_items and not override_reason:
        raise IncidentError("Some items are still open; give a reason for closing anyway.")
    if cause_category is not None and cause_category not in CAUSE_CATEGORIES:
        raise IncidentError(f"{cause_category!r} is not a root-cause category: choose one of "
                            f"{', '.join(CAUSE_CATEGORIES)}.", "cause_category")
    return {"customer_impact": _text(customer_impact, "customer impact", required=True),
            "root_cause": _text(root_cause, "root cause", required=True),
            "lessons_learned": _text(lessons_learned, "lessons learned"),
            "follow_ups": [line.strip() for line in (follow_ups or []) if line.strip()],
            "open_items": list(open_items or []), "override_reason": override_reason or None,
            "cause_category": cause_category}


def _require_resolved(incident: Incident) -> None:
    if incident.status != "resolved":
        raise IncidentError(f"Resolve {incident.key} before closing it (`/incident resolve`).")


def close(session: Session, *, incident: Incident, actor: str, admins: frozenset[str],
          customer_impact: str, root_cause: str, lessons_learned: str,
          follow_ups: list[str] | None = None, open_items: list[str] | None = None,
          override_reason: str = "", cause_category: str | None = None) -> Event:
    """Close a resolved incident. `open_items` (e.g. open required playbook steps) need an
    `override_reason`, which is recorded with them. `admins`: who may close besides the lead (the
    permissions policy's `holders_of(Action.CLOSE)`); whether a second person must approve first
    (`request_close`) is the policy's to say, asked by the caller."""
    _require_open(session, incident)
    if not can_close(incident, actor, admins):
        raise IncidentError(f"Only the incident lead, a commander or an admin can close {incident.key}.")
    _require_resolved(incident)
    values = _close_values(customer_impact=customer_impact, root_cause=root_cause, lessons_learned=lessons_learned,
                           follow_ups=follow_ups, open_items=open_items, override_reason=override_reason,
                           cause_category=cause_category)
    return _apply_close(session, incident, actor, values)


def _apply_close(session: Session, incident: Incident, actor: str, values: dict[str, Any],
                 extra: dict[str, Any] | None = None) -> Event:
    incident.customer_impact, incident.root_cause = values["customer_impact"], values["root_cause"]
    incident.lessons_learned, incident.follow_ups = values["lessons_learned"], values["follow_ups"]
    incident.cause_category = values.get("cause_category")
    previous, incident.status = incident.status, "closed"
    return _event(session, incident, "incident.closed", actor, {"from": previous, "to": "closed", **values,
                                                                **(extra or {})})


# ---- closing with a second person (separation of duties) -------------------------------------------
CLOSE_DECIDED = ("incident.close_approved", "incident.close_refused", "incident.closed")


def pending_close_request(session: Session, incident: Incident) -> Event | None:
    """The request to close that waits for a decision: the latest one, unless it was decided since or
    the incident left `resolved` after it (a reopened incident must be asked for again)."""
    for event in reversed(events_for_stream(session, incident.stream)):
        if event.kind in CLOSE_DECIDED or event.kind == "incident.status_changed":
            return None
        if event.kind == "incident.close_requested":
            return event
    return None


def request_close(session: Session, *, incident: Incident, actor: str, customer_impact: str, root_cause: str,
                  lessons_learned: str, follow_ups: list[str] | None = None, open_items: list[str] | None = None,
                  override_reason: str = "", cause_category: str | None = None) -> Event:
    """Ask for a second person to approve closing; the close form's data waits in the request."""
    _require_open(session, incident)
    _require_resolved(incident)
    waiting = pending_close_request(session, incident)
    if waiting is not None:
        raise IncidentError(f"Closing {incident.key} was already requested by <@{waiting.actor}>; it waits for "
                            "a commander or admin to approve or refuse it.")
    values = _close_values(customer_impact=customer_impact, root_cause=root_cause, lessons_learned=lessons_learned,
                           follow_ups=follow_ups, open_items=open_items, override_reason=override_reason,
                           cause_category=cause_category)
    return _event(session, incident, "incident.close_requested", actor, values)


def _decidable_request(session: Session, incident: Incident, actor: str, request_id: int) -> Event:
    _require_open(session, incident)
    request = pending_close_request(session, incident)
    if request is None or request.id != request_id:
        raise IncidentError(f"This request to close {incident.key} was already decided or replaced.")
    if actor == request.actor:
        raise IncidentError(f"You asked to close {incident.key}, so someone else must approve or refuse it.")
    return request


def approve_close(session: Session, *, incident: Incident, actor: str, request_id: int) -> Event:
    """A second person (never the requester) approves: the close proceeds with the requested data."""
    request = _decidable_request(session, incident, actor, request_id)
    _require_resolved(incident)
    _event(session, incident, "incident.close_approved", actor, {"request_seq": request.stream_seq,
                                                                 "requested_by": request.actor})
    return _apply_close(session, incident, actor, dict(request.data),
                        {"requested_by": request.actor, "approved_by": actor})


def refuse_close(session: Session, *, incident: Incident, actor: str, request_id: int, reason: str = "") -> Event:
    request = _decidable_request(session, incident, actor, request_id)
    return _event(session, incident, "incident.close_refused", actor, {
        "request_seq": request.stream_seq, "requested_by": request.actor, "reason": _text(reason, "reason") or None})


# ---- asking the lead for the lead role -------------------------------------------------------------
def request_lead(session: Session, *, incident: Incident, actor: str) -> Event:
    """Someone who may not replace the lead asks the current lead to hand it over."""
    _require_open(session, incident)
    if incident.lead is None:
        raise IncidentError(f"{incident.key} has no lead: take it with `/incident lead @you`.")
    if incident.lead == actor:
        raise IncidentError(f"You already lead {incident.key}.")
    return _event(session, incident, "incident.lead_requested", actor, {"lead": incident.lead})


def decide_lead_request(session: Session, *, incident: Incident, actor: str, request_id: int, accept: bool) -> Event:
    """The current lead accepts (the requester becomes lead) or declines; once per request."""
    _require_open(session, incident)
    request = session.get(Event, request_id)
    if request is None or request.stream != incident.stream or request.kind != "incident.lead_requested":
        raise IncidentError("That request for the lead no longer exists.")
    if actor != incident.lead or request.data.get("lead") != incident.lead:
        raise IncidentError(f"Only the current lead of {incident.key} ({'<@' + incident.lead + '>' if incident.lead else 'none'}) "
                            "can answer this request.")
    if not first_time(session, f"lead-request:{request.id}"):
        raise IncidentError("This request for the lead was already answered.")
    decided = _event(session, incident, "incident.lead_request_accepted" if accept else "incident.lead_request_declined",
                     actor, {"request_seq": request.stream_seq, "requested_by": request.actor})
    if accept:
        assign_role(session, incident=incident, actor=actor, role="lead", user=request.actor)
    return decided


def record_message(session: Session, *, incident: Incident, actor: str, channel: str, ts: str,
                   text: str, author: str | None, permalink: str | None, via: str,
                   sanitised: bool = False) -> Event | None:
    """Put a chat message on the timeline once; None if that message is already there. `sanitised`:
    characters no database can store were replaced in `text` (recorded, so the timeline says so)."""
    _require_open(session, incident)
    if not first_time(session, f"incident-message:{channel}:{ts}"):
        return None
    return _event(session, incident, "incident.message_added", actor, {
        "message_key": f"{channel}:{ts}", "channel": channel, "ts": ts, "text": text,
        "author": author, "permalink": permalink, "via": via, **({"sanitised": True} if sanitised else {})},
        occurred_at=slack_ts_to_datetime(ts))


def attach_channel(session: Session, *, incident: Incident, channel_id: str, channel_name: str) -> Event:
    incident.channel_id, incident.channel_name = channel_id, channel_name
    return _event(session, incident, "incident.channel_created", "system:worker",
                  {"channel": channel_id, "name": channel_name})


def record_post(session: Session, *, incident: Incident, what: str, channel: str, ts: str) -> Event:
    """Note where a Slack message about the incident lives (summary in its channel, feed announcement)."""
    if what == "summary":
        incident.summary_ts = ts
    elif what == "announcement":
        incident.feed_channel, incident.feed_ts = channel, ts
    return _event(session, incident, f"incident.{what}_posted", "system:worker", {"channel": channel, "ts": ts})


def slack_ts_to_datetime(ts: str) -> datetime:
    seconds, _, fraction = ts.partition(".")
    return datetime.fromtimestamp(int(seconds), timezone.utc).replace(
        microsecond=int((fraction + "000000")[:6]))
