"""`/incident page`: the form choosing whom to page (the configured PagerDuty services and Opsgenie
responders) and its submission, which asks the permissions policy and records the page (sent by the
outbox)."""

from __future__ import annotations

from vigil_ir.idempotency import first_time
from vigil_ir.incidents.service import IncidentError
from vigil_ir.paging import service
from vigil_ir.paging.targets import Target, parse_targets
from vigil_ir.permissions import Action, Refused
from vigil_ir.slack import limits, notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.views import _incident_for, errors, option_value, text_value


def targets(deps: Deps) -> dict[str, Target]:
    return parse_targets(deps.settings.pagerduty_services, deps.settings.opsgenie_responders)


def page_modal(incident, choices: dict[str, Target]) -> dict:
    options = [limits.option(target.label, target_id) for target_id, target in list(choices.items())[:100]]
    return limits.modal("incident_page", f"Page for {incident.key}", "Page", [
        {"type": "input", "block_id": "target", "label": {"type": "plain_text", "text": "Who"},
         "element": {"type": "static_select", "action_id": "value", "options": options}},
        {"type": "input", "block_id": "message", "optional": True,
         "label": {"type": "plain_text", "text": "Message"},
         "hint": {"type": "plain_text", "text": "What the responders see; the incident's title if left empty."},
         "element": {"type": "plain_text_input", "action_id": "value", "multiline": True,
                     "max_length": service.MESSAGE_MAX, "initial_value": limits.initial(incident.title, 150)}},
    ], str(incident.id))


def open_page_form(deps: Deps, incident, who) -> dict:
    """The `/incident page` reply: the form, or why not."""
    deps.permissions.require(Action.PAGE, who, lead=incident.lead)
    if incident.status == "closed":
        raise IncidentError(f"{incident.key} is closed; paging for it is refused.")
    choices = targets(deps)
    if not choices:
        return {"text": "No one can be paged yet: set VIGIL_PAGERDUTY_SERVICES or VIGIL_OPSGENIE_RESPONDERS "
                        "(docs/integrations.md)."}
    return {"view": page_modal(incident, choices)}


def submitted(deps: Deps, body: dict, view: dict) -> dict:
    user = body["user"]["id"]
    target = targets(deps).get(option_value(view, "target") or "")
    if target is None:
        return errors({"target": "Choose whom to page."})
    who = deps.permissions.actor(user)
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            incident = _incident_for(session, view)
            deps.permissions.require(Action.PAGE, who, lead=incident.lead)
            page = service.request(session, incident=incident, actor=user, target=target,
                                   message=text_value(view, "message"))
            notify.post_in_channel(session, incident, f":pager: {mention(user)} paged *{esc(target.label)}*: "
                                   f"{esc(page.message)}")
        except Refused as refused:
            session.rollback()
            return errors({"target": refused.decision.message})
        except IncidentError as problem:
            session.rollback()
            return errors({problem.field or "target": str(problem)})
    deps.wake_sender()
    return {}


def register(app, deps: Deps) -> None:
    @app.view("incident_page")
    def page_submitted(ack, body, view):
        ack(**submitted(deps, body, view))
