"""Buttons in risk DMs: "Review now", and Approve / Reject on an approval request."""

from __future__ import annotations

from vigil_ir.idempotency import first_time
from vigil_ir.risks import approvals
from vigil_ir.risks.models import Risk, RiskApproval, RiskReview
from vigil_ir.risks.service import RiskError
from vigil_ir.slack import notify, risk_blocks, risk_notify
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
        with deps.database.session() as session:
            if not first_time(session, click_key(body, action)):
                return  # a double click: the first one decided
            approval_id = ref(action.get("value"))
            approval = session.get(RiskApproval, approval_id) if approval_id is not None else None
            try:
                risk = approvals.approve(session, approval=approval, actor=user,
                                         approvers=deps.settings.risk_approver_ids)
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
        with deps.database.session() as session:
            approval_id = ref(action.get("value"))
            approval = session.get(RiskApproval, approval_id) if approval_id is not None else None
            try:
                approvals.check_decider(approval, user, deps.settings.risk_approver_ids)
                risk = session.get(Risk, approval.risk_id)
            except RiskError as problem:
                refusal = f":warning: {esc(problem)}"
            else:
                refusal = None
        if refusal:
            tell(deps, body, refusal)
            return
        failure = open_view(client, body["trigger_id"], risk_blocks.reject_modal(approval, risk))
        tell(deps, body, (failure or {}).get("text"))


def tell(deps: Deps, body: dict, text: str | None) -> None:
    """An ephemeral answer to the clicker, through the message's response_url (after the ack)."""
    if not text or not body.get("response_url"):
        return
    with deps.database.session() as session:
        notify.respond_later(session, body["response_url"], text)
    deps.wake_sender()
