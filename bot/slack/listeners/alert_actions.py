"""The triage message's buttons: Declare incident (the declare form, prefilled from the alerts),
Attach to INC-n (a form choosing the open incident), Dismiss (a form asking why). Each decision asks
the permissions policy first and is recorded once (bot/alerts/triage.py); the message is updated
through the outbox."""

from __future__ import annotations

import json

from sqlmodel import select

from vigil_ir.alerts import triage
from vigil_ir.alerts.models import AlertGroup
from vigil_ir.idempotency import first_time
from vigil_ir.incidents import access, queries
from vigil_ir.incidents.models import ACTIVE_STATUSES, Incident
from vigil_ir.incidents.service import IncidentError
from vigil_ir.permissions import Action, Refused
from vigil_ir.slack import alert_triage, authz, blocks, notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.incident_command import open_view
from vigil_ir.slack.listeners.views import errors, option_value, ref, text_value

ATTACHABLE = 100  # open incidents offered in the attach form (Slack's static select takes 100)


def _group(session, value) -> AlertGroup | None:
    group_id = ref(value)
    return session.get(AlertGroup, group_id) if group_id is not None else None


def _open_group(session, value) -> tuple[AlertGroup | None, str | None]:
    """The alert group a button names, and why it cannot be acted on (gone, or already decided)."""
    group = _group(session, value)
    if group is None:
        return None, "These alerts no longer exist."
    return group, triage.decided_message(session, group) if group.state != "open" else None


def _reply(deps: Deps, body: dict, text: str) -> None:
    with deps.database.session() as session:
        notify.respond_later(session, body.get("response_url") or "", text)
    deps.wake_sender()


def register(app, deps: Deps) -> None:
    @app.action("alert_declare")
    def declare(ack, body, action, client):
        ack()
        user = body["user"]["id"]
        decision = deps.permissions.decide(Action.DECLARE, user)
        if not decision:
            return _reply(deps, body, authz.refusal(decision) + " Nothing was recorded.")
        with deps.database.session() as session:
            group, problem = _open_group(session, action.get("value"))
        if problem:
            return _reply(deps, body, f":warning: {problem}")
        started = int(group.first_started_at.timestamp())
        metadata = json.dumps({"origin_channel": (body.get("channel") or {}).get("id"), "alert_group": group.id,
                               "alert_started": started})
        view = blocks.declare_modal(group.title[:150], metadata, deps.settings.private_types,
                                    severity=group.severity, detected_at=started)
        failed = open_view(client, body["trigger_id"], view)
        if failed:
            _reply(deps, body, failed["text"])

    @app.action("alert_attach")
    def attach(ack, body, action, client):
        ack()
        who = deps.permissions.actor(body["user"]["id"])
        decision = deps.permissions.decide(Action.ATTACH_ALERT, who)
        if not decision:
            return _reply(deps, body, authz.refusal(decision) + " Nothing was recorded.")
        with deps.database.session() as session:
            group, problem = _open_group(session, action.get("value"))
            incidents = access.visible(deps.permissions, who, session, session.exec(
                select(Incident).where(Incident.status.in_(ACTIVE_STATUSES))
                .order_by(Incident.number.desc()).limit(ATTACHABLE)))
        if problem or not incidents:
            return _reply(deps, body, f":warning: {problem or 'There is no open incident to attach these alerts to.'}")
        failed = open_view(client, body["trigger_id"], alert_triage.attach_modal(group, incidents))
        if failed:
            _reply(deps, body, failed["text"])

    @app.action("alert_dismiss")
    def dismiss(ack, body, action, client):
        ack()
        decision = deps.permissions.decide(Action.DISMISS_ALERT, body["user"]["id"])
        if not decision:
            return _reply(deps, body, authz.refusal(decision) + " Nothing was recorded.")
        with deps.database.session() as session:
            group, problem = _open_group(session, action.get("value"))
        if problem:
            return _reply(deps, body, f":warning: {problem}")
        failed = open_view(client, body["trigger_id"], alert_triage.dismiss_modal(group))
        if failed:
            _reply(deps, body, failed["text"])

    @app.view("alert_attach")
    def attach_submitted(ack, body, view):
        ack(**attach_alerts(deps, body, view))

    @app.view("alert_dismiss")
    def dismiss_submitted(ack, body, view):
        ack(**dismiss_alerts(deps, body, view))


def attach_alerts(deps: Deps, body: dict, view: dict) -> dict:
    user = body["user"]["id"]
    incident_id = ref(option_value(view, "incident"))
    if incident_id is None:
        return errors({"incident": "Choose the incident these alerts belong to."})
    who = deps.permissions.actor(user)
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            deps.permissions.require(Action.ATTACH_ALERT, who)
            group = _group(session, view.get("private_metadata"))
            incident = queries.by_id(session, incident_id)
            if group is None or incident is None:
                raise IncidentError("These alerts or that incident no longer exist.", "incident")
            if not access.can_see(deps.permissions, who, session, incident):  # never offered to them: forged
                raise IncidentError("Choose one of the open incidents offered.", "incident")
            triage.attach(session, group=group, incident=incident, actor=user)
            count = len(triage.alerts_of(session, group))
            notify.post_in_channel(session, incident, f":rotating_light: {mention(user)} attached {count} "
                                   f"alert{'s' if count != 1 else ''} from {esc(group.source)}: *{esc(group.title)}*.")
        except Refused as refused:
            session.rollback()
            return errors({"incident": refused.decision.message})
        except IncidentError as problem:
            session.rollback()
            return errors({"incident": str(problem)})
    deps.wake_sender()
    return {}


def dismiss_alerts(deps: Deps, body: dict, view: dict) -> dict:
    user = body["user"]["id"]
    reason = text_value(view, "reason")
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            deps.permissions.require(Action.DISMISS_ALERT, user)
            group = _group(session, view.get("private_metadata"))
            if group is None:
                raise IncidentError("These alerts no longer exist.", "reason")
            triage.dismiss(session, group=group, actor=user, reason=reason)
        except Refused as refused:
            session.rollback()
            return errors({"reason": refused.decision.message})
        except IncidentError as problem:
            session.rollback()
            return errors({"reason": str(problem)})
    deps.wake_sender()
    return {}
