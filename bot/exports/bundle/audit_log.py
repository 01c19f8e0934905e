"""E11, the object audit trail: the events recorded in the period, as contiguous per-stream segments
(each from the first to the last seq recorded in the period), so every segment re-verifies on its own.

A stream whose every event is already in one of the bundle's event-log files (a population or
carried-over incident's in `incident_events` or `incidents_carried_over_events`, an exercise's in
`exercise_events`) is left out here rather than written twice; the manifest's `event_log.segments`
says which file holds each stream. Everything else recorded in the period is here: risks, actions,
people, configuration, the audit stream, and incidents outside those files (e.g. declared earlier
and still open).
"""

from __future__ import annotations

from vigil_ir.exports import eventlog_export
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.events import prepared, stored_ranges
from vigil_ir.exports.eventlog_export import Segments

FILE = "audit_log"
BATCH = 1000  # rows serialised per write


def write(ctx: Context) -> None:
    ranges = [(stream, lo, hi) for stream, lo, hi in eventlog_export.period_ranges(ctx.session, ctx.start, ctx.end)
              if stream not in ctx.streams_in_full]
    table = ctx.table(FILE, eventlog_export.COLUMNS, section="E11",
                      description="Object audit trail: every event recorded in the period on every stream (risks, "
                                  "actions, people, configuration, audit, incidents), with prev_hash and hash; a "
                                  "stream whose every event is in incident_events, incidents_carried_over_events or "
                                  "exercise_events is there, not repeated here",
                      query=f"event rows with {ctx.period_text('recorded_at')}; per stream, every seq from the "
                            "first to the last such event (contiguous segments); ordered by stream, seq; streams "
                            "given whole in another event-log file of this bundle left out (manifest "
                            "event_log.segments names the file of each)")
    segments = ctx.manifest.segments.setdefault(f"{FILE}.json", Segments())
    ctx.progress.start("Audit trail", sum(hi - lo + 1 for _, lo, hi in ranges))
    lines: list[str] = []
    cells: list[str] = []
    for event in prepared(stored_ranges(ctx.session, ranges), ctx.names):
        lines.append(event.json_line())
        cells.append(event.csv_line())
        segments.add(event)
        if len(lines) == BATCH:
            table.write_serialised(lines, cells)
            ctx.progress.advance(len(lines))
            lines, cells = [], []
    table.write_serialised(lines, cells)
    ctx.progress.advance(len(lines))
    table.finish(ctx.sink)
