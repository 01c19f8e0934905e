"""The incident part of a bundle, in one pass over the period's incidents.

Each incident's stream is read once, as stored, and each event serialised once (vigil_ir.exports.bundle.events)
for its E1 population row, its E2 event-log rows, its E3 packet (`incidents/INC-<n>/`: HTML and JSON with
checklists, post-incident review, actions, timeline and integrity block; plus the review document once
the review is completed) and its E5 PIR row. Incidents are read in pages of PAGE by key, with their
streams, heads, reviews and actions in a few queries per page, and dropped from the session after each
page, so memory holds one page, not the period.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import StreamHead
from vigil_ir.exports import eventlog_export, population
from vigil_ir.exports.bundle import packets
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.events import BundleEvent, prepared, whole_streams
from vigil_ir.exports.bundle.sequences import sequence
from vigil_ir.exports.eventlog_export import Segments
from vigil_ir.exports.program_review import POPULATION_COLUMNS
from vigil_ir.exports.timeline import action_fields, checklists_of, review_fields, risk_links
from vigil_ir.followup import pir, pir_export
from vigil_ir.followup.models import ActionItem, PostIncidentReview
from vigil_ir.incidents.models import Incident, stream_of

PAGE = 50  # incidents (with every event of each) in memory at a time
E1_COLUMNS = population.COLUMNS + ("pir_required", "pir_status", "pir_due_at", "pir_completed_at",
                                   "action_items_total", "action_items_open", "event_count", "chain_head_hash")
E2_FILE = "incident_events"
RULE = "declared in the period"


def _in_period(ctx: Context):
    return Incident.declared_at >= ctx.start, Incident.declared_at < ctx.end, Incident.exercise.is_(False)


def extras(review: PostIncidentReview | None, actions: list[ActionItem], events: list, head_hash: str | None):
    return {"pir_required": review.required if review else None, "pir_status": pir.status_label(review) if review else None,
            "pir_due_at": clock.iso(review.due_at) if review else None,
            "pir_completed_at": clock.iso(review.completed_at) if review else None,
            "action_items_total": len(actions),
            "action_items_open": sum(1 for a in actions if a.status in ("open", "in_progress")),
            "event_count": len(events), "chain_head_hash": head_hash}


class IncidentFiles:
    """The files a set of incidents goes to: a population table, its event log, its PIR table and a
    packet folder. Each incident's events are read once and serialised once for all of them."""

    def __init__(self, ctx: Context, *, population, event_log, pirs, folder: str, packet_description,
                 review_rows: list | None = None, linked: dict[str, list] | None = None):
        self.ctx, self.population, self.event_log, self.pirs = ctx, population, event_log, pirs
        self.review_rows = review_rows  # where the program review's part of each population row goes
        self.folder, self.packet_description = folder, packet_description
        self.segments = ctx.manifest.segments.setdefault(f"{event_log.name}.json", Segments())
        self.linked = risk_links(ctx.session) if linked is None else linked

    def write_page(self, page: list[Incident], extra_columns=lambda incident: {}) -> None:
        """A page of incidents: their streams, heads, reviews, actions and checklists read in a few queries."""
        ctx, session = self.ctx, self.ctx.session
        ids, streams = [incident.id for incident in page], [incident.stream for incident in page]
        grouped: dict[str, list[BundleEvent]] = {}
        for event in prepared(whole_streams(session, streams), ctx.names):
            grouped.setdefault(event.stream, []).append(event)
        heads = {head.stream: head for head in session.exec(select(StreamHead).where(StreamHead.stream.in_(streams)))}
        reviews = {review.incident_id: review for review in session.exec(
            select(PostIncidentReview).where(PostIncidentReview.incident_id.in_(ids)))}
        actions: dict[int, list[ActionItem]] = {}
        for action in session.exec(select(ActionItem).where(ActionItem.incident_id.in_(ids)).order_by(ActionItem.number)):
            actions.setdefault(action.incident_id, []).append(action)
        links = population.alerts_and_pages(session, ids)
        playbooks = checklists_of(session, ids)
        for incident in page:
            events, review = grouped.get(incident.stream, []), reviews.get(incident.id)
            self.write_incident(incident, events, heads.get(incident.stream), review, actions.get(incident.id, []),
                                links, playbooks.get(incident.id, []), extra_columns(incident))

    def write_incident(self, incident: Incident, events: list[BundleEvent], head: StreamHead | None,
                       review: PostIncidentReview | None, actions: list[ActionItem], links, checklists: list,
                       extra: dict) -> None:
        ctx = self.ctx
        row = population.population_row(incident, events, ctx.people, links)
        self.population.write({**extra, **row, **extras(review, actions, events, events[-1].hash if events else None)})
        if self.review_rows is not None:
            self.review_rows.append({column: row[column] for column in POPULATION_COLUMNS})
        self.event_log.write_serialised([event.json_line() for event in events],
                                        [event.csv_line() for event in events])
        self.segments.add_run(events)
        self.pirs.write(pir_export.pir_row(ctx.session, incident, review, ctx.people, events))
        packets.write(ctx, self.folder, incident, events, head, event_log=f"{self.event_log.name}.json",
                      description=self.packet_description(incident), checklists=checklists,
                      review=review_fields(review), actions=action_fields(actions),
                      risks=self.linked.get(incident.key, []))
        ctx.streams_in_full[incident.stream] = f"{self.event_log.name}.json"
        if self.folder == "incidents" and review is not None and review.status == "completed":
            from vigil_ir.followup.pir_document import render_pir

            key = incident.key
            ctx.sink.add(f"incidents/{key}/{key}-post-incident-review.md", render_pir(ctx.session, incident, ctx.people),
                         section="E3/E5", description=f"{key} post-incident review document, as posted to the "
                                                      "incident channel",
                         query=f"post_incident_review of {key} with its timeline")

    def finish(self) -> None:
        for table in (self.population, self.event_log, self.pirs):
            table.finish(self.ctx.sink)


def _pages(ctx: Context, numbers: list[int]) -> Iterator[list[Incident]]:
    """The incidents numbered `numbers` (the period's, in order, from first to last), a page at a time
    (keyset paging)."""
    if not numbers:
        return
    last, upto = numbers[0] - 1, numbers[-1]
    while True:
        page = list(ctx.session.exec(select(Incident).where(*_in_period(ctx), Incident.number > last,
                                                            Incident.number <= upto)
                                     .order_by(Incident.number).limit(PAGE)))
        if not page:
            return
        yield page
        last = page[-1].number
        ctx.session.expunge_all()


def numbers_of(ctx: Context) -> list[int]:
    """The numbers of the period's incidents, in order."""
    return list(ctx.session.exec(select(Incident.number).where(*_in_period(ctx)).order_by(Incident.number)))


def streams_in_full(ctx: Context) -> dict[str, str]:
    """The streams `write` gives whole in its event log, known before it runs (the audit log leaves
    them out; the parent process writes it while the incident processes run this pass)."""
    return {stream_of(number): f"{E2_FILE}.json" for number in numbers_of(ctx)}


def parts_of(numbers: list[int], *, workers: int) -> list[list[int]]:
    """`numbers` cut into runs, in order, for `workers` processes that each take the next run when done
    with one: whole pages, each run a quarter of what is left per worker (at least a page), so the
    runs shrink towards the end and the processes finish close together however their speeds
    differ. The same numbers give the same runs in every process. Never empty: no incidents make one
    empty run (whose tables are the header and the empty array)."""
    pages, runs, at = -(-len(numbers) // PAGE), [], 0
    while at < pages:
        size = max(1, -(-(pages - at) // (2 * workers)))
        runs.append(numbers[at * PAGE:(at + size) * PAGE])
        at += size
    return runs or [[]]


def write(ctx: Context) -> list[int]:
    """E1, E2, E3 and the E5 PIR table of the period's incidents, in this process; returns their numbers."""
    numbers = numbers_of(ctx)
    ctx.progress.start("Incidents", len(numbers))
    write_part(ctx, numbers)
    state_sequence(ctx, numbers)
    return numbers


def write_part(ctx: Context, numbers: list[int], *, share: int | None = None,
               linked: dict[str, list] | None = None) -> None:
    """The packets of the incidents `numbers` (a run of the period's, in key order) and their rows of
    the E1, E2 and E5 tables: the whole tables, or with `share` that share of each (files.Table, joined
    in share order by vigil_ir.exports.bundle.joined). `linked`: timeline.risk_links, when already
    read. Every process reads the same snapshot, so the runs cover the period's incidents once."""
    period = ctx.period_text("declared_at")
    e1 = ctx.table("incidents", E1_COLUMNS, section="E1",
                   description="Incident population: one row per incident declared in the period, with milestones, "
                               "minutes to declare/acknowledge/mitigate/resolve, PIR and action status, chain head",
                   query=f"incident rows with {period}, ordered by number; milestones derived from each incident's events",
                   share=share)
    e2 = ctx.table(E2_FILE, eventlog_export.COLUMNS, section="E2",
                   description="Incident event log: every event of each population incident's stream, with "
                               "prev_hash and hash (re-verifiable offline); the packets' timelines are these rows",
                   query=f"event rows of streams incident:<n> for incidents with {period}, all seqs as of "
                         f"generation, ordered by incident number then seq", share=share)
    pirs = ctx.table("pirs", pir_export.COLUMNS, section="E5",
                     description="Post-incident reviews: one row per population incident (status says when none "
                                 "is scheduled yet)",
                     query=f"post_incident_review joined to incident rows with {period}, ordered by number",
                     share=share)
    files = IncidentFiles(ctx, population=e1, event_log=e2, pirs=pirs, folder="incidents",
                          packet_description=lambda incident: (
                              f"{incident.key} evidence packet: summary, roles, milestones, playbook checklists, "
                              "post-incident review, actions, full timeline, integrity block"),
                          review_rows=ctx.review_rows, linked=linked)
    for page in _pages(ctx, numbers):
        files.write_page(page)
        ctx.progress.advance(len(page))
    files.finish()


def state_sequence(ctx: Context, numbers: list[int]) -> None:
    """The manifest's INC- sequence: the incidents included (`numbers`, in order) and any gaps."""
    ctx.manifest.sequences.append(sequence(ctx.session, "INC-", Incident, "incident", RULE, numbers,
                                          Incident.exercise.is_(False)))
