"""Incident sweeps: status update due, no lead yet, post-incident review due.

Each reminder is queued once per due time (outbox dedupe key) and recorded as an event. After
downtime, only the most recent reminder of a schedule is sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.eventlog import append
from vigil_ir.followup import updates
from vigil_ir.followup.models import PostIncidentReview
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents.models import ACTIVE_STATUSES, Incident
from vigil_ir.reminders.scheduler import sweep
from vigil_ir.slack import notify
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack.escape import mention

# Relative to the PIR due time: the day before, the day, then overdue days 1, 3, 7 and weekly.
PIR_SCHEDULE = [("due-tomorrow", timedelta(days=-1)), ("due-today", timedelta(0)),
                ("overdue-1d", timedelta(days=1)), ("overdue-3d", timedelta(days=3)),
                ("overdue-7d", timedelta(days=7))]


def _open_incidents(session: Session) -> list[Incident]:
    return list(session.exec(select(Incident).where(Incident.status.in_(ACTIVE_STATUSES))))


@sweep("incident.update_due")
def update_due(session: Session, now: datetime, settings: Settings) -> int:
    policy, sent = Policy.from_settings(settings), 0
    for incident in _open_incidents(session):
        due = updates.update_due_at(incident, policy)
        if due is None or now < due:
            continue
        who = updates.who_to_remind(incident)
        # While the update stays overdue, remind again every `update_reminder_repeat`; only the latest
        # repeat reached is sent (a worker back from downtime sends one, not a backlog).
        repeat = int((now - due) // policy.update_reminder_repeat) if policy.update_reminder_repeat else 0
        still = "still " if repeat else ""
        text = (f":loudspeaker: A status update on {incident.key} is {still}due (since {slack_date(due)}). "
                f"{mention(who) if who else 'Nobody holds the lead or comms role yet.'}")
        key = f"update-due:{incident.ref}:{clock.iso(due)}" + (f":repeat-{repeat}" if repeat else "")
        buttons = [{"action_id": "incident_post_update", "text": "Post update", "value": str(incident.id)},
                   {"action_id": "incident_snooze_update", "text": "Snooze 30 min", "value": str(incident.id)}]
        if notify.post_in_channel(session, incident, text, buttons=buttons,
                                  dedupe_key=key, refresh=False):
            append(session, stream=incident.stream, kind="incident.update_reminded", actor="system:worker",
                   data={"due_at": clock.iso(due), "reminded": who, "repeat": repeat})
            sent += 1
    return sent


@sweep("incident.lead_missing")
def lead_missing(session: Session, now: datetime, settings: Settings) -> int:
    sent = 0
    for incident in _open_incidents(session):
        if incident.lead or now < clock.to_utc(incident.declared_at) + updates.LEAD_GRACE:
            continue
        text = (f":bust_in_silhouette: {incident.key} has no incident lead yet, "
                f"{int(updates.LEAD_GRACE.total_seconds() // 60)} minutes after it was declared. "
                f"{mention(incident.declared_by)}, take it with the *Take the lead* button or `/incident lead @someone`.")
        if notify.post_in_channel(session, incident, text, dedupe_key=f"lead-missing:{incident.ref}", refresh=False):
            append(session, stream=incident.stream, kind="incident.role_reminded", actor="system:worker",
                   data={"role": "lead", "reminded": incident.declared_by})
            sent += 1
    return sent


def latest_step(due: datetime, now: datetime) -> str | None:
    """The most recent PIR reminder whose time has come (weekly after the schedule ends)."""
    passed = [label for label, offset in PIR_SCHEDULE if now >= due + offset]
    weeks = int((now - due).days // 7)
    if weeks >= 2:
        return f"overdue-{weeks}w"
    return passed[-1] if passed else None


@sweep("pir.due")
def pir_due(session: Session, now: datetime, settings: Settings) -> int:
    sent = 0
    rows = session.exec(select(PostIncidentReview, Incident).join(Incident, PostIncidentReview.incident_id == Incident.id)
                        .where(PostIncidentReview.status == "pending", PostIncidentReview.required,
                               PostIncidentReview.due_at.is_not(None)))
    for review, incident in rows:
        step = latest_step(clock.to_utc(review.due_at), now)
        if step is None:
            continue
        who = review.facilitator or incident.lead or incident.declared_by
        late = "is overdue" if step.startswith("overdue") else "is due"
        text = (f":memo: The post-incident review of {incident.key} {late} ({slack_date(review.due_at)}). "
                f"{mention(who)}, hold it and record it with `/incident pir`.")
        if notify.post_in_channel(session, incident, text, dedupe_key=f"pir-reminder:{review.id}:{step}", refresh=False):
            append(session, stream=incident.stream, kind="pir.reminded", actor="system:worker",
                   data={"step": step, "due_at": clock.iso(review.due_at), "reminded": who})
            sent += 1
    return sent
