"""The incident population for a period (E1): the list an auditor samples from.

Incidents declared in [start, end), in key order. Milestones come from each incident's events,
loaded for the whole period in a few chunked queries rather than one query per incident.
Time to declare counts from detection, to acknowledge from declaration, to mitigate and resolve
from detection
(vigil_ir.incidents.queries.Milestones).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Text, case, cast, null
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.stored import rows_by_stream, time_text
from vigil_ir.exports import csvsafe
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.queries import declared_between, milestones
from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, add_names, with_name_columns

FORMATS = ("json", "csv")
# Each id column has a name column beside it: the declarer's name when they declared, the closer's
# when they closed, the current lead's as at generation.
PEOPLE = (PersonColumn("lead"), PersonColumn("declared_by", at="declared_at"), PersonColumn("closed_by", at="closed_at"))
# `private`: a private incident is in every population, marked, never left out (its members see it in
# Slack; an auditor is entitled to the whole population).
BASE_COLUMNS = ("key", "title", "type", "security", "private", "severity_initial", "severity_final", "status",
           "declared_at", "detected_at", "acknowledged_at", "mitigated_at", "resolved_at", "closed_at",
           "lead", "declared_by", "closed_by", "channel_id", "channel_name", "customer_impact",
           "root_cause", "cause_category", "minutes_to_declare", "minutes_to_acknowledge", "minutes_to_mitigate",
           "minutes_to_resolve", "closed_with_open_items", "close_override_reason",
           # Alerts linked and pages sent (docs/integrations.md): acknowledgement counts from the first page.
           "alerts", "first_alert_at", "pages", "paged_at", "page_acknowledged_at", "minutes_to_page_acknowledge")
COLUMNS = with_name_columns(BASE_COLUMNS, PEOPLE)
# Streams per IN (...) query: well under SQLite's bound-parameter limit.
CHUNK = 500
STREAMS_AT_ONCE = 100  # incidents whose events are in memory at a time


# The kinds whose data a row reads (vigil_ir.incidents.queries.milestones, close_override).
KINDS_READ = ("incident.role_assigned", "incident.status_changed", "incident.closed")


class MilestoneEvent(NamedTuple):
    """What a population row reads of an event, under Event's attribute names; `data` only for
    KINDS_READ (None for the others), parsed when asked for."""

    stream: str
    kind: str
    actor: str
    occurred_text: str
    recorded_text: str
    data_text: str | None

    @property
    def data(self) -> Any:
        return None if self.data_text is None else json.loads(self.data_text)

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.occurred_text)

    @property
    def recorded_at(self) -> datetime:
        return datetime.fromisoformat(self.recorded_text)


def _events_by_stream(session: Session, streams: list[str]) -> dict[str, list[MilestoneEvent]]:
    """Each stream's events in seq order, only the columns a row reads: no hashes, no ORM object, and
    the data of the few kinds that need it (a year's incidents hold hundreds of thousands of notes)."""
    table = Event.__table__
    dialect = session.get_bind().dialect.name
    columns = (table.c.stream, table.c.kind, table.c.actor, time_text(table.c.occurred_at, dialect),
               time_text(table.c.recorded_at, dialect),
               case((table.c.kind.in_(KINDS_READ), cast(table.c.data, Text)), else_=null()))
    return rows_by_stream(session, streams, columns, MilestoneEvent._make, per_query=CHUNK)


def close_override(events: list[Event]) -> tuple[str | None, str | None]:
    """(open items, reason) when the incident was closed with required steps or deadlines still open."""
    close = next((e for e in reversed(events) if e.kind == "incident.closed"), None)
    data = (close.data or {}) if close is not None else {}
    items = [str(item) for item in data.get("open_items") or []]
    return ("; ".join(items) or None, data.get("override_reason") if items else None)


def population_row(incident: Incident, events: list[Event], people: Directory,
                   links: dict[int, tuple[int, Any, int]] | None = None) -> dict[str, Any]:
    m = milestones(incident, events)
    alerts, first_alert, pages = (links or {}).get(incident.id, (0, None, 0))
    open_items, override_reason = close_override(events)
    return add_names({"key": incident.key, "title": incident.title, "type": incident.type,
            "security": incident.security, "private": incident.private,
            "severity_initial": incident.initial_severity,
            # For an incident still open, "final" is the severity at export time.
            "severity_final": incident.severity, "status": incident.status,
            "declared_at": clock.iso(m.declared), "detected_at": clock.iso(m.detected),
            "acknowledged_at": clock.iso(m.acknowledged), "mitigated_at": clock.iso(m.mitigated),
            "resolved_at": clock.iso(m.resolved), "closed_at": clock.iso(m.closed),
            "lead": incident.lead, "declared_by": incident.declared_by, "closed_by": m.closed_by,
            "channel_id": incident.channel_id, "channel_name": incident.channel_name,
            "customer_impact": incident.customer_impact, "root_cause": incident.root_cause,
            "cause_category": incident.cause_category,
            "minutes_to_declare": m.minutes_to_declare, "minutes_to_acknowledge": m.minutes_to_acknowledge,
            "minutes_to_mitigate": m.minutes_to_mitigate, "minutes_to_resolve": m.minutes_to_resolve,
            "closed_with_open_items": open_items, "close_override_reason": override_reason,
            "alerts": alerts, "first_alert_at": clock.iso(first_alert), "pages": pages,
            "paged_at": clock.iso(m.paged), "page_acknowledged_at": clock.iso(m.page_acknowledged),
            "minutes_to_page_acknowledge": m.minutes_to_page_acknowledge},
                     people, PEOPLE)


def incident_population(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One row per incident declared in [start, end) (aware or naive-as-UTC bounds), keys = COLUMNS."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    incidents = declared_between(session, start, end)
    people = Directory.load(session)
    links = alerts_and_pages(session, [incident.id for incident in incidents])
    rows = []
    for offset in range(0, len(incidents), STREAMS_AT_ONCE):  # a year's events are not held at once
        chunk = incidents[offset:offset + STREAMS_AT_ONCE]
        events = _events_by_stream(session, [incident.stream for incident in chunk])
        rows += [population_row(incident, events.get(incident.stream, []), people, links) for incident in chunk]
    return rows


def alerts_and_pages(session: Session, incident_ids: list[int]) -> dict[int, tuple[int, Any, int]]:
    """Per incident id: (alerts linked, the earliest one's start, pages sent), a few grouped queries."""
    from sqlalchemy import func

    from vigil_ir.alerts.models import Alert, AlertGroup
    from vigil_ir.paging.models import Page

    found: dict[int, list] = defaultdict(lambda: [0, None, 0])
    for offset in range(0, len(incident_ids), CHUNK):
        chunk = incident_ids[offset:offset + CHUNK]
        for incident_id, count, first in session.exec(
                select(AlertGroup.incident_id, func.count(Alert.id), func.min(Alert.starts_at))
                .join(Alert, Alert.group_id == AlertGroup.id).where(AlertGroup.incident_id.in_(chunk))
                .group_by(AlertGroup.incident_id)):
            found[incident_id][0:2] = [count, first]
        for incident_id, count in session.exec(select(Page.incident_id, func.count(Page.id))
                                               .where(Page.incident_id.in_(chunk)).group_by(Page.incident_id)):
            found[incident_id][2] = count
    return {incident_id: tuple(values) for incident_id, values in found.items()}


def render_population(rows: list[dict[str, Any]], fmt: str) -> str:
    """`json`: a list of objects with COLUMNS as keys, in order; `csv`: header + rows (no BOM)."""
    if fmt == "json":
        return json.dumps([{name: row[name] for name in COLUMNS} for row in rows],
                          indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return csvsafe.to_csv(COLUMNS, rows)
    raise ValueError(f"Unknown population format {fmt!r}; choose one of {', '.join(FORMATS)}.")
