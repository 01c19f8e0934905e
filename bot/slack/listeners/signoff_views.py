"""The sign-off modals' submissions (`/risk sign-off`, `/incident sign-off`): check who may and the
period (inline errors, nothing written), then queue the signing once per view (vigil_ir.slack.signoff)."""

from __future__ import annotations

from vigil_ir.permissions import Action
from vigil_ir.risks import signoff
from vigil_ir.slack import signoff as slack_signoff
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.listeners.views import date_value, errors, text_value

ACTIONS = {signoff.RISK_ASSESSMENT: Action.SIGN_OFF_RISK_ASSESSMENT,
           signoff.INCIDENT_REVIEW: Action.SIGN_OFF_PROGRAM_REVIEW}


def register(app, deps: Deps) -> None:
    for subject in slack_signoff.SUBJECTS.values():
        app.view(subject.callback)(_listener(deps, subject.key))


def _listener(deps: Deps, subject: str):
    def submitted(ack, body, view):
        ack(**sign_off(deps, body, view, subject))
    return submitted


def sign_off(deps: Deps, body: dict, view: dict, subject: str) -> dict:
    actor = body["user"]["id"]
    decision = deps.permissions.decide(ACTIONS[subject], actor)
    if not decision:
        return errors({"period_from": decision.message})
    start, end, problems = slack_signoff.period_of(date_value(view, "period_from"), date_value(view, "period_to"))
    if problems:
        return errors(problems)
    with deps.database.session() as session:
        slack_signoff.queue(session, view_id=view["id"], user=actor, start=start, end=end, subject=subject,
                            role=text_value(view, "role"), comment=text_value(view, "comment"))
    deps.wake_sender()
    return {}
