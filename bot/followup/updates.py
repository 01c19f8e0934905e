"""Status-update cadence: when the next update is due, snoozing, and who to remind."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.service import IncidentError

SNOOZE = timedelta(minutes=30)
LEAD_GRACE = timedelta(minutes=10)


def update_due_at(incident: Incident, policy: Policy) -> datetime | None:
    """The explicit due time (from the last update or snooze), else declaration + cadence."""
    if not incident.is_open:
        return None
    if incident.next_update_due:
        return clock.to_utc(incident.next_update_due)
    cadence = policy.update_cadence.get(incident.severity)
    return clock.to_utc(incident.declared_at) + cadence if cadence else None


def default_next_update(incident: Incident, policy: Policy, now: datetime | None = None) -> datetime | None:
    """Used when an update is posted without a next due time: now + the severity's cadence."""
    cadence = policy.update_cadence.get(incident.severity)
    return (now or clock.now()) + cadence if cadence else None


def snooze(session: Session, *, incident: Incident, actor: str, policy: Policy) -> Event:
    if not incident.is_open:
        raise IncidentError(f"{incident.key} is {incident.status}; status updates are no longer due.")
    previous = update_due_at(incident, policy)
    incident.next_update_due = clock.now() + SNOOZE
    session.add(incident)
    return append(session, stream=incident.stream, kind="incident.update_snoozed", actor=actor,
                  data={"previous_due": clock.iso(previous), "until": clock.iso(incident.next_update_due)})


def who_to_remind(incident: Incident) -> str | None:
    """Updates are the comms role's job when someone holds it, else the lead's."""
    return incident.comms or incident.lead
