"""Worker sweeps for tickets: the reconcile (read every live ticket back from its tracker now and
then, catching webhooks that never came) and the divergence check (flag an action and its ticket
that have disagreed for longer than the grace period, once, to the action's owner).

The reconcile only queues `ticket.sync` outbox items (the tracker is called by the outbox sender, not
inside the sweep's transaction), keyed by ticket and interval so any number of workers queue each
read once per interval. Tickets whose action and ticket are both closed and agree are left alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.followup.models import ActionItem
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue
from vigil_ir.reminders.scheduler import sweep
from vigil_ir.tickets import service
from vigil_ir.tickets.config import config_for
from vigil_ir.tickets.models import ActionTicket

BATCH = 200


def _live():
    """Tickets worth reading back: known ones whose action or ticket is still open, or that disagree."""
    return and_(ActionTicket.key.is_not(None), ActionTicket.state != "missing", or_(
        ActionItem.status.in_(service.OPEN), ActionTicket.state.in_(("open", "unknown")),
        ActionTicket.divergence != ""))


@sweep("tickets.reconcile", batch=BATCH)
def reconcile(session: Session, now: datetime, settings: Settings) -> int:
    config = config_for(settings)
    if not config.enabled:
        return 0
    every = config.reconcile_every
    bucket = int(clock.to_utc(now).timestamp() // every.total_seconds())
    stale = now - every
    rows = session.exec(select(ActionTicket, ActionItem).join(ActionItem, ActionItem.id == ActionTicket.action_id)
                        .where(_live(), or_(ActionTicket.synced_at.is_(None), ActionTicket.synced_at < stale))
                        .order_by(ActionTicket.synced_at.is_not(None), ActionTicket.synced_at, ActionTicket.id)
                        .limit(BATCH)).all()
    queued = 0
    for row, action in rows:
        key = f"ticket-sync:{action.number}:{bucket}"
        if session.exec(select(OutboxItem.id).where(OutboxItem.dedupe_key == key)).first():
            continue
        if enqueue(session, kind=service.SYNC, subject=action.stream, dedupe_key=key,
                   payload={"action_id": action.id, "source": "reconcile"}) is not None:
            queued += 1
    return queued


@sweep("tickets.divergence")
def divergence(session: Session, now: datetime, settings: Settings) -> int:
    from vigil_ir.slack import action_blocks

    config = config_for(settings)
    if not config.enabled:
        return 0
    rows = session.exec(select(ActionTicket, ActionItem).join(ActionItem, ActionItem.id == ActionTicket.action_id)
                        .where(ActionTicket.state.in_(service.KNOWN), or_(
                            ActionTicket.divergence != "", ActionTicket.disagree_since.is_not(None),
                            and_(ActionTicket.state.in_(service.CLOSED), ActionItem.status.in_(service.OPEN)),
                            and_(ActionTicket.state == "open", ActionItem.status.in_(service.CLOSED))))
                        # A row a webhook is changing right now is left to the next sweep (PostgreSQL; SQLite's
                        # writers take turns): its event must carry the ticket's state as it is.
                        .order_by(ActionTicket.id).with_for_update(skip_locked=True)).all()
    flagged = 0
    for row, action in rows:
        service.follow_action(session, action=action, config=config)  # closed outside Slack's buttons, too
        event = service.check_divergence(session, action=action, row=row, now=now, grace=config.grace)
        if event is not None and event.kind == "ticket.divergence_flagged":
            action_blocks.ticket_divergence(session, action, row, event)
            flagged += 1
    return flagged
