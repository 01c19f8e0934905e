"""Incidents declared before the period whose resolution, close or review happened in it.

The population (E1) stays "declared in the period", the list an auditor samples from. An incident
declared before the period but resolved, closed or reviewed in it is evidence of the period too:
`incidents_carried_over` lists it (with why), its events are in `incidents_carried_over_events`
(chain segments, re-verified like E2), its packet is under `incidents_carried_over/INC-<n>/`, and its
review is a row of `pirs_carried_over`.
"""

from __future__ import annotations

from sqlmodel import select

from vigil_ir.eventlog import Event
from vigil_ir.exports import eventlog_export
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.incidents import E1_COLUMNS, PAGE, IncidentFiles
from vigil_ir.followup import pir_export
from vigil_ir.incidents.models import Incident

CHUNK = 500
# What makes an earlier incident part of the period's evidence: its outcome was recorded in it.
OUTCOME_KINDS = {"incident.closed": "closed in the period", "pir.completed": "post-incident review completed in the period"}
CARRIED_COLUMNS = ("in_period_because",) + E1_COLUMNS
EVENTS_FILE = "incidents_carried_over_events"


def carried_over(ctx: Context) -> dict[int, list[str]]:
    """Incident number → why, for incidents declared before the period with an outcome recorded in it."""
    kinds = [*OUTCOME_KINDS, "incident.status_changed"]
    reasons: dict[int, list[str]] = {}
    query = (select(Event.stream, Event.kind, Event.data).where(Event.kind.in_(kinds), Event.recorded_at >= ctx.start,
                                                                Event.recorded_at < ctx.end)
             .order_by(Event.stream, Event.stream_seq))
    for stream, kind, data in ctx.session.exec(query):
        if not stream.startswith("incident:"):
            continue
        if kind == "incident.status_changed" and (data or {}).get("to") != "resolved":
            continue
        why = OUTCOME_KINDS.get(kind, "resolved in the period")
        found = reasons.setdefault(int(stream.split(":")[1]), [])
        if why not in found:
            found.append(why)
    if not reasons:
        return {}
    numbers = sorted(reasons)
    earlier: set[int] = set()
    for offset in range(0, len(numbers), CHUNK):
        earlier.update(ctx.session.exec(select(Incident.number).where(
            Incident.number.in_(numbers[offset:offset + CHUNK]), Incident.exercise.is_(False),
            Incident.declared_at < ctx.start)))
    return {number: reasons[number] for number in numbers if number in earlier}


def write(ctx: Context) -> None:
    reasons = carried_over(ctx)
    table = ctx.table("incidents_carried_over", CARRIED_COLUMNS, section="E1/E3",
                      description="Incidents declared before the period whose resolution, close or post-incident "
                                  "review was recorded in it (not in the population, which is incidents declared in "
                                  "the period); each has its packet under incidents/ and its review in "
                                  "pirs_carried_over",
                      query=f"incidents with declared_at < {ctx.iso_start} and an event incident.closed, pir.completed "
                            f"or incident.status_changed to resolved with {ctx.period_text('recorded_at')}")
    pirs = ctx.table("pirs_carried_over", pir_export.COLUMNS, section="E5",
                     description="Post-incident reviews of the incidents in incidents_carried_over",
                     query="post_incident_review of the incidents in incidents_carried_over, ordered by number")
    log = ctx.table(EVENTS_FILE, eventlog_export.COLUMNS, section="E2",
                    description="Every event of each incident in incidents_carried_over, with prev_hash and hash "
                                "(re-verifiable offline, like incident_events)",
                    query="event rows of streams incident:<n> of the incidents in incidents_carried_over, all seqs "
                          "as of generation, ordered by incident number then seq")
    files = IncidentFiles(ctx, population=table, event_log=log, pirs=pirs, folder="incidents_carried_over",
                          packet_description=lambda incident: (
                              f"{incident.key} evidence packet (declared before the period; "
                              f"{'; '.join(reasons[incident.number])}): summary, roles, milestones, checklists, "
                              "post-incident review, actions, full timeline, integrity block"))
    numbers = list(reasons)
    for offset in range(0, len(numbers), PAGE):
        page = list(ctx.session.exec(select(Incident).where(Incident.number.in_(numbers[offset:offset + PAGE]),
                                                            Incident.exercise.is_(False)).order_by(Incident.number)))
        files.write_page(page, lambda incident: {"in_period_because": "; ".join(reasons[incident.number])})
    files.finish()
