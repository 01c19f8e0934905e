"""Playbook sweeps: overdue steps (once per step per due time) and deadline clocks (50 %, 90 %, expiry).

After downtime only the most recent threshold of a deadline is announced, never a backlog.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.eventlog import append
from vigil_ir.incidents.models import Incident
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep
from vigil_ir.reminders.scheduler import sweep
from vigil_ir.slack import notify
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack.checklist import remaining
from vigil_ir.slack.escape import esc, mention

THRESHOLDS = (50, 90, 100)


def _open_incident_rows(session: Session, model, *conditions):
    return session.exec(select(model, PlaybookRun, Incident)
                        .join(PlaybookRun, model.run_id == PlaybookRun.id)
                        .join(Incident, PlaybookRun.incident_id == Incident.id)
                        .where(Incident.status != "closed", *conditions)).all()


@sweep("playbook.overdue_steps")
def overdue_steps(session: Session, now: datetime, settings: Settings) -> int:
    sent = 0
    for step, run, incident in _open_incident_rows(session, PlaybookStep, PlaybookStep.status == "open",
                                                   PlaybookStep.due_at <= now):
        who = step.assignee or incident.lead
        text = (f":warning: Overdue playbook step in {incident.key}: *{esc(step.title)}* (due "
                f"{slack_date(step.due_at)}). {mention(who) if who else 'Nobody is assigned; the lead can assign it.'}")
        if notify.post_in_channel(session, incident, text, dedupe_key=f"step-overdue:{step.id}:{clock.iso(step.due_at)}",
                                  refresh=False):
            append(session, stream=incident.stream, kind="playbook.step_overdue_reminded", actor="system:worker",
                   data={"run_id": run.id, "step_id": step.step_id, "due_at": clock.iso(step.due_at),
                         "reminded": who})
            notify.refresh_checklist(session, run)
            sent += 1
    return sent


def crossed_threshold(deadline: PlaybookDeadline, now: datetime) -> int | None:
    starts, due = clock.to_utc(deadline.starts_at), clock.to_utc(deadline.due_at)
    fraction = (now - starts) / (due - starts) if due > starts else 1.0
    crossed = [pct for pct in THRESHOLDS if fraction * 100 >= pct]
    return crossed[-1] if crossed else None


@sweep("playbook.deadlines")
def deadlines(session: Session, now: datetime, settings: Settings) -> int:
    sent = 0
    for deadline, run, incident in _open_incident_rows(session, PlaybookDeadline,
                                                       PlaybookDeadline.status == "pending",
                                                       PlaybookDeadline.due_at.is_not(None)):
        pct = crossed_threshold(deadline, now)
        if pct is None:
            continue
        who = mention(incident.lead) if incident.lead else "<!here>"
        if pct == 100:
            text = f":x: Deadline missed in {incident.key}: *{esc(deadline.label)}* was due {slack_date(deadline.due_at)}. {who}"
        else:
            text = (f":alarm_clock: {pct}% of the time for *{esc(deadline.label)}* ({incident.key}) has passed: due "
                    f"{slack_date(deadline.due_at)}, {remaining(deadline.due_at, now)}. {who}")
        if not notify.post_in_channel(session, incident, text, dedupe_key=f"deadline:{deadline.id}:{pct}",
                                      refresh=False):
            continue
        if pct == 100:
            runner.resolve_deadline(session, incident=incident, run=run, deadline=deadline,
                                    at=clock.to_utc(deadline.due_at), missed=True)
        else:
            append(session, stream=incident.stream, kind="playbook.deadline_reminded", actor="system:worker",
                   data={"run_id": run.id, "deadline_id": deadline.deadline_id, "percent": pct,
                         "due_at": clock.iso(deadline.due_at)})
        notify.refresh_checklist(session, run)
        sent += 1
    return sent
