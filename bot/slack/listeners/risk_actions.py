"""Buttons in risk DMs: "Review now", and Approve / Reject on an approval request."""

from __future__ import annotations

from vigil_ir.idempotency import first_time
from vigil_ir.permissions import Action, Refused
from vigil_ir.risks import approvals
from vigil_ir.risks.models import Risk, RiskApproval, RiskReview
from vigil_ir.risks.service import RiskError
from vigil_ir.slack import authz, notify, risk_blocks, risk_notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc
from vigil_ir.slack.listeners.actions import click_key
from vigil_ir.slack.listeners.incident_command import open_view
from vigil_ir.slack.listeners.risk_command import review_form
from vigil_ir.slack.listeners.views import ref


def register(app, deps: Deps) -> None:
    @app.action("risk_review_open")
    def review_now(ack, body, action, client):
        ack()
        with deps.database.session() as session:
            review_id = ref(action.get("value"))
            review = session.get(RiskReview, review_id) if review_id is not None else None
            key = session.get(Risk, review.risk_id).key if review else None
        answer = review_form(deps, key, body["user"]["id"], review.id) if review else \
            {"text": "That review no longer exists."}
        if "view" in answer:
            answer = open_view(client, body["trigger_id"], answer["view"]) or {}
        tell(deps, body, answer.get("text"))

    @app.action("risk_approve")
    def approve(ack, body, action):
        ack()
        user = body["user"]["id"]
        who, makers = deps.permissions.actor(user), decision_makers(deps)  # before the transaction
        with deps.database.session() as session:
            if not first_time(session, click_key(body, action)):
                return  # a double click: the first one decided
            approval_id = ref(action.get("value"))
            approval = session.get(RiskApproval, approval_id) if approval_id is not None else None
            try:
                if approval is not None and approval.state == "pending":
                    require_decider(deps, session, approval, who, approving=True)
                risk = approvals.approve(session, approval=approval, actor=user, approvers=makers)
            except Refused as refused:
                session.rollback()
                reply = authz.refusal(refused.decision)
            except RiskError as problem:
                session.rollback()
                reply = f":warning: {esc(problem)}"
            else:
                risk_notify.decision_made(session, risk, approval)
                reply = f":white_check_mark: You approved the review of {risk.key}; it now applies."
        tell(deps, body, reply)

    @app.action("risk_reject")
    def reject(ack, body, action, client):
        ack()
        user = body["user"]["id"]
        who, makers = deps.permissions.actor(user), decision_makers(deps)  # before the transaction
        with deps.database.session() as session:
            approval_id = ref(action.get("value"))
            approval = session.get(RiskApproval, approval_id) if approval_id is not None else None
            try:
                if approval is not None and approval.state == "pending":
                    require_decider(deps, session, approval, who, approving=False)
                approvals.check_decider(approval, user, makers)
                risk = session.get(Risk, approval.risk_id)
            except Refused as refused:
                refusal = authz.refusal(refused.decision)
            except RiskError as problem:
                refusal = f":warning: {esc(problem)}"
            else:
                refusal = None
        if refusal:
            tell(deps, body, refusal)
            return
        failure = open_view(client, body["trigger_id"], risk_blocks.reject_modal(approval, risk))
        tell(deps, body, (failure or {}).get("text"))


def decision_makers(deps: Deps) -> frozenset[str]:
    """Who the policy lets decide a review's approval now (user ids, groups expanded)."""
    return deps.permissions.holders_of(Action.APPROVE_RISK_REVIEW) | deps.permissions.holders_of(Action.ACCEPT_RISK)


def require_decider(deps: Deps, session, approval: RiskApproval, who, *, approving: bool) -> None:
    """The policy's answer for this approval: accepting a risk is its own action, and neither the
    reviewer nor (for an acceptance) the risk's owner may approve (raises Refused, naming who may)."""
    risk = session.get(Risk, approval.risk_id)
    accepting = approving and "acceptance_requested" in (approval.reasons or [])
    if accepting and who.user == risk.owner and who.user != approval.requested_by:
        deps.permissions.require(Action.ACCEPT_RISK, who, excluded=risk.owner, excluded_reason=(
            f"You own {risk.key}, so someone else must approve accepting it."))
    deps.permissions.require(Action.ACCEPT_RISK if accepting else Action.APPROVE_RISK_REVIEW, who,
                             excluded=approval.requested_by, excluded_reason=(
                                 "You submitted this review, so someone else must approve or reject it."))


def tell(deps: Deps, body: dict, text: str | None) -> None:
    """An ephemeral answer to the clicker, through the message's response_url (after the ack)."""
    if not text or not body.get("response_url"):
        return
    with deps.database.session() as session:
        notify.respond_later(session, body["response_url"], text)
    deps.wake_sender()
