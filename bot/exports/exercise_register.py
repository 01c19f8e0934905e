"""The exercise register (CC7.5): one row per exercise held in a period, the evidence that the
response plans are tested.

An exercise is an incident row marked `exercise` (docs/architecture.md, "Exercises"), so its story is
its `exercise:<n>` event stream. Each row says when it was held, its kind and scenario, who took part
(as people: "Name (U…)"), the playbooks followed (id, version, SHA-256) with the steps done, skipped and
left open, what its close recorded (the impact summary, root cause and lessons learned: the findings),
and the follow-up actions it raised. Every column but the names and the actions is folded from the
stream alone (`facts`), which is how `verify --bundle` recomputes it from the bundle's
`exercise_events`; the actions are checked against `action_items`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import events_for_stream
from vigil_ir.exports import csvsafe
from vigil_ir.followup.models import ActionItem
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.queries import declared_between
from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, add_names
from vigil_ir.people.ids import is_user_id

FORMATS = ("csv", "json")
RULE = "declared in the period as an exercise"
PEOPLE = (PersonColumn("declared_by", at="held_at"), PersonColumn("lead"))
COLUMNS = ("exercise_ref", "held_at", "kind", "title", "scenario", "type", "severity", "status",
           "declared_by", "declared_by_name", "lead", "lead_name", "participants", "participant_names",
           "playbooks", "steps_done", "steps_skipped", "steps_open", "closed_at", "close_summary", "root_cause",
           "findings", "actions_raised", "event_count", "chain_head_hash")


def facts(events: Iterable[Any]) -> dict[str, Any]:
    """The register's columns that an exercise's events give, folded in stream order.

    Participants: everyone who acted on the stream, was given a role or a playbook step, or attended
    its post-incident review, in the order they first appear. Steps: each step of each attached
    playbook by its latest state (done, skipped, or open again after an undo)."""
    found: dict[str, Any] = {"kind": None, "scenario": None, "title": None, "type": None, "severity": None,
                             "status": None, "declared_by": None, "lead": None, "closed_at": None,
                             "close_summary": None, "root_cause": None, "findings": None,
                             "event_count": 0, "chain_head_hash": None}
    people: list[str] = []
    playbooks: list[str] = []
    steps: dict[str, str] = {}

    def took_part(user: Any) -> None:
        if is_user_id(user) and user not in people:
            people.append(user)

    for event in events:
        kind, data = event.kind, event.data or {}
        took_part(event.actor)
        if kind == "incident.declared":
            exercise = data.get("exercise") or {}
            found.update(kind=exercise.get("kind"), scenario=exercise.get("scenario"), title=data.get("title"),
                         type=data.get("type"), severity=data.get("severity"), status=data.get("status"),
                         declared_by=event.actor)
        elif kind == "incident.status_changed":
            found["status"] = data.get("to")
        elif kind == "incident.severity_changed":
            found["severity"] = data.get("to")
        elif kind in ("incident.role_assigned", "playbook.step_assigned"):
            took_part(data.get("to"))
            if kind == "incident.role_assigned" and data.get("role") == "lead":
                found["lead"] = data.get("to")
        elif kind == "incident.closed":
            found.update(status="closed", closed_at=clock.iso(event.recorded_at),
                         close_summary=data.get("customer_impact"), root_cause=data.get("root_cause"),
                         findings=data.get("lessons_learned"))
        elif kind == "pir.completed":
            for user in data.get("attendees") or []:
                took_part(user)
        elif kind == "playbook.attached":
            playbooks.append(f"{data.get('playbook_id')} v{data.get('version')} sha256:{data.get('sha256')}")
            steps.update({f"{data.get('run_id')}:{step}": "open" for step in data.get("steps") or []})
        elif kind in ("playbook.step_completed", "playbook.step_skipped", "playbook.step_reopened"):
            state = {"playbook.step_completed": "done", "playbook.step_skipped": "skipped"}.get(kind, "open")
            steps[f"{data.get('run_id')}:{data.get('step_id')}"] = state
        found["event_count"] += 1
        found["chain_head_hash"] = event.hash
    states = list(steps.values())
    found.update(participants=" ".join(people) or None, playbooks="; ".join(playbooks) or None,
                 steps_done=states.count("done"), steps_skipped=states.count("skipped"),
                 steps_open=states.count("open"))
    return found


def register_row(exercise: Incident, events: list[Any], actions: list[ActionItem], people: Directory) -> dict[str, Any]:
    folded = facts(events)
    held = exercise.declared_at
    row = {"exercise_ref": exercise.key, "held_at": clock.iso(held), **folded,
           "participant_names": "; ".join(people.labels((folded["participants"] or "").split(), held)) or None,
           "actions_raised": "; ".join(action.key for action in actions) or None}
    add_names(row, people, PEOPLE)
    return {name: row[name] for name in COLUMNS}


def actions_of(session: Session, exercise: Incident) -> list[ActionItem]:
    return list(session.exec(select(ActionItem).where(ActionItem.incident_id == exercise.id)
                             .order_by(ActionItem.number)))


def exercise_rows(session: Session, start: datetime, end: datetime, people: Directory | None = None) -> list[dict[str, Any]]:
    """The register of [start, end): every exercise declared in it, in key order."""
    people = people or Directory.load(session)
    return [register_row(exercise, events_for_stream(session, exercise.stream), actions_of(session, exercise), people)
            for exercise in declared_between(session, clock.to_utc(start), clock.to_utc(end), exercises=True)]


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return csvsafe.to_csv(COLUMNS, rows)
    raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
