"""Private incidents: whether one is private, who has access to it, and who may see it.

A private incident is shown outside its channel only to its members (the people who have access),
commanders and admins: the permissions policy's `view_private_incident` rule, asked with the
incident's members as the `member` role's holders. Every grant is an `incident.access_granted` event
on the incident's stream (who granted whom, when, how) and a row in `incident_access`, written in
the same transaction; every revocation (someone removed from or leaving the channel) is an
`incident.access_revoked` event that deletes the row, so the rows are the fold of the two kinds and
everything that reads them (listings, App Home, the dashboard) follows at once. Private incidents
are never left out of a population, export or bundle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog import Event, append
from vigil_ir.incidents.models import Incident, IncidentAccess, key_of, stream_of
from vigil_ir.permissions import Action

if TYPE_CHECKING:
    from vigil_ir.incidents.fold import Mismatch

# How someone came to have access (the `via` of a grant): declaring it, being given a role, the lead's
# `/incident invite`, the security group invited at set-up, or joining the channel by Slack's own means.
VIA = ("declared", "role", "invite", "security_group", "joined_channel")
# How someone lost it: removed by `/incident remove`, or leaving (or being removed from) the channel
# by Slack's own means.
REVOKED_VIA = ("removed", "left_channel")
KINDS = ("incident.access_granted", "incident.access_revoked")


def private_by_default(*, type: str, security: bool, private_types: Iterable[str]) -> bool:
    """Whether a declaration is private without the form's box: its type is listed in
    VIGIL_PRIVATE_INCIDENT_TYPES, or it is marked a security incident and `security` is listed."""
    listed = set(private_types)
    return type in listed or (security and "security" in listed)


def grant(session: Session, *, incident: Incident, actor: str, user: str, via: str,
          data: dict | None = None) -> Event | None:
    """Give `user` access to the private `incident`, recorded as an event; None when they already
    have it (a grant is made once) or the incident is not private (everyone sees it)."""
    if via not in VIA:
        raise ValueError(f"unknown access grant {via!r}")
    if not incident.private:
        return None
    now = clock.now()
    if not insert_if_absent(session, IncidentAccess, {"incident_id": incident.id, "user_id": user, "granted_by": actor,
                                                      "granted_at": now, "via": via}, ["incident_id", "user_id"]):
        return None
    return append(session, stream=incident.stream, kind="incident.access_granted", actor=actor,
                  data={"user": user, "via": via, **(data or {})})


def revoke(session: Session, *, incident: Incident, actor: str, user: str, via: str,
           data: dict | None = None) -> Event | None:
    """Take `user`'s access to the private `incident` away, recorded as an event naming the grant it
    ends; None when they have none (a second removal, or Slack's leave event after `/incident remove`).

    One DELETE … RETURNING: of two concurrent revocations exactly one finds the row (on PostgreSQL
    the second waits for the first to commit and then deletes nothing)."""
    if via not in REVOKED_VIA:
        raise ValueError(f"unknown access revocation {via!r}")
    if not incident.private:
        return None
    ended = session.execute(delete(IncidentAccess).where(IncidentAccess.incident_id == incident.id,
                                                         IncidentAccess.user_id == user)
                            .returning(IncidentAccess.granted_by, IncidentAccess.granted_at, IncidentAccess.via)).first()
    if ended is None:
        return None
    granted_by, granted_at, granted_via = ended
    return append(session, stream=incident.stream, kind="incident.access_revoked", actor=actor,
                  data={"user": user, "via": via, "granted_by": granted_by, "granted_via": granted_via,
                        "granted_at": clock.iso(clock.to_utc(granted_at)), **(data or {})})


def granted_at(session: Session, incident: Incident, user: str):
    """When `user`'s current access was granted (None: they have none)."""
    return session.exec(select(IncidentAccess.granted_at).where(IncidentAccess.incident_id == incident.id,
                                                                IncidentAccess.user_id == user)).first()


def last_revoked_at(session: Session, incident: Incident, user: str):
    """When `user`'s access to the incident was last taken away (None: never)."""
    for recorded_at, data in session.exec(select(Event.recorded_at, Event.data).where(
            Event.stream == incident.stream, Event.kind == "incident.access_revoked").order_by(Event.stream_seq.desc())):
        if (data or {}).get("user") == user:
            return recorded_at
    return None


def members(session: Session, incident: Incident) -> frozenset[str]:
    """Everyone granted access to the incident (for a public one: nobody needs to be)."""
    return frozenset(session.exec(select(IncidentAccess.user_id).where(IncidentAccess.incident_id == incident.id)))


def granted_incident_ids(session: Session, user: str) -> set[int]:
    return set(session.exec(select(IncidentAccess.incident_id).where(IncidentAccess.user_id == user)))


def check_grants(session: Session) -> list[Mismatch]:
    """Every private incident whose `incident_access` rows differ from the fold of its
    `incident.access_granted` and `incident.access_revoked` events (`vigil verify`): a row added by
    hand would show someone a private incident unrecorded; a row deleted by hand, an unrecorded
    revocation; a row kept after its revocation, access that was taken away."""
    from vigil_ir.incidents.fold import Mismatch

    expected: dict[str, set[str]] = {}  # by stream: an incident's and an exercise's numbers overlap
    for stream, kind, data in session.exec(select(Event.stream, Event.kind, Event.data).where(Event.kind.in_(KINDS))
                                           .order_by(Event.stream, Event.stream_seq)):
        users = expected.setdefault(stream, set())
        if kind == "incident.access_granted":
            users.add((data or {}).get("user"))
        else:
            users.discard((data or {}).get("user"))
    found: dict[str, set[str]] = {}
    keys: dict[str, str] = {}
    for number, exercise, user in session.exec(select(Incident.number, Incident.exercise, IncidentAccess.user_id)
                                               .join(Incident, Incident.id == IncidentAccess.incident_id)):
        found.setdefault(stream_of(number, exercise), set()).add(user)
    for stream in set(expected) | set(found):
        prefix, _, number = stream.partition(":")
        keys[stream] = key_of(int(number), prefix == "exercise")
    return [Mismatch(keys[stream], "access", sorted(expected.get(stream, ())), sorted(found.get(stream, ())))
            for stream in sorted(keys, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))
            if expected.get(stream, set()) != found.get(stream, set())]


def can_see(permissions, who, session: Session, incident: Incident) -> bool:
    """Whether `who` (a user id or `Actor`) may see the incident outside its channel: always for a
    public one; for a private one, the policy's `view_private_incident` with its members."""
    if not incident.private:
        return True
    return permissions.allows(Action.VIEW_PRIVATE_INCIDENT, who, member=members(session, incident))


def visible(permissions, who, session: Session, incidents: Iterable[Incident]) -> list[Incident]:
    """The incidents `who` may see outside their channels, in the order given. The policy is asked
    once without membership (commanders, admins see all), then membership is read for the rest."""
    incidents = list(incidents)
    if not any(incident.private for incident in incidents):
        return incidents
    if permissions.allows(Action.VIEW_PRIVATE_INCIDENT, who, member=frozenset()):
        return incidents
    user = getattr(who, "user", who)
    granted = granted_incident_ids(session, user)
    return [incident for incident in incidents if not incident.private or incident.id in granted
            and permissions.allows(Action.VIEW_PRIVATE_INCIDENT, who, member=frozenset({user}))]
