"""Worker sweeps: find user ids first seen in recorded events, and refresh stale people daily.

Discovery reads the events recorded since its cursor (a `processed_key` row) and sights every user
id they hold: the actor and any id in the data (owners, leads, assignees, approvers, attendees,
`<@U…>` mentions), plus the people named in the configuration (admins, approvers, dashboard
viewers). The cursor only moves past events recorded more than SETTLE ago: on PostgreSQL an event
with a lower id can commit after one with a higher id, and must not be skipped. Sighting twice is
harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import literal
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.eventlog import Event
from vigil_ir.idempotency import ProcessedKey, first_time, previous_result, remember_result
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue
from vigil_ir.people.ids import is_user_id, user_ids_in
from vigil_ir.people.models import Person
from vigil_ir.people.service import LOOKUP, queue_lookup, sight, stream
from vigil_ir.reminders.scheduler import sweep

CURSOR = "people:discovery-cursor"
DISCOVERY_BATCH = 2000  # events read per call
SETTLE = timedelta(minutes=2)
REFRESH_AFTER = timedelta(hours=24)
REFRESH_BATCH = 100  # look-ups queued per sweep (every 30 s): well inside users.info's rate limit
NEW_BATCH = 100


def configured_people(settings: Settings) -> set[str]:
    return set(settings.admin_ids) | set(settings.risk_approver_ids) | set(settings.dashboard_viewer_ids)


@dataclass
class Sightings:
    """What one read of the events after the cursor found: the ids seen, and how far the cursor may move.

    `len()` is the number of events read when every one had settled (a full batch asks to be called
    again; unsettled ones are read next time), falsy only when there is nothing to write."""

    after: int
    settled: int
    seen: dict[str, datetime]
    read: int
    all_settled: bool

    def __len__(self) -> int:
        return self.read if self.all_settled else 0

    def __bool__(self) -> bool:
        return bool(self.seen) or self.settled != self.after


def sightings(session: Session, now: datetime, settings: Settings) -> Sightings:
    """Read up to DISCOVERY_BATCH events after the cursor (only reads: on SQLite outside the write lock)."""
    after = int((previous_result(session, CURSOR) or {}).get("after", 0))
    table = Event.__table__
    events = session.execute(select(table.c.id, table.c.actor, table.c.data, table.c.recorded_at)
                             .where(table.c.id > after).order_by(table.c.id).limit(DISCOVERY_BATCH)).all()
    seen: dict[str, datetime] = {}
    for event in events:
        for user_id in (event.actor, *user_ids_in(event.data)):
            if is_user_id(user_id):
                seen.setdefault(user_id, event.recorded_at)
    for user_id in configured_people(settings):
        seen.setdefault(user_id, now)
    settled = after
    for event in events:
        if clock.to_utc(event.recorded_at) > now - SETTLE:
            break
        settled = event.id
    return Sightings(after=after, settled=settled, seen=seen, read=len(events),
                     all_settled=settled == (events[-1].id if events else after))


@sweep("people.discover", batch=DISCOVERY_BATCH, prepare=sightings)
def discover(session: Session, now: datetime, settings: Settings, found: Sightings) -> int:
    """Sight the user ids found and move the cursor past the settled events; returns the events read
    when all had settled (a full batch of them asks to be called again), else 0.

    The cursor moves by compare-and-set: if another worker moved it since the read, this one only
    sights (harmless twice)."""
    first_time(session, CURSOR, {"after": 0})
    cursor = session.exec(select(ProcessedKey).where(ProcessedKey.key == CURSOR).with_for_update()).one()
    sight(session, found.seen)
    if found.settled != found.after and int(cursor.result.get("after", 0)) == found.after:
        remember_result(session, CURSOR, {"after": found.settled})
    return len(found)


@sweep("people.look_up_new")
def look_up_new(session: Session, now: datetime, settings: Settings) -> int:
    """Queue the first users.info look-up of up to NEW_BATCH people sighted but never looked up,
    longest waiting first (one outbox item per person, ever)."""
    queued_already = select(OutboxItem.id).where(OutboxItem.dedupe_key == literal("person-lookup:") + Person.user_id)
    waiting = session.exec(select(Person.user_id).where(Person.refreshed_at.is_(None), ~queued_already.exists())
                           .order_by(Person.first_seen, Person.user_id).limit(NEW_BATCH))
    return sum(queue_lookup(session, user_id) for user_id in list(waiting))


@sweep("people.refresh")
def refresh(session: Session, now: datetime, settings: Settings) -> int:
    """Queue a users.info look-up for up to REFRESH_BATCH people last refreshed over a day ago."""
    stale = list(session.exec(select(Person).where(Person.refreshed_at.is_not(None),
                                                   Person.refreshed_at < now - REFRESH_AFTER)
                              .order_by(Person.refreshed_at).limit(REFRESH_BATCH)))
    queued = 0
    for person in stale:
        # One key per refresh cycle: a look-up still waiting (Slack down) is not queued again.
        key = f"person-refresh:{person.user_id}:{clock.iso(person.refreshed_at)}"
        if enqueue(session, kind=LOOKUP, subject=stream(person.user_id), payload={"user_id": person.user_id},
                   dedupe_key=key):
            queued += 1
    return queued

