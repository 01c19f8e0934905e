"""Worker sweep: DM action owners the day before the due date and on overdue days 1, 3 and 7.

Exactly once: each reminder is a `slack.post` outbox item with the deterministic dedupe key
`action-reminder:<id>:<due date>:<label>`, so a second sweep, or a second worker, queues nothing
(on PostgreSQL a concurrent insert of the same key waits for the first and then sees it). A new due
date starts a new series. After downtime only the latest reminder reached is sent, never a backlog,
and reminders scheduled on or before the day the action was created are skipped (the assignment DM
already said when it is due). Each reminder sent is an `action.reminded` event on the action's
stream: the notification log.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.eventlog import append
from vigil_ir.followup.actions import OPEN
from vigil_ir.followup.models import ActionItem
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.reminders.scheduler import sweep
from vigil_ir.slack import action_blocks

ACTOR = "system:worker"
# (label, days relative to the due date), in the order they fall due.
SCHEDULE = (("due_tomorrow", -1), ("overdue_1", 1), ("overdue_3", 3), ("overdue_7", 7))


def latest_due(action: ActionItem, today: date) -> tuple[str, date] | None:
    """The most recent reminder whose day has come, as (label, scheduled day), if any is owed."""
    created = clock.to_utc(action.created_at).date()
    reached = [(label, action.due_on + timedelta(days=offset)) for label, offset in SCHEDULE
               if action.due_on + timedelta(days=offset) <= today]
    if not reached or reached[-1][1] <= created:
        return None
    return reached[-1]


def reminder_key(action: ActionItem, label: str) -> str:
    return f"action-reminder:{action.id}:{action.due_on.isoformat()}:{label}"


@sweep("actions.reminders")
def reminders(session: Session, now: datetime, settings: Settings) -> int:
    today = clock.to_utc(now).date()
    candidates = session.exec(select(ActionItem).where(
        ActionItem.status.in_(OPEN), ActionItem.owner.is_not(None), ActionItem.due_on.is_not(None),
        ActionItem.due_on <= today + timedelta(days=1)).order_by(ActionItem.id)).all()
    sent = 0
    for action in candidates:
        due = latest_due(action, today)
        if due is None:
            continue
        label, scheduled = due
        key = reminder_key(action, label)
        # Cheap read first: most candidates were reminded on an earlier sweep.
        if session.exec(select(OutboxItem.id).where(OutboxItem.dedupe_key == key)).first():
            continue
        if action_blocks.reminder(session, action, today, key) is None:
            continue  # a concurrent sweep queued it first
        append(session, stream=action.stream, kind="action.reminded", actor=ACTOR, data={
            "key": action.key, "label": label, "recipient": action.owner, "due_on": action.due_on.isoformat(),
            "scheduled_for": scheduled.isoformat(), "outbox_key": key})
        sent += 1
    return sent
