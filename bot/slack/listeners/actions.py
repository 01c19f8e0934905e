"""Buttons on the pinned incident summary."""

from __future__ import annotations

from vigil_ir.followup import updates
from vigil_ir.idempotency import first_time
from vigil_ir.incidents import queries, service
from vigil_ir.incidents.service import IncidentError
from vigil_ir.slack import blocks, notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.incident_command import open_view
from vigil_ir.slack.listeners.views import ref


def _incident(session, action: dict):
    """The incident whose id is the button's value (None if there is no such incident)."""
    incident_id = ref(action.get("value"))
    return queries.by_id(session, incident_id) if incident_id is not None else None


def click_key(body: dict, action: dict) -> str:
    """A double click sends two payloads with different action_ts; the natural key ignores it."""
    message_ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
    return f"action:{action['action_id']}:{message_ts}:{body['user']['id']}"


def register(app, deps: Deps) -> None:
    @app.action("incident_take_lead")
    def take_lead(ack, body, action):
        ack()
        user, response_url = body["user"]["id"], body.get("response_url")
        with deps.database.session() as session:
            if not first_time(session, click_key(body, action)):
                return
            incident = _incident(session, action)
            try:
                if incident is None:
                    raise IncidentError("That incident no longer exists.")
                service.assign_role(session, incident=incident, actor=user, role="lead", user=user)
            except IncidentError as problem:
                session.rollback()
                if response_url:
                    notify.respond_later(session, response_url, f":warning: {esc(problem)}")
            else:
                notify.post_in_channel(session, incident, f":bust_in_silhouette: {mention(user)} took the lead.")
        deps.wake_sender()

    @app.action("incident_snooze_update")
    def snooze_update(ack, body, action):
        ack()
        user, response_url = body["user"]["id"], body.get("response_url")
        message_ts = (body.get("container") or {}).get("message_ts")
        with deps.database.session() as session:
            incident = _incident(session, action)
            if incident is None:
                if response_url:
                    notify.respond_later(session, response_url, "That incident no longer exists.")
            # One snooze per reminder message: a second click (anyone's) is told what happened.
            elif not first_time(session, f"action:incident_snooze_update:{message_ts}", {"by": user}):
                if response_url:
                    notify.respond_later(session, response_url, "This reminder was already snoozed; the next "
                                         f"update is due {slack_date(incident.next_update_due)}.")
            else:
                try:
                    event = updates.snooze(session, incident=incident, actor=user, policy=deps.policy)
                except IncidentError as problem:
                    session.rollback()
                    if response_url:
                        notify.respond_later(session, response_url, f":warning: {esc(problem)}")
                else:
                    notify.post_in_channel(session, incident, f":zzz: {mention(user)} snoozed the update reminder "
                                           f"until {slack_date(incident.next_update_due)}.")
        deps.wake_sender()

    @app.action("incident_post_update")
    def post_update(ack, body, action, client):
        ack()
        with deps.database.session() as session:
            incident = _incident(session, action)
        if incident is None or not incident.is_open:
            return
        failure = open_view(client, body["trigger_id"], blocks.update_modal(incident))
        if failure and body.get("response_url"):
            with deps.database.session() as session:
                notify.respond_later(session, body["response_url"], failure["text"])
            deps.wake_sender()
