"""Changing the directory: sightings queue a look-up; a look-up's answer is recorded with its events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog import Event, append
from vigil_ir.outbox.service import enqueue
from vigil_ir.people.ids import is_user_id
from vigil_ir.people.models import TRACKED, Person

ACTOR = "system:worker"
LOOKUP = "person.lookup"  # outbox kind: ask Slack who a user id is


def stream(user_id: str) -> str:
    return f"person:{user_id}"


@dataclass(frozen=True)
class Profile:
    """What Slack says about a user, as plain values (vigil_ir.slack.people builds it from users.info)."""

    name: str | None = None
    real_name: str | None = None
    display_name: str | None = None
    email: str | None = None
    title: str | None = None
    deactivated: bool = False
    is_bot: bool = False
    tz: str | None = None

    def tracked(self) -> dict:
        values = asdict(self)
        return {field: values[field] for field in TRACKED}


def sight(session: Session, user_ids: Iterable[str] | Mapping[str, datetime], *,
          seen_at: datetime | None = None) -> list[str]:
    """Note user ids seen in records (with when each was seen, or all at `seen_at`); a new one gets
    a row, and its look-up is queued by the `people.look_up_new` sweep (at a pace Slack's rate limit
    for users.info allows, so a first import of thousands of people does not flood the outbox).
    Returns the new ids.

    One query finds the known ids; of two transactions sighting the same new id, one inserts.
    """
    when = dict(user_ids) if isinstance(user_ids, Mapping) else dict.fromkeys(user_ids, seen_at)
    wanted = sorted(uid for uid in when if is_user_id(uid))
    known: set[str] = set()
    for offset in range(0, len(wanted), 500):
        known.update(session.exec(select(Person.user_id).where(Person.user_id.in_(wanted[offset:offset + 500]))))
    new = []
    for user_id in wanted:
        if user_id in known:
            continue
        first_seen = when[user_id] or clock.now()
        if insert_if_absent(session, Person, {"user_id": user_id, "first_seen": first_seen, "deactivated": False,
                                              "is_bot": False}, ["user_id"]):
            new.append(user_id)
    return new


def queue_lookup(session: Session, user_id: str) -> bool:
    """Queue the first look-up of `user_id` (once ever: the key is per person)."""
    return enqueue(session, kind=LOOKUP, subject=stream(user_id), payload={"user_id": user_id},
                   dedupe_key=f"person-lookup:{user_id}") is not None


def _locked(session: Session, user_id: str, now: datetime) -> Person:
    """The person's row under a row lock (created if absent): two answers for one person take turns."""
    query = select(Person).where(Person.user_id == user_id).with_for_update().execution_options(populate_existing=True)
    person = session.exec(query).first()
    if person is None:
        insert_if_absent(session, Person, {"user_id": user_id, "first_seen": now, "deactivated": False,
                                           "is_bot": False}, ["user_id"])
        person = session.exec(query).one()
    return person


def record_profile(session: Session, *, user_id: str, profile: Profile, actor: str = ACTOR) -> Event | None:
    """Store Slack's answer for `user_id`; the first answer is `person.first_seen`, a later answer
    that differs in a tracked field is `person.changed` with each field's from/to. None if nothing changed."""
    now = clock.now()
    person = _locked(session, user_id, now)
    before = {field: getattr(person, field) for field in TRACKED}
    after = profile.tracked()
    first = session.exec(select(func.count()).select_from(Event).where(Event.stream == stream(user_id))).one() == 0
    for field, value in asdict(profile).items():
        setattr(person, field, value)
    person.refreshed_at, person.lookup_error = now, None
    event = None
    if first:
        event = append(session, stream=stream(user_id), kind="person.first_seen", actor=actor,
                       data={"user_id": user_id, "first_seen": clock.iso(person.first_seen), **after})
        person.updated_at = now
    else:
        changes = {field: {"from": before[field], "to": after[field]} for field in TRACKED
                   if before[field] != after[field]}
        if changes:
            event = append(session, stream=stream(user_id), kind="person.changed", actor=actor,
                           data={"user_id": user_id, "changes": changes})
            person.updated_at = now
    session.add(person)
    session.flush()
    return event


def record_not_found(session: Session, *, user_id: str, error: str) -> None:
    """Slack answered that it knows no such user: remember the answer, so it is not asked daily."""
    person = _locked(session, user_id, clock.now())
    person.refreshed_at, person.lookup_error = clock.now(), error[:255]
    session.add(person)


def not_a_person(given: str) -> str:
    """Why `given` cannot be bound to anyone (a sign-off, a CLI `--by`)."""
    return (f"{given!r} is not a person in Vigil's directory: give the Slack user id (U…) or the e-mail address "
            "Slack has for them. People are added once Vigil has seen them in Slack and looked them up "
            "(the worker does that within a minute).")


def resolve(session: Session, who: str) -> Person | None:
    """A person in the directory by Slack user id or e-mail address (case-insensitive); only people
    Slack has told us about (a bare sighting is not enough to bind a signature to)."""
    who = (who or "").strip()
    if not who:
        return None
    if "@" in who:
        found = session.exec(select(Person).where(func.lower(Person.email) == who.lower())
                             .order_by(Person.deactivated, Person.user_id)).first()
    else:
        found = session.get(Person, who.upper()) if is_user_id(who.upper()) else None
    return found if found is not None and found.known else None
