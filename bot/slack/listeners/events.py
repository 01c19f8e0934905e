"""Events API listeners. Every subscribed event is acked (an unhandled one gets 404 and a retry)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vigil_ir import clock
from vigil_ir.idempotency import first_time
from vigil_ir.incidents import access, queries
from vigil_ir.incidents.models import Incident
from vigil_ir.people import Person, is_user_id, record_profile
from vigil_ir.slack import notify
from vigil_ir.slack.people import profile_from_slack
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.envelope import SLACK_TS

PIN_REACTIONS = {"pushpin", "round_pushpin"}
# Slack's clock against ours, and the envelope's whole-second `event_time`: a join or leave is taken
# as older than a later removal or invitation only beyond this margin.
ORDER_MARGIN = timedelta(seconds=2)


def register(app, deps: Deps) -> None:
    @app.event("reaction_added")
    def reaction_added(body, event):
        item = event.get("item") or {}
        if str(event.get("reaction")) not in PIN_REACTIONS or item.get("type") != "message" \
                or not isinstance(item.get("channel"), str) or not SLACK_TS.fullmatch(str(item.get("ts"))):
            return
        with deps.database.session() as session:
            incident = queries.by_channel(session, item.get("channel"))
            if incident is None or incident.status == "closed":
                return
            if not first_time(session, f"slack-event:{body.get('event_id')}"):
                return
            # The message text is fetched after the ack; the outbox row keeps the request safe.
            actor = event.get("user") if isinstance(event.get("user"), str) else "unknown"
            notify.capture_message(session, incident, channel=item["channel"], ts=item["ts"], actor=actor,
                                   via="reaction")
        deps.wake_sender()

    @app.event("reaction_removed")
    def reaction_removed():
        """Removing the pin does not remove the record: the timeline is append-only."""

    @app.event("app_home_opened")
    def app_home_opened(event):
        if event.get("tab") != "home" or not isinstance(event.get("user"), str):
            return
        with deps.database.session() as session:
            notify.publish_home(session, event["user"])
        deps.wake_sender()

    @app.event("user_change")
    def user_change(body, event):
        """Slack says a user's profile changed: the directory records it now instead of at the next
        daily refresh (no Slack call: the event carries the user). Only people Vigil has seen."""
        user = event.get("user")
        if not isinstance(user, dict) or not is_user_id(user.get("id")):
            return
        with deps.database.session() as session:
            if session.get(Person, user["id"]) is None:
                return  # not someone in Vigil's records: Vigil keeps no directory of the whole workspace
            if not first_time(session, f"slack-event:{body.get('event_id')}"):
                return
            record_profile(session, user_id=user["id"], profile=profile_from_slack(user))

    @app.event("member_joined_channel")
    def member_joined_channel(body, event, context):
        """Someone joined a private incident's channel, e.g. through Slack's own invite: from now on
        they are one of its members, granted by whoever invited them (the event's `inviter`)."""
        user = event.get("user")
        with deps.database.session() as session:
            incident = private_incident_of(session, body, event, context)
            if incident is None:
                return
            revoked = access.last_revoked_at(session, incident, user)
            if revoked is not None and clock.to_utc(revoked) > happened_at(body, event) + ORDER_MARGIN:
                return  # a join Slack delivers after the lead removed them: the removal stands
            inviter = event.get("inviter") if is_user_id(event.get("inviter")) else user
            access.grant(session, incident=incident, actor=inviter, user=user, via="joined_channel")

    @app.event("member_left_channel")
    def member_left_channel(body, event, context):
        """Someone left a private incident's channel, or was removed from it by Slack's own means: they
        are no longer one of its members (Slack does not say who removed them: the event is theirs).
        After `/incident remove` the access is already gone and this records nothing."""
        user = event.get("user")
        with deps.database.session() as session:
            incident = private_incident_of(session, body, event, context)
            if incident is None:
                return
            granted = access.granted_at(session, incident, user)
            if granted is None or clock.to_utc(granted) > happened_at(body, event) + ORDER_MARGIN:
                return  # no access, or invited again after leaving (Slack delivered the leave late)
            if access.revoke(session, incident=incident, actor=user, user=user, via="left_channel",
                             data={"slack_event_ts": str(event["event_ts"])[:32]} if event.get("event_ts") else None):
                notify.publish_home(session, user)  # their App Home no longer lists it
        deps.wake_sender()


def private_incident_of(session, body: dict, event: dict, context) -> Incident | None:
    """The private incident whose channel a member joined or left, the first time Slack delivers the
    event; None for anyone but a person (the bot itself included), another channel, or a redelivery."""
    user, channel = event.get("user"), event.get("channel")
    if not is_user_id(user) or not isinstance(channel, str) or user == context.get("bot_user_id"):
        return None
    incident = queries.by_channel(session, channel)
    if incident is None or not incident.private:
        return None
    return incident if first_time(session, f"slack-event:{body.get('event_id')}") else None


def happened_at(body: dict, event: dict) -> datetime:
    """When Slack says the event happened (`event_ts`, else the envelope's `event_time`), else now."""
    for value in (event.get("event_ts"), body.get("event_time")):
        try:
            return datetime.fromtimestamp(float(value), timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            continue
    return clock.now()
