"""E12, the notification log: every Slack post, reminder and channel set-up queued in the period."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.exports import eventlog_export
from vigil_ir.exports.bundle.context import Context
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.people import Directory
from vigil_ir.people.ids import is_user_id

COLUMNS = ("notification_id", "kind", "object_type", "object_ref", "channel", "recipient_name", "text", "dedupe_key",
           "status", "queued_at", "available_at", "delivered_at", "attempts", "slack_ts", "result",
           "last_error")


def notification_row(item: OutboxItem, people: Directory) -> dict[str, Any]:
    object_type, object_ref = eventlog_export.object_of(item.subject)
    payload, result = item.payload or {}, item.result or {}
    channel = payload.get("channel") or result.get("channel")
    return {"notification_id": item.id, "kind": item.kind, "object_type": object_type, "object_ref": object_ref,
            "channel": channel,
            # A direct message is queued to the person's user id: who they were when it was queued.
            "recipient_name": people.name_column(channel, item.created_at) if is_user_id(channel) else None,
            # The text as queued; reply URLs and block layouts are left out (a response_url is a credential).
            "text": payload.get("text"), "dedupe_key": item.dedupe_key, "status": item.status,
            "queued_at": clock.iso(item.created_at), "available_at": clock.iso(item.available_at),
            "delivered_at": clock.iso(item.done_at), "attempts": item.attempts, "slack_ts": result.get("ts"),
            "result": result or None, "last_error": item.last_error}


def write(ctx: Context) -> None:
    table = ctx.table("notifications", COLUMNS, section="E12",
                      description="Notification log: every Slack post, reminder and channel set-up queued in the "
                                  "period, to whom (a direct message's recipient by name), with delivery time, attempts, Slack ts and last error (status as at "
                                  "generation)",
                      query=f"outbox_item rows with {ctx.period_text('created_at')}, ordered by id")
    ctx.progress.start("Notifications", None)
    query = (select(OutboxItem).where(OutboxItem.created_at >= ctx.start, OutboxItem.created_at < ctx.end)
             .order_by(OutboxItem.id).execution_options(yield_per=eventlog_export.ROWS_PER_FETCH))
    for item in ctx.session.exec(query):
        table.write(notification_row(item, ctx.people))
        ctx.progress.advance()
    table.finish(ctx.sink)
