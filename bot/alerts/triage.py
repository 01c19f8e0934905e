"""Deciding what an alert group is: declared as an incident, attached to one, or dismissed with a
reason. Each decision is an event on the group's stream (and, when it links an incident, on the
incident's), made once: a second click or a stale message meets `AlreadyDecided`, naming who decided.

Linking an incident puts the group's alerts on its timeline at their own times, and moves the
incident's `detected_at` to the earliest linked alert's start unless a person set it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.alerts.models import Alert, AlertGroup
from vigil_ir.alerts.service import alerts_of, refresh_triage
from vigil_ir.alerts.timeline import alert_changed
from vigil_ir.eventlog import append, events_for_stream
from vigil_ir.eventlog.folding import as_time
from vigil_ir.incidents import service as incidents
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.service import IncidentError

SYSTEM = "system:alerts"
TIMELINE_ALERTS = 100  # alerts put on the timeline one by one when a group is linked; the rest are counted
REASON_MAX = 500


class AlreadyDecided(IncidentError):
    """The group was decided before (a second click, an old message)."""


def decided_message(session: Session, group: AlertGroup) -> str:
    who = f"<@{group.decided_by}>" if group.decided_by and not group.decided_by.startswith("system:") else "Vigil"
    if group.state == "dismissed":
        return f"These alerts were already dismissed by {who}."
    incident = session.get(Incident, group.incident_id) if group.incident_id else None
    return f"These alerts were already linked to {incident.key if incident else 'an incident'} by {who}."


def _require_open(session: Session, group: AlertGroup) -> None:
    session.refresh(group, with_for_update=session.get_bind().dialect.name != "sqlite")
    if group.state != "open":
        raise AlreadyDecided(decided_message(session, group))


def dismiss(session: Session, *, group: AlertGroup, actor: str, reason: str) -> None:
    reason = (reason or "").strip()
    if not reason:
        raise IncidentError("Say why these alerts need no incident.", "reason")
    if len(reason) > REASON_MAX:
        raise IncidentError(f"Keep the reason under {REASON_MAX} characters (it has {len(reason)}).", "reason")
    _require_open(session, group)
    group.state, group.active_key, group.reason = "dismissed", None, reason
    group.decided_by, group.decided_at = actor, clock.now()
    session.add(group)
    append(session, stream=group.stream, kind="alert_group.dismissed", actor=actor, data={"reason": reason})
    refresh_triage(session, group)


def attach(session: Session, *, group: AlertGroup, incident: Incident, actor: str) -> None:
    _require_open(session, group)
    if not incident.is_open:
        raise IncidentError(f"{incident.key} is {incident.status}; attach alerts to an open incident.", "incident")
    _link(session, group=group, incident=incident, actor=actor, state="attached", detection=None)


def declared(session: Session, *, group: AlertGroup, incident: Incident, actor: str, detection: str,
             rule: str | None = None) -> None:
    """Link the group to the incident just declared from it (in the same transaction). `detection`:
    "alert" when the detection time is the alerts' (prefilled and left alone, or auto-declared),
    "person" when the declarer changed it."""
    _require_open(session, group)
    _link(session, group=group, incident=incident, actor=actor, state="declared", detection=detection, rule=rule)


def auto_declare(session: Session, *, group: AlertGroup, severities: frozenset[str]) -> Incident | None:
    """Declare an incident for a new group whose severity the rules name (VIGIL_ALERT_AUTO_DECLARE)."""
    if group.state != "open" or group.severity not in severities:
        return None
    started = min(clock.to_utc(group.first_started_at), clock.now())
    incident = incidents.declare(session, actor=SYSTEM, title=group.title[:incidents.TITLE_MAX],
                                 severity=group.severity, type="availability", detected_at=started,
                                 description=f"Declared automatically from {group.source} alerts "
                                             f"({group.severity} is in VIGIL_ALERT_AUTO_DECLARE).")
    declared(session, group=group, incident=incident, actor=SYSTEM, detection="alert",
             rule=f"VIGIL_ALERT_AUTO_DECLARE={','.join(sorted(severities))}")
    return incident


def _link(session: Session, *, group: AlertGroup, incident: Incident, actor: str, state: str,
          detection: str | None, rule: str | None = None) -> None:
    alerts = alerts_of(session, group)
    group.state, group.incident_id, group.decided_by, group.decided_at = state, incident.id, actor, clock.now()
    session.add(group)
    append(session, stream=group.stream, kind=f"alert_group.{state}", actor=actor,
           data={"incident": incident.key, **({"rule": rule} if rule else {})})
    append(session, stream=incident.stream, kind="incident.alerts_linked", actor=actor, data={
        "group_id": group.id, "source": group.source, "title": group.title, "severity": group.severity,
        "alerts": len(alerts), "first_started_at": clock.iso(group.first_started_at), "how": state,
        **({"detection": detection} if detection else {}), **({"rule": rule} if rule else {})})
    for alert in alerts[:TIMELINE_ALERTS]:
        _replay(session, incident, alert)
    adjust_detection(session, incident)
    refresh_triage(session, group)


def _replay(session: Session, incident: Incident, alert: Alert) -> None:
    """The alert's current firing (and its end, if over) on the incident's timeline at its own times."""
    alert_changed(session, incident=incident, alert=alert,
                  kind="alert.fired" if alert.fired_count == 1 else "alert.refired", occurred_at=alert.starts_at)
    if alert.status == "resolved" and alert.ends_at is not None:
        alert_changed(session, incident=incident, alert=alert, kind="alert.resolved", occurred_at=alert.ends_at)


def detection_set_by_person(events) -> bool:
    """Whether a person set the incident's detection time: they changed the time prefilled from an
    alert, or typed one when declaring (a detection time apart from the declaration's own time)."""
    for event in events:
        if event.kind == "incident.alerts_linked" and event.data.get("detection"):
            return event.data["detection"] == "person"
    declared_event = events[0]
    detected = as_time(declared_event.data["detected_at"])
    return abs(detected - clock.to_utc(declared_event.recorded_at)) > timedelta(minutes=1)


def earliest_linked_start(session: Session, incident: Incident) -> datetime | None:
    starts = session.exec(select(Alert.starts_at).join(AlertGroup, AlertGroup.id == Alert.group_id)
                          .where(AlertGroup.incident_id == incident.id)).all()
    return min((clock.to_utc(start) for start in starts), default=None)


def adjust_detection(session: Session, incident: Incident) -> None:
    """`detected_at` becomes the earliest linked alert's start (never after the declaration), unless a
    person set it; the change is an `incident.detected_at_changed` event, folded like any other."""
    earliest = earliest_linked_start(session, incident)
    if earliest is None or detection_set_by_person(events_for_stream(session, incident.stream)):
        return
    wanted = min(earliest, clock.to_utc(incident.declared_at))
    current = clock.to_utc(incident.detected_at)
    if wanted == current:
        return
    incident.detected_at = wanted
    session.add(incident)
    append(session, stream=incident.stream, kind="incident.detected_at_changed", actor=SYSTEM,
           data={"from": clock.iso(current), "to": clock.iso(wanted), "source": "earliest linked alert"})
