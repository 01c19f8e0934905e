"""Risk register exports: the register as of a date (E7) and the review log for a period (E8).

Rows are plain dicts with fixed columns; JSON and CSV carry the same columns (CSV formula-safe).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from bot import clock
from bot.exports import csvsafe
from bot.risks import register_asof
from bot.risks.models import Risk, RiskApproval, RiskReview
from bot.risks.scoring import methodology

FORMATS = ("json", "csv")
REGISTER_COLUMNS = register_asof.COLUMNS
REVIEW_COLUMNS = ("review_ref", "risk_ref", "trigger", "trigger_ref", "due_at", "assigned_reviewer", "status",
                  "reminders_sent", "completed_at", "completed_by", "outcome", "rationale",
                  "inherent_likelihood_before", "inherent_likelihood_after", "inherent_impact_before",
                  "inherent_impact_after", "residual_likelihood_before", "residual_likelihood_after",
                  "residual_impact_before", "residual_impact_after", "inherent_level_before", "inherent_level_after",
                  "residual_level_before", "residual_level_after", "treatment_before", "treatment_after",
                  "status_before", "status_after", "changed_fields", "on_time", "days_late", "approval_required",
                  "approval_reasons", "approver", "approval_decision", "approval_decided_at", "approval_comment",
                  "cancelled_reason")


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


def review_row(review: RiskReview, risk: Risk, approval: RiskApproval | None) -> dict[str, Any]:
    before, after = review.before or {}, review.after or {}
    row = {"review_ref": review.ref, "risk_ref": risk.key, "trigger": review.trigger,
           "trigger_ref": review.trigger_ref, "due_at": review.due_on.isoformat(),
           "assigned_reviewer": review.reviewer, "status": review.status, "reminders_sent": review.reminders_sent,
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
    return row


def review_rows(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Reviews completed in [start, end), and reviews due in it that were not completed (missed or open)."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    query = (select(RiskReview, Risk, RiskApproval).join(Risk, Risk.id == RiskReview.risk_id)
             .join(RiskApproval, RiskApproval.review_id == RiskReview.id, isouter=True)
             .where(or_(and_(RiskReview.completed_at >= start, RiskReview.completed_at < end),
                        and_(RiskReview.status != "completed", RiskReview.due_on >= start.date(),
                             RiskReview.due_on < end.date())))
             .order_by(RiskReview.due_on, RiskReview.id))
    return [review_row(review, risk, approval) for review, risk, approval in session.exec(query)]
