"""An incident's state as its events say it is, and the check that the `incident` table agrees.

The table is what Slack, the dashboard and the exports read; the event stream is what the chains and
witnesses protect. Folding each `incident:<n>` stream and comparing the result with its row makes an
edit of the table (a title, a severity, a lead changed in place) as detectable as an edit of an event:
`vigil verify` reports it like a broken chain, with the record, the field, and both values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog.models import Event
from vigil_ir.incidents.models import Incident

# The columns a fold gives; the rest (Slack message ts, the rendered summary…) are views, not records.
# `declared_at` is left out: the row takes the clock a moment before the event does (microseconds
# apart), and the `incident.declared` event's own recorded_at is what exports and packets report.
FOLDED = ("title", "type", "security", "private", "severity", "initial_severity", "status", "description",
          "declared_by", "detected_at", "lead", "comms", "scribe", "channel_id", "customer_impact", "root_cause",
          "lessons_learned")
STREAM_PREFIX = "incident:"


@dataclass(frozen=True)
class Mismatch:
    record: str
    field: str
    expected: Any
    found: Any

    def describe(self) -> str:
        return (f"{self.record}: the state row's {self.field} differs from its events "
                f"(events say {self.expected!r}, the row has {self.found!r})")


def fold(events: list[Event]) -> dict[str, Any]:
    """The incident's folded columns from its events, in stream order."""
    state: dict[str, Any] = {"lead": None, "comms": None, "scribe": None, "channel_id": None,
                             "customer_impact": "", "root_cause": "", "lessons_learned": ""}
    for event in events:
        data = event.data or {}
        if event.kind == "incident.declared":
            state.update(title=data["title"], type=data["type"], security=bool(data["security"]),
                         private=bool(data.get("private", False)),
                         severity=data["severity"], initial_severity=data["severity"], status=data["status"],
                         description=data.get("description", ""), declared_by=event.actor,
                         detected_at=data["detected_at"])
        elif event.kind == "incident.status_changed":
            state["status"] = data["to"]
        elif event.kind == "incident.severity_changed":
            state["severity"] = data["to"]
        elif event.kind == "incident.security_changed":
            state["security"] = bool(data["to"])
        elif event.kind == "incident.role_assigned":
            state[data["role"]] = data["to"]
        elif event.kind == "incident.channel_created":
            state["channel_id"] = data["channel"]
        elif event.kind == "incident.closed":
            state.update(status="closed", customer_impact=data.get("customer_impact", ""),
                         root_cause=data.get("root_cause", ""), lessons_learned=data.get("lessons_learned", ""))
    return state


def _row_value(incident: Incident, name: str) -> Any:
    value = getattr(incident, name)
    return clock.iso(value) if isinstance(value, datetime) else value


def _streams(session: Session, batch: int = 2000) -> Iterator[tuple[str, list[Event]]]:
    """Each incident stream's events, stream by stream, read in pages (one stream in memory at a time)."""
    current, events, last = None, [], (None, 0)
    while True:
        query = (select(Event).where(Event.stream.startswith(STREAM_PREFIX))
                 .order_by(Event.stream, Event.stream_seq).limit(batch))
        if last[0] is not None:
            query = query.where((Event.stream > last[0]) | ((Event.stream == last[0]) & (Event.stream_seq > last[1])))
        page = list(session.exec(query))
        if not page:
            break
        for event in page:
            if event.stream != current:
                if current is not None:
                    yield current, events
                current, events = event.stream, []
            events.append(event)
        last = (page[-1].stream, page[-1].stream_seq)
        session.expunge_all()
    if current is not None:
        yield current, events


def check_incidents(session: Session) -> list[Mismatch]:
    """Every difference between the `incident` rows and their folded streams (an empty list: they agree)."""
    rows = {f"{STREAM_PREFIX}{incident.number}": {name: _row_value(incident, name) for name in FOLDED}
            for incident in session.exec(select(Incident))}
    mismatches = []
    for stream, events in _streams(session):
        key = f"INC-{stream.removeprefix(STREAM_PREFIX)}"
        row = rows.pop(stream, None)
        if row is None:
            mismatches.append(Mismatch(key, "row", "an incident row", "none (the row was removed)"))
            continue
        expected = fold(events)
        mismatches += [Mismatch(key, name, expected.get(name), row[name]) for name in FOLDED
                       if expected.get(name) != row[name]]
    mismatches += [Mismatch(f"INC-{stream.removeprefix(STREAM_PREFIX)}", "events", "its event stream",
                            "none (a row without any event)") for stream in rows]
    return mismatches
