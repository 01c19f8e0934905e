"""Risk register exports: the register as of a date (E7), the review log (E8) and the acceptance
register (E9) for a period.

Rows are plain dicts with fixed columns; JSON and CSV carry the same columns (CSV formula-safe).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.canonical import canonical_json
from vigil_ir.exports import csvsafe
from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, add_names, with_name_columns
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


def _level(state: dict | None, prefix: str) -> str | None:
    if not state:
        return None
    m = methodology(state["methodology"])
    return m.rate(state[f"{prefix}_likelihood"], state[f"{prefix}_impact"])[1]


def status_at(review: RiskReview, end: datetime) -> str:
    """The review's status when the period ended: completed only if completed before the end; a
    review still open then is `overdue` once its due day had passed."""
    if review.completed_at is not None and clock.to_utc(review.completed_at) < end:
        return "completed"
    if review.status == "cancelled":
        return "cancelled"
    return "overdue" if review.due_on < end.date() else "open"


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


def review_row(review: RiskReview, risk: Risk, approval: RiskApproval | None, people: Directory, *,
               start: datetime, end: datetime, reminders: list[tuple[datetime, str]]) -> dict[str, Any]:
    """One review log row for the period [start, end): status and reminder count as at its end.
    `review` and `approval` may be any objects with those models' attribute names (plain rows)."""
    before, after = review.before or {}, review.after or {}
    completed_in = review.completed_at is not None and start <= clock.to_utc(review.completed_at) < end
    due_in = start.date() <= review.due_on < end.date()
    because = "; ".join(reason for reason, applies in (("completed in the period", completed_in),
                                                      ("due in the period", due_in)) if applies)
    row = {"review_ref": _review_ref(review), "risk_ref": risk.key, "in_log_because": because, "trigger": review.trigger,
           "trigger_ref": review.trigger_ref, "due_at": review.due_on.isoformat(),
           "assigned_reviewer": review.reviewer, "status": status_at(review, end),
           "status_at_generation": review.status, "reminders_sent": len(reminders),
           "reminders": "; ".join(f"{kind} {clock.iso(at)}" for at, kind in reminders) or None,
           "completed_at": clock.iso(review.completed_at), "completed_by": review.completed_by,
           "outcome": review.outcome, "rationale": review.rationale,
           "changed_fields": ";".join(review.changed_fields), "on_time": review.on_time,
           "days_late": review.days_late, "approval_required": review.requires_approval,
           "approval_reasons": ";".join(approval.reasons) if approval else None,
           "approver": approval.decided_by if approval else None,
           "approval_decision": approval.state if approval else None,
           "approval_decided_at": clock.iso(approval.decided_at) if approval else None,
           "approval_comment": approval.comment if approval else None, "cancelled_reason": review.cancelled_reason}
    for name in ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact", "treatment",
                 "status"):
        row[f"{name}_before"], row[f"{name}_after"] = before.get(name), after.get(name)
    for prefix in ("inherent", "residual"):
        row[f"{prefix}_level_before"], row[f"{prefix}_level_after"] = _level(before, prefix), _level(after, prefix)
    return add_names(row, people, REVIEW_PEOPLE)


class _RiskKey(NamedTuple):
    key: str


class _Approval(NamedTuple):
    """What a review log row shows of a review's approval, under RiskApproval's attribute names."""

    reasons: list[str]
    decided_by: str | None
    state: str
    decided_at: datetime | None
    comment: str | None


def _review_ref(review: Any) -> str:
    return f"RRV-{review.id}"  # RiskReview.ref, for a plain row too


def iter_review_rows(session: Session, start: datetime, end: datetime,
                     people: Directory | None = None) -> Iterator[dict[str, Any]]:
    """Reviews completed in [start, end), and every review due in it, also one completed early,
    before the period began; status and reminders as at the period end. Fetched in pages, so the
    bundle can stream a year of them."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    people = people or Directory.load(session)
    reminders = reminder_log(session, end)
    # Plain rows, not ORM objects (a tenth of the cost per row; the columns' types are the same): the
    # review's columns, the risk's number only (its key), and the approval's columns the row shows.
    approval = RiskApproval.__table__
    query = (select(RiskReview.__table__, Risk.number.label("risk_number"), approval.c.id.label("approval_id"),
                    approval.c.reasons.label("approval_reasons"), approval.c.decided_by.label("approval_decided_by"),
                    approval.c.state.label("approval_decision"), approval.c.decided_at.label("approval_decided_at"),
                    approval.c.comment.label("approval_comment"))
             .join(Risk, Risk.id == RiskReview.risk_id)
             .join(approval, approval.c.review_id == RiskReview.id, isouter=True)
             .where(or_(and_(RiskReview.completed_at >= start, RiskReview.completed_at < end),
                        and_(RiskReview.due_on >= start.date(), RiskReview.due_on < end.date())))
             .order_by(RiskReview.due_on, RiskReview.id).execution_options(yield_per=ROWS_PER_FETCH))
    for row in session.execute(query):
        decided = None if row.approval_id is None else _Approval(
            row.approval_reasons, row.approval_decided_by, row.approval_decision, row.approval_decided_at,
            row.approval_comment)
        yield review_row(row, _RiskKey(f"RISK-{row.risk_number}"), decided, people, start=start, end=end,
                         reminders=reminders.get(_review_ref(row), []))


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
