"""Reading the register: keys, lists, reviews due, approvals waiting, recent history."""

from __future__ import annotations

import re
from datetime import date, datetime

from sqlmodel import Session, select

from vigil_ir.eventlog import Event
from vigil_ir.risks.models import Risk, RiskApproval, RiskReview
from vigil_ir.keys import bounded_number

KEY_PATTERN = re.compile(r"^\s*(?:RISK-)?(\d+)\s*$", re.IGNORECASE)
DUE_SOON_DAYS = 14


def parse_key(key: str) -> int | None:
    match = KEY_PATTERN.match(key or "")
    return bounded_number(match.group(1)) if match else None


def by_key(session: Session, key: str) -> Risk | None:
    number = parse_key(key)
    if number is None:
        return None
    return session.exec(select(Risk).where(Risk.number == number)).first()


def review_state(next_review_due: date | None, status: str, on: date) -> str:
    if status == "closed" or next_review_due is None:
        return "none"
    if next_review_due < on:
        return "overdue"
    return "due_soon" if (next_review_due - on).days <= DUE_SOON_DAYS else "current"


def risks(session: Session, which: str, *, user: str, on: date) -> list[Risk]:
    """`mine` (owned, not closed), `overdue` (a review past due), `all` (every risk), else open ones."""
    query = select(Risk).order_by(Risk.number)
    if which == "mine":
        query = query.where(Risk.owner == user, Risk.status != "closed")
    elif which == "overdue":
        overdue = select(RiskReview.risk_id).where(RiskReview.status == "open", RiskReview.due_on < on)
        query = query.where(Risk.id.in_(overdue), Risk.status != "closed")
    elif which != "all":
        query = query.where(Risk.status != "closed")
    return list(session.exec(query))


def open_reviews_for(session: Session, user: str, *, before: date | None = None) -> list[tuple[RiskReview, Risk]]:
    query = (select(RiskReview, Risk).join(Risk, Risk.id == RiskReview.risk_id)
             .where(RiskReview.status == "open", RiskReview.reviewer == user).order_by(RiskReview.due_on))
    if before is not None:
        query = query.where(RiskReview.due_on <= before)
    return list(session.exec(query))


def first_open_review(session: Session, risk: Risk, *, due_by: date | None = None) -> RiskReview | None:
    query = select(RiskReview).where(RiskReview.risk_id == risk.id, RiskReview.status == "open")
    if due_by is not None:
        query = query.where(RiskReview.due_on <= due_by)
    return session.exec(query.order_by(RiskReview.due_on, RiskReview.id)).first()


def overdue_reviews(session: Session, on: date) -> list[tuple[RiskReview, Risk]]:
    return list(session.exec(select(RiskReview, Risk).join(Risk, Risk.id == RiskReview.risk_id)
                             .where(RiskReview.status == "open", RiskReview.due_on < on)
                             .order_by(RiskReview.due_on, Risk.number)))


def pending_approvals(session: Session, user: str | None = None) -> list[tuple[RiskApproval, Risk]]:
    rows = list(session.exec(select(RiskApproval, Risk).join(Risk, Risk.id == RiskApproval.risk_id)
                             .where(RiskApproval.state == "pending").order_by(RiskApproval.requested_at)))
    return [row for row in rows if user is None or user in row[0].approvers]


def last_completed_review(session: Session, risk: Risk) -> RiskReview | None:
    return session.exec(select(RiskReview).where(RiskReview.risk_id == risk.id, RiskReview.status == "completed")
                        .order_by(RiskReview.completed_at.desc())).first()


def recent_events(session: Session, risk: Risk, *, limit: int = 8, since: datetime | None = None) -> list[Event]:
    query = select(Event).where(Event.stream == risk.stream).order_by(Event.stream_seq.desc()).limit(limit)
    if since is not None:
        query = query.where(Event.recorded_at > since)
    return list(reversed(list(session.exec(query))))
