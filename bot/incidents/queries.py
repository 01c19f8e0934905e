"""Reading incidents, and the milestones derived from their events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import Session, select

from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.incidents.models import Incident
from vigil_ir.keys import bounded_number

KEY_PATTERN = re.compile(r"^\s*(?:INC-)?(\d+)\s*$", re.IGNORECASE)
EXERCISE_KEY_PATTERN = re.compile(r"^\s*EX-(\d+)\s*$", re.IGNORECASE)


def parse_key(key: str) -> int | None:
    """The number of an incident key (`INC-12` or `12`); None for anything else, an exercise's included."""
    match = KEY_PATTERN.match(key or "")
    return bounded_number(match.group(1)) if match else None


def parse_any_key(key: str) -> tuple[int, bool] | None:
    """(number, is an exercise) for `INC-12`, `12` or `EX-3`; None for anything else."""
    match = EXERCISE_KEY_PATTERN.match(key or "")
    if match:
        number = bounded_number(match.group(1))
        return (number, True) if number is not None else None
    number = parse_key(key)
    return (number, False) if number is not None else None


def by_key(session: Session, key: str) -> Incident | None:
    """The incident `INC-<n>` (or `<n>`), or the exercise `EX-<n>`."""
    parsed = parse_any_key(key)
    if parsed is None:
        return None
    number, exercise = parsed
    return session.exec(select(Incident).where(Incident.number == number, Incident.exercise.is_(exercise))).first()


def by_stream(session: Session, stream: str) -> Incident | None:
    """The incident of `incident:<n>`, or the exercise of `exercise:<n>`; None for any other stream."""
    prefix, _, digits = stream.partition(":")
    if prefix not in ("incident", "exercise") or not digits.isdigit():
        return None
    return by_key(session, f"{'EX' if prefix == 'exercise' else 'INC'}-{digits}")


# Built once: every command in an incident channel looks its incident up.
_BY_CHANNEL = select(Incident).where(Incident.channel_id == bindparam("channel"))
_BY_CHANNEL_LOCKING = _BY_CHANNEL.with_for_update().execution_options(populate_existing=True)


def by_channel(session: Session, channel_id: str | None, *, lock: bool = False) -> Incident | None:
    """The incident whose channel this is. With `lock`, for a command about to change it: on PostgreSQL
    the row is locked by this very SELECT (FOR UPDATE), so the change does not re-read it to lock it
    (`service._require_open`); one statement and one round trip less while the lock is held."""
    if not channel_id:
        return None
    if not (lock and session.get_bind().dialect.name == "postgresql"):
        return session.exec(_BY_CHANNEL, params={"channel": channel_id}).first()
    incident = session.exec(_BY_CHANNEL_LOCKING, params={"channel": channel_id}).first()
    if incident is not None:
        locked_in_this_transaction(session).add(incident.id)
    return incident


def locked_in_this_transaction(session: Session) -> set[int]:
    """Ids of the incidents whose rows this session's current transaction has locked (FOR UPDATE);
    a new transaction starts with none."""
    transaction = session.get_transaction()
    held = session.info.get("vigil_locked_incidents")
    if held is None or held[0] is not transaction:
        held = session.info["vigil_locked_incidents"] = (transaction, set())
    return held[1]


def by_id(session: Session, incident_id: int) -> Incident | None:
    return session.get(Incident, incident_id)


def by_ids(session: Session, incident_ids) -> list[Incident]:
    """The incidents with these ids (those that exist), in one query."""
    return list(session.exec(select(Incident).where(Incident.id.in_(list(incident_ids)))))


SEVERITY_ORDER = ("sev1", "sev2", "sev3", "sev4")  # worst first


def severity_reached(session: Session, incident: Incident) -> str:
    """The worst severity the incident ever had (a downgrade does not undo what it reached)."""
    seen = {incident.initial_severity, incident.severity}
    seen |= {e.data.get("to") for e in events_for_stream(session, incident.stream) if e.kind == "incident.severity_changed"}
    return min((s for s in seen if s in SEVERITY_ORDER), key=SEVERITY_ORDER.index)


def declared_between(session: Session, start: datetime, end: datetime, *, exercises: bool = False) -> list[Incident]:
    """Incidents declared in [start, end), in key order: the population for a period. Exercises are
    never part of it; `exercises=True` gives the period's exercises instead (their register)."""
    return list(session.exec(select(Incident).where(Incident.declared_at >= start, Incident.declared_at < end,
                                                    Incident.exercise.is_(exercises))
                             .order_by(Incident.number)))


@dataclass
class Milestones:
    declared: datetime
    detected: datetime
    acknowledged: datetime | None
    mitigated: datetime | None
    resolved: datetime | None
    closed: datetime | None
    closed_by: str | None = None
    paged: datetime | None = None  # the first page (vigil_ir.paging)
    page_acknowledged: datetime | None = None  # the first acknowledgement a provider reported

    @property
    def acknowledge_basis(self) -> datetime:
        """Time to acknowledge counts from the first page when there is one, else from declaration."""
        return self.paged or self.declared

    @staticmethod
    def _minutes(start: datetime, end: datetime | None) -> float | None:
        return None if end is None else round((end - start).total_seconds() / 60, 1)

    @property
    def minutes_to_declare(self) -> float | None:
        return self._minutes(self.detected, self.declared)

    @property
    def minutes_to_acknowledge(self) -> float | None:
        return self._minutes(self.acknowledge_basis, self.acknowledged)

    @property
    def minutes_to_page_acknowledge(self) -> float | None:
        return None if self.paged is None else self._minutes(self.paged, self.page_acknowledged)

    @property
    def minutes_to_mitigate(self) -> float | None:
        return self._minutes(self.detected, self.mitigated)

    @property
    def minutes_to_resolve(self) -> float | None:
        return self._minutes(self.detected, self.resolved)


def milestones(incident: Incident, events: list[Event]) -> Milestones:
    """Derive milestones from the event stream.

    acknowledged: the first human action by someone other than the declarer (a command, a
    button, a pinned message), or the lead being assigned; mitigated: the *first* move to
    monitoring (or straight to resolved) — a relapse does not erase that impact was once
    mitigated; resolved: the latest move to resolved that was not undone; closed: the close event.
    Time to declare counts from detection to declaration, to acknowledge from declaration, to
    mitigate and resolve from detection (impact starts when the problem does).

    A paged incident (docs/integrations.md): paged = the first `page.requested`; acknowledged = the
    first acknowledgement of a page the provider reported (at the provider's time), and time to
    acknowledge counts from the first page.
    """
    acknowledged = mitigated = resolved = closed = closed_by = paged = page_acknowledged = None
    for event in events:
        # Events read as stored text parse a time when asked: only the few that set a milestone ask.
        kind = event.kind
        if kind == "page.requested" and paged is None:
            paged = event.recorded_at
        if kind == "page.acknowledged" and page_acknowledged is None:
            page_acknowledged = event.occurred_at
        if acknowledged is None and kind != "incident.declared" and (
                (not event.actor.startswith("system:") and event.actor != incident.declared_by)
                or (kind == "incident.role_assigned" and event.data.get("role") == "lead")):
            acknowledged = event.recorded_at
        if kind == "incident.status_changed":
            to = event.data.get("to")
            if to in ("monitoring", "resolved") and mitigated is None:
                mitigated = event.recorded_at
            resolved = event.recorded_at if to == "resolved" else None
        if kind == "incident.closed":
            closed, closed_by = event.recorded_at, event.actor
            resolved = resolved or closed
    return Milestones(declared=incident.declared_at, detected=incident.detected_at,
                      acknowledged=page_acknowledged if paged else acknowledged, mitigated=mitigated,
                      resolved=resolved, closed=closed, closed_by=closed_by, paged=paged,
                      page_acknowledged=page_acknowledged)


def incident_milestones(session: Session, incident: Incident) -> Milestones:
    return milestones(incident, events_for_stream(session, incident.stream))


def latest_events(session: Session, incident: Incident, limit: int = 20) -> list[Event]:
    rows = session.exec(select(Event).where(Event.stream == incident.stream)
                        .order_by(Event.stream_seq.desc()).limit(limit))
    return list(reversed(list(rows)))
