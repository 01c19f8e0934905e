"""Risk modal submissions: validate (inline errors, nothing written), record once per view, ack."""

from __future__ import annotations

from vigil_ir.idempotency import first_time
from vigil_ir.permissions import Action, Refused
from vigil_ir.risks import approvals, reviews, service
from vigil_ir.risks.models import Risk, RiskApproval, RiskReview
from vigil_ir.risks.service import RiskError
from vigil_ir.slack import risk_notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.listeners.risk_actions import decision_makers, require_decider
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.views import date_value, errors, option_value, ref, text_value, typed

ADD_TEXT = ("title", "statement", "description", "treatment_plan", "cadence", "tsc_refs", "incidents")
ADD_SELECT = ("category", "risk_type", "inherent_likelihood", "inherent_impact", "residual_likelihood",
              "residual_impact", "treatment")
REVIEW_SELECT = ("outcome", "inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact",
                 "treatment", "closure_reason")


def register(app, deps: Deps) -> None:
    @app.view("risk_add")
    def add_submitted(ack, body, view):
        ack(**add(deps, body, view))

    @app.view("risk_review")
    def review_submitted(ack, body, view):
        ack(**review(deps, body, view))

    @app.view("risk_reject")
    def reject_submitted(ack, body, view):
        ack(**reject(deps, body, view))


def add(deps: Deps, body: dict, view: dict) -> dict:
    raw = {name: text_value(view, name) for name in ADD_TEXT}
    raw.update({name: option_value(view, name) for name in ADD_SELECT})
    raw["owner"] = typed(view, "owner", "selected_user")
    raw["treatment_due"] = date_value(view, "treatment_due")
    actor = body["user"]["id"]
    with deps.database.session() as session:
        _, problems = service.validate_new(session, raw)
        if problems:
            return errors(problems)
        if not first_time(session, f"view:{view['id']}"):
            return {}  # the same modal submitted twice: already recorded
        risk = service.create(session, actor=actor, raw=raw)
        text = (f":clipboard: Added *{risk.key}* {esc(risk.title)} (owner {mention(risk.owner)}); first review due "
                f"{risk.next_review_due.isoformat()}.")
        risk_notify.post(session, actor, text, key=f"risk-added:{risk.number}", subject=risk.stream)
        if risk.owner != actor:
            risk_notify.post(session, risk.owner, f":clipboard: {mention(actor)} added *{risk.key}* {esc(risk.title)} "
                             f"and made you its owner. First review due {risk.next_review_due.isoformat()}.",
                             key=f"risk-owner:{risk.number}:{risk.owner}", subject=risk.stream)
    deps.wake_sender()
    return {}


def review(deps: Deps, body: dict, view: dict) -> dict:
    given = {name: option_value(view, name) for name in REVIEW_SELECT}
    given.update(rationale=text_value(view, "rationale"), treatment_due=date_value(view, "treatment_due"),
                 acceptance_expires=date_value(view, "acceptance_expires"))
    # A cleared plan arrives as None: keep "unchanged" apart from "emptied".
    if "treatment_plan" in view["state"]["values"]:
        given["treatment_plan"] = typed(view, "treatment_plan", "value") or ""
    risk_id, _, review_id = (view.get("private_metadata") or "").partition(":")
    risk_id, review_id = ref(risk_id), ref(review_id) if review_id else 0
    actor = body["user"]["id"]
    makers = decision_makers(deps)  # may ask Slack for group members: before the transaction
    with deps.database.session() as session:
        risk = session.get(Risk, risk_id) if risk_id is not None else None
        target = session.get(RiskReview, review_id) if review_id else None
        if risk is None or review_id is None or (review_id and target is None):
            return errors({"outcome": "That risk or review no longer exists."})
        if not service.can_review(risk, actor, makers):
            return errors({"outcome": f"Only the owner of {risk.key} or a Vigil admin or risk approver can review it."})
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            done = reviews.complete(session, risk=risk, review=target, actor=actor, given=given,
                                    approvers=makers, manual_ref=f"view:{view['id']}")
        except RiskError as problem:
            session.rollback()
            return errors(problem.errors or {"outcome": str(problem)})
        risk_notify.review_recorded(session, done.risk, done.review, done.approval, deps.settings.risk_channel)
    deps.wake_sender()
    return {}


def reject(deps: Deps, body: dict, view: dict) -> dict:
    comment = text_value(view, "comment")
    if not comment:
        return errors({"comment": "Say why you reject it: the reviewer sees your comment."})
    actor = body["user"]["id"]
    who, makers = deps.permissions.actor(actor), decision_makers(deps)
    with deps.database.session() as session:
        approval_id = ref(view.get("private_metadata"))
        approval = session.get(RiskApproval, approval_id) if approval_id is not None else None
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            if approval is not None and approval.state == "pending":
                require_decider(deps, session, approval, who, approving=False)
            risk = approvals.reject(session, approval=approval, actor=actor, comment=comment,
                                    approvers=makers)
        except Refused as refused:
            session.rollback()
            return errors({"comment": refused.decision.message})
        except RiskError as problem:
            session.rollback()
            return errors({"comment": str(problem)})
        risk_notify.decision_made(session, risk, approval)
    deps.wake_sender()
    return {}
