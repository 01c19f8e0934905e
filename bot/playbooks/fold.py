"""Playbook runs as their incident's events say they are: the run, each step's progress, each deadline.

`playbook.attached` names the playbook (id, version, title, SHA-256 of the file followed) and which
steps and deadlines the run has; the step and deadline events carry each change. A step's
definition (phase, title, instructions, role, due time) is rendered from the run's stored playbook
`content`, whose SHA-256 is checked against the attached event, so it is not folded twice. Not
compared, because it is not evidence: `checklist_ts`, the Slack message the checklist is shown in.
Clock readings (`attached_at`, a step's `completed_at`, a decision's `resolved_at`) are compared with
their events' times within CLOCK_SKEW.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from vigil_ir.eventlog.folding import Mismatch, differences, iso, rows_where_in
from vigil_ir.incidents.fold import rows_of_incidents
from vigil_ir.incidents.models import STREAM_PREFIXES, key_of
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep

RUN_FIELDS = ("playbook_id", "version", "title", "sha256", "attached_by")
STEP_FIELDS = ("status", "assignee", "completed_by", "evidence_text", "skip_reason")
DEADLINE_FIELDS = ("status", "decision", "decision_reason", "decided_by")


class PlaybookFold:
    """The runs of incidents (`incident:<n>`), or with `exercise` of exercises (`exercise:<n>`)."""

    kinds = frozenset({"playbook.attached", "playbook.step_completed", "playbook.step_skipped",
                       "playbook.step_assigned", "playbook.step_reopened", "playbook.deadline_started",
                       "playbook.deadline_met", "playbook.deadline_missed", "playbook.deadline_decided"})

    def __init__(self, exercise: bool = False):
        self.exercise, self.prefix = exercise, STREAM_PREFIXES[exercise]

    def new(self, stream: str) -> dict[str, Any]:
        return {"runs": {}}

    def apply(self, state: dict[str, Any], event: Any) -> None:
        if not event.kind.startswith("playbook."):
            return
        data, at = event.data or {}, event.recorded_at
        if event.kind == "playbook.attached":
            state["runs"][data["run_id"]] = {
                "run": {"playbook_id": data["playbook_id"], "version": data["version"], "title": data["title"],
                        "sha256": data["sha256"], "attached_by": event.actor},
                "attached_at": at,
                "steps": {step: {"status": "open", "assignee": None, "completed_by": None, "evidence_text": None,
                                 "skip_reason": None, "times": {"completed_at": None}} for step in data["steps"]},
                "deadlines": {deadline: {"status": "pending", "decision": None, "decision_reason": None,
                                         "decided_by": None, "times": {}} for deadline in data["deadlines"]}}
            return
        run = state["runs"].get(data.get("run_id"))
        if run is None:
            return
        step = run["steps"].setdefault(data["step_id"], {"times": {}}) if "step_id" in data else None
        deadline = run["deadlines"].setdefault(data["deadline_id"], {"times": {}}) if "deadline_id" in data else None
        if event.kind == "playbook.step_completed":
            step.update(status="done", completed_by=event.actor, evidence_text=data.get("evidence"), skip_reason=None)
            step["times"] = {"completed_at": at}
        elif event.kind == "playbook.step_skipped":
            step.update(status="skipped", completed_by=event.actor, skip_reason=data["reason"], evidence_text=None)
            step["times"] = {"completed_at": at}
        elif event.kind == "playbook.step_assigned":
            step["assignee"] = data["to"]
        elif event.kind == "playbook.step_reopened":
            step.update(status="open", completed_by=None, evidence_text=None, skip_reason=None)
            step["times"] = {"completed_at": None}
        elif event.kind == "playbook.deadline_started":
            deadline["due_at"] = data["due_at"]
        elif event.kind in ("playbook.deadline_met", "playbook.deadline_missed"):
            deadline.update(status=event.kind.removeprefix("playbook.deadline_"), due_at=data["due_at"],
                            resolved_at=data["at"])
        elif event.kind == "playbook.deadline_decided":
            deadline.update(status="decided", due_at=data["due_at"], decision=data["decision"],
                            decision_reason=data["reason"], decided_by=event.actor)
            deadline["times"] = {"resolved_at": at}

    def compare(self, session: Session, finished: dict[str, dict[str, Any]]) -> Iterable[Mismatch]:
        numbers = [int(stream.removeprefix(self.prefix)) for stream in finished]
        runs: dict[int, dict[int, Any]] = {}
        for run in rows_of_incidents(session, PlaybookRun, numbers, exercise=self.exercise):
            runs.setdefault(run.incident_number, {})[run.id] = run
        ids = [run_id for by_id in runs.values() for run_id in by_id]
        steps: dict[int, dict[str, PlaybookStep]] = {}
        for step in rows_where_in(session, PlaybookStep, "run_id", ids):
            steps.setdefault(step.run_id, {})[step.step_id] = step
        deadlines: dict[int, dict[str, PlaybookDeadline]] = {}
        for deadline in rows_where_in(session, PlaybookDeadline, "run_id", ids):
            deadlines.setdefault(deadline.run_id, {})[deadline.deadline_id] = deadline
        for stream, folded in finished.items():
            number = int(stream.removeprefix(self.prefix))
            key, rows = key_of(number, self.exercise), runs.get(number, {})
            for run_id, expected in folded["runs"].items():
                yield from self._run(f"{key} playbook run {run_id}", expected, rows.pop(run_id, None),
                                     steps.get(run_id, {}), deadlines.get(run_id, {}))
            for run_id in rows:
                yield Mismatch(f"{key} playbook run {run_id}", "events", "its playbook.attached event",
                               "none (a row no event mentions)")

    def _run(self, record: str, expected: dict[str, Any], run: Any,
             steps: dict[str, PlaybookStep], deadlines: dict[str, PlaybookDeadline]) -> Iterable[Mismatch]:
        if run is None:
            yield Mismatch(record, "row", "a playbook run row", "none (the row was removed)")
            return
        found = {name: getattr(run, name) for name in RUN_FIELDS}
        found["attached_at"] = iso(run.attached_at)
        yield from differences(record, expected["run"], found, {"attached_at": expected["attached_at"]})
        content = hashlib.sha256(run.content.encode("utf-8")).hexdigest()
        if content != expected["run"]["sha256"]:
            yield Mismatch(record, "content", f"the playbook file with SHA-256 {expected['run']['sha256']}",
                           f"content with SHA-256 {content}")
        for kind, rows, folded, fields in (("step", steps, expected["steps"], STEP_FIELDS),
                                           ("deadline", deadlines, expected["deadlines"], DEADLINE_FIELDS)):
            rows = dict(rows)
            for name, want in folded.items():
                label, row = f"{record} {kind} {name}", rows.pop(name, None)
                if row is None:
                    yield Mismatch(label, "row", f"a {kind} row", "none (the row was removed)")
                    continue
                exact = {field: want.get(field) for field in fields}
                for field in ("due_at", "resolved_at"):  # carried by deadline events, when one happened
                    if field in want:
                        exact[field] = want[field]
                times = want.get("times", {})
                found = {field: iso(getattr(row, field)) for field in (*exact, *times)}
                yield from differences(label, exact, found, times)
            for name in rows:
                yield Mismatch(f"{record} {kind} {name}", "events", f"the {kind} in its run's events",
                               "none (a row no event mentions)")

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]:
        return ()  # runs belong to incident rows, whose fold reports rows without events
