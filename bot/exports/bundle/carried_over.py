"""Incidents declared before the period whose resolution, close or review happened in it.

The population (E1) stays "declared in the period", the list an auditor samples from. An incident
declared before the period but resolved, closed or reviewed in it is evidence of the period too:
`incidents_carried_over` lists it (with why), its events are in `incidents_carried_over_events`
(chain segments, re-verified like E2), its packet is under `incidents_carried_over/INC-<n>/`, and its
review is a row of `pirs_carried_over`.
"""

from __future__ import annotations

from sqlmodel import select

from vigil_ir.eventlog import Event, StreamHead, events_for_stream
from vigil_ir.exports import eventlog_export, population
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.incidents import E1_COLUMNS, Packet, extras
from vigil_ir.exports.eventlog_export import Segments
from vigil_ir.exports.timeline import action_records, checklists, review_record, risk_links
from vigil_ir.followup import pir_export
from vigil_ir.followup.models import ActionItem, PostIncidentReview
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
    segments = ctx.manifest.segments.setdefault(f"{EVENTS_FILE}.json", Segments())
    linked = risk_links(ctx.session) if reasons else {}
    for number, why in reasons.items():
        incident = ctx.session.exec(select(Incident).where(Incident.number == number,
                                                               Incident.exercise.is_(False))).one()
        events = events_for_stream(ctx.session, incident.stream)
        review = ctx.session.exec(select(PostIncidentReview).where(PostIncidentReview.incident_id == incident.id)).first()
        actions = list(ctx.session.exec(select(ActionItem).where(ActionItem.incident_id == incident.id)))
        links = population.alerts_and_pages(ctx.session, [incident.id])
        table.write({"in_period_because": "; ".join(why),
                     **population.population_row(incident, events, ctx.people, links),
                     **extras(review, actions, events, events[-1].hash if events else None)})
        pirs.write(pir_export.pir_row(ctx.session, incident, review, ctx.people))
        for event in events:
            row = eventlog_export.event_row(event, ctx.people)
            log.write(row)
            segments.add(row)
        timeline = Packet(incident=incident, events=events, head=ctx.session.get(StreamHead, incident.stream),
                           generated_at=ctx.generated_at, checklists=checklists(ctx.session, incident),
                           review=review_record(ctx.session, incident), actions=action_records(ctx.session, incident),
                           people=ctx.people, risks=linked.get(incident.key, []))
        what = (f"{incident.key} evidence packet (declared before the period; {'; '.join(why)}): summary, roles, "
                "milestones, checklists, post-incident review, actions, full timeline, integrity block")
        for fmt in ("md", "html", "json"):
            ctx.sink.add(f"incidents_carried_over/{incident.key}/{incident.key}.{fmt}", timeline.render(fmt),
                         section="E3", description=what,
                         query=f"incident {incident.key} and every event of stream {incident.stream}")
    for done in (table, pirs, log):
        done.finish(ctx.sink)
