"""The exercise register in a bundle (CC7.5): `exercises` and the exercises' event log.

Exercises are not incidents: they are in none of the incident files. Their register lists every
exercise declared in the period, and `exercise_events` carries each one's whole `exercise:<n>` stream
(from seq 1, re-verifiable like `incident_events`), from which `verify --bundle` recomputes the
register's columns.
"""

from __future__ import annotations

from vigil_ir.exports import eventlog_export, exercise_register
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.events import BundleEvent, prepared, whole_streams
from vigil_ir.exports.eventlog_export import Segments
from vigil_ir.incidents.queries import declared_between


REGISTER = "exercises"
EVENTS = "exercise_events"


def write(ctx: Context) -> None:
    period = ctx.period_text("declared_at")
    register = ctx.table(REGISTER, exercise_register.COLUMNS, section="CC7.5",
                         description="Exercise register: every exercise (tabletop or game day) held in the period: "
                                     "kind, scenario, participants, playbooks and versions followed, steps done and "
                                     "skipped, findings recorded at its close, follow-up actions raised",
                         query=f"incident rows marked exercise with {period}, ordered by number; columns folded "
                               "from each exercise's events, actions from action_item rows of the exercise")
    events_table = ctx.table(EVENTS, eventlog_export.COLUMNS, section="CC7.5",
                             description="Exercise event log: every event of each exercise's stream, with prev_hash "
                                         "and hash (re-verifiable offline)",
                             query=f"event rows of streams exercise:<n> for exercises with {period}, all seqs as of "
                                   "generation, ordered by exercise number then seq")
    segments = ctx.manifest.segments.setdefault(f"{EVENTS}.json", Segments())
    exercises = declared_between(ctx.session, ctx.start, ctx.end, exercises=True)
    grouped: dict[str, list[BundleEvent]] = {}
    for event in prepared(whole_streams(ctx.session, [exercise.stream for exercise in exercises]), ctx.names):
        grouped.setdefault(event.stream, []).append(event)
    for exercise in exercises:
        events = grouped.pop(exercise.stream, [])
        register.write(exercise_register.register_row(exercise, events, exercise_register.actions_of(ctx.session, exercise),
                                                      ctx.people))
        events_table.write_serialised([event.json_line() for event in events], [event.csv_line() for event in events])
        for event in events:
            segments.add(event)
        ctx.streams_in_full[exercise.stream] = f"{EVENTS}.json"
    register.finish(ctx.sink)
    events_table.finish(ctx.sink)
