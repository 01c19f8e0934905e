"""An incident's state as its events say it is, and the check that the `incident` table agrees.

The table is what Slack, the dashboard and the exports read; the event stream is what the chains and
witnesses protect. Folding each `incident:<n>` stream and comparing the result with its row makes an
edit of the table (a title, a severity, a lead changed in place) as detectable as an edit of an event:
`vigil verify` reports it like a broken chain, with the record, the field, and both values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from vigil_ir.eventlog.folding import (Mismatch, StateCheck, agrees, differences, is_time, iso, read_columns,
                                      rows_where_in, streams_without, walk)
from vigil_ir.incidents.models import STREAM_PREFIXES, Incident, key_of

# The columns a fold gives; the rest (Slack message and channel ts caches, the rendered summary, the
# next update due, which the reminder sweep recomputes) are views, not records.
FOLDED = ("title", "type", "security", "private", "exercise_kind", "scenario", "severity", "initial_severity",
          "status", "description",
          "declared_by", "detected_at", "origin_channel", "lead", "comms", "scribe", "channel_id", "customer_impact", "root_cause",
          "cause_category", "lessons_learned", "follow_ups")

__all__ = ["FOLDED", "IncidentFold", "Mismatch", "check_incidents", "fold"]


def new_state() -> dict[str, Any]:
    return {"lead": None, "comms": None, "scribe": None, "channel_id": None, "origin_channel": None,
            "customer_impact": "", "root_cause": "", "cause_category": None, "lessons_learned": "", "follow_ups": [],
            "exercise_kind": None, "scenario": "", "declared_at": None}


def apply(state: dict[str, Any], event: Any) -> None:
    """One event's effect on the incident's folded columns."""
    data = event.data or {}
    if event.kind == "incident.declared":
        state.update(title=data["title"], type=data["type"], security=bool(data["security"]),
                     private=bool(data.get("private", False)), severity=data["severity"],
                     initial_severity=data["severity"], status=data["status"],
                     description=data.get("description", ""), declared_by=event.actor,
                     detected_at=data["detected_at"], origin_channel=data.get("origin_channel"),
                     exercise_kind=(data.get("exercise") or {}).get("kind"),
                     scenario=(data.get("exercise") or {}).get("scenario", ""), declared_at=event.recorded_at)
    elif event.kind == "incident.detected_at_changed":
        state["detected_at"] = data["to"]
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
                     root_cause=data.get("root_cause", ""), cause_category=data.get("cause_category"),
                     lessons_learned=data.get("lessons_learned", ""), follow_ups=list(data.get("follow_ups") or []))


def fold(events: Iterable[Any]) -> dict[str, Any]:
    """The incident's folded columns from its events, in stream order."""
    state = new_state()
    for event in events:
        apply(state, event)
    return state


# What a compare reads of a row, in this order: its number and kind, then the columns it compares.
COMPARED = (*FOLDED, "declared_at")
READ = ("number", "exercise", *COMPARED)
TIMES = tuple(name for name in COMPARED if is_time(Incident.__table__.c[name]))


def row_values(row: Any) -> dict[str, Any]:
    """The compared columns of a row read as READ, its times in their exported form."""
    found = dict(zip(COMPARED, row[2:]))
    for name in TIMES:
        found[name] = iso(found[name])
    return found


def rows_of_incidents(session: Session, model: Any, numbers: list[int], *, exercise: bool) -> list[Any]:
    """`model`'s rows (its `incident_id` names their incident) of the incidents, or exercises, numbered
    `numbers`: plain rows of its columns (`read_columns`) and their incident's number, `incident_number`."""
    return session.execute(_of_incidents(model.__table__, exercise), {"numbers": numbers}).all()


@functools.cache
def _of_incidents(table: Any, exercise: bool) -> Any:
    # Built once (a PIR and a playbook compare run it each batch: building it cost more than running it).
    incident = Incident.__table__
    return (sa_select(incident.c.number.label("incident_number"), *read_columns(table))
            .join_from(incident, table, table.c.incident_id == incident.c.id)
            .where(incident.c.number.in_(bindparam("numbers", expanding=True)), incident.c.exercise.is_(exercise)))


def number_of(stream: str) -> int:
    return int(stream.partition(":")[2])


class IncidentFold:
    """The `incident` table against the `incident:<n>` streams (or, with `exercise`, the exercise rows
    against the `exercise:<n>` streams). `declared_at` is the row's own clock reading, a moment before
    the `incident.declared` event's: compared within CLOCK_SKEW."""

    kinds = frozenset({"incident.declared", "incident.status_changed", "incident.severity_changed",
                       "incident.security_changed", "incident.role_assigned", "incident.channel_created",
                       "incident.closed", "incident.detected_at_changed"})

    def __init__(self, exercise: bool = False):
        self.exercise, self.prefix = exercise, STREAM_PREFIXES[exercise]

    def new(self, stream: str) -> dict[str, Any]:
        return new_state()

    def apply(self, state: dict[str, Any], event: Any) -> None:
        apply(state, event)

    def compare(self, session: Session, finished: dict[str, dict[str, Any]]) -> Iterable[Mismatch]:
        numbers = [number_of(stream) for stream in finished]
        # An incident and an exercise may share a number: keep the rows of this fold's kind.
        rows = {incident.number: incident for incident in rows_where_in(session, Incident, "number", numbers, READ)
                if incident.exercise == self.exercise}
        for stream, expected in finished.items():
            key = key_of(number_of(stream), self.exercise)
            incident = rows.get(number_of(stream))
            if incident is None:
                yield Mismatch(key, "row", "an incident row", "none (the row was removed)")
                continue
            declared_at = expected["declared_at"]
            found, times = row_values(incident), {"declared_at": declared_at} if declared_at else None
            if not agrees(expected, found, FOLDED, times):  # field by field only to name what differs
                yield from differences(key, {name: expected.get(name) for name in FOLDED}, found, times)

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]:
        for number in session.exec(select(Incident.number).where(Incident.exercise.is_(self.exercise),
                                                                 streams_without(Incident.number, self.prefix))):
            yield Mismatch(key_of(number, self.exercise), "events", "its event stream", "none (a row without any event)")


def check_incidents(session: Session) -> list[Mismatch]:
    """Every difference between the `incident` rows and their folded streams (an empty list: they agree)."""
    check = StateCheck(session, [IncidentFold(), IncidentFold(exercise=True)])
    for event in walk(session, list(STREAM_PREFIXES.values())):
        check.feed(event)
    return check.finish()
