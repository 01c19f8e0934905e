"""The audit part of a bundle: E11 object audit trail, the chain heads, E12 notification log.

E11 is every event recorded in the period on any stream (incidents, risks, actions, audit), as
contiguous per-stream segments. `chain_heads` lists the head of every stream at generation time;
the SHA-256 over its sorted `"<stream> <hash>\\n"` lines is the same heads digest `vigil verify`
prints and the worker publishes daily to the audit channel, so the bundle can be tied to them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.exports import eventlog_export
from vigil_ir.exports.eventlog_export import Segments
from vigil_ir.outbox.models import OutboxItem

if TYPE_CHECKING:
    from vigil_ir.exports.bundle import Context

E11_FILE = "audit_log"
NOTIFICATION_COLUMNS = ("notification_id", "kind", "object_type", "object_ref", "channel", "text", "dedupe_key",
                        "status", "queued_at", "available_at", "delivered_at", "attempts", "slack_ts", "result",
                        "last_error")


def write_audit_log(ctx: Context) -> None:
    ranges = eventlog_export.period_ranges(ctx.session, ctx.start, ctx.end)
    table = ctx.table(E11_FILE, eventlog_export.COLUMNS, section="E11",
                      description="Object audit trail: every event recorded in the period on every stream "
                                  "(incidents, risks, actions, audit), with prev_hash and hash",
                      query=f"event rows with {ctx.period_text('recorded_at')}; per stream, every seq from the "
                            "first to the last such event (contiguous segments); ordered by stream, seq")
    segments = ctx.manifest.segments.setdefault(f"{E11_FILE}.json", Segments())
    ctx.progress.start("Audit trail", sum(hi - lo + 1 for _, lo, hi in ranges))
    for event in eventlog_export.events_in(ctx.session, ranges):
        row = eventlog_export.event_row(event, ctx.people)
        table.write(row)
        segments.add(row)
        ctx.progress.advance()
    table.finish(ctx.sink)


def write_heads(ctx: Context) -> None:
    table = ctx.table("chain_heads", eventlog_export.HEAD_COLUMNS, section="integrity",
                      description="Head (last seq and hash) of every event stream at generation time; the manifest's "
                                  "heads digest is computed from these rows",
                      query="stream_head rows, ordered by stream (byte order)")
    digest, streams, events = hashlib.sha256(), 0, 0
    for head in eventlog_export.stream_heads(ctx.session):
        table.write(eventlog_export.head_row(head))
        digest.update(f"{head.stream} {head.hash}\n".encode("utf-8"))
        streams, events = streams + 1, events + head.seq
    table.finish(ctx.sink)
    ctx.manifest.heads = {"file": "chain_heads.json", "streams": streams, "events": events,
                          "digest": "sha256:" + digest.hexdigest(),
                          "digest_method": "sha256 over the lines '<stream> <head hash>\\n' sorted by stream, "
                                           "as printed by `vigil verify`"}


def notification_row(item: OutboxItem) -> dict[str, Any]:
    object_type, object_ref = eventlog_export.object_of(item.subject)
    payload, result = item.payload or {}, item.result or {}
    return {"notification_id": item.id, "kind": item.kind, "object_type": object_type, "object_ref": object_ref,
            "channel": payload.get("channel") or result.get("channel"),
            # The text as queued; reply URLs and block layouts are left out (a response_url is a credential).
            "text": payload.get("text"), "dedupe_key": item.dedupe_key, "status": item.status,
            "queued_at": clock.iso(item.created_at), "available_at": clock.iso(item.available_at),
            "delivered_at": clock.iso(item.done_at), "attempts": item.attempts, "slack_ts": result.get("ts"),
            "result": result or None, "last_error": item.last_error}


def write_notifications(ctx: Context) -> None:
    table = ctx.table("notifications", NOTIFICATION_COLUMNS, section="E12",
                      description="Notification log: every Slack post, reminder and channel set-up queued in the "
                                  "period, with delivery time, attempts, Slack ts and last error (status as at "
                                  "generation)",
                      query=f"outbox_item rows with {ctx.period_text('created_at')}, ordered by id")
    ctx.progress.start("Notifications", None)
    query = (select(OutboxItem).where(OutboxItem.created_at >= ctx.start, OutboxItem.created_at < ctx.end)
             .order_by(OutboxItem.id).execution_options(yield_per=eventlog_export.ROWS_PER_FETCH))
    for item in ctx.session.exec(query):
        table.write(notification_row(item))
        ctx.progress.advance()
    table.finish(ctx.sink)
