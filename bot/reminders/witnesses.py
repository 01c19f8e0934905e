"""Publishing witnesses (vigil_ir.eventlog.witness): the sweep that queues one per
VIGIL_WITNESS_INTERVAL slot, and the on-demand queueing `vigil witness publish` uses. The post itself
is an outbox item (KIND), delivered by vigil_ir.slack.witnesses.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.eventlog.witness import COMMIT_MARGIN, heads_as_at
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue, is_queued
from vigil_ir.playbooks.durations import parse_duration
from vigil_ir.reminders.scheduler import sweep

KIND = "audit.witness"  # outbox kind: post a witness (vigil_ir.slack.delivery)


def interval(settings: Settings) -> timedelta:
    return parse_duration(settings.witness_interval)


def slot_start(now: datetime, every: timedelta) -> datetime:
    """The start of the publication slot `now` falls in (slots counted from the epoch, UTC)."""
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return epoch + ((clock.to_utc(now) - epoch) // every) * every


def queue_witness(session: Session, settings: Settings, now: datetime, *, key: str) -> OutboxItem | None:
    """Queue a witness of the log as at `now - COMMIT_MARGIN`; None when the log is empty there or
    `key` was queued already."""
    witness = heads_as_at(session, now - COMMIT_MARGIN)
    if witness.events == 0:
        return None  # nothing to witness yet: the slot stays free for the first real post
    return enqueue(session, kind=KIND, subject="audit", dedupe_key=key,
                   payload={"channel": settings.audit_channel, "key": key, **witness.payload()})


@sweep("audit.publish_heads")
def publish_heads(session: Session, now: datetime, settings: Settings) -> int:
    if not settings.audit_channel:
        return 0
    key = f"audit-witness:{clock.iso(slot_start(now, interval(settings)))}"
    if is_queued(session, key):  # this slot's witness is queued: no need to compute the heads again
        return 0
    return 1 if queue_witness(session, settings, now, key=key) else 0
