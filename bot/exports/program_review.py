"""The periodic incident-response review (CC7.4): is the program operating, and is it improving?

Rebuilt from the records for [start, end), like the risk assessment (E10): the incident population
(milestones folded from each incident's events), the same-length period before it for the trend,
status-update cadence (vigil_ir.exports.bundle.cadence), post-incident reviews, follow-up actions,
regulatory and contractual clocks from the playbooks, and risks that more than one incident was
linked to. Counts use each incident's severity at generation (`severity_final`). Times are medians
and 90th percentiles (nearest rank) in minutes, from the population's columns.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from statistics import median
from typing import Any, Callable

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.config_evidence import CadenceInForce
from vigil_ir.exports import charts
from vigil_ir.exports.bundle.cadence import cadence_rows, outcome_kind
from vigil_ir.exports.population import incident_population
from vigil_ir.exports.render import Section, render_sections
from vigil_ir.exports.timeline import risk_links
from vigil_ir.followup.action_export import action_rows
from vigil_ir.followup.pir_export import pir_rows
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents.models import CAUSE_CATEGORIES, EXERCISE_KINDS, SEVERITIES, TYPES, Incident
from vigil_ir.incidents.queries import declared_between
from vigil_ir.people import Directory
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun

FORMATS = ("md", "html")
MEASURES = (("minutes_to_acknowledge", "Acknowledge"), ("minutes_to_mitigate", "Mitigate"),
            ("minutes_to_resolve", "Resolve"))
# The population columns the review reads (`sections`; `build` the keys): what the bundle's incident
# pass, which builds every population row anyway, keeps of each for the review.
POPULATION_COLUMNS = ("key", "type", "security", "severity_final", "status", "declared_at", "cause_category",
                      *(column for column, _ in MEASURES))


@dataclass
class ProgramReview:
    start: datetime
    end: datetime
    previous_start: datetime
    generated_at: datetime
    incidents: list[dict[str, Any]]
    previous: list[dict[str, Any]]
    cadence: Counter
    pirs: Counter
    actions: Counter
    clocks: list[dict[str, Any]]
    recurring: list[tuple[str, list[str]]]  # (risk, incidents linked to it in the period)
    sign_offs: list = field(default_factory=list)
    exercises: list[Incident] = field(default_factory=list)  # held in the period: counted, never in the figures


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(share × n)); None for no values."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1] if ordered else None


def _minutes(rows: list[dict], column: str) -> list[float]:
    return [row[column] for row in rows if row[column] is not None]


def _action_state(row: dict, end: datetime) -> str:
    if row["status"] == "cancelled":
        return "cancelled"
    if row["completed_at"]:
        due = row["due_at"]
        return "done on time" if due is None or row["completed_at"][:10] <= due else "done late"
    return "open, overdue" if row["overdue"] else "open, not yet due"


def _previous_start(start: datetime, end: datetime) -> datetime:
    """The start of the period as long as [start, end) just before it, or the first instant there is
    (a period from year 1 has no earlier one to compare with, but is still a period)."""
    try:
        return start - (end - start)
    except OverflowError:
        return datetime.min.replace(tzinfo=timezone.utc)


def build(session: Session, start: datetime, end: datetime, *, settings: Settings,
          people: Directory | None = None, generated_at: datetime | None = None,
          where: Callable[[dict], bool] | None = None) -> ProgramReview:
    """The review of [start, end); `where` keeps only the incidents whose population row it accepts
    (the dashboard's type, severity and security filters), in every section."""
    keep = where or (lambda row: True)
    incidents = [row for row in incident_population(session, clock.to_utc(start), clock.to_utc(end)) if keep(row)]
    review = build_around(session, start, end, {row["key"] for row in incidents}, settings=settings, people=people,
                          generated_at=generated_at, where=where)
    review.incidents = incidents
    return review


def build_around(session: Session, start: datetime, end: datetime, keys: set[str], *, settings: Settings,
                 people: Directory | None = None, generated_at: datetime | None = None,
                 where: Callable[[dict], bool] | None = None, cadence: Counter | None = None) -> ProgramReview:
    """Every part of the review of the incidents `keys` of [start, end) but their population rows
    (`incidents`, left empty: `build` folds them, the bundle's incident pass hands them over in
    `POPULATION_COLUMNS`); `cadence`: these incidents' cadence rows counted by `outcome_kind`, when
    the caller has them."""
    from vigil_ir.risks import signoff

    start, end = clock.to_utc(start), clock.to_utc(end)
    previous_start, generated_at = _previous_start(start, end), generated_at or clock.now()
    people = people or Directory.load(session)
    keep = where or (lambda row: True)
    if cadence is None:
        population = [incident for incident in declared_between(session, start, end) if incident.key in keys]
        cadences = CadenceInForce(session, Policy.from_settings(settings).update_cadence)
        cadence = Counter(outcome_kind(row["outcome"])
                          for row in cadence_rows(session, population, cadences, people, generated_at))
    pirs = Counter("not required" if row["status"].startswith("not required") else
                   ("completed on time" if row["on_time"] else "completed late") if row["status"] == "completed"
                   else row["status"] for row in pir_rows(session, start, end) if row["incident_ref"] in keys)
    actions = Counter(_action_state(row, end) for row in action_rows(session, start, end, people)
                      if row["parent_type"] == "incident" and row["parent_ref"] in keys)
    clocks = [{"incident": f"INC-{number}", "label": deadline.label, "status": deadline.status,
               "due_at": clock.iso(deadline.due_at), "resolved_at": clock.iso(deadline.resolved_at),
               "decision": deadline.decision, "reason": deadline.decision_reason}
              for deadline, number in session.exec(
                  select(PlaybookDeadline, Incident.number).join(PlaybookRun, PlaybookRun.id == PlaybookDeadline.run_id)
                  .join(Incident, Incident.id == PlaybookRun.incident_id)
                  .where(Incident.declared_at >= start, Incident.declared_at < end, Incident.exercise.is_(False))
                  .order_by(Incident.number, PlaybookDeadline.id)) if f"INC-{number}" in keys]
    linked: dict[str, list[str]] = {}
    for incident_key, risks in risk_links(session).items():
        if incident_key in keys:
            for risk in risks:
                linked.setdefault(f"{risk['key']} {risk['title']}", []).append(incident_key)
    recurring = sorted((risk, sorted(found, key=lambda k: int(k.split("-")[1])))
                       for risk, found in linked.items() if len(found) > 1)
    return ProgramReview(start=start, end=end, previous_start=previous_start, generated_at=generated_at,
                         incidents=[],
                         previous=[row for row in incident_population(session, previous_start, start) if keep(row)],
                         cadence=cadence, pirs=pirs, actions=actions, clocks=clocks, recurring=recurring,
                         sign_offs=signoff.sign_offs(session, start, end, subject=signoff.INCIDENT_REVIEW),
                         exercises=declared_between(session, start, end, exercises=True))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


def _fmt(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _trend(now: float | None, before: float | None) -> str | None:
    if now is None or before is None:
        return None
    if now == before:
        return "unchanged"
    return f"{'faster' if now < before else 'slower'} by {abs(now - before):g} min"


def sections(r: ProgramReview) -> list[Section]:
    rows, months = r.incidents, sorted({row["declared_at"][:7] for row in r.incidents})
    by_month = Counter((row["declared_at"][:7], row["severity_final"]) for row in rows)
    severities = [s for s in SEVERITIES if any(row["severity_final"] == s for row in rows)]
    security = sum(1 for row in rows if row["security"])
    volume = Section(
        "Incidents in the period",
        f"{_n(len(rows), 'incident')} declared ({_n(len(r.previous), 'incident')} in the period before), "
        f"{security} of them {'a security incident' if security == 1 else 'security incidents'}.",
        ("Month", *SEVERITIES, "All"),
        [(month, *(by_month[(month, s)] for s in SEVERITIES), sum(by_month[(month, s)] for s in SEVERITIES))
         for month in months],
        empty="No incident was declared in the period.",
        chart=charts.bar_chart("Incidents per month by severity", months,
                               {s: [by_month[(m, s)] for m in months] for s in severities}) if rows else "")
    types = Counter(row["type"] for row in rows)
    kinds = Section("By type and security flag", "How the period's incidents were classified.",
                    ("Type", "Incidents", "Security"),
                    [(TYPES.get(t, t), count, sum(1 for row in rows if row["type"] == t and row["security"]))
                     for t, count in types.most_common()])
    timing_rows = []
    for severity in SEVERITIES:
        now = [row for row in rows if row["severity_final"] == severity]
        before = [row for row in r.previous if row["severity_final"] == severity]
        if not now and not before:
            continue
        for column, label in MEASURES:
            values, earlier = _minutes(now, column), _minutes(before, column)
            typical = median(values) if values else None
            was = median(earlier) if earlier else None
            timing_rows.append((severity, label, len(values), _fmt(typical), _fmt(percentile(values, 0.9)),
                                _fmt(was), _trend(typical, was)))
    resolve = {s: ([median(v) if (v := _minutes([row for row in data if row["severity_final"] == s],
                                                 "minutes_to_resolve")) else None for data in (r.previous, rows)])
               for s in SEVERITIES}
    timing = Section(
        "Time to acknowledge, mitigate and resolve (CC7.4)",
        "Minutes, per severity: acknowledge counts from the declaration, mitigate and resolve from detection "
        "(milestone definitions in the recorded configuration). Median and 90th percentile (nearest rank), and "
        "the median of the period before for the trend.",
        ("Severity", "Measure", "Incidents", "Median", "90th percentile", "Median before", "Trend"), timing_rows,
        empty="No incident in this period or the one before.",
        chart=charts.bar_chart("Median minutes to resolve: period before vs this period", list(SEVERITIES),
                               {"period before": [resolve[s][0] for s in SEVERITIES],
                                "this period": [resolve[s][1] for s in SEVERITIES]}, unit=" min")
        if any(value is not None for pair in resolve.values() for value in pair) else "")
    due = sum(r.cadence[k] for k in ("on time", "late", "missed"))
    cadence = Section(
        "Status-update cadence (CC2.2, CC2.3)",
        f"{_n(due, 'update')} fell due and were settled: {r.cadence['on time']} on time, {r.cadence['late']} late, "
        f"{r.cadence['missed']} missed (resolved without the update). Snoozed: {r.cadence['snoozed']}; still open at "
        f"generation: {r.cadence['overdue'] + r.cadence['not yet due']}. Each due time is in the bundle's "
        "update_cadence file.", ("Outcome", "Count"), sorted(r.cadence.items()))
    pirs = Section("Post-incident reviews (CC7.4, CC7.5)",
                   "Reviews of the period's incidents, by state (required by the policy from the highest severity "
                   "reached and the security flag).", ("State", "Reviews"), sorted(r.pirs.items()))
    actions = Section("Follow-up actions (CC7.5)",
                      "Actions raised on incidents, created, due or completed in the period, by state at generation.",
                      ("State", "Actions"), sorted(r.actions.items()))
    outcomes = Counter(c["decision"] and f"decided: {c['decision']}" or c["status"] for c in r.clocks)
    clocks = Section("Regulatory and contractual clocks",
                     f"{_n(len(r.clocks), 'clock')} from the playbooks followed: "
                     + (", ".join(f"{count} {state}" for state, count in sorted(outcomes.items())) or "none") + ".",
                     ("Incident", "Clock", "Due", "Outcome", "Settled", "Reason"),
                     [(c["incident"], c["label"], c["due_at"], c["decision"] and f"decided: {c['decision']}"
                       or c["status"], c["resolved_at"], c["reason"]) for c in r.clocks])
    categories = Counter(row["cause_category"] for row in rows if row["status"] == "closed")
    causes = Section("Root-cause categories (CC7.4)", "Closed incidents by the root-cause category chosen when "
                     "closing; a category that recurs points at a control to strengthen.", ("Category", "Incidents"),
                     [(CAUSE_CATEGORIES.get(category, "not recorded") if category else "not recorded", count)
                      for category, count in categories.most_common()], empty="No incident of the period is closed.")
    recurring = Section("Recurring causes", "Risks that more than one of the period's incidents was linked to.",
                        ("Risk", "Incidents"), [(risk, ", ".join(found)) for risk, found in r.recurring],
                        empty="No risk was linked to more than one incident.")
    held = Counter(EXERCISE_KINDS.get(e.exercise_kind or "", e.exercise_kind) for e in r.exercises)
    exercises = Section(
        "Exercises held (CC7.5)",
        f"{_n(len(r.exercises), 'exercise')} held in the period"
        + (f" ({', '.join(f'{count} {kind.lower()}' for kind, count in sorted(held.items()))})" if held else "")
        + ". Exercises rehearse the response plans; they are not incidents and are in none of the figures above "
          "(the bundle's exercise register lists each one).",
        ("Exercise", "Held", "Kind", "Scenario", "Status"),
        [(e.key, clock.iso(e.declared_at)[:10], EXERCISE_KINDS.get(e.exercise_kind or "", e.exercise_kind), e.scenario,
          e.status) for e in r.exercises], empty="No exercise was held in the period.")
    signed = Section("Sign-off", "Recorded with `vigil incidents sign-off` for exactly this period, whenever it was "
                     "recorded; each is an event in the hash-chained log, and the report file signed is kept.",
                     ("Signed off by", "E-mail", "Title", "Role", "At", "Comment", "Report signed", "Report SHA-256"),
                     [(s.label, s.by_email, s.by_title, s.role or None, s.signed_at, s.comment or None, s.report_file,
                       s.report_sha256) for s in r.sign_offs], empty="Not signed off yet.")
    return [volume, kinds, timing, cadence, pirs, actions, clocks, causes, recurring, exercises, signed]


def period_text(r: ProgramReview) -> str:
    last = (r.end - timedelta(microseconds=1)).date()
    return f"{r.start.date().isoformat()} to {last.isoformat()} (UTC, both days included)"


def render_built(r: ProgramReview, fmt: str) -> str:
    return render_sections(fmt, heading="Incident-response program review", period=period_text(r),
                           generated_at=clock.iso(r.generated_at), note="", sections=sections(r))


def render_review(session: Session, start: datetime, end: datetime, fmt: str, *, settings: Settings) -> str:
    return render_built(build(session, start, end, settings=settings), fmt)
