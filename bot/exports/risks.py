"""Risk register exports: the register as of a date (E7), the review log (E8) and the acceptance
register (E9) for a period.

Rows are plain dicts with fixed columns; JSON and CSV carry the same columns (CSV formula-safe).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Text, and_, cast, or_
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.canonical import canonical_json
from vigil_ir.eventlog.stored import time_text
from vigil_ir.exports import csvsafe
from vigil_ir.jsontext import parse_json
from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, add_names, name_cell, parse_when, with_name_columns
from vigil_ir.risks import register_asof
from vigil_ir.risks.models import Risk, RiskAcceptance, RiskApproval, RiskReview
from vigil_ir.risks.scoring import methodology

FORMATS = ("json", "csv")
ROWS_PER_FETCH = 500
REGISTER_COLUMNS = register_asof.COLUMNS
# Names as at the act: the reviewer assigned when the review fell due, the one who completed it when
# they did, the approver when they decided; the requester and approver of an acceptance likewise.
REVIEW_PEOPLE = (PersonColumn("assigned_reviewer", at="due_at"), PersonColumn("completed_by", at="completed_at"),
                 PersonColumn("approver", at="approval_decided_at"))
ACCEPTANCE_PEOPLE = (PersonColumn("requested_by", at="requested_at"), PersonColumn("approver", at="approved_at"))
REVIEW_BASE_COLUMNS = ("review_ref", "risk_ref", "in_log_because", "trigger", "trigger_ref", "due_at",
                       "assigned_reviewer", "status", "status_at_generation", "reminders_sent", "reminders",
                       "completed_at", "completed_by", "outcome", "rationale",
                  "inherent_likelihood_before", "inherent_likelihood_after", "inherent_impact_before",
                  "inherent_impact_after", "residual_likelihood_before", "residual_likelihood_after",
                  "residual_impact_before", "residual_impact_after", "inherent_level_before", "inherent_level_after",
                  "residual_level_before", "residual_level_after", "treatment_before", "treatment_after",
                  "status_before", "status_after", "changed_fields", "on_time", "days_late", "approval_required",
                  "approval_reasons", "approver", "approval_decision", "approval_decided_at", "approval_comment",
                  "cancelled_reason")
REVIEW_COLUMNS = with_name_columns(REVIEW_BASE_COLUMNS, REVIEW_PEOPLE)
ACCEPTANCE_BASE_COLUMNS = ("acceptance_ref", "risk_ref", "risk_title", "review_ref", "requested_by", "requested_at",
                      "approver", "approved_at", "approval_comment", "justification", "residual_level_at_decision",
                      "expires_at", "days_to_expiry", "state", "ended_at", "stale", "changed_since_approval",
                      "record_hash")
ACCEPTANCE_COLUMNS = with_name_columns(ACCEPTANCE_BASE_COLUMNS, ACCEPTANCE_PEOPLE)
# A change to any of these after the approval means the risk accepted is no longer the one approved.
MATERIAL_FIELDS = ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact", "treatment",
                   "owner", "statement")


def render(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{name: row[name] for name in columns} for row in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return csvsafe.to_csv(columns, rows)
    raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")


def register_rows(session: Session, as_of: date | None) -> list[dict[str, Any]]:
    return register_asof.register(session, as_of, today=clock.now().date())


def _level(state: dict[str, Any], prefix: str) -> str | None:
    """The level of a review's before or after position; None when it has no such state."""
    if state["methodology"] is None:
        return None
    return _rated_level(state["methodology"], state[f"{prefix}_likelihood"], state[f"{prefix}_impact"])


@functools.lru_cache(maxsize=256, typed=True)  # a few dozen positions, four per review log row; typed: True is no 1
def _rated_level(version: str, likelihood: int, impact: int) -> str:
    return methodology(version).rate(likelihood, impact)[1]


def reminder_log(session: Session, end: datetime) -> dict[str, list[tuple[datetime, str]]]:
    """review ref → (recorded at, kind) of every review reminder recorded before `end`, however long
    before the period it was sent: a review due early in a period was reminded before it began."""
    found: dict[str, list[tuple[datetime, str]]] = {}
    query = (select(Event.recorded_at, Event.data).where(Event.kind == "risk.reminder_sent", Event.recorded_at < end)
             .order_by(Event.recorded_at, Event.id).execution_options(yield_per=ROWS_PER_FETCH))
    for recorded_at, data in session.exec(query):
        if isinstance(data, dict) and data.get("review"):
            found.setdefault(data["review"], []).append((recorded_at, str(data.get("kind"))))
    return found


# The fields of the review's before and after states the log shows, as the database takes them out
# of the JSON (the states are whole risk snapshots; parsing each in Python cost more than the rest
# of the row), and the methodology that rates their scores.
SHOWN_STATE_FIELDS = {"inherent_likelihood": "integer", "inherent_impact": "integer",
                      "residual_likelihood": "integer", "residual_impact": "integer", "treatment": "string",
                      "status": "string", "methodology": "string"}


def _review_log_query(dialect: str, start: datetime, end: datetime):
    """The review log's selection as plain columns: the review's, its risk's number, its approval's,
    times as the exported text made by the database, list columns as their JSON text."""
    review, approval = RiskReview.__table__, RiskApproval.__table__
    states = [getattr(review.c[side][name], f"as_{kind}")().label(f"{name}_{side}")
              for side in ("before", "after") for name, kind in SHOWN_STATE_FIELDS.items()]
    return (select(review.c.id, Risk.__table__.c.number.label("risk_number"), review.c.trigger, review.c.trigger_ref,
                   review.c.due_on, review.c.reviewer, review.c.status,
                   time_text(review.c.completed_at, dialect).label("completed_at"), review.c.completed_by,
                   review.c.outcome, review.c.rationale, cast(review.c.changed_fields, Text).label("changed_fields"),
                   review.c.on_time, review.c.days_late, review.c.requires_approval, review.c.cancelled_reason,
                   approval.c.id.label("approval_id"), cast(approval.c.reasons, Text).label("approval_reasons"),
                   approval.c.decided_by.label("approval_decided_by"), approval.c.state.label("approval_decision"),
                   time_text(approval.c.decided_at, dialect).label("approval_decided_at"),
                   approval.c.comment.label("approval_comment"), *states)
            .select_from(review).join(Risk.__table__, Risk.__table__.c.id == review.c.risk_id)
            .join(approval, approval.c.review_id == review.c.id, isouter=True)
            .where(or_(and_(review.c.completed_at >= start, review.c.completed_at < end),
                       and_(review.c.due_on >= start.date(), review.c.due_on < end.date())))
            .order_by(review.c.due_on, review.c.id).execution_options(yield_per=ROWS_PER_FETCH))


class _Bounds(NamedTuple):
    """The period [start, end) as a review log row compares with it: exported time texts (fixed
    width, so text order is time order) and days."""

    start: str
    end: str
    first_day: date
    end_day: date

    @classmethod
    def of(cls, start: datetime, end: datetime) -> _Bounds:
        return cls(clock.iso(start), clock.iso(end), start.date(), end.date())


def review_row(review: Any, people: Directory, period: _Bounds,
               reminders: list[tuple[datetime, str]]) -> dict[str, Any]:
    """One review log row for the period: status and reminder count as at its end. `review` is a row
    of _review_log_query (unpacked by position: named access to a row's 36 columns cost more than
    building the row)."""
    (review_id, risk_number, trigger, trigger_ref, due_on, reviewer, status, completed_at, completed_by, outcome,
     rationale, changed_fields, on_time, days_late, requires_approval, cancelled_reason, approval_id, reasons,
     approver, decision, decided_at, comment, *states) = review
    before = dict(zip(SHOWN_STATE_FIELDS, states[:len(SHOWN_STATE_FIELDS)]))
    after = dict(zip(SHOWN_STATE_FIELDS, states[len(SHOWN_STATE_FIELDS):]))
    completed = completed_at is not None and completed_at < period.end
    completed_in = completed and period.start <= completed_at
    due_in = period.first_day <= due_on < period.end_day
    because = "; ".join(reason for reason, applies in (("completed in the period", completed_in),
                                                      ("due in the period", due_in)) if applies)
    # Status as at the period end: completed only if completed before it; a review still open then
    # is overdue once its due day had passed.
    at_end = ("completed" if completed else "cancelled" if status == "cancelled"
              else "overdue" if due_on < period.end_day else "open")
    approved = approval_id is not None
    approver, decided_at = (approver, decided_at) if approved else (None, None)
    # The people's names (REVIEW_PEOPLE, each as at its act) are set as the row is built, each after
    # its id column, as add_names would set them: rebuilding the row for them cost more than naming.
    row = {"review_ref": f"RRV-{review_id}", "risk_ref": f"RISK-{risk_number}", "in_log_because": because,
           "trigger": trigger, "trigger_ref": trigger_ref, "due_at": due_on.isoformat(),
           "assigned_reviewer": reviewer,
           "assigned_reviewer_name": name_cell(people, reviewer, parse_when(due_on) if reviewer else None),
           "status": at_end, "status_at_generation": status, "reminders_sent": len(reminders),
           "reminders": "; ".join(f"{kind} {clock.iso(at)}" for at, kind in reminders) or None,
           "completed_at": completed_at, "completed_by": completed_by,
           "completed_by_name": name_cell(people, completed_by,
                                          parse_when(completed_at) if completed_by else None),
           "outcome": outcome, "rationale": rationale,
           "changed_fields": ";".join(parse_json(changed_fields)), "on_time": on_time, "days_late": days_late,
           "approval_required": requires_approval,
           "approval_reasons": ";".join(parse_json(reasons)) if approved else None,
           "approver": approver,
           "approver_name": name_cell(people, approver, parse_when(decided_at) if approver else None),
           "approval_decision": decision if approved else None, "approval_decided_at": decided_at,
           "approval_comment": comment if approved else None, "cancelled_reason": cancelled_reason}
    for name in ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact", "treatment",
                 "status"):
        row[f"{name}_before"], row[f"{name}_after"] = before[name], after[name]
    for prefix in ("inherent", "residual"):
        row[f"{prefix}_level_before"] = _level(before, prefix)
        row[f"{prefix}_level_after"] = _level(after, prefix)
    return row


def iter_review_rows(session: Session, start: datetime, end: datetime,
                     people: Directory | None = None) -> Iterator[dict[str, Any]]:
    """Reviews completed in [start, end), and every review due in it, also one completed early,
    before the period began; status and reminders as at the period end. Fetched in pages, so the
    bundle can stream a year of them."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    people = people or Directory.load(session)
    reminders = reminder_log(session, end)
    query = _review_log_query(session.get_bind().dialect.name, start, end)
    period = _Bounds.of(start, end)
    for row in session.connection().execute(query):
        yield review_row(row, people, period, reminders.get(f"RRV-{row[0]}", []))


def review_rows(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return list(iter_review_rows(session, start, end))


def acceptance_rows(session: Session, start: datetime, end: datetime,
                    people: Directory | None = None) -> list[dict[str, Any]]:
    """Acceptances in force at some time in [start, end): approved before the end, not ended before
    the start. State, days to expiry and staleness are as of the end of the period."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    query = (select(RiskAcceptance, Risk, RiskReview, RiskApproval).join(Risk, Risk.id == RiskAcceptance.risk_id)
             .join(RiskReview, RiskReview.id == RiskAcceptance.review_id)
             .join(RiskApproval, RiskApproval.review_id == RiskAcceptance.review_id, isouter=True)
             .where(RiskAcceptance.approved_at < end,
                    or_(RiskAcceptance.ended_at.is_(None), RiskAcceptance.ended_at >= start))
             .order_by(RiskAcceptance.approved_at, RiskAcceptance.id))
    people = people or Directory.load(session)
    return [acceptance_row(session, *found, end=end, people=people) for found in session.exec(query).all()]


def acceptance_row(session: Session, acceptance: RiskAcceptance, risk: Risk, review: RiskReview,
                   approval: RiskApproval | None, *, end: datetime, people: Directory) -> dict[str, Any]:
    last_day = (end - timedelta(microseconds=1)).date()
    ended = acceptance.ended_at is not None and clock.to_utc(acceptance.ended_at) < end
    changed = _changed_since(session, risk, acceptance, end)
    row = {"acceptance_ref": acceptance.ref, "risk_ref": risk.key, "risk_title": risk.title,
           "review_ref": review.ref, "requested_by": acceptance.requested_by,
           "requested_at": clock.iso(approval.requested_at) if approval else None,
           "approver": acceptance.approved_by, "approved_at": clock.iso(acceptance.approved_at),
           "approval_comment": approval.comment if approval else None,
           "justification": acceptance.justification, "residual_level_at_decision": acceptance.residual_level,
           "expires_at": acceptance.expires_on.isoformat(),
           "days_to_expiry": (acceptance.expires_on - last_day).days,
           # "ended" (replaced by a renewal or a new treatment) and "expired" only once that happened.
           "state": acceptance.state if ended else "active", "ended_at": clock.iso(acceptance.ended_at) if ended else None,
           "stale": bool(changed), "changed_since_approval": ";".join(changed)}
    row["record_hash"] = hashlib.sha256(canonical_json(row).encode("utf-8")).hexdigest()
    return add_names(row, people, ACCEPTANCE_PEOPLE)  # after the hash: it covers the record, not today's names


def _changed_since(session: Session, risk: Risk, acceptance: RiskAcceptance, end: datetime) -> list[str]:
    """The material fields of the risk changed after the approval that made `acceptance`, before `end`."""
    changed: list[str] = []
    approved = False
    query = (select(Event.kind, Event.data).where(Event.stream == f"risk:{risk.number}", Event.recorded_at < end)
             .order_by(Event.stream_seq))
    for kind, data in session.exec(query):
        data = data or {}
        if not approved:
            approved = kind == "risk.approval_granted" and data.get("acceptance") == acceptance.ref
            continue
        changes = data.get("changes") or {}
        # In the register's field order: stored JSON objects come back with their keys sorted.
        changed += [name for name in MATERIAL_FIELDS if name in changes and name not in changed]
    return changed
