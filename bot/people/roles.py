"""Who held which configured role, directly or through a Slack user group, as the evidence says.

The roles come from a recorded configuration (`config.recorded`, or the settings when none is
recorded); a role given to a Slack user group reaches its members as Vigil recorded them
(`permissions.group_members_changed`), so a person's roles can be read without asking Slack.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event

GROUP_CHANGES = "permissions.group_members_changed"


def role_label(key: str) -> str:
    """`risk_approvers` → `risk approver`."""
    return key.rstrip("s").replace("_", " ")


def by_subject(roles: dict[str, list[str]]) -> dict[str, list[str]]:
    """{role: [subjects]} (as recorded) → {subject: [role labels]}; subjects are user ids, user group
    ids (S…) or @handles."""
    held: dict[str, list[str]] = {}
    for role, subjects in sorted(roles.items()):
        for subject in subjects:
            held.setdefault(subject, []).append(role_label(role))
    return held


def through_groups(session: Session, held: dict[str, list[str]], *, end: datetime,
                   start: datetime | None = None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(roles each member holds through a group at `end`, e.g. `commander (through S0CMD)`; the joins
    and leaves recorded in [start, end) per person), folded from the recorded membership changes."""
    members: dict[str, set[str]] = {}  # group id → members
    names: dict[str, str] = {}  # group id → how the configuration names it (S… or @handle)
    changes: dict[str, list[str]] = {}
    query = (select(Event.recorded_at, Event.data).where(Event.stream == "audit", Event.kind == GROUP_CHANGES,
                                                        Event.recorded_at < clock.to_utc(end))
             .order_by(Event.stream_seq))
    for recorded_at, data in session.exec(query):
        group, handle = data.get("group"), data.get("handle")
        subject = handle if handle in held else group
        if subject not in held:
            continue  # a group no role names
        names[group] = subject
        before, after = members.get(group, set()), set(data.get("members") or [])
        members[group] = after
        if data.get("first_seen") or (start is not None and clock.to_utc(recorded_at) < clock.to_utc(start)):
            continue  # the first look-up is what the group was, not a change
        roles = ", ".join(held[subject])
        for user_id in sorted(after - before):
            changes.setdefault(user_id, []).append(f"{clock.iso(recorded_at)} joined {subject} ({roles})")
        for user_id in sorted(before - after):
            changes.setdefault(user_id, []).append(f"{clock.iso(recorded_at)} left {subject} ({roles})")
    through: dict[str, list[str]] = {}
    for group, users in members.items():
        for user_id in users:
            through.setdefault(user_id, []).extend(f"{role} (through {names[group]})" for role in held[names[group]])
    return through, changes
