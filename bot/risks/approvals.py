"""Second-person approval of a review's proposal, and acceptances with their expiry.

The approver is whoever the permissions policy lets approve (risk approvers, commanders, admins by
default), never the person who submitted the review, and never the risk's owner when the review
accepts their own risk. A decision is a compare-and-set on the pending approval, so a double click
decides once.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.risks import history
from vigil_ir.risks.models import Risk, RiskAcceptance, RiskApproval, RiskReview
from vigil_ir.risks.reviews import apply_proposal, lock_open_reviews, open_review, reschedule_if_sooner
from vigil_ir.risks.service import RiskError, levels
from vigil_ir.risks.validation import text

REASONS = {"residual_level_lowered": "the residual level goes down",
           "acceptance_requested": "acceptance is requested",
           "closure_requested": "closure is requested",
           "reviewer_not_owner": "the reviewer is not the owner",
           "inherent_score_lowered": "the inherent score goes down"}


def request(session: Session, *, risk: Risk, review: RiskReview, proposal: dict[str, Any], reasons: list[str],
            approvers: list[str]) -> RiskApproval:
    approval = RiskApproval(review_id=review.id, risk_id=risk.id, reasons=reasons, proposal=proposal,
                            approvers=approvers, requested_by=review.completed_by, requested_at=clock.now())
    session.add(approval)
    session.flush()
    history.record(session, risk, "risk.approval_requested", review.completed_by, None, {
        "approval": approval.id, "review": review.ref, "reasons": reasons, "proposal": proposal,
        "approvers": approvers})
    return approval


def check_decider(approval: RiskApproval | None, actor: str, approvers: frozenset[str],
                  owner: str | None = None, approving: bool = False) -> None:
    """`approvers`: who the policy lets decide (user ids); `owner`: the risk's owner, who may not
    approve accepting their own risk."""
    if approval is None:
        raise RiskError("That approval request no longer exists.")
    if approval.state != "pending":
        raise RiskError(f"This request was already {approval.state} by {approval.decided_by}.")
    if actor == approval.requested_by:
        raise RiskError("You submitted this review, so someone else must approve or reject it.")
    if approving and owner == actor and "acceptance_requested" in (approval.reasons or []):
        raise RiskError("You own this risk, so someone else must approve accepting it.")
    if actor not in approvers:
        raise RiskError("Only a Vigil admin or a risk approver (VIGIL_RISK_APPROVERS) can decide this.")


def _decide(session: Session, approval: RiskApproval, actor: str, state: str, comment: str | None) -> None:
    won = session.execute(update(RiskApproval).where(RiskApproval.id == approval.id, RiskApproval.state == "pending")
                          .values(state=state, decided_by=actor, decided_at=clock.now(), comment=comment)).rowcount
    if won != 1:
        session.refresh(approval)
        raise RiskError(f"This request was already {approval.state} by {approval.decided_by}.")
    session.refresh(approval)
    review = session.get(RiskReview, approval.review_id)
    review.approval_state = state
    session.add(review)


def approve(session: Session, *, approval: RiskApproval, actor: str, approvers: frozenset[str],
            comment: str | None = None) -> Risk:
    risk = session.get(Risk, approval.risk_id) if approval is not None else None
    check_decider(approval, actor, approvers, owner=risk.owner if risk else None, approving=True)
    lock_open_reviews(session, risk)
    _decide(session, approval, actor, "approved", text(comment) or None)
    review = session.get(RiskReview, approval.review_id)
    before = history.snapshot(risk)
    apply_proposal(session, risk, approval.proposal)
    acceptance = None
    if "acceptance_requested" in approval.reasons:
        for old in session.exec(select(RiskAcceptance).where(RiskAcceptance.risk_id == risk.id,
                                                             RiskAcceptance.state == "active")):
            old.state, old.ended_at = "ended", clock.now()  # a renewal replaces the previous acceptance
            session.add(old)
        acceptance = RiskAcceptance(risk_id=risk.id, review_id=review.id, requested_by=approval.requested_by,
                                    approved_by=actor, approved_at=clock.now(), justification=review.rationale,
                                    residual_level=levels(risk)[1], expires_on=risk.acceptance_expires)
        session.add(acceptance)
        session.flush()
    history.record(session, risk, "risk.approval_granted", actor, before, {
        "approval": approval.id, "review": review.ref, "comment": approval.comment,
        "acceptance": acceptance.ref if acceptance else None})
    reschedule_if_sooner(session, risk, actor)
    return risk


def reject(session: Session, *, approval: RiskApproval, actor: str, approvers: frozenset[str], comment: str) -> Risk:
    if not text(comment):
        raise RiskError("Say why you reject it: the reviewer sees your comment.", field="comment")
    check_decider(approval, actor, approvers)
    _decide(session, approval, actor, "rejected", text(comment))
    risk = session.get(Risk, approval.risk_id)
    review = session.get(RiskReview, approval.review_id)
    history.record(session, risk, "risk.approval_rejected", actor, None,
                   {"approval": approval.id, "review": review.ref, "comment": approval.comment})
    return risk


def expire_acceptances(session: Session, *, on: date, actor: str = "system:worker") -> list[RiskReview]:
    """Expired acceptances send their risk back to review (untreated, open, an ad-hoc review due now)."""
    opened = []
    due = session.exec(select(RiskAcceptance).where(RiskAcceptance.state == "active", RiskAcceptance.expires_on <= on)
                       .order_by(RiskAcceptance.id).with_for_update(skip_locked=True))
    for acceptance in list(due):
        won = session.execute(update(RiskAcceptance).where(RiskAcceptance.id == acceptance.id,
                                                           RiskAcceptance.state == "active")
                              .values(state="expired", ended_at=clock.now())).rowcount
        if won != 1:
            continue
        risk = session.get(Risk, acceptance.risk_id)
        before = history.snapshot(risk)
        if risk.status != "closed":
            risk.treatment, risk.status, risk.acceptance_expires = "untreated", "open", None
        history.record(session, risk, "risk.acceptance_expired", actor, before,
                       {"acceptance": acceptance.ref, "expired_on": acceptance.expires_on.isoformat()})
        if risk.status != "closed":
            review = open_review(session, risk, trigger="acceptance_expiry", trigger_ref=acceptance.ref,
                                 due_on=on, actor=actor)
            opened += [review] if review else []
    return opened
