"""Follow-up records as their events say they are: actions (`action:<n>`) and post-incident reviews.

An action's `action.created` event carries its full state and every later event its changes, so the
fold is exact for every column. A PIR's life is on its incident's stream (`pir.scheduled`,
`pir.completed`); its `created_at` and `completed_at` are the row's own clock readings, compared
with those events' times within CLOCK_SKEW.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, select

from vigil_ir.eventlog.folding import Mismatch, differences, iso, rows_where_in, streams_without
from vigil_ir.followup.actions import FIELDS as ACTION_FIELDS
from vigil_ir.followup.actions import snapshot
from vigil_ir.followup.models import ActionItem, PostIncidentReview
from vigil_ir.followup.pir import TEXT_FIELDS
from vigil_ir.incidents.fold import rows_of_incidents
from vigil_ir.incidents.models import STREAM_PREFIXES, key_of

ACTION_PREFIX = "action:"
PIR_FIELDS = ("required", "due_at", "facilitator", "status", "held_at", "attendees", *TEXT_FIELDS,
              "plan_change_needed", "completed_by")


class ActionFold:
    prefix = ACTION_PREFIX
    kinds = None  # every event on an action's stream may carry changes

    def new(self, stream: str) -> dict[str, Any]:
        return {"state": None}

    def apply(self, state: dict[str, Any], event: Any) -> None:
        data = event.data or {}
        if event.kind == "action.created":
            state["state"] = dict(data["state"])
        elif state["state"] is not None and data.get("changes"):
            state["state"].update({name: change["to"] for name, change in data["changes"].items()})

    def compare(self, session: Session, finished: dict[str, dict[str, Any]]) -> Iterable[Mismatch]:
        numbers = [int(stream.removeprefix(ACTION_PREFIX)) for stream in finished]
        rows = {action.number: action for action in
                rows_where_in(session, ActionItem, "number", numbers)}
        for stream, folded in finished.items():
            key = f"ACT-{stream.removeprefix(ACTION_PREFIX)}"
            action = rows.get(int(stream.removeprefix(ACTION_PREFIX)))
            if action is None:
                yield Mismatch(key, "row", "an action row", "none (the row was removed)")
            elif folded["state"] is None:
                yield Mismatch(key, "created", "a action.created event", "none in its stream")
            else:
                yield from differences(key, {name: folded["state"].get(name) for name in ACTION_FIELDS},
                                       snapshot(action))

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]:
        query = select(ActionItem.number).where(streams_without(ActionItem.number, ACTION_PREFIX))
        for number in session.exec(query):
            yield Mismatch(f"ACT-{number}", "events", "its event stream", "none (a row without any event)")


class PirFold:
    """The `post_incident_review` row of each incident (or, with `exercise`, exercise) against its
    `pir.*` events."""

    kinds = frozenset({"pir.scheduled", "pir.completed"})

    def __init__(self, exercise: bool = False):
        self.exercise, self.prefix = exercise, STREAM_PREFIXES[exercise]

    def new(self, stream: str) -> dict[str, Any]:
        return {"pir": None, "times": {}}

    def apply(self, state: dict[str, Any], event: Any) -> None:
        data = event.data or {}
        if event.kind == "pir.scheduled":
            state["pir"] = {"required": data["required"], "due_at": data["due_at"], "facilitator": data["facilitator"],
                            "status": "pending", "held_at": None, "attendees": [],
                            **{name: "" for name in TEXT_FIELDS}, "plan_change_needed": False, "completed_by": None}
            state["times"] = {"created_at": event.recorded_at, "completed_at": None}
        elif event.kind == "pir.completed" and state["pir"] is not None:
            state["pir"].update(status="completed", held_at=data["held_at"], attendees=list(data["attendees"]),
                                plan_change_needed=data["plan_change_needed"], completed_by=event.actor,
                                **{name: data.get(name, "") for name in TEXT_FIELDS})
            state["times"]["completed_at"] = event.recorded_at

    def compare(self, session: Session, finished: dict[str, dict[str, Any]]) -> Iterable[Mismatch]:
        numbers = [int(stream.removeprefix(self.prefix)) for stream in finished]
        rows = {row.incident_number: row
                for row in rows_of_incidents(session, PostIncidentReview, numbers, exercise=self.exercise)}
        for stream, folded in finished.items():
            number = int(stream.removeprefix(self.prefix))
            record, row = f"PIR of {key_of(number, self.exercise)}", rows.get(number)
            if folded["pir"] is None and row is None:
                continue
            if row is None:
                yield Mismatch(record, "row", "a post-incident review row", "none (the row was removed)")
            elif folded["pir"] is None:
                yield Mismatch(record, "events", "a pir.scheduled event", "none (a row no event mentions)")
            else:
                found = {name: iso(getattr(row, name)) for name in (*PIR_FIELDS, "created_at", "completed_at")}
                yield from differences(record, folded["pir"], found, folded["times"])

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]:
        return ()  # a PIR belongs to an incident row; an incident row without events is reported by its fold
