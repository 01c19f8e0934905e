"""The people part of a bundle: who everyone in the period's files is, and the signed reports.

`people.csv/json` lists everyone who acted or was named in the period (the actor of or a user id in
any event recorded in it) or appears in any id column of the bundle's files: their name, e-mail,
title, active or deactivated, when first seen, the changes recorded in the period, and the roles
the configuration gives them. `risk_signoffs` lists the management sign-offs of exactly this
period, whenever they were recorded, and `risk_assessment/signed/` holds each report file signed,
so its recorded SHA-256 can be checked against the file.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import select as core_select
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports.eventlog_export import ROWS_PER_FETCH
from vigil_ir.incidents.models import Incident
from vigil_ir.people import is_user_id, user_ids_in
from vigil_ir.people.directory import UNKNOWN, display_of
from vigil_ir.exports.bundle_policy import role_changes
from vigil_ir.risks import signoff

if TYPE_CHECKING:
    from vigil_ir.exports.bundle import Context

PEOPLE_COLUMNS = ("user_id", "name", "email", "title", "status", "first_seen", "last_looked_up", "names_in_period",
                  "changes_in_period", "roles", "role_changes_in_period", "incidents_led", "events_as_actor")
SIGNOFF_COLUMNS = ("signed_at", "by_id", "by_name", "by_email", "by_title", "role", "comment", "via",
                   "report_file", "report_sha256", "file_sha256_matches", "event_stream", "event_seq", "event_hash")


def _roles(ctx: Context) -> dict[str, list[str]]:
    """Roles at the period end: from the configuration recorded in force then, else today's settings."""
    if ctx.config_versions:
        recorded = ctx.config_versions[-1].document.get("roles") or {}
    else:
        from vigil_ir.permissions import policy_from_settings

        recorded = policy_from_settings(ctx.settings).describe()["roles"]
    roles: dict[str, list[str]] = {}
    for role, subjects in sorted(recorded.items()):
        for subject in subjects:  # user ids; user groups (S…, @handle) are listed under their own id
            roles.setdefault(subject, []).append(role.rstrip("s").replace("_", " "))
    return roles


def _change_text(when, kind: str, data: dict) -> str:
    if kind == "person.first_seen":
        return f"{clock.iso(when)} first seen as {display_of(data) or UNKNOWN}"
    parts = [f"{name}: {change.get('from')!r} → {change.get('to')!r}" for name, change in (data.get("changes") or {}).items()]
    return f"{clock.iso(when)} " + ", ".join(parts)


def write_people(ctx: Context) -> None:
    """Call after every other section: the ids they named are part of the list."""
    roles = _roles(ctx)
    acted: dict[str, int] = {}
    named: set[str] = set(ctx.people.named) | set(roles)
    query = (core_select(Event.actor, Event.data).where(Event.recorded_at >= ctx.start, Event.recorded_at < ctx.end)
             .execution_options(yield_per=ROWS_PER_FETCH))
    for actor, data in ctx.session.execute(query):
        if is_user_id(actor):
            acted[actor] = acted.get(actor, 0) + 1
        named.update(user_ids_in(data))
    led: dict[str, list[str]] = {}
    for number, lead in ctx.session.exec(select(Incident.number, Incident.lead).where(
            Incident.declared_at >= ctx.start, Incident.declared_at < ctx.end, Incident.lead.is_not(None),
            Incident.exercise.is_(False))
            .order_by(Incident.number)):
        led.setdefault(lead, []).append(f"INC-{number}")
    table = ctx.table("people", PEOPLE_COLUMNS, section="people",
                      description="People directory for the period: everyone who acted or was named in it or in "
                                  "these files, with name, e-mail, title, active/deactivated, first seen, changes "
                                  "recorded in the period, roles in force at the period end and when they changed in "
                                  "it (from the recorded configuration, policy/config_versions.json), incidents led",
                      query=f"person rows for the user ids in events with {ctx.period_text('recorded_at')} (actor "
                            "and data) and in every id column of this bundle; changes from the person:<id> streams; "
                            "roles from the last config.recorded version in force (else the settings at generation)")
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
                     "roles": "; ".join(roles.get(user_id, [])) or None,
                     "role_changes_in_period": "; ".join(role_changes(ctx.config_versions, user_id, ctx.start,
                                                                      ctx.end)) or None,
                     "incidents_led": ";".join(led.get(user_id, [])) or None,
                     "events_as_actor": acted.get(user_id, 0)})
    table.finish(ctx.sink)


# subject → (table, folder of the signed files, section, what was signed)
SIGNED = {signoff.RISK_ASSESSMENT: ("risk_signoffs", "risk_assessment/signed", "E10", "the risk assessment"),
          signoff.INCIDENT_REVIEW: ("incident_review_signoffs", "incident_review/signed", "program",
                                    "the incident-response program review")}


def write_signoffs(ctx: Context, subject: str = signoff.RISK_ASSESSMENT) -> None:
    name, folder, section, what = SIGNED[subject]
    table = ctx.table(name, SIGNOFF_COLUMNS, section=section,
                      description=f"Management sign-offs of {what} for exactly this period, including "
                                  "those recorded after it ended, with the report file each signed",
                      query=f"events of stream audit, kind {signoff.KINDS[subject]}, whose period_start and period_end "
                            f"are {ctx.iso_start} and {ctx.iso_end}; report files from signed_report")
    for done in signoff.sign_offs(ctx.session, ctx.start, ctx.end, subject=subject):
        ctx.people.name_at(done.by)  # the signer is in people.csv even when the sign-off came after the period
        path, matches = None, None
        stored = signoff.stored_report(ctx.session, done.report_id) if done.report_id else None
        if stored is not None:
            path = f"{folder}/{stored.id}-{stored.filename}"
            content = bytes(stored.content)
            matches = hashlib.sha256(content).hexdigest() == done.report_sha256
            ctx.sink.add(path, content, section=section,
                         description=f"The report file {done.label} signed off on {done.signed_at} "
                                     f"(SHA-256 recorded in the sign-off: {done.report_sha256})",
                         query=f"signed_report id {stored.id}")
        event = ctx.session.get(Event, done.event_id)
        table.write({"signed_at": done.signed_at, "by_id": done.by if is_user_id(done.by) else None,
                     "by_name": done.by_name if is_user_id(done.by) else done.by, "by_email": done.by_email,
                     "by_title": done.by_title, "role": done.role or None, "comment": done.comment or None,
                     "via": done.via, "report_file": path, "report_sha256": done.report_sha256,
                     "file_sha256_matches": matches, "event_stream": event.stream, "event_seq": event.stream_seq,
                     "event_hash": event.hash})
    table.finish(ctx.sink)

