"""Buttons on the pinned incident summary, and the answers to requests the policy sends (the lead
asked of its holder, closing approved by a second person)."""

from __future__ import annotations

from vigil_ir.eventlog import Event
from vigil_ir.followup import updates
from vigil_ir.followup.actions import create_from_lines
from vigil_ir.idempotency import previous_result
from vigil_ir.slack.ticket_requests import CLOSE_TICKETS, auto_ticket
from vigil_ir.idempotency import first_time
from vigil_ir.incidents import queries, service
from vigil_ir.incidents.service import IncidentError
from vigil_ir.permissions import Action, Refused
from vigil_ir.slack import action_blocks, authz, blocks, limits, notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.incident_command import open_view
from vigil_ir.slack.listeners.views import ref


def _incident(session, action: dict):
    """The incident whose id is the button's value (None if there is no such incident)."""
    incident_id = ref(action.get("value"))
    return queries.by_id(session, incident_id) if incident_id is not None else None


def _requested(session, action: dict):
    """(incident, request event id) for a button whose value is a request's event id."""
    request_id = ref(action.get("value"))
    request = session.get(Event, request_id) if request_id is not None else None
    return (queries.by_stream(session, request.stream) if request is not None else None), request_id


def click_key(body: dict, action: dict) -> str:
    """A double click sends two payloads with different action_ts; the natural key ignores it."""
    message_ts = (body.get("container") or {}).get("message_ts") or (body.get("message") or {}).get("ts")
    return f"action:{action['action_id']}:{message_ts}:{body['user']['id']}"


def register(app, deps: Deps) -> None:
    @app.action("incident_take_lead")
    def take_lead(ack, body, action):
        ack()
        from vigil_ir.slack.listeners.incident_command import lead_decision

        user, response_url = body["user"]["id"], body.get("response_url")
        who = deps.permissions.actor(user)
        with deps.database.session() as session:
            if not first_time(session, click_key(body, action)):
                return
            incident = _incident(session, action)
            try:
                if incident is None:
                    raise IncidentError("That incident no longer exists.")
                decision = lead_decision(deps, incident, who) if incident.lead != user else None
                if decision is not None and not decision:
                    session.rollback()
                    reply = authz.request_lead_reply(incident, decision)
                    if response_url:
                        notify.respond_later(session, response_url, reply["text"], blocks=reply["blocks"])
                    deps.wake_sender()
                    return
                service.assign_role(session, incident=incident, actor=user, role="lead", user=user)
            except IncidentError as problem:
                session.rollback()
                if response_url:
                    notify.respond_later(session, response_url, f":warning: {esc(problem)}")
            else:
                notify.post_in_channel(session, incident, f":bust_in_silhouette: {mention(user)} took the lead.")
        deps.wake_sender()

    @app.action("incident_request_lead")
    def request_lead(ack, body, action):
        """Someone refused the lead asks its holder for it: an event, and a DM to the lead to answer."""
        ack()
        user = body["user"]["id"]
        with deps.database.session() as session:
            if not first_time(session, click_key(body, action)):
                return
            incident = _incident(session, action)
            try:
                if incident is None:
                    raise IncidentError("That incident no longer exists.")
                request = service.request_lead(session, incident=incident, actor=user)
            except IncidentError as problem:
                session.rollback()
                reply = f":warning: {esc(problem)}"
            else:
                text = (f":raising_hand: {mention(user)} asks to take over as lead of {incident.key} from you. "
                        "Accept to hand it over, or decline.")
                notify.direct_message(session, incident, incident.lead, text, dedupe_key=f"lead-request:{request.id}",
                                      blocks=[limits.section(text), authz.decision_buttons(
                                          "incident_lead_request", str(request.id), "Hand over", "Decline")])
                reply = f"Asked {mention(incident.lead)} to hand the lead of {incident.key} to you."
            if body.get("response_url"):
                notify.respond_later(session, body["response_url"], reply)
        deps.wake_sender()

    def answer_lead_request(body, action, accept: bool):
        user = body["user"]["id"]
        with deps.database.session() as session:
            incident, request_id = _requested(session, action)
            try:
                if incident is None:
                    raise IncidentError("That request no longer exists.")
                service.decide_lead_request(session, incident=incident, actor=user, request_id=request_id,
                                            accept=accept)
            except IncidentError as problem:
                session.rollback()
                reply = f":warning: {esc(problem)}"
            else:
                requester = session.get(Event, request_id).actor
                if accept:
                    notify.post_in_channel(session, incident, f":bust_in_silhouette: {mention(requester)} is now "
                                           f"*Incident lead* (handed over by {mention(user)}).")
                    reply = f"{mention(requester)} now leads {incident.key}."
                else:
                    reply = f"You declined; you still lead {incident.key}."
                notify.direct_message(session, incident, requester,
                                      f"{mention(user)} {'handed you' if accept else 'declined to hand you'}"
                                      f" the lead of {incident.key}.")
            if body.get("response_url"):
                notify.respond_later(session, body["response_url"], reply)
        deps.wake_sender()

    @app.action("incident_lead_request_accept")
    def accept_lead_request(ack, body, action):
        ack()
        answer_lead_request(body, action, True)

    @app.action("incident_lead_request_decline")
    def decline_lead_request(ack, body, action):
        ack()
        answer_lead_request(body, action, False)

    def answer_close_request(body, action, approve: bool):
        """A commander or admin other than the requester approves (the close proceeds) or refuses."""
        user = body["user"]["id"]
        who = deps.permissions.actor(user)
        with deps.database.session() as session:
            incident, request_id = _requested(session, action)
            try:
                request = session.get(Event, request_id) if incident is not None else None
                if request is None or request.kind != "incident.close_requested":
                    raise IncidentError("That request to close no longer exists.")
                deps.permissions.require(Action.APPROVE_CLOSE, who, excluded=request.actor, excluded_reason=(
                    f"You asked to close {incident.key}, so someone else must approve or refuse it."))
                if approve:
                    service.approve_close(session, incident=incident, actor=user, request_id=request_id)
                    for item in create_from_lines(session, incident=incident, actor=request.actor,
                                                  lines=incident.follow_ups):
                        action_blocks.assigned(session, item, request.actor)
                        asked = previous_result(session, CLOSE_TICKETS.format(request_id)) is not None
                        auto_ticket(deps, session, item, request.actor, incident=incident, asked=asked)
                else:
                    service.refuse_close(session, incident=incident, actor=user, request_id=request_id)
            except Refused as refused:
                session.rollback()
                reply = authz.refusal(refused.decision)
            except IncidentError as problem:
                session.rollback()
                reply = f":warning: {esc(problem)}"
            else:
                if approve:
                    notify.post_in_channel(session, incident, f":lock: {mention(user)} approved closing "
                                           f"{incident.key} (asked by {mention(request.actor)}); it is closed.",
                                           also_feed=True)
                    reply = f"You approved closing {incident.key}; it is closed."
                else:
                    notify.post_in_channel(session, incident, f":no_entry: {mention(user)} refused closing "
                                           f"{incident.key} (asked by {mention(request.actor)}); it stays resolved.")
                    reply = f"You refused closing {incident.key}."
            if body.get("response_url"):
                notify.respond_later(session, body["response_url"], reply)
        deps.wake_sender()

    @app.action("incident_close_accept")
    def approve_close(ack, body, action):
        ack()
        answer_close_request(body, action, True)

    @app.action("incident_close_decline")
    def refuse_close(ack, body, action):
        ack()
        answer_close_request(body, action, False)

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
