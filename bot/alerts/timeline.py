"""Alerts on an incident's timeline: each firing, resolution and re-firing of a linked alert is an
event on the incident's stream at the alert's own time (`occurred_at`), by the source (`system:<source>`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog import append
from vigil_ir.incidents.models import Incident

# alert_group stream kinds → the incident stream's kinds
INCIDENT_KINDS = {"alert.fired": "incident.alert_fired", "alert.refired": "incident.alert_refired",
                  "alert.resolved": "incident.alert_resolved"}


def alert_changed(session: Session, *, incident: Incident, alert, kind: str, occurred_at: datetime) -> None:
    append(session, stream=incident.stream, kind=INCIDENT_KINDS[kind], actor=f"system:{alert.source}",
           data={"alert_id": alert.id, "source": alert.source, "fingerprint": alert.fingerprint,
                 "title": alert.title, "severity": alert.severity, "starts_at": clock.iso(alert.starts_at),
                 "ends_at": clock.iso(alert.ends_at)},
           occurred_at=occurred_at)
