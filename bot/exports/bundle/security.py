"""`security_incidents`: the security selection of the population, with its rule stated.

Population incidents flagged as security incidents at any time up to the period end, and how the
flag was set (at declaration, by type or checkbox) and changed (who, when, why).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.context import Context
from vigil_ir.incidents.models import Incident

CHUNK = 500
COLUMNS = ("key", "title", "type", "severity_final", "status", "declared_at", "declared_by", "declared_by_name",
           "security_at_period_end", "security_now", "flag_set_at_declaration", "flag_changes")


def _flag_history(ctx: Context, incident: Incident, events: list[Event]) -> dict[str, Any]:
    declared = next((e for e in events if e.kind == "incident.declared"), None)
    data = (declared.data or {}) if declared else {}
    if data.get("security"):
        how = ("yes: type security" if data.get("type") == "security" else "yes: marked at declaration") + \
              f" by {ctx.people.label(declared.actor, declared.occurred_at)}"
    else:
        how = "no"
    flag, at_end, ever = bool(data.get("security")), bool(data.get("security")), bool(data.get("security"))
    changes = []
    for event in events:
        if event.kind != "incident.security_changed":
            continue
        flag = bool(event.data.get("to"))
        if clock.to_utc(event.recorded_at) < ctx.end:
            at_end, ever = flag, ever or flag
        changes.append(f"{clock.iso(event.occurred_at)} {'yes' if flag else 'no'} by "
                       f"{ctx.people.label(event.actor, event.occurred_at)}: {event.data.get('reason')}")
    return {"security_at_period_end": at_end, "security_now": incident.security, "flag_set_at_declaration": how,
            "flag_changes": "; ".join(changes) or None, "_ever": ever}


def write(ctx: Context) -> None:
    table = ctx.table("security_incidents", COLUMNS, section="E1/security",
                      description="Security incidents of the period: population incidents flagged as security "
                                  "incidents at any time up to the period end, with how the flag was set at "
                                  "declaration (type security, or the security checkbox) and every change (who, "
                                  "when, reason; `/incident security yes|no <reason>`)",
                      query=f"incidents with {ctx.period_text('declared_at')} whose security flag, folded from "
                            "incident.declared and incident.security_changed events recorded before "
                            f"{ctx.iso_end}, was true at any time; ordered by number")
    incidents = list(ctx.session.exec(select(Incident).where(Incident.exercise.is_(False),
                                                             Incident.declared_at >= ctx.start,
                                                             Incident.declared_at < ctx.end)
                                      .order_by(Incident.number)))
    streams = [incident.stream for incident in incidents]
    flagged: dict[str, list[Event]] = {}
    for offset in range(0, len(streams), CHUNK):
        query = (select(Event).where(Event.stream.in_(streams[offset:offset + CHUNK]),
                                     Event.kind.in_(("incident.declared", "incident.security_changed")))
                 .order_by(Event.stream, Event.stream_seq))
        for event in ctx.session.exec(query):
            flagged.setdefault(event.stream, []).append(event)
    for incident in incidents:
        history = _flag_history(ctx, incident, flagged.get(incident.stream, []))
        if not history.pop("_ever"):
            continue
        table.write({"key": incident.key, "title": incident.title, "type": incident.type,
                     "severity_final": incident.severity, "status": incident.status,
                     "declared_at": clock.iso(incident.declared_at), "declared_by": incident.declared_by,
                     "declared_by_name": ctx.people.name_column(incident.declared_by, incident.declared_at), **history})
    table.finish(ctx.sink)
