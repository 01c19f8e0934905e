"""The incident part of a bundle, in one pass over the period's incidents.

Each incident's stream is read once and feeds its E1 population row, its E2 event-log rows, its
E3 packet (`incidents/INC-<n>/`: Markdown, HTML and JSON with checklists, post-incident review,
actions, timeline and integrity block; plus the review document once the review is completed)
and its E5 PIR row. Incidents are read in pages of PAGE by key and dropped from the session after each page, so
memory holds one page, not the period.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import StreamHead, events_for_stream
from vigil_ir.exports import eventlog_export, population
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.sequences import sequence
from vigil_ir.exports.eventlog_export import Segments
from vigil_ir.exports.timeline import Timeline, action_records, checklists, review_record, risk_links
from vigil_ir.followup import pir_export
from vigil_ir.followup.models import ActionItem, PostIncidentReview
from vigil_ir.incidents.models import Incident

PAGE = 100
E1_COLUMNS = population.COLUMNS + ("pir_required", "pir_status", "pir_due_at", "pir_completed_at",
                                   "action_items_total", "action_items_open", "event_count", "chain_head_hash")
E2_FILE = "incident_events"
RULE = "declared in the period"


class Packet(Timeline):
    """A timeline rendered three times (md, html, json): its integrity block, which re-verifies the
    chain, is computed once."""

    @functools.cached_property
    def _integrity(self) -> dict[str, Any]:
        return super().integrity()

    def integrity(self) -> dict[str, Any]:
        return self._integrity


def _in_period(ctx: Context):
    return Incident.declared_at >= ctx.start, Incident.declared_at < ctx.end, Incident.exercise.is_(False)


def incidents(ctx: Context) -> Iterator[Incident]:
    """The period's incidents in key order, a page at a time (keyset paging)."""
    last = 0
    while True:
        page = list(ctx.session.exec(select(Incident).where(*_in_period(ctx), Incident.number > last)
                                     .order_by(Incident.number).limit(PAGE)))
        if not page:
            return
        yield from page
        last = page[-1].number
        ctx.session.expunge_all()


def extras(review: PostIncidentReview | None, actions: list[ActionItem], events: list, head_hash: str | None):
    return {"pir_required": review.required if review else None, "pir_status": review.status if review else None,
            "pir_due_at": clock.iso(review.due_at) if review else None,
            "pir_completed_at": clock.iso(review.completed_at) if review else None,
            "action_items_total": len(actions),
            "action_items_open": sum(1 for a in actions if a.status in ("open", "in_progress")),
            "event_count": len(events), "chain_head_hash": head_hash}


def _packet(ctx: Context, incident: Incident, timeline: Timeline, review: PostIncidentReview | None) -> None:
    folder, key = f"incidents/{incident.key}", incident.key
    what = (f"{key} evidence packet: summary, roles, milestones, playbook checklists, post-incident review, "
            "actions, full timeline, integrity block")
    query = f"incident {key} and every event of stream {incident.stream}"
    for fmt in ("md", "html", "json"):
        ctx.sink.add(f"{folder}/{key}.{fmt}", timeline.render(fmt), section="E3", description=what, query=query)
    if review is not None and review.status == "completed":
        from vigil_ir.followup.pir_document import render_pir

        ctx.sink.add(f"{folder}/{key}-post-incident-review.md", render_pir(ctx.session, incident, ctx.people), section="E3/E5",
                     description=f"{key} post-incident review document, as posted to the incident channel",
                     query=f"post_incident_review of {key} with its timeline")


def write(ctx: Context) -> list[int]:
    """E1, E2, E3 and the E5 PIR table; returns the incident numbers included."""
    period = ctx.period_text("declared_at")
    e1 = ctx.table("incidents", E1_COLUMNS, section="E1",
                   description="Incident population: one row per incident declared in the period, with milestones, "
                               "minutes to declare/acknowledge/mitigate/resolve, PIR and action status, chain head",
                   query=f"incident rows with {period}, ordered by number; milestones derived from each incident's events")
    e2 = ctx.table(E2_FILE, eventlog_export.COLUMNS, section="E2",
                   description="Incident event log: every event of each population incident's stream, with "
                               "prev_hash and hash (re-verifiable offline)",
                   query=f"event rows of streams incident:<n> for incidents with {period}, all seqs as of "
                         f"generation, ordered by incident number then seq")
    pirs = ctx.table("pirs", pir_export.COLUMNS, section="E5",
                     description="Post-incident reviews: one row per population incident (status says when none "
                                 "is scheduled yet)",
                     query=f"post_incident_review joined to incident rows with {period}, ordered by number")
    segments = ctx.manifest.segments.setdefault(f"{E2_FILE}.json", Segments())
    total = ctx.session.exec(select(func.count()).select_from(Incident).where(*_in_period(ctx))).one()
    ctx.progress.start("Incidents", total)
    numbers: list[int] = []
    linked = risk_links(ctx.session)
    for incident in incidents(ctx):
        events = events_for_stream(ctx.session, incident.stream)
        head = ctx.session.get(StreamHead, incident.stream)
        review = ctx.session.exec(select(PostIncidentReview).where(PostIncidentReview.incident_id == incident.id)).first()
        actions = list(ctx.session.exec(select(ActionItem).where(ActionItem.incident_id == incident.id)
                                        .order_by(ActionItem.number)))
        links = population.alerts_and_pages(ctx.session, [incident.id])
        e1.write({**population.population_row(incident, events, ctx.people, links),
                  **extras(review, actions, events, events[-1].hash if events else None)})
        for event in events:
            row = eventlog_export.event_row(event, ctx.people)
            e2.write(row)
            segments.add(row)
        pirs.write(pir_export.pir_row(ctx.session, incident, review, ctx.people))
        timeline = Packet(incident=incident, events=events, head=head, generated_at=ctx.generated_at,
                           checklists=checklists(ctx.session, incident), review=review_record(ctx.session, incident),
                           actions=action_records(ctx.session, incident), people=ctx.people,
                           risks=linked.get(incident.key, []))
        _packet(ctx, incident, timeline, review)
        numbers.append(incident.number)
        ctx.progress.advance()
    for table in (e1, e2, pirs):
        table.finish(ctx.sink)
    ctx.manifest.sequences.append(sequence(ctx.session, "INC-", Incident, "incident", RULE, numbers,
                                          Incident.exercise.is_(False)))
    return numbers
