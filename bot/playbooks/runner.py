"""Running a playbook on an incident: attach, complete, skip, assign, reopen; deadline clocks.

Every function changes the run's rows and appends one event (or a few, e.g. a completion that
also meets a deadline) on the incident's stream, in the caller's transaction. Functions raise
`IncidentError` with a message for the person who asked, before changing anything.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.service import IncidentError
from vigil_ir.playbooks.durations import add_duration, parse_duration
from vigil_ir.playbooks.loader import PlaybookFile
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep
from vigil_ir.playbooks.render import incident_facts, render_instructions

URL = re.compile(r"^https?://\S+$")
EVIDENCE_MAX = 2000


class StepAlreadyHandled(IncidentError):
    """A stale button or a double click: says who already handled it and when."""

    def __init__(self, what: str, by: str | None = None, at: datetime | None = None):
        self.what, self.by, self.at = what, by, at
        super().__init__(what + (f" by {by}" if by else "") + (f" at {clock.iso(at)}" if at else "") + ".")


def _event(session: Session, incident: Incident, kind: str, actor: str, data: dict,
           corrects: int | None = None) -> Event:
    return append(session, stream=incident.stream, kind=kind, actor=actor, data=data, corrects=corrects)


def _step_data(run: PlaybookRun, step: PlaybookStep) -> dict:
    return {"run_id": run.id, "playbook_id": run.playbook_id, "version": run.version,
            "step_key": f"{run.id}:{step.step_id}", "step_id": step.step_id, "title": step.title}


def attach(session: Session, *, incident: Incident, actor: str, file: PlaybookFile) -> PlaybookRun:
    if incident.status == "closed":
        raise IncidentError(f"{incident.key} is closed; playbooks can no longer be attached.")
    existing = session.exec(select(PlaybookRun).where(PlaybookRun.incident_id == incident.id,
                                                      PlaybookRun.playbook_id == file.playbook.id)).first()
    if existing is not None:
        raise StepAlreadyHandled(f"{file.playbook.title} is already attached to {incident.key}",
                                 existing.attached_by, existing.attached_at)
    playbook, now, facts = file.playbook, clock.now(), incident_facts(incident)
    run = PlaybookRun(incident_id=incident.id, playbook_id=playbook.id, version=playbook.version,
                      title=playbook.title, sha256=file.sha256, content=file.text, attached_by=actor,
                      attached_at=now)
    session.add(run)
    session.flush()
    included, excluded = [], []
    for position, (phase, step) in enumerate(playbook.iter_steps()):
        if not step.applies(facts):
            excluded.append(step.id)
            continue
        included.append(step.id)
        session.add(PlaybookStep(
            run_id=run.id, step_id=step.id, phase_id=phase.id, phase_title=phase.title, position=position,
            title=step.title, instructions=render_instructions(step.instructions or "", facts), role=step.role,
            required=step.required, evidence=step.evidence,
            due_at=now + step.due_after if step.due_after else None))
    for deadline in playbook.deadlines:
        session.add(_new_deadline(run, deadline, incident, now))
    session.flush()
    _event(session, incident, "playbook.attached", actor, {
        "run_id": run.id, "playbook_id": playbook.id, "version": playbook.version, "title": playbook.title,
        "sha256": file.sha256, "steps": included, "not_applicable": excluded,
        "deadlines": [d.id for d in playbook.deadlines]})
    return run


def _new_deadline(run: PlaybookRun, deadline, incident: Incident, now: datetime) -> PlaybookDeadline:
    starts = {"detected_at": incident.detected_at, "declared_at": incident.declared_at, "attached_at": now}
    row = PlaybookDeadline(run_id=run.id, deadline_id=deadline.id, label=deadline.label,
                           duration=deadline.duration_text, business_days=deadline.business_days,
                           starts_from=deadline.from_, met_by=deadline.met_by)
    if deadline.from_ in starts:
        _start_clock(row, starts[deadline.from_])
    return row


def _start_clock(deadline: PlaybookDeadline, at: datetime) -> None:
    deadline.starts_at = clock.to_utc(at)
    deadline.due_at = add_duration(deadline.starts_at, parse_duration(deadline.duration), deadline.business_days)


def _require_open_incident(incident: Incident) -> None:
    if incident.status == "closed":
        raise IncidentError(f"{incident.key} is closed; its checklist can no longer change.")


def require_open_step(step: PlaybookStep) -> None:
    if step.status == "done":
        raise StepAlreadyHandled(f"“{step.title}” was already done", step.completed_by, step.completed_at)
    if step.status == "skipped":
        raise StepAlreadyHandled(f"“{step.title}” was already skipped ({step.skip_reason})",
                                 step.completed_by, step.completed_at)


def evidence_problem(step: PlaybookStep, evidence: str | None) -> str | None:
    """Why `evidence` does not satisfy the step, or None."""
    evidence = (evidence or "").strip()
    if len(evidence) > EVIDENCE_MAX:
        return f"Keep the evidence under {EVIDENCE_MAX} characters."
    if step.evidence == "note" and not evidence:
        return "This step asks for a note: what was done, and what you found."
    if step.evidence == "link" and not URL.match(evidence):
        return "This step asks for a link (https://…) to the evidence, e.g. a ticket or a report."
    return None


def complete_step(session: Session, *, incident: Incident, run: PlaybookRun, step: PlaybookStep, actor: str,
                  evidence: str | None = None) -> Event:
    _require_open_incident(incident)
    require_open_step(step)
    problem = evidence_problem(step, evidence)
    if problem:
        raise IncidentError(problem)
    now = clock.now()
    step.status, step.completed_by, step.completed_at = "done", actor, now
    step.evidence_text = (evidence or "").strip() or None
    session.add(step)
    event = _event(session, incident, "playbook.step_completed", actor,
                   {**_step_data(run, step), "evidence": step.evidence_text,
                    "overdue": bool(step.due_at and clock.to_utc(step.due_at) < now)})
    _deadlines_after_completion(session, incident, run, step, now)
    return event


def _deadlines_after_completion(session, incident, run, step, now) -> None:
    for deadline in session.exec(select(PlaybookDeadline).where(PlaybookDeadline.run_id == run.id)):
        if deadline.starts_from == f"step:{step.step_id}" and deadline.starts_at is None:
            _start_clock(deadline, now)
            session.add(deadline)
            _event(session, incident, "playbook.deadline_started", "system:vigil",
                   {"run_id": run.id, "deadline_id": deadline.deadline_id, "label": deadline.label,
                    "due_at": clock.iso(deadline.due_at), "started_by_step": step.step_id})
        if deadline.met_by == f"step:{step.step_id}" and deadline.status == "pending":
            resolve_deadline(session, incident=incident, run=run, deadline=deadline, at=now)


def resolve_deadline(session: Session, *, incident: Incident, run: PlaybookRun, deadline: PlaybookDeadline,
                     at: datetime, missed: bool = False) -> Event:
    """Met if `at` is not after the due time (a clock that never started counts as met on time);
    `missed=True` records expiry (the sweep, at the due time)."""
    met = not missed and (deadline.due_at is None or at <= clock.to_utc(deadline.due_at))
    deadline.status, deadline.resolved_at = ("met" if met else "missed"), at
    session.add(deadline)
    return _event(session, incident, f"playbook.deadline_{deadline.status}", "system:vigil", {
        "run_id": run.id, "deadline_id": deadline.deadline_id, "label": deadline.label,
        "due_at": clock.iso(deadline.due_at), "at": clock.iso(at)})


DECISIONS = {"not-reportable": "not reportable", "not-required": "not required", "not-applicable": "not applicable"}


def decide_deadline(session: Session, *, incident: Incident, run: PlaybookRun, deadline: PlaybookDeadline,
                    actor: str, admins: frozenset[str], decision: str, reason: str) -> Event:
    """End a pending clock by a recorded decision (e.g. a breach assessed as not reportable): the
    deadline then shows that outcome, not "missed". The incident lead, a commander or an admin decides, with a reason."""
    from vigil_ir.incidents.service import can_close

    _require_open_incident(incident)
    if not can_close(incident, actor, admins):
        raise IncidentError(f"Only the incident lead or a Vigil admin can decide the deadline “{deadline.label}”.")
    if decision not in DECISIONS:
        raise IncidentError(f"Say what was decided: {', '.join(DECISIONS)}.")
    reason = (reason or "").strip()
    if not reason:
        raise IncidentError("Give the reason for the decision: it stays on the record.")
    if deadline.status != "pending":
        raise IncidentError(f"The deadline “{deadline.label}” is already {deadline.status}.")
    now = clock.now()
    deadline.status, deadline.resolved_at = "decided", now
    deadline.decision, deadline.decision_reason, deadline.decided_by = DECISIONS[decision], reason[:1000], actor
    session.add(deadline)
    return _event(session, incident, "playbook.deadline_decided", actor, {
        "run_id": run.id, "deadline_id": deadline.deadline_id, "label": deadline.label,
        "due_at": clock.iso(deadline.due_at), "decision": deadline.decision, "reason": deadline.decision_reason})


def skip_step(session: Session, *, incident: Incident, run: PlaybookRun, step: PlaybookStep, actor: str,
              reason: str) -> Event:
    _require_open_incident(incident)
    require_open_step(step)
    reason = (reason or "").strip()
    if not reason:
        raise IncidentError("Say why the step is skipped; the reason goes on the timeline.")
    if len(reason) > EVIDENCE_MAX:
        raise IncidentError(f"Keep the reason under {EVIDENCE_MAX} characters.")
    step.status, step.completed_by, step.completed_at, step.skip_reason = "skipped", actor, clock.now(), reason
    session.add(step)
    return _event(session, incident, "playbook.step_skipped", actor, {**_step_data(run, step), "reason": reason})


def assign_step(session: Session, *, incident: Incident, run: PlaybookRun, step: PlaybookStep, actor: str,
                assignee: str) -> Event:
    _require_open_incident(incident)
    require_open_step(step)
    if step.assignee == assignee:
        raise StepAlreadyHandled(f"“{step.title}” is already assigned to that person")
    previous, step.assignee = step.assignee, assignee
    session.add(step)
    return _event(session, incident, "playbook.step_assigned", actor,
                  {**_step_data(run, step), "from": previous, "to": assignee})


def reopen_step(session: Session, *, incident: Incident, run: PlaybookRun, step: PlaybookStep, actor: str) -> Event:
    """Undo a completion or skip: a correction event pointing at it; the original stays."""
    _require_open_incident(incident)
    if step.status == "open":
        raise StepAlreadyHandled(f"“{step.title}” is open; there is nothing to undo")
    undone = session.exec(select(Event).where(
        Event.stream == incident.stream, Event.kind.in_(("playbook.step_completed", "playbook.step_skipped")),
        Event.data["step_key"].as_string() == f"{run.id}:{step.step_id}").order_by(Event.id.desc())).first()
    previous = step.status
    step.status, step.completed_by, step.completed_at = "open", None, None
    step.evidence_text = step.skip_reason = None
    session.add(step)
    return _event(session, incident, "playbook.step_reopened", actor, {**_step_data(run, step), "was": previous},
                  corrects=undone.id if undone else None)


def close_blockers(session: Session, incident: Incident) -> list[str]:
    """Open required steps and unmet deadlines: closing over them needs an override reason."""
    blockers = []
    for run in runs_for(session, incident):
        for step in steps_for(session, run):
            if step.required and step.status == "open":
                blockers.append(f"{run.title}: step “{step.title}” is open")
        for deadline in deadlines_for(session, run):
            # A clock that never started (its trigger step was not reached) blocks nothing.
            if deadline.status == "missed" or (deadline.status == "pending" and deadline.starts_at is not None):
                state = "missed" if deadline.status == "missed" else "not yet met"
                blockers.append(f"{run.title}: deadline “{deadline.label}” is {state}")
    return blockers


def runs_for(session: Session, incident: Incident) -> list[PlaybookRun]:
    return list(session.exec(select(PlaybookRun).where(PlaybookRun.incident_id == incident.id)
                             .order_by(PlaybookRun.id)))


def steps_for(session: Session, run: PlaybookRun) -> list[PlaybookStep]:
    return list(session.exec(select(PlaybookStep).where(PlaybookStep.run_id == run.id)
                             .order_by(PlaybookStep.position)))


def deadlines_for(session: Session, run: PlaybookRun) -> list[PlaybookDeadline]:
    return list(session.exec(select(PlaybookDeadline).where(PlaybookDeadline.run_id == run.id)
                             .order_by(PlaybookDeadline.id)))
