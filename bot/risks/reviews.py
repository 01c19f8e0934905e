"""Reviews: opening them (idempotent by natural key) and completing them with an explicit outcome.

A completed review records the risk before and the proposed risk after, whether it was on time,
and moves the schedule on. Changes that need a second person (residual level lowered, acceptance,
closure, a reviewer other than the owner) wait for approval (vigil_ir.risks.approvals); the rest apply
at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog import append
from vigil_ir.risks import history
from vigil_ir.risks.models import CLOSURE_REASONS, OUTCOMES, Risk, RiskAcceptance, RiskApproval, RiskReview, status_for
from vigil_ir.risks.scoring import level_rank, methodology
from vigil_ir.risks.service import RiskError, levels, next_due, open_reviews, today
from vigil_ir.risks.validation import PLAN_NEEDED, RATINGS, TEXT_MAX, parse_date, rating, text

RATIONALE_MIN = 10
ACCEPTANCE_MAX_DAYS = 365
SCORE_FIELDS = set(RATINGS)
TREATMENT_FIELDS = {"treatment", "treatment_plan", "treatment_due"}


def open_review(session: Session, risk: Risk, *, trigger: str, trigger_ref: str, due_on: date, actor: str,
                reviewer: str | None = None) -> RiskReview | None:
    """Create the review once (None if it already exists) and record it on the risk's stream."""
    values = {"risk_id": risk.id, "trigger": trigger, "trigger_ref": trigger_ref, "due_on": due_on,
              "reviewer": reviewer or risk.owner, "status": "open", "created_at": clock.now(),
              "changed_fields": [], "requires_approval": False, "reminder_rank": 0, "reminders_sent": 0}
    if not insert_if_absent(session, RiskReview, values, ["risk_id", "trigger", "trigger_ref"]):
        return None
    review = session.exec(select(RiskReview).where(RiskReview.risk_id == risk.id, RiskReview.trigger == trigger,
                                                   RiskReview.trigger_ref == trigger_ref)).one()
    append(session, stream=risk.stream, kind="risk.review_opened", actor=actor,
           data={"review": review.ref, "trigger": trigger, "trigger_ref": trigger_ref,
                 "due_on": due_on.isoformat(), "reviewer": review.reviewer})
    return review


def lock_open_reviews(session: Session, risk: Risk) -> None:
    """Take the risk's open review rows before its stream head, in the order the reminder sweep
    does (rows, then head), so cancelling one later cannot deadlock with a sweep (PostgreSQL)."""
    list(session.exec(select(RiskReview.id).where(RiskReview.risk_id == risk.id, RiskReview.status == "open")
                      .order_by(RiskReview.id).with_for_update()))


def pending_approval(session: Session, risk: Risk) -> RiskApproval | None:
    return session.exec(select(RiskApproval).where(RiskApproval.risk_id == risk.id,
                                                   RiskApproval.state == "pending")).first()


@dataclass
class Completed:
    review: RiskReview
    risk: Risk
    approval: RiskApproval | None


def evaluate(risk: Risk, given: dict[str, Any], *, default_expiry: date) -> tuple[dict[str, Any], dict[str, str]]:
    """The proposal (changed fields, JSON form) and errors keyed by modal field."""
    errors: dict[str, str] = {}
    outcome = given.get("outcome")
    if outcome not in OUTCOMES:
        errors["outcome"] = "Choose the outcome of this review."
    if len(text(given.get("rationale"))) < RATIONALE_MIN:
        errors["rationale"] = "Explain the decision in a sentence or two: why the risk is still valid or what changed."
    proposal: dict[str, Any] = {}
    for name in RATINGS:
        if text(given.get(name)):
            try:
                value = rating(given[name], name)
            except ValueError as problem:
                errors[name] = f"{name.replace('_', ' ').capitalize()} {problem}."
                continue
            if value != getattr(risk, name):
                proposal[name] = value
    scores = {name: proposal.get(name, getattr(risk, name)) for name in RATINGS}
    if not errors.keys() & SCORE_FIELDS and (scores["residual_likelihood"] * scores["residual_impact"]
                                             > scores["inherent_likelihood"] * scores["inherent_impact"]):
        errors["residual_likelihood"] = "Residual risk (after controls) cannot score above inherent risk."
    treatment = text(given.get("treatment")).lower() or risk.treatment
    if treatment != risk.treatment:
        if treatment == "accept" and outcome != "acceptance_requested":
            errors["treatment"] = "To accept the risk, choose the outcome “Acceptance requested”."
        proposal["treatment"] = treatment
    plan = given.get("treatment_plan")
    if plan is not None and text(plan) != risk.treatment_plan:
        proposal["treatment_plan"] = text(plan)[:TEXT_MAX]
    if treatment in PLAN_NEEDED and not proposal.get("treatment_plan", risk.treatment_plan):
        errors["treatment_plan"] = f"Describe the plan to {treatment} this risk."
    try:
        due = parse_date(given.get("treatment_due"))
        if due is not None and due != risk.treatment_due:
            if due < today():
                errors["treatment_due"] = "The treatment due date is in the past."
            proposal["treatment_due"] = due.isoformat()
    except ValueError as problem:
        errors["treatment_due"] = f"Treatment due {problem}."
    changed = set(proposal)
    if outcome == "no_change" and changed:
        errors["outcome"] = (f"You changed {', '.join(sorted(f.replace('_', ' ') for f in changed))}: choose "
                             "“Rescored” or “Treatment changed”, or undo the change.")
    elif outcome == "rescored" and not changed & SCORE_FIELDS:
        errors["residual_likelihood"] = "Change at least one score, or choose another outcome."
    elif outcome == "treatment_changed" and not changed & TREATMENT_FIELDS:
        errors["treatment"] = "Change the treatment, its plan or its due date, or choose another outcome."
    elif outcome == "acceptance_requested":
        try:
            expires = parse_date(given.get("acceptance_expires")) or default_expiry
        except ValueError as problem:
            errors["acceptance_expires"] = f"Expiry {problem}."
        else:
            if expires <= today():
                errors["acceptance_expires"] = "An acceptance must expire in the future."
            elif expires > today() + timedelta(days=ACCEPTANCE_MAX_DAYS):
                errors["acceptance_expires"] = "An acceptance lasts at most 12 months; choose an earlier expiry."
            proposal.update(treatment="accept", status="accepted", acceptance_expires=expires.isoformat())
    elif outcome == "closure_requested":
        reason = given.get("closure_reason")
        if reason not in CLOSURE_REASONS:
            errors["closure_reason"] = "Say why the risk can be closed."
        proposal.update(status="closed", closure_reason=reason)
    if "treatment" in proposal and "status" not in proposal:
        proposal["status"] = status_for(proposal["treatment"])
        if risk.treatment == "accept":
            proposal["acceptance_expires"] = None
    return proposal, errors


def approval_reasons(risk: Risk, proposal: dict[str, Any], outcome: str, reviewer: str) -> list[str]:
    reasons = []
    m = methodology(risk.methodology)
    new_level = m.level(m.score(proposal.get("residual_likelihood", risk.residual_likelihood),
                                proposal.get("residual_impact", risk.residual_impact)))
    if level_rank(new_level) < level_rank(levels(risk)[1]):
        reasons.append("residual_level_lowered")
    # Lowering the inherent score moves the baseline every residual is judged against: as weighty
    # as an acceptance, so it needs the same second person.
    if (m.score(proposal.get("inherent_likelihood", risk.inherent_likelihood),
                proposal.get("inherent_impact", risk.inherent_impact))
            < m.score(risk.inherent_likelihood, risk.inherent_impact)):
        reasons.append("inherent_score_lowered")
    if outcome == "acceptance_requested":
        reasons.append("acceptance_requested")
    if outcome == "closure_requested":
        reasons.append("closure_requested")
    if reviewer != risk.owner:
        reasons.append("reviewer_not_owner")
    return reasons


def apply_proposal(session: Session, risk: Risk, proposal: dict[str, Any]) -> None:
    """Set the proposed fields (JSON form) on the risk; closing cancels its open reviews."""
    was_accepted = risk.treatment == "accept"
    for name, value in proposal.items():
        setattr(risk, name, history.from_json(name, value))
    if was_accepted and risk.treatment != "accept":
        for acceptance in session.exec(select(RiskAcceptance).where(RiskAcceptance.risk_id == risk.id,
                                                                    RiskAcceptance.state == "active")):
            acceptance.state, acceptance.ended_at = "ended", clock.now()
            session.add(acceptance)
    if risk.status == "closed":
        risk.next_review_due = None
        for review in open_reviews(session, risk):
            review.status, review.cancelled_reason = "cancelled", "risk closed"
            session.add(review)


def reschedule_if_sooner(session: Session, risk: Risk, actor: str) -> None:
    """A higher level can mean a shorter cadence: bring the next scheduled review forward if so."""
    if risk.status == "closed" or risk.next_review_due is None:
        return
    # Count from the last scheduled review done, so an early review does not bring its own cycle back.
    done = session.exec(select(func.max(RiskReview.due_on)).where(
        RiskReview.risk_id == risk.id, RiskReview.trigger == "scheduled", RiskReview.status == "completed")).one()
    sooner = next_due(risk, max(today(), done) if done else today())
    if sooner >= risk.next_review_due:
        return
    for review in open_reviews(session, risk):
        if review.trigger == "scheduled":
            review.status, review.cancelled_reason = "cancelled", f"rescheduled to {sooner.isoformat()}"
            session.add(review)
    before = history.snapshot(risk)
    risk.next_review_due = sooner
    history.record(session, risk, "risk.review_rescheduled", actor, before, {"reason": "cadence changed"})
    open_review(session, risk, trigger="scheduled", trigger_ref=sooner.isoformat(), due_on=sooner, actor=actor)


def default_expiry(risk: Risk, review: RiskReview | None) -> date:
    following = next_due(risk, max(review.due_on, today())) if review and review.trigger == "scheduled" \
        else risk.next_review_due or next_due(risk, today())
    return min(following, today() + timedelta(days=ACCEPTANCE_MAX_DAYS))


def complete(session: Session, *, risk: Risk, review: RiskReview | None, actor: str, given: dict[str, Any],
             approvers: frozenset[str], manual_ref: str | None = None) -> Completed:
    """Complete `review` (or, when None, a new manual review keyed `manual_ref`) with an outcome."""
    if risk.status == "closed":
        raise RiskError(f"{risk.key} is closed; it has no reviews to complete.", field="outcome")
    if pending_approval(session, risk):
        raise RiskError(f"A review of {risk.key} is waiting for approval; it must be decided first.", field="outcome")
    if review is not None and review.risk_id != risk.id:
        raise RiskError(f"{review.ref} is not a review of {risk.key}.", field="outcome")
    if review is not None and review.status != "open":
        raise RiskError(f"{review.ref} was already completed by {review.completed_by} at "
                        f"{clock.iso(review.completed_at)}.", field="outcome")
    proposal, errors = evaluate(risk, given, default_expiry=default_expiry(risk, review))
    if errors:
        raise RiskError(" ".join(errors.values()), errors=errors)
    lock_open_reviews(session, risk)
    outcome = given["outcome"]
    reasons = approval_reasons(risk, proposal, outcome, actor)
    # An acceptance cannot be approved by the risk's owner either.
    if reasons and not approvers - {actor} - ({risk.owner} if outcome == "acceptance_requested" else set()):
        raise RiskError("This review needs a second person's approval and no one else can give it: add an "
                        "approver to VIGIL_RISK_APPROVERS or VIGIL_ADMINS.", field="outcome")
    if review is None:
        review = open_review(session, risk, trigger="manual", trigger_ref=manual_ref, due_on=today(), actor=actor)
        if review is None:
            raise RiskError("This review was already submitted.", field="outcome")
    # Compare-and-set: of two submissions of the same review, exactly one completes it.
    won = session.execute(update(RiskReview).where(RiskReview.id == review.id, RiskReview.status == "open")
                          .values(status="completed")).rowcount
    if won != 1:
        raise RiskError(f"{review.ref} was already completed.", field="outcome")
    now = clock.to_utc(clock.now())
    before = history.snapshot(risk)
    review.status, review.completed_at, review.completed_by = "completed", now, actor
    review.outcome, review.rationale = outcome, text(given["rationale"])
    review.before, review.after = before, {**before, **proposal}
    review.changed_fields = sorted(proposal)
    review.days_late = max(0, (now.date() - review.due_on).days)
    review.on_time = review.days_late == 0
    review.requires_approval = bool(reasons)
    review.approval_state = "pending" if reasons else None
    session.add(review)
    if not reasons:
        apply_proposal(session, risk, proposal)
    risk.last_reviewed_at, risk.last_reviewed_by = now, actor
    if review.trigger == "scheduled" and risk.status != "closed":
        risk.next_review_due = next_due(risk, max(review.due_on, now.date()))
    history.record(session, risk, "risk.reviewed", actor, before, {
        "review": review.ref, "trigger": review.trigger, "outcome": outcome, "rationale": review.rationale,
        "on_time": review.on_time, "days_late": review.days_late, "approval_reasons": reasons,
        "proposal": proposal if reasons else {}})
    if review.trigger == "scheduled" and risk.next_review_due:
        open_review(session, risk, trigger="scheduled", trigger_ref=risk.next_review_due.isoformat(),
                    due_on=risk.next_review_due, actor=actor)
    approval = None
    if reasons:
        from vigil_ir.risks.approvals import request

        approval = request(session, risk=risk, review=review, proposal=proposal, reasons=reasons,
                           approvers=sorted(approvers - {actor} - ({risk.owner} if outcome == "acceptance_requested"
                                                                    else set())))
    else:
        reschedule_if_sooner(session, risk, actor)
    return Completed(review=review, risk=risk, approval=approval)
