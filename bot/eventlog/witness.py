"""Publish the chain heads once a day to VIGIL_AUDIT_CHANNEL: an outside witness.

Once the digest of every stream head sits in Slack's history, the database cannot be rewritten
silently: a later `vigil verify` digest for the same events would differ from the published one.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from vigil_ir.config import Settings
from vigil_ir.eventlog.models import StreamHead
from vigil_ir.eventlog.verify import VerifyResult
from vigil_ir.outbox.service import enqueue
from vigil_ir.reminders.scheduler import sweep


def heads_snapshot(session: Session) -> VerifyResult:
    """Heads as stored (not re-verified: that is `vigil verify`'s job)."""
    result = VerifyResult()
    for head in session.exec(select(StreamHead).order_by(StreamHead.stream)):
        result.heads[head.stream] = head.hash
        result.streams += 1
        result.events += head.seq
    return result


@sweep("audit.publish_heads")
def publish_heads(session: Session, now: datetime, settings: Settings) -> int:
    if not settings.audit_channel:
        return 0
    day = now.strftime("%Y-%m-%d")
    snapshot = heads_snapshot(session)
    text = (f":closed_lock_with_key: Vigil event-log heads for {day} (UTC {now:%H:%M}): {snapshot.streams} streams, "
            f"{snapshot.events} events, heads digest `{snapshot.heads_digest}`. "
            "Compare with `vigil verify` to prove the log was not rewritten.")
    item = enqueue(session, kind="slack.post", subject="audit", dedupe_key=f"audit-heads:{day}",
                   payload={"channel": settings.audit_channel, "text": text})
    return 1 if item else 0
