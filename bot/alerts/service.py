"""Recording what sources say: each alert signal changes the alert and its group and appends the event
in the caller's transaction, once (a retried delivery, or a repeat notification of a state already
recorded, changes nothing).

An alert that fires while its group is linked to an open incident goes on that incident's timeline at
its own time; otherwise its group waits for triage (a Slack message in VIGIL_TRIAGE_CHANNEL, queued
through the outbox as `alerts.triage`, coalesced so a storm updates one message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.alerts import timeline
from vigil_ir.alerts.models import Alert, AlertGroup
from vigil_ir.alerts.signals import AlertSignal, PageSignal, Signal
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog import append
from vigil_ir.idempotency import first_time
from vigil_ir.incidents.models import Incident
from vigil_ir.outbox.service import enqueue

SEVERITY_ORDER = ("sev1", "sev2", "sev3", "sev4")
TRIAGE_KIND = "alerts.triage"


@dataclass
class Received:
    """What one webhook delivery changed (answered to the sender, and used to queue the Slack side)."""

    alerts: int = 0
    changed: int = 0
    duplicates: int = 0
    pages: int = 0
    unmatched: int = 0
    opened_groups: list[int] = field(default_factory=list)  # new groups waiting for triage

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "alerts": self.alerts, "changed": self.changed, "duplicates": self.duplicates,
                "pages": self.pages, "unmatched": self.unmatched}


def actor_for(source: str) -> str:
    """Events a source causes are the system's, never a person's (milestones count human actions)."""
    return f"system:{source}"


def receive(session: Session, *, source: str, signals: list[Signal], page_handler=None) -> Received:
    """Record a delivery's signals. `page_handler(session, signal) -> bool` records a page change and
    says whether the page was known; unknown ones are kept as unmatched events, never retried."""
    received = Received()
    for signal in signals:
        if isinstance(signal, PageSignal):
            if not first_time(session, f"webhook:{signal.provider}:{signal.delivery}"):
                received.duplicates += 1
            elif page_handler is not None and page_handler(session, signal):
                received.pages += 1
            else:
                unmatched(session, source=source, what="page", data={
                    "key": signal.key, "action": signal.action, "delivery": signal.delivery,
                    "responder": signal.responder, "reference": signal.reference}, occurred_at=signal.occurred_at)
                received.unmatched += 1
            continue
        received.alerts += 1
        outcome = record_alert(session, signal)
        if outcome is None:
            received.duplicates += 1
        elif outcome == "unmatched":
            received.unmatched += 1
        else:
            received.changed += 1
            if isinstance(outcome, int):
                received.opened_groups.append(outcome)
    return received


def unmatched(session: Session, *, source: str, what: str, data: dict[str, Any], occurred_at: datetime) -> None:
    """A notification about something Vigil does not know (a page it never sent, an alert resolved that
    never fired here): kept as evidence on the source's stream, answered 200 so it is not redelivered."""
    append(session, stream=f"integration:{source}", kind="integration.unmatched", actor=actor_for(source),
           data={"what": what, **data}, occurred_at=occurred_at)


def _delivery_key(signal: AlertSignal) -> str:
    return (f"alert:{signal.source}:{signal.fingerprint}:{signal.status}:{clock.iso(signal.starts_at)}:"
            f"{clock.iso(signal.ends_at) if signal.ends_at else ''}")


def record_alert(session: Session, signal: AlertSignal):
    """None: nothing new (a retry or a repeat); "unmatched"; a group id when a new group opened; True
    when an existing alert or group changed."""
    if not first_time(session, _delivery_key(signal)):
        return None
    alert = session.exec(select(Alert).where(Alert.source == signal.source,
                                             Alert.fingerprint == signal.fingerprint)).first()
    if alert is None:
        if signal.status == "resolved":
            unmatched(session, source=signal.source, what="alert", occurred_at=signal.ends_at or clock.now(), data={
                "fingerprint": signal.fingerprint, "status": "resolved", "title": signal.title})
            return "unmatched"
        group, opened = _active_group(session, signal)
        alert = _new_alert(session, signal, group)
        if alert is None:  # a concurrent delivery recorded it first
            return None
        _fired(session, group, alert, "alert.fired")
        return group.id if opened else True
    starts_at = clock.to_utc(alert.starts_at)
    if signal.status == "resolved":
        if alert.status == "resolved" or signal.starts_at < starts_at:
            return None  # already resolved, or the end of an earlier firing delivered late
        alert.status, alert.ends_at, alert.updated_at = "resolved", signal.ends_at or clock.now(), clock.now()
        session.add(alert)
        group = session.get(AlertGroup, alert.group_id)
        _event(session, group, alert, "alert.resolved", occurred_at=alert.ends_at)
        return True
    if signal.starts_at <= starts_at and alert.status == "firing":
        return None  # a repeat notification of the firing already recorded
    if signal.starts_at < starts_at:
        return None  # an older firing delivered late
    group = session.get(AlertGroup, alert.group_id)
    opened = False
    if not _takes_alerts(session, group):
        group, opened = _active_group(session, signal)
    alert.group_id, alert.status, alert.starts_at, alert.ends_at = group.id, "firing", signal.starts_at, None
    alert.fired_count, alert.updated_at = alert.fired_count + 1, clock.now()
    alert.title, alert.summary, alert.labels, alert.severity = signal.title, signal.summary, signal.labels, signal.severity
    session.add(alert)
    _fired(session, group, alert, "alert.refired")
    return group.id if opened else True


def _new_alert(session: Session, signal: AlertSignal, group: AlertGroup) -> Alert | None:
    now = clock.now()
    inserted = insert_if_absent(session, Alert, {
        "source": signal.source, "fingerprint": signal.fingerprint, "group_id": group.id, "title": signal.title,
        "summary": signal.summary, "labels": signal.labels, "severity": signal.severity, "status": "firing",
        "starts_at": signal.starts_at, "ends_at": None, "url": signal.url, "fired_count": 1, "updated_at": now},
        ["source", "fingerprint"])
    if not inserted:
        return None
    return session.exec(select(Alert).where(Alert.source == signal.source,
                                            Alert.fingerprint == signal.fingerprint)).one()


def _takes_alerts(session: Session, group: AlertGroup) -> bool:
    """Whether a firing alert still belongs in `group`: it waits for triage, or its incident is open.
    A group whose incident is over stops taking alerts (the next firing is triaged afresh)."""
    if group.active_key is None:
        return False
    if group.incident_id is not None:
        incident = session.get(Incident, group.incident_id)
        if incident is None or not incident.is_open:
            session.execute(update(AlertGroup).where(AlertGroup.id == group.id).values(active_key=None))
            session.expire(group)
            return False
    return True


def _active_group(session: Session, signal: AlertSignal) -> tuple[AlertGroup, bool]:
    """The group taking alerts for the signal's group key, or a new one (True when new)."""
    key = f"{signal.source}:{signal.group_key}"[:300]
    for _ in range(2):
        group = session.exec(select(AlertGroup).where(AlertGroup.active_key == key)).first()
        if group is not None and _takes_alerts(session, group):
            return group, False
        now = clock.now()
        if insert_if_absent(session, AlertGroup, {
                "source": signal.source, "group_key": signal.group_key[:255], "active_key": key,
                "title": signal.title, "severity": signal.severity, "labels": signal.labels, "state": "open",
                "incident_id": None, "decided_by": None, "decided_at": None, "reason": "",
                "first_started_at": signal.starts_at, "created_at": now}, ["active_key"]):
            group = session.exec(select(AlertGroup).where(AlertGroup.active_key == key)).one()
            append(session, stream=group.stream, kind="alert_group.opened", actor=actor_for(signal.source),
                   data={"source": signal.source, "group_key": group.group_key, "title": group.title,
                         "severity": group.severity}, occurred_at=signal.starts_at)
            return group, True
    raise RuntimeError(f"no alert group could be opened for {key}")


def alert_data(alert: Alert) -> dict[str, Any]:
    return {"alert_id": alert.id, "source": alert.source, "fingerprint": alert.fingerprint, "title": alert.title,
            "severity": alert.severity, "labels": alert.labels, "starts_at": clock.iso(alert.starts_at),
            "ends_at": clock.iso(alert.ends_at), "url": alert.url}


def _event(session: Session, group: AlertGroup, alert: Alert, kind: str, *, occurred_at: datetime) -> None:
    append(session, stream=group.stream, kind=kind, actor=actor_for(alert.source), data=alert_data(alert),
           occurred_at=occurred_at)
    if group.incident_id is not None:
        incident = session.get(Incident, group.incident_id)
        if incident is not None and incident.status != "closed":
            timeline.alert_changed(session, incident=incident, alert=alert, kind=kind, occurred_at=occurred_at)


def _fired(session: Session, group: AlertGroup, alert: Alert, kind: str) -> None:
    """A firing: the group's severity becomes the worst of its alerts, its start the earliest; a group
    still waiting for triage gets its Slack message refreshed (coalesced: one pending item at most)."""
    if SEVERITY_ORDER.index(alert.severity) < SEVERITY_ORDER.index(group.severity):
        group.severity = alert.severity
    if clock.to_utc(alert.starts_at) < clock.to_utc(group.first_started_at):
        group.first_started_at = alert.starts_at
    session.add(group)
    _event(session, group, alert, kind, occurred_at=alert.starts_at)
    refresh_triage(session, group)


def refresh_triage(session: Session, group: AlertGroup) -> None:
    """Queue the group's triage message (post, or update in place). Only groups that were triaged in
    Slack have one: a group linked to an incident from the start (auto-declared) posts nothing."""
    enqueue(session, kind=TRIAGE_KIND, subject=group.stream, payload={"group_id": group.id}, coalesce=True)


def alerts_of(session: Session, group: AlertGroup) -> list[Alert]:
    return list(session.exec(select(Alert).where(Alert.group_id == group.id).order_by(Alert.starts_at, Alert.id)))
