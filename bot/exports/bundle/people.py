"""The people part of a bundle: who everyone in the period's files is.

`people.csv/json` lists everyone who acted or was named in the period (the actor of or a user id in
any event recorded in it) or appears in any id column of the bundle's files: their name, e-mail,
title, active or deactivated, when first seen, the changes recorded in the period, and the roles
the configuration gives them, directly or through a Slack user group (whose members are folded from the
membership changes Vigil recorded), with when each changed in the period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Text, cast, func, or_, select as core_select
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.policy import role_changes
from vigil_ir.exports.eventlog_export import ROWS_PER_FETCH
from vigil_ir.incidents.models import Incident
from vigil_ir.jsontext import parse_json
from vigil_ir.people import is_user_id, user_ids_in
from vigil_ir.people.directory import UNKNOWN, display_of
from vigil_ir.people.roles import by_subject
from vigil_ir.people.roles import through_groups as roles_through_groups

# A JSON string that may be a user id (vigil_ir.people.ids): data without one, a mention (`<@`) or an
# escape cannot name anyone, so most events' data is never parsed here.
_QUOTED_ID = re.compile(r'"[UW][A-Z0-9]*[0-9][A-Z0-9]*"')
COLUMNS = ("user_id", "name", "email", "title", "status", "first_seen", "last_looked_up", "names_in_period",
                  "changes_in_period", "roles", "role_changes_in_period", "incidents_led", "events_as_actor")


def _roles(ctx: Context) -> dict[str, list[str]]:
    """Roles at the period end: from the configuration recorded in force then, else today's settings."""
    if ctx.config_versions:
        recorded = ctx.config_versions[-1].document.get("roles") or {}
    else:
        from vigil_ir.permissions import policy_from_settings

        recorded = policy_from_settings(ctx.settings).describe()["roles"]
    return by_subject(recorded)  # user ids; user groups (S…, @handle) are listed under their own id too


def _may_name_someone(session):
    """Data text that may hold a user id, as SQL: every text the check in `write` accepts (a mention,
    a JSON escape, a string starting with U or W), and few others, so most events' data is never
    fetched. Case-sensitive on both databases (SQLite's LIKE is not: GLOB is)."""
    data = cast(Event.data, Text)
    if session.get_bind().dialect.name == "sqlite":
        return or_(data.op("GLOB")("*<@*"), data.op("GLOB")("*\\u*"), data.op("GLOB")('*"[UW]*'))
    return or_(*(data.contains(part, autoescape=True) for part in ("<@", "\\u", '"U', '"W')))


def _change_text(when, kind: str, data: dict) -> str:
    if kind == "person.first_seen":
        return f"{clock.iso(when)} first seen as {display_of(data) or UNKNOWN}"
    parts = [f"{name}: {change.get('from')!r} → {change.get('to')!r}" for name, change in (data.get("changes") or {}).items()]
    return f"{clock.iso(when)} " + ", ".join(parts)


@dataclass
class Found:
    """Who the period's records name, before the other sections' names are in (`prepare`)."""

    roles: dict[str, list[str]]
    through_groups: dict[str, list[str]]
    group_changes: dict[str, list[str]]
    named: set[str]  # the roles' holders and everyone named in the data of the period's events
    acted: dict[str, int]  # events as actor in the period, per user id
    led: dict[str, list[str]]  # incidents of the period per lead


def prepare(ctx: Context) -> None:
    """After the policy section (the roles come from the configuration it found): everything the list
    needs but the ids the other sections showed, so that only `write` waits for the incident pass."""
    roles = _roles(ctx)
    through_groups, group_changes = roles_through_groups(ctx.session, roles, start=ctx.start, end=ctx.end)
    named: set[str] = set(roles) | set(through_groups) | set(group_changes)
    in_period = (Event.recorded_at >= ctx.start, Event.recorded_at < ctx.end)
    acted = {actor: count for actor, count in ctx.session.execute(
        core_select(Event.actor, func.count()).where(*in_period).group_by(Event.actor)) if is_user_id(actor)}
    query = (core_select(cast(Event.data, Text)).where(*in_period, _may_name_someone(ctx.session))
             .execution_options(yield_per=ROWS_PER_FETCH))
    for (text,) in ctx.session.execute(query):
        if text and ("<@" in text or "\\u" in text or _QUOTED_ID.search(text)):  # else it names no one: not parsed
            named.update(user_ids_in(parse_json(text)))
    led: dict[str, list[str]] = {}
    for number, lead in ctx.session.exec(select(Incident.number, Incident.lead).where(
            Incident.declared_at >= ctx.start, Incident.declared_at < ctx.end, Incident.lead.is_not(None),
            Incident.exercise.is_(False))
            .order_by(Incident.number)):
        led.setdefault(lead, []).append(f"INC-{number}")
    ctx.people_found = Found(roles, through_groups, group_changes, named, acted, led)


def write(ctx: Context) -> None:
    """Call after every other section (the ids they named are part of the list) and after `prepare`."""
    found: Found = ctx.people_found
    roles, through_groups, group_changes = found.roles, found.through_groups, found.group_changes
    acted, led = found.acted, found.led
    named = ctx.people.named | found.named
    table = ctx.table("people", COLUMNS, section="people",
                      description="People directory for the period: everyone who acted or was named in it or in "
                                  "these files, with name, e-mail, title, active/deactivated, first seen, changes "
                                  "recorded in the period, roles in force at the period end and when they changed in "
                                  "it (from the recorded configuration, policy/config_versions.json, and for a role "
                                  "held through a Slack user group, the group's recorded membership), incidents led",
                      query=f"person rows for the user ids in events with {ctx.period_text('recorded_at')} (actor "
                            "and data) and in every id column of this bundle; changes from the person:<id> streams; "
                            "roles from the last config.recorded version in force (else the settings at generation) "
                            "and the user groups' members from permissions.group_members_changed events recorded "
                            "before the period end")
    for user_id in sorted(named | set(acted)):
        person = ctx.people.people.get(user_id)
        now = ctx.people.values_at(user_id) or {}
        changes = ctx.people.changes_between(user_id, ctx.start, ctx.end)
        names = []
        for when in [ctx.start, *(change[0] for change in changes)]:
            name = display_of(ctx.people.values_at(user_id, when) or {})
            if name and name not in names:
                names.append(name)
        table.write({"user_id": user_id, "name": display_of(now) or UNKNOWN, "email": now.get("email"),
                     "title": now.get("title"),
                     "status": ("deactivated" if now.get("deactivated") else "active") if now else "unknown",
                     "first_seen": clock.iso(person.first_seen) if person else None,
                     "last_looked_up": clock.iso(person.refreshed_at) if person else None,
                     "names_in_period": "; ".join(names) or None,
                     "changes_in_period": "; ".join(_change_text(*change) for change in changes) or None,
                     "roles": "; ".join([*roles.get(user_id, []), *through_groups.get(user_id, [])]) or None,
                     "role_changes_in_period": "; ".join(sorted(
                         [*role_changes(ctx.config_versions, user_id, ctx.start, ctx.end),
                          *group_changes.get(user_id, [])])) or None,
                     "incidents_led": ";".join(led.get(user_id, [])) or None,
                     "events_as_actor": acted.get(user_id, 0)})
    table.finish(ctx.sink)
