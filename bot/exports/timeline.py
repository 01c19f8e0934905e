"""Per-incident timeline export (E2 rows, E3 packet) in JSON, CSV, Markdown or HTML.

Events are listed in chain order (stream seq), which is the order Vigil recorded them; a message
added later keeps its own earlier `occurred_at`. JSON carries every hashed field as stored, so an
auditor can recompute the chain from the file alone (see `HASH_METHOD`). In JSON, `corrects` is the
stored event id (a hashed field), so each JSON event also carries its `id`; CSV does the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, StreamHead, events_for_stream
from vigil_ir.bidi import neutralise
from vigil_ir.eventlog.verify import verify_events
from vigil_ir.exports import csvsafe
from vigil_ir.exports.describe import describe, one_line, when
from vigil_ir.exports.population import close_override
from vigil_ir.exports.render import EMPTY, render
from vigil_ir.followup import pir
from vigil_ir.followup.models import ActionItem, PostIncidentReview
from vigil_ir.incidents.models import CAUSE_CATEGORIES, EXERCISE_KINDS, TYPES, Incident
from vigil_ir.incidents.queries import Milestones, milestones
from vigil_ir.people import Directory
from vigil_ir.people.columns import name_cell, parse_when
from vigil_ir.playbooks import runner

FORMATS = ("json", "csv", "md", "html")
CSV_COLUMNS = ("seq", "id", "occurred_at", "recorded_at", "actor", "actor_name", "kind", "summary", "data",
               "corrects", "hash")
HASH_METHOD = ("hash = sha256(prev_hash + canonical_json(e)) where e holds stream, stream_seq (= seq), "
               "kind, actor, occurred_at, recorded_at, data, corrects, prev_hash; canonical_json: "
               "sorted keys, no white space, UTF-8; the first event's prev_hash is 64 zeros")


def event_record(event: Event, people: Directory) -> dict[str, Any]:
    return {"id": event.id, "stream": event.stream, "seq": event.stream_seq,
            "occurred_at": clock.iso(event.occurred_at), "recorded_at": clock.iso(event.recorded_at),
            "actor": event.actor, "actor_name": people.name_column(event.actor, event.occurred_at), "kind": event.kind, "data": event.data, "corrects": event.corrects,
            "prev_hash": event.prev_hash, "hash": event.hash}


def _html_text(value: Any) -> str:
    """A value as the HTML environment shows it (vigil_ir.exports.render.html_finalize, then escaped
    exactly as markupsafe escapes), without building a Markup object per cell. ASCII text holds no
    bidi control, so most cells skip that scan."""
    if value is None:
        return EMPTY
    text = (value if value.isascii() else neutralise(value)) if isinstance(value, str) else str(value)
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
            .replace("'", "&#39;"))


def html_timeline_rows(shown: list[tuple], *, plain_times: bool = False) -> Markup:
    """The HTML timeline's rows, built once here rather than cell by cell in the template (a year's
    bundle has hundreds of thousands); each cell escaped as the template would escape it.
    `plain_times`: the times are known to be `YYYY-MM-DD HH:MM:SS UTC` (nothing to escape)."""
    text = _html_text
    if plain_times:
        return Markup("".join(f"<tr><td>{seq}</td><td>{occurred}</td><td>{recorded}</td>"
                              f"<td>{text(actor)}</td><td>{text(what)}</td></tr>\n"
                              for seq, occurred, recorded, actor, what in shown))
    return Markup("".join(f"<tr><td>{seq}</td><td>{text(occurred)}</td><td>{text(recorded)}</td>"
                          f"<td>{text(actor)}</td><td>{text(what)}</td></tr>\n"
                          for seq, occurred, recorded, actor, what in shown))


# Who each record names, and the field dating the act (None: as at generation). A `<field>_name`
# goes beside each in JSON; Markdown and HTML show "Name (U…)" in place of the id.
SUMMARY_PEOPLE = {"declared_by": "declared_at", "lead": None, "comms": None, "scribe": None}
STEP_PEOPLE = {"assignee": None, "by": "at"}
RUN_PEOPLE = {"attached_by": "attached_at"}
REVIEW_PEOPLE = {"facilitator": "held_at", "attendees": "held_at", "completed_by": "completed_at"}
ACTION_PEOPLE = {"owner": None, "completed_by": "completed_at"}
DEADLINE_PEOPLE = {"decided_by": "resolved_at"}


def _when(record: dict[str, Any], field: str | None):
    return parse_when(record.get(field)) if field else None


def with_names(record: dict[str, Any] | None, fields: dict[str, str | None], people: Directory) -> dict[str, Any] | None:
    """`record` with a `<field>_name` beside each person field (JSON)."""
    if record is None:
        return None
    named = dict(record)
    for name, at in fields.items():
        named[f"{name}_name"] = name_cell(people, record.get(name), _when(record, at))
    return named


def with_labels(record: dict[str, Any] | None, fields: dict[str, str | None], people: Directory) -> dict[str, Any] | None:
    """`record` with each person field shown as "Name (U…)" (Markdown, HTML)."""
    if record is None:
        return None
    shown = dict(record)
    for name, at in fields.items():
        value = record.get(name)
        if isinstance(value, (list, tuple)):
            shown[name] = people.labels(value, _when(record, at))
        elif value:
            shown[name] = people.label(value, _when(record, at))
    return shown


def incident_summary(incident: Incident) -> dict[str, Any]:
    return {"key": incident.key, "title": incident.title, "type": incident.type,
            "security": incident.security, "private": incident.private,
            "severity_initial": incident.initial_severity, "severity_current": incident.severity, "status": incident.status,
            "description": incident.description, "declared_by": incident.declared_by,
            "declared_at": clock.iso(incident.declared_at), "detected_at": clock.iso(incident.detected_at),
            "lead": incident.lead, "comms": incident.comms, "scribe": incident.scribe,
            "channel_id": incident.channel_id, "channel_name": incident.channel_name,
            "current_summary": incident.current_summary,
            "next_update_due": clock.iso(incident.next_update_due),
            "customer_impact": incident.customer_impact, "root_cause": incident.root_cause,
            "cause_category": incident.cause_category,
            "lessons_learned": incident.lessons_learned, "follow_ups": list(incident.follow_ups or [])}


def milestone_record(m: Milestones) -> dict[str, Any]:
    return {"declared_at": clock.iso(m.declared), "detected_at": clock.iso(m.detected),
            "acknowledged_at": clock.iso(m.acknowledged), "mitigated_at": clock.iso(m.mitigated),
            "resolved_at": clock.iso(m.resolved), "closed_at": clock.iso(m.closed),
            "minutes_to_declare": m.minutes_to_declare, "minutes_to_acknowledge": m.minutes_to_acknowledge,
            "minutes_to_mitigate": m.minutes_to_mitigate, "minutes_to_resolve": m.minutes_to_resolve,
            "paged_at": clock.iso(m.paged), "page_acknowledged_at": clock.iso(m.page_acknowledged),
            "minutes_to_page_acknowledge": m.minutes_to_page_acknowledge,
            # Stated so the figures cannot be misread: acknowledgement counts from declaration (from the
            # first page when paged), mitigation and resolution from detection
            # (vigil_ir.incidents.queries.Milestones).
            "measured_from": {"declare": "detected_at", "acknowledge": "paged_at" if m.paged else "declared_at",
                              "mitigate": "detected_at", "resolve": "detected_at"}}


@dataclass
class Timeline:
    """One consistent read of an incident and its stream, ready to render in any format."""

    incident: Incident
    events: list[Event]
    head: StreamHead | None
    generated_at: Any
    checklists: list[dict[str, Any]] = field(default_factory=list)
    review: dict[str, Any] | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    people: Directory = field(default_factory=Directory.empty)
    risks: list[dict[str, Any]] = field(default_factory=list)  # risks linked to the incident

    @property
    def milestones(self) -> Milestones:
        return milestones(self.incident, self.events)

    def integrity(self) -> dict[str, Any]:
        result = verify_events(self.events)
        problem = result.broken.describe() if result.broken else None
        last = self.events[-1] if self.events else None
        # The stream head row catches a deleted tail, which the chain alone cannot show.
        if problem is None and self.head is not None and (
                last is None or (self.head.seq, self.head.hash) != (last.stream_seq, last.hash)):
            problem = (f"stream {self.incident.stream}: stream head (seq {self.head.seq}, {self.head.hash}) "
                       f"does not match the last event")
        return {"stream": self.incident.stream, "events": len(self.events),
                "head_seq": last.stream_seq if last else None, "head_hash": last.hash if last else None,
                "verified": problem is None, "problem": problem, "hash_method": HASH_METHOD,
                "generated_at": clock.iso(self.generated_at)}

    def rows(self) -> list[dict[str, Any]]:
        """One row per event with CSV_COLUMNS (data as stored; csvsafe writes it as canonical JSON)."""
        return [{"seq": e.stream_seq, "id": e.id, "occurred_at": clock.iso(e.occurred_at),
                 "recorded_at": clock.iso(e.recorded_at), "actor": e.actor,
                 "actor_name": self.people.name_column(e.actor, e.occurred_at), "kind": e.kind,
                 "summary": self.people.name_ids(describe(e), e.occurred_at), "data": e.data, "corrects": e.corrects, "hash": e.hash}
                for e in self.events]

    def to_json(self) -> str:
        people = self.people
        playbooks = [{**with_names(run, RUN_PEOPLE, people),
                      "steps": [with_names(step, STEP_PEOPLE, people) for step in run["steps"]],
                      "deadlines": [with_names(d, DEADLINE_PEOPLE, people) for d in run["deadlines"]]}
                     for run in self.checklists]
        document = {"export": "incident_timeline",
                    "incident": with_names(incident_summary(self.incident), SUMMARY_PEOPLE, people),
                    "milestones": milestone_record(self.milestones),
                    "playbooks": playbooks, "post_incident_review": with_names(self.review, REVIEW_PEOPLE, people),
                    "actions": [with_names(a, ACTION_PEOPLE, people) for a in self.actions],
                    "linked_risks": [with_names(r, {"owner": None}, people) for r in self.risks],
                    **self.events_section(),
                    "integrity": self.integrity()}
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    def events_section(self) -> dict[str, Any]:
        """The packet JSON's events: every event record here (a bundle's packet names its event-log
        file instead, vigil_ir.exports.bundle.packets)."""
        return {"events": [event_record(e, self.people) for e in self.events]}

    def shown_events(self) -> list[tuple[int, str, str, str | None, str | None]]:
        """(seq, occurred, recorded, actor, what happened) of each timeline row, as people read them."""
        people = self.people
        return [(e.stream_seq, when(e.occurred_at), when(e.recorded_at), people.label(e.actor, e.occurred_at),
                 people.name_ids(describe(e), e.occurred_at)) for e in self.events]

    def html_rows(self, shown: list[tuple]) -> Markup:
        return html_timeline_rows(shown)

    def report_context(self) -> dict[str, Any]:
        """What the Markdown and HTML templates show; values are raw, the environment escapes."""
        i, m, people = self.incident, self.milestones, self.people
        who = {name: people.label(getattr(i, name), i.declared_at if at else None) for name, at in SUMMARY_PEOPLE.items()}
        facts = [("Key", i.key), ("Title", i.title), ("Type", TYPES.get(i.type, i.type)),
                 ("Security incident", "yes" if i.security else "no"),
                 ("Private", "yes: its channel and Slack listings are for its members" if i.private else "no"),
                 ("Severity", i.severity if i.severity == i.initial_severity
                  else f"{i.severity} (initially {i.initial_severity})"),
                 ("Status", i.status), ("Declared", f"{when(i.declared_at)} by {who['declared_by']}"),
                 ("Detected", when(i.detected_at)), ("Lead", who["lead"]), ("Comms", who["comms"]),
                 ("Scribe", who["scribe"]),
                 ("Channel", f"#{i.channel_name} ({i.channel_id})" if i.channel_id else None),
                 ("Description", i.description or None)]
        if i.exercise:
            facts.insert(1, ("Exercise", f"{EXERCISE_KINDS.get(i.exercise_kind or '', 'exercise')}, not a real incident "
                                         f"(left out of the incident population and its figures). Scenario: {i.scenario}"))
        open_items, reason = close_override(self.events)
        if open_items:
            close = next(e for e in reversed(self.events) if e.kind == "incident.closed")
            facts.append(("Closed with items open", f"{open_items}. Override by {people.label(close.actor, close.occurred_at)}"
                                                    f" at {when(close.occurred_at)}: {reason}"))
        if self.risks:
            facts.append(("Linked risks", "; ".join(f"{r['key']} {r['title']} (owner {people.label(r['owner'])}, "
                                                   f"{r['status']})" for r in self.risks)))
        if i.status == "closed":
            facts += [("Customer impact", i.customer_impact), ("Root cause", i.root_cause),
                      ("Root-cause category", CAUSE_CATEGORIES.get(i.cause_category or "", "not recorded")),
                      ("Lessons learned", i.lessons_learned or None),
                      ("Follow-ups", "\n".join(i.follow_ups or []) or None)]

        def elapsed(minutes: float | None, verb: str, basis: str) -> str | None:
            return None if minutes is None else f"{minutes} min to {verb} (from {basis})"

        marks = [("Declared", m.declared, None), ("Detected", m.detected, None),
                 ("Acknowledged", m.acknowledged, elapsed(m.minutes_to_acknowledge, "acknowledge",
                                                          "the first page" if m.paged else "declaration")),
                 ("Mitigated", m.mitigated, elapsed(m.minutes_to_mitigate, "mitigate", "detection")),
                 ("Resolved", m.resolved, elapsed(m.minutes_to_resolve, "resolve", "detection")),
                 ("Closed", m.closed, None)]
        shown = self.shown_events()
        events = [{"seq": seq, "occurred": occurred, "recorded": recorded, "actor": actor, "what": what}
                  for seq, occurred, recorded, actor, what in shown]
        checklists = [{**with_labels(run, RUN_PEOPLE, people),
                       "steps": [with_labels(step, STEP_PEOPLE, people) for step in run["steps"]],
                       "deadlines": [with_labels(d, DEADLINE_PEOPLE, people) for d in run["deadlines"]]}
                      for run in self.checklists]
        return {"key": i.key, "title": i.title, "facts": facts,
                "exercise": "EXERCISE — not a real incident" if i.exercise else None,
                "milestones": [{"label": label, "at": when(at) if at else None, "elapsed": note}
                               for label, at, note in marks],
                "events": events, "timeline_rows": lambda: self.html_rows(shown), "checklists": checklists, "review": with_labels(self.review, REVIEW_PEOPLE, people),
                "actions": [with_labels(a, ACTION_PEOPLE, people) for a in self.actions],
                "when": when, "integrity": self.integrity()}

    def render(self, fmt: str) -> str:
        if fmt == "json":
            return self.to_json()
        if fmt == "csv":
            rows = [{**row, "summary": one_line(row["summary"])} for row in self.rows()]
            return csvsafe.to_csv(CSV_COLUMNS, rows)
        if fmt in ("md", "html"):
            return render(fmt, f"timeline.{fmt}.j2", **self.report_context())
        raise ValueError(f"Unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def load_timeline(session: Session, incident: Incident, people: Directory | None = None) -> Timeline:
    return Timeline(incident=incident, events=events_for_stream(session, incident.stream),
                    head=session.get(StreamHead, incident.stream), generated_at=clock.now(),
                    checklists=checklists(session, incident), review=review_record(session, incident),
                    actions=action_records(session, incident), people=people or Directory.load(session),
                    risks=risk_links(session).get(incident.key, []))


def risk_links(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Incident key → the risks linked to it (`/risk link`, or the risk's incidents field), in key order."""
    from vigil_ir.risks.models import Risk, key_of

    links: dict[str, list[dict[str, Any]]] = {}
    # The five columns it shows, not whole risk rows: a register of thousands is read for every bundle.
    query = select(Risk.number, Risk.title, Risk.owner, Risk.status, Risk.linked_incidents).order_by(Risk.number)
    for number, title, owner, status, linked in session.exec(query):
        for key in linked or []:
            links.setdefault(key, []).append({"key": key_of(number), "title": title, "owner": owner,
                                              "status": status})
    return links


def review_record(session: Session, incident: Incident) -> dict[str, Any] | None:
    return review_fields(pir.for_incident(session, incident))


def review_fields(review: PostIncidentReview | None) -> dict[str, Any] | None:
    """The packet's post-incident review section, from the review row (None: no review yet)."""
    if review is None:
        return None
    return {"required": review.required, "status": pir.status_label(review), "due_at": clock.iso(review.due_at),
            "facilitator": review.facilitator, "held_at": clock.iso(review.held_at), "attendees": review.attendees,
            "summary": review.summary, "root_cause": review.root_cause,
            "contributing_factors": review.contributing_factors, "went_well": review.went_well,
            "went_poorly": review.went_poorly, "detection_gap": review.detection_gap,
            "plan_change_needed": review.plan_change_needed, "plan_change_ref": review.plan_change_ref,
            "completed_by": review.completed_by, "completed_at": clock.iso(review.completed_at)}


def action_records(session: Session, incident: Incident) -> list[dict[str, Any]]:
    return action_fields(session.exec(select(ActionItem).where(ActionItem.incident_id == incident.id)
                                      .order_by(ActionItem.number)))


def action_fields(found: Iterable[ActionItem]) -> list[dict[str, Any]]:
    """The packet's actions section, from the incident's action rows in number order."""
    return [{"key": a.key, "description": a.description, "owner": a.owner, "type": a.type,
             "due_on": a.due_on.isoformat() if a.due_on else None, "status": a.status,
             "cancelled_reason": (a.status_reason or None) if a.status == "cancelled" else None,
             "completed_by": a.completed_by, "completed_at": clock.iso(a.completed_at), "evidence": a.evidence or None,
             "ticket_url": a.ticket_url or None} for a in found]


def checklists(session: Session, incident: Incident) -> list[dict[str, Any]]:
    """Each attached playbook with every step's outcome (who, when, evidence) and its deadlines."""
    return checklists_of(session, [incident.id]).get(incident.id, [])


def checklists_of(session: Session, incident_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """`checklists` of each of many incidents (by id), in three queries however many there are."""
    from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep

    runs = list(session.exec(select(PlaybookRun).where(PlaybookRun.incident_id.in_(incident_ids))
                             .order_by(PlaybookRun.id)))
    run_ids = [run.id for run in runs]
    steps: dict[int, list[PlaybookStep]] = {}
    deadlines: dict[int, list[PlaybookDeadline]] = {}
    if run_ids:
        for step in session.exec(select(PlaybookStep).where(PlaybookStep.run_id.in_(run_ids))
                                 .order_by(PlaybookStep.run_id, PlaybookStep.position)):
            steps.setdefault(step.run_id, []).append(step)
        for deadline in session.exec(select(PlaybookDeadline).where(PlaybookDeadline.run_id.in_(run_ids))
                                     .order_by(PlaybookDeadline.run_id, PlaybookDeadline.id)):
            deadlines.setdefault(deadline.run_id, []).append(deadline)
    result: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        result.setdefault(run.incident_id, []).append(_checklist(run, steps.get(run.id, []),
                                                                 deadlines.get(run.id, [])))
    return result


def _checklist(run, steps: list, deadlines: list) -> dict[str, Any]:
    return {"playbook_id": run.playbook_id, "title": run.title, "version": run.version, "sha256": run.sha256,
            "attached_by": run.attached_by, "attached_at": clock.iso(run.attached_at),
            "steps": [{"phase": s.phase_title, "step_id": s.step_id, "title": s.title, "required": s.required,
                       "status": s.status, "assignee": s.assignee, "due_at": clock.iso(s.due_at),
                       "by": s.completed_by, "at": clock.iso(s.completed_at),
                       "evidence": s.evidence_text, "skip_reason": s.skip_reason} for s in steps],
            "deadlines": [{"deadline_id": d.deadline_id, "label": d.label, "duration": d.duration,
                           "starts_from": d.starts_from, "due_at": clock.iso(d.due_at),
                           "status": f"{d.decision} (decided: {d.decision_reason})" if d.status == "decided"
                           else d.status,
                           "resolved_at": clock.iso(d.resolved_at), "decided_by": d.decided_by,
                           "settled_by_step": (d.met_by or "").removeprefix("step:") or None} for d in deadlines]}


def timeline_rows(session: Session, incident: Incident) -> list[dict[str, Any]]:
    return load_timeline(session, incident).rows()


def render_timeline(session: Session, incident: Incident, fmt: str) -> str:
    if fmt not in FORMATS:  # before touching the database
        raise ValueError(f"Unknown timeline format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return load_timeline(session, incident).render(fmt)
