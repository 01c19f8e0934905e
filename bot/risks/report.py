"""The periodic risk assessment report (E10) for a period, as Markdown or HTML.

Everything in it is rebuilt from the records: the register at the start and at the end of the
period (folded from the event log, vigil_ir.risks.register_asof), the review log and acceptances of the
period, risk treatment actions, and the management sign-offs recorded for the period. It covers
what auditors ask of the CC3 artifact: scope, methodology, participants, heat maps, what changed
(new, closed, rescored), fraud, change- and incident-triggered reviews, vendors, risks above
appetite with their treatment and acceptance, overdue reviews and actions, and the sign-off.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.exports import risks as risk_exports
from vigil_ir.exports.render import Section, render_sections
from vigil_ir.followup.models import ActionItem
from vigil_ir.people import Directory
from vigil_ir.people.columns import label_in_row
from vigil_ir.risks import heatmap, register_asof, signoff
from vigil_ir.risks.models import Risk
from vigil_ir.risks.scoring import CURRENT, LEVELS, methodology

FORMATS = ("md", "html")
FRAUD = {"category": "financial", "risk_type": "fraud"}
VENDOR = {"category": "vendor", "risk_type": "vendor"}
RESCORE_FIELDS = ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact")


@dataclass
class Report:
    start: datetime
    end: datetime
    as_of: date
    generated_at: datetime
    register: list[dict[str, Any]]  # register rows at the end of the period (E7)
    methodologies: list[dict[str, Any]]
    levels: list[dict[str, Any]]  # per level: inherent and residual counts of open risks
    heat: heatmap.HeatMap
    participants: dict[str, list[str]]
    new: list[dict[str, Any]]
    closed: list[dict[str, Any]]
    rescored: list[dict[str, Any]]  # {"row": end row, "before": "L×I → L×I" texts}
    fraud: list[dict[str, Any]]
    vendor: list[dict[str, Any]]
    triggered_reviews: list[dict[str, Any]]
    review_counts: dict[str, int]
    above_appetite: list[dict[str, Any]]
    acceptances: list[dict[str, Any]]
    overdue_reviews: list[dict[str, Any]]
    overdue_actions: list[dict[str, Any]]
    sign_offs: list[signoff.SignOff] = field(default_factory=list)
    people: Directory = field(default_factory=Directory.empty)

    @property
    def open_rows(self) -> list[dict[str, Any]]:
        return [row for row in self.register if row["status"] != "closed"]


def build(session: Session, start: datetime, end: datetime, *, end_rows: list[dict] | None = None,
          people: Directory | None = None, reviews: ReviewSummary | None = None) -> Report:
    """The report's content for [start, end). `end_rows` (the register at the end) saves the bundle
    from folding the event log twice; `people` from loading the directory twice; `reviews` (the
    period's review log summarised as it was written) from building the review log twice."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    as_of = (end - timedelta(microseconds=1)).date()
    people = people or Directory.load(session)
    if end_rows is None:
        states = register_asof.states_as_of(session, end)
        end_rows = [register_asof.row(states[number], as_of, people) for number in sorted(states)]
    before = register_asof.states_as_of(session, start)
    if reviews is None:
        reviews = ReviewSummary.of(risk_exports.iter_review_rows(session, start, end, people))
    acceptances = risk_exports.acceptance_rows(session, start, end, people)
    open_rows = [row for row in end_rows if row["status"] != "closed"]
    accepted = {row["risk_ref"]: row for row in acceptances if row["state"] == "active"}
    return Report(
        start=start, end=end, as_of=as_of, generated_at=clock.now(), register=end_rows,
        methodologies=[methodology(v).describe() for v in sorted({r["methodology_version"] for r in end_rows}
                                                                  | {CURRENT.version})],
        levels=_level_counts(open_rows), heat=heatmap.build(end_rows, as_of.isoformat()),
        participants=_participants(end_rows, reviews, acceptances),
        new=[row for row in end_rows if _number(row) not in before],
        closed=[row for row in end_rows
                if row["status"] == "closed" and before.get(_number(row), {}).get("status") != "closed"],
        rescored=_rescored(end_rows, before),
        fraud=[row for row in open_rows if _matches(row, FRAUD)],
        vendor=[row for row in open_rows if _matches(row, VENDOR)],
        triggered_reviews=reviews.triggered, review_counts=reviews.counts,
        above_appetite=[{**row, "acceptance": accepted.get(row["risk_ref"])} for row in open_rows
                        if methodology(row["methodology_version"]).above_appetite(row["residual_level"])],
        acceptances=acceptances,
        overdue_reviews=[row for row in open_rows if row["review_state"] == "overdue"],
        overdue_actions=_overdue_actions(session, end, as_of, people),
        sign_offs=signoff.sign_offs(session, start, end), people=people,
    )


def render_report(session: Session, start: datetime, end: datetime, fmt: str, *,
                  end_rows: list[dict] | None = None) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    return render_built(build(session, start, end, end_rows=end_rows), fmt)


def render_built(report: Report, fmt: str) -> str:
    """One built report in one format (the bundle builds once and writes both)."""
    return render_sections(fmt, heading="Periodic risk assessment", period=_period_text(report),
                           generated_at=clock.iso(report.generated_at),
                           note=f"Register as of {report.as_of.isoformat()}.", sections=sections(report))


def _risk_cells(row: dict) -> tuple:
    return (row["risk_ref"], row["title"], label_in_row(row, "owner"), f"{row['inherent_score']} {row['inherent_level']}",
            f"{row['residual_score']} {row['residual_level']}", row["treatment"], row["status"])


RISK_COLUMNS = ("Risk", "Title", "Owner", "Inherent", "Residual", "Treatment", "Status")


def sections(r: Report) -> list[Section]:
    """The report's parts in order; both templates render these the same way."""
    m = methodology(CURRENT.version)
    scope = Section("Scope and period", f"The risk register as it stood at the end of {r.as_of.isoformat()} (UTC), "
                    f"{_n(len(r.register), 'risk')}, {len(r.open_rows)} of them not closed, and what happened to it in the "
                    "period. Rebuilt from Vigil's hash-chained event log.")
    method = Section("Methodology", "Score = likelihood × impact on 1–5 scales. Risk appetite: a residual level of "
                     f"{m.appetite} or below is tolerated; above it a risk is treated or formally accepted.",
                     ("Version", "Effective from", "Levels (score bands)", "Default review cadence", "Appetite"),
                     [(d["version"], d["effective_from"],
                       ", ".join(f"{b['level']} {b['min']}–{b['max']}" for b in d["level_bands"]),
                       ", ".join(f"{level}: {c}" for level, c in d["review_cadence_by_level"].items()),
                       f"up to {d['appetite']['highest_residual_level_tolerated']}") for d in r.methodologies])
    people = Section("Participants", "Owners of the risks not closed at the period end, and who completed and "
                     "approved reviews and acceptances in the period.", ("Role", "People"),
                     [(role, ", ".join(names) or None) for role, names in r.participants.items()])
    levels = Section("Heat maps: inherent and residual", f"Open risks at the period end by level ({r.heat.total} in "
                     "all). The 5×5 maps are drawn in the HTML report, in the evidence bundle's risk_assessment/ "
                     f"folder, and by `vigil risks heatmap --as-of {r.as_of.isoformat()}`.",
                     ("Level", "Inherent", "Residual"),
                     [(row["level"], row["inherent"], row["residual"]) for row in r.levels], chart=heatmap.svg(r.heat))
    counts = r.review_counts
    return [
        scope, method, people, levels,
        Section("New risks", f"{_n(len(r.new), 'risk')} identified in the period.", RISK_COLUMNS,
                [_risk_cells(row) for row in r.new]),
        Section("Closed risks", f"{_n(len(r.closed), 'risk')} closed in the period.", (*RISK_COLUMNS, "Reason"),
                [(*_risk_cells(row), row["closure_reason"]) for row in r.closed]),
        Section("Rescored risks", f"{_n(len(r.rescored), 'risk')} whose likelihood or impact changed in the period "
                "(from the start of the period to its end).", ("Risk", "Title", "Inherent", "Residual"),
                [(c["row"]["risk_ref"], c["row"]["title"], c["inherent"], c["residual"]) for c in r.rescored]),
        Section("Fraud risks (CC3.3)", f"{_n(len(r.fraud), 'open risk')} of type fraud or in the financial/fraud "
                "category.", RISK_COLUMNS, [_risk_cells(row) for row in r.fraud],
                empty="No fraud risk is on the register: consider whether one should be."),
        Section("Reviews in the period (CC3.2, CC3.4)", f"{_n(counts['completed'], 'review')} completed in the period "
                f"({counts['on time']} on time, {counts['late']} late); {counts['completed early']} due in the period "
                f"and completed before it began; {counts['due but not completed']} due in the period and not "
                "completed by its end (the review log, risk_reviews, lists each). Reviews triggered by an incident, "
                "a change or an expiring acceptance:",
                ("Review", "Risk", "Trigger", "Reference", "Completed", "By", "Outcome"),
                [(row["review_ref"], row["risk_ref"], row["trigger"], row["trigger_ref"], row["completed_at"],
                  label_in_row(row, "completed_by"), row["outcome"]) for row in r.triggered_reviews]),
        Section("Vendor risks (CC9.2)", f"{_n(len(r.vendor), 'open risk')} of type vendor or in the vendor category.",
                RISK_COLUMNS, [_risk_cells(row) for row in r.vendor]),
        Section("Risks above appetite", f"{_n(len(r.above_appetite), 'open risk')} with a residual level above the appetite, "
                "with their treatment and acceptance.", (*RISK_COLUMNS, "Treatment due", "Acceptance"),
                [(*_risk_cells(row), row["treatment_due_at"], _acceptance_text(row["acceptance"]))
                 for row in r.above_appetite]),
        Section("Acceptances (E9)", f"{_n(len(r.acceptances), 'acceptance')} in force during the period.",
                ("Acceptance", "Risk", "Approver", "Approved", "Expires", "State at period end", "Stale"),
                [(row["acceptance_ref"], row["risk_ref"], label_in_row(row, "approver"), row["approved_at"],
                  row["expires_at"],
                  row["state"], "yes: " + row["changed_since_approval"] if row["stale"] else "no")
                 for row in r.acceptances]),
        Section("Overdue reviews", f"{_n(len(r.overdue_reviews), 'open risk')} whose review was overdue at the period end.",
                ("Risk", "Title", "Owner", "Review was due", "Last reviewed"),
                [(row["risk_ref"], row["title"], label_in_row(row, "owner"), row["next_review_due_at"],
                  row["last_reviewed_at"])
                 for row in r.overdue_reviews]),
        Section("Overdue treatment actions", f"{_n(len(r.overdue_actions), 'risk treatment action')} due by the period end "
                "and not completed by then.", ("Action", "Risk", "Description", "Owner", "Due", "Days overdue"),
                [(a["key"], a["risk_ref"], a["description"], a["owner"], a["due_on"], a["days_overdue"])
                 for a in r.overdue_actions]),
        Section("Management sign-off", "Recorded with `vigil risks sign-off` or `/risk sign-off` in Slack for exactly "
                "this period, whenever it was recorded; each sign-off is an event in the hash-chained log, and the "
                "report file signed is kept (its SHA-256 below; in the evidence bundle under risk_assessment/signed/).",
                ("Signed off by", "E-mail", "Title", "Role", "At", "Comment", "Report signed", "Report SHA-256"),
                [(s.label, s.by_email, s.by_title, s.role or None, s.signed_at, s.comment or None, s.report_file,
                  s.report_sha256) for s in r.sign_offs],
                empty="Not signed off yet."),
    ]


def _n(count: int, noun: str) -> str:
    return f"{count} {noun if count == 1 else noun + 's'}"


def _acceptance_text(acceptance: dict | None) -> str | None:
    if acceptance is None:
        return None
    return f"{acceptance['acceptance_ref']} by {label_in_row(acceptance, 'approver')}, expires {acceptance['expires_at']}"


def _number(row: dict) -> int:
    return int(row["risk_ref"].split("-")[1])


def _matches(row: dict, rule: dict[str, str]) -> bool:
    return row["category"] == rule["category"] or row["risk_type"] == rule["risk_type"]


def _period_text(report: Report) -> str:
    last_day = report.as_of.isoformat()
    return f"{report.start.date().isoformat()} to {last_day} (UTC, both days included)"


def _level_counts(open_rows: list[dict]) -> list[dict[str, Any]]:
    inherent = Counter(row["inherent_level"] for row in open_rows)
    residual = Counter(row["residual_level"] for row in open_rows)
    return [{"level": level, "inherent": inherent[level], "residual": residual[level]} for level in reversed(LEVELS)]


def _participants(rows: list[dict], reviews: ReviewSummary, acceptances: list[dict]) -> dict[str, list[str]]:
    return {"Risk owners": sorted({label_in_row(row, "owner") for row in rows if row["status"] != "closed" and row["owner"]}),
            "Reviewers": sorted(reviews.reviewers),
            "Approvers": sorted(reviews.approvers | {label_in_row(row, "approver") for row in acceptances
                                                     if row["approver"]})}


def _rescored(rows: list[dict], before: dict[int, dict]) -> list[dict[str, Any]]:
    changed = []
    for row in rows:
        old = before.get(_number(row))
        if old is None or all(old[name] == row[name] for name in RESCORE_FIELDS):
            continue
        m = methodology(old["methodology"])
        was = {prefix: m.rate(old[f"{prefix}_likelihood"], old[f"{prefix}_impact"]) for prefix in ("inherent", "residual")}
        changed.append({"row": row,
                        "inherent": f"{old['inherent_likelihood']}×{old['inherent_impact']} {was['inherent'][1]} → "
                                    f"{row['inherent_likelihood']}×{row['inherent_impact']} {row['inherent_level']}",
                        "residual": f"{old['residual_likelihood']}×{old['residual_impact']} {was['residual'][1]} → "
                                    f"{row['residual_likelihood']}×{row['residual_impact']} {row['residual_level']}"})
    return changed


@dataclass
class ReviewSummary:
    """What the report needs of the period's review log, gathered in one pass over the rows, so a
    year of reviews is never held in memory: counts, who took part, the non-scheduled reviews."""

    counts: dict[str, int]
    reviewers: set[str]
    approvers: set[str]
    triggered: list[dict[str, Any]]

    @classmethod
    def empty(cls) -> ReviewSummary:
        return cls(counts=dict.fromkeys(("completed", "on time", "late", "completed early", "due but not completed"),
                                        0),
                   reviewers=set(), approvers=set(), triggered=[])

    @classmethod
    def of(cls, rows) -> ReviewSummary:
        summary = cls.empty()
        for row in rows:
            summary.add(row)
        return summary

    def add(self, row: dict[str, Any]) -> None:
        """One row of the review log (vigil_ir.exports.risks.review_row)."""
        if "completed in the period" in row["in_log_because"]:  # status is as at the period end
            self.counts["completed"] += 1
            if row["on_time"] is not None:
                self.counts["on time" if row["on_time"] else "late"] += 1
        elif row["status"] == "completed":
            self.counts["completed early"] += 1
        elif row["status"] != "cancelled":
            self.counts["due but not completed"] += 1
        if row["completed_by"]:
            self.reviewers.add(label_in_row(row, "completed_by"))
        if row["approver"]:
            self.approvers.add(label_in_row(row, "approver"))
        if row["trigger"] != "scheduled":
            self.triggered.append(row)


def _overdue_actions(session: Session, end: datetime, as_of: date, people: Directory) -> list[dict[str, Any]]:
    """Risk treatment actions due before the period end and not completed by then. A cancelled
    action is left out (it no longer needs doing)."""
    query = (select(ActionItem, Risk).join(Risk, Risk.id == ActionItem.risk_id)
             .where(ActionItem.due_on.is_not(None), ActionItem.due_on <= as_of, ActionItem.status != "cancelled")
             .order_by(ActionItem.due_on, ActionItem.number))
    overdue = []
    for action, risk in session.exec(query):
        if action.completed_at is not None and clock.to_utc(action.completed_at) < end:
            continue
        overdue.append({"key": action.key, "risk_ref": risk.key, "description": action.description,
                        "owner": people.label(action.owner, end), "due_on": action.due_on.isoformat(),
                        "days_overdue": (end.date() - action.due_on).days})
    return overdue
