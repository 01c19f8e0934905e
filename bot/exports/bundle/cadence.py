"""Whether the status-update control operated (E4): per population incident, each time an update
was due, when it came, how late, and the reminders sent for it.

Folded from the incident's events: the first update is due at declaration + the severity's cadence;
each posted update sets the next due time (its own, or now + cadence); a snooze moves it; resolving
ends it. The cadence is the one in the configuration recorded in force at the time the due time was
set (declaration, severity change or update), else the settings at generation; each row names it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from collections.abc import Iterator
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config_evidence import CadenceInForce
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.context import Context
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents.models import Incident
from vigil_ir.people.columns import parse_when


CHUNK = 200
COLUMNS = ("incident_ref", "severity", "due_at", "due_because", "cadence", "cadence_source", "outcome", "update_posted_at", "update_posted_by",
           "update_posted_by_name", "minutes_late", "reminders_sent", "reminder_times")
KINDS = ("incident.declared", "incident.severity_changed", "incident.update_posted", "incident.update_snoozed",
         "incident.status_changed", "incident.update_reminded")


def rows_for(incident: Incident, events: list[Any], cadences: CadenceInForce, people,
             generated_at: datetime) -> list[dict]:
    reminders: dict[str, list[str]] = {}
    for event in events:
        if event.kind == "incident.update_reminded":
            reminders.setdefault(event.data.get("due_at"), []).append(clock.iso(event.recorded_at))
    severity = incident.initial_severity
    cadence, source = cadences.at(incident.declared_at, severity)
    due = clock.to_utc(incident.declared_at) + cadence if cadence else None
    because, explicit, rows = "declaration + cadence", False, []

    def row(outcome: str, event: Event | None = None) -> dict[str, Any]:
        late = None
        if event is not None and event.kind == "incident.update_posted":
            late = round(max((clock.to_utc(event.occurred_at) - due).total_seconds(), 0) / 60, 1)
        times = reminders.get(clock.iso(due), [])
        posted = event is not None and event.kind == "incident.update_posted"
        return {"incident_ref": incident.key, "severity": severity, "due_at": clock.iso(due), "due_because": because,
                "cadence": str(cadence) if cadence else None, "cadence_source": source, "outcome": outcome, "update_posted_at": clock.iso(event.occurred_at) if posted else None,
                "update_posted_by": event.actor if posted else None,
                "update_posted_by_name": people.name_column(event.actor, event.occurred_at) if posted else None,
                "minutes_late": late, "reminders_sent": len(times), "reminder_times": "; ".join(times) or None}

    for event in events:
        d = event.data or {}
        at = clock.to_utc(event.occurred_at)
        if event.kind == "incident.severity_changed":
            severity = d.get("to") or severity
            if not explicit:
                cadence, source = cadences.at(at, severity)
                due = clock.to_utc(incident.declared_at) + cadence if cadence else None
        elif event.kind == "incident.update_posted":
            if due is not None:
                rows.append(row("on time" if at <= due else "late", event))
            cadence, source = cadences.at(at, severity)
            due = parse_when(d.get("next_update_due")) or (at + cadence if cadence else None)
            because, explicit = f"set by the update of {clock.iso(at)}", True
        elif event.kind == "incident.update_snoozed" and due is not None:
            rows.append(row(f"snoozed to {d.get('until')} by {people.label(event.actor, event.occurred_at)}"))
            due, because, explicit = parse_when(d.get("until")), "snooze", True
        elif event.kind == "incident.status_changed" and d.get("to") == "resolved":
            if due is not None and due < at:
                rows.append(row("missed: resolved without an update after it was due"))
            due = None
    if due is not None and incident.is_open:
        rows.append(row("overdue at generation" if due < clock.to_utc(generated_at) else "not yet due"))
    return rows


def write(ctx: Context) -> None:
    cadences = CadenceInForce(ctx.session, Policy.from_settings(ctx.settings).update_cadence)
    table = ctx.table("update_cadence", COLUMNS, section="E4",
                      description="Status-update cadence per incident: each due time, the update that met it (when, by "
                                  "whom, minutes late), missed or snoozed dues, and the reminders sent for each",
                      query=f"incidents with {ctx.period_text('declared_at')}; folded from their incident.declared, "
                            "severity_changed, update_posted, update_snoozed, status_changed and update_reminded "
                            "events; cadence from the configuration recorded in force when each due time was set "
                            "(policy/config_versions.json), else the settings at generation")
    incidents = list(ctx.session.exec(select(Incident).where(Incident.exercise.is_(False),
                                                             Incident.declared_at >= ctx.start,
                                                             Incident.declared_at < ctx.end).order_by(Incident.number)))
    outcomes = Counter()  # the program review's cadence figures, from the same rows
    for row in cadence_rows(ctx.session, incidents, cadences, ctx.people, ctx.generated_at):
        table.write(row)
        outcomes[outcome_kind(row["outcome"])] += 1
    table.finish(ctx.sink)
    ctx.cadence_outcomes = outcomes


def outcome_kind(outcome: str) -> str:
    """What became of a due update, without its details: on time, late, missed, snoozed, overdue, not yet due."""
    for word in ("on time", "late", "missed", "snoozed", "overdue", "not yet due"):
        if outcome.startswith(word) or word in outcome.split(":")[0]:
            return word
    return outcome


def cadence_rows(session: Session, incidents: list[Incident], cadences: CadenceInForce, people,
                 generated_at: datetime) -> Iterator[dict]:
    """The rows of every incident in `incidents`, their events read a page of incidents at a time:
    plain rows of the columns the fold reads, not ORM events (less Python per event)."""
    table = Event.__table__
    for offset in range(0, len(incidents), CHUNK):
        page = incidents[offset:offset + CHUNK]
        grouped: dict[str, list[Any]] = {}
        query = (select(table.c.stream, table.c.kind, table.c.actor, table.c.occurred_at, table.c.recorded_at,
                        table.c.data)
                 .where(table.c.stream.in_([i.stream for i in page]), table.c.kind.in_(KINDS))
                 .order_by(table.c.stream, table.c.stream_seq))
        for event in session.connection().execute(query):
            grouped.setdefault(event.stream, []).append(event)
        for incident in page:
            yield from rows_for(incident, grouped.get(incident.stream, []), cadences, people, generated_at)
