"""E11, the object audit trail: every event recorded in the period on any stream (incidents, risks,
actions, audit), as contiguous per-stream segments (each from the first to the last seq recorded in
the period), so every segment re-verifies on its own."""

from __future__ import annotations

from vigil_ir.exports import eventlog_export
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.eventlog_export import Segments

FILE = "audit_log"


def write(ctx: Context) -> None:
    ranges = eventlog_export.period_ranges(ctx.session, ctx.start, ctx.end)
    table = ctx.table(FILE, eventlog_export.COLUMNS, section="E11",
                      description="Object audit trail: every event recorded in the period on every stream "
                                  "(incidents, risks, actions, audit), with prev_hash and hash",
                      query=f"event rows with {ctx.period_text('recorded_at')}; per stream, every seq from the "
                            "first to the last such event (contiguous segments); ordered by stream, seq")
    segments = ctx.manifest.segments.setdefault(f"{FILE}.json", Segments())
    ctx.progress.start("Audit trail", sum(hi - lo + 1 for _, lo, hi in ranges))
    for event in eventlog_export.events_in(ctx.session, ranges):
        row = eventlog_export.event_row(event, ctx.people)
        table.write(row)
        segments.add(row)
        ctx.progress.advance()
    table.finish(ctx.sink)
