"""Follow-up actions in Slack: `/incident action` and `/incident actions`, Done / Update on the owners'
DMs, the Update and Create modals, and the "Create follow-up action" message shortcut.

`incident_command` imports the two subcommands from here, so this module imports it (for
`open_view`) and `shortcuts` only inside functions.
"""

from __future__ import annotations

import re
from datetime import date
from typing import TYPE_CHECKING

from vigil_ir import clock
from vigil_ir.followup import actions
from vigil_ir.followup.actions import ActionAlreadyHandled, ActionError
from vigil_ir.followup.models import ActionItem
from vigil_ir.idempotency import first_time
from vigil_ir.incidents import access, queries
from vigil_ir.permissions import Action, Refused
from vigil_ir.slack import action_blocks, authz, notify
from vigil_ir.slack.action_blocks import slack_day
from vigil_ir.slack.blocks import slack_date
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.views import errors, json_metadata, option_value, ref, text_value, typed
from vigil_ir.tickets import service as tickets
from vigil_ir.tickets.config import config_for
from vigil_ir.slack.ticket_requests import auto_ticket, requested, ticked, tracker_label

if TYPE_CHECKING:
    from vigil_ir.slack.listeners.incident_command import Command

USAGE_ACTION = "/incident action @owner <YYYY-MM-DD|3d|2w|tomorrow> <what needs to be done>"
USAGE_ACTIONS = "/incident actions [mine|open|INC-<n>]"
USAGE_TICKET = "/incident ticket ACT-<n> [ticket link or key]"
COMMAND = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>\s+(\S+)\s+(\S.*)$", re.DOTALL)
LIST_LIMIT = 40


def _open_view(client, trigger_id: str, view: dict) -> dict | None:
    from vigil_ir.slack.listeners.incident_command import open_view

    return open_view(client, trigger_id, view)


def problem_text(problem: ActionError) -> str:
    """The user-facing text; for a stale click, who made the current state and when (reader's zone)."""
    if isinstance(problem, ActionAlreadyHandled) and problem.by:
        return f"{esc(problem.what)} (by {mention(problem.by)} {slack_date(problem.at)})."
    return esc(problem)


def _reply(session, body: dict, text: str) -> None:
    if body.get("response_url"):
        notify.respond_later(session, body["response_url"], text)


def tell(deps: Deps, body: dict, text: str) -> None:
    """An ephemeral answer to the clicker after the ack (through the message's response_url)."""
    with deps.database.session() as session:
        _reply(session, body, text)
    deps.wake_sender()


def _announce(session, item: ActionItem, incident, actor: str) -> None:
    if incident is not None:
        notify.post_in_channel(session, incident, f":clipboard: {mention(actor)} added follow-up *{item.key}* for "
                               f"{mention(item.owner)}, {action_blocks.due(item)}: {esc(item.description)}")


# ---- /incident action, /incident actions ------------------------------------------------------
def cmd_action(c: Command) -> dict:
    """`/incident action @owner <due> <text>` in an incident channel."""
    match = COMMAND.match(c.rest)
    # Relative due dates count from the person's own today (their Slack time zone).
    on = clock.now().astimezone(c.zone).date() if c.zone else actions.today()
    due = actions.parse_due(match.group(2), on) if match else None
    if due is None:
        return {"text": f"Usage: `{USAGE_ACTION}`\nThe owner is an @mention; the due date is a day "
                        "(2025-07-01), a number of days or weeks (3d, 2w), or `tomorrow`."}
    item = actions.create(c.session, actor=c.user, description=match.group(3), owner=match.group(1), due_on=due,
                          incident=c.incident, source="command")
    action_blocks.assigned(c.session, item, c.user)
    _announce(c.session, item, c.incident, c.user)
    return {"text": f"Created *{item.key}* for {mention(item.owner)}, due {slack_day(due)}. "
                    "They get a DM with Done and Update buttons." + auto_ticket(c.deps, c.session, item, c.user,
                                                                               incident=c.incident)}


def _action_holders(session, item: ActionItem) -> dict:
    """Who holds the record roles of an action: its owner, its incident's lead, its risk's owner."""
    holders: dict = {"action_owner": item.owner}
    if item.incident_id:
        incident = queries.by_id(session, item.incident_id)
        holders["lead"] = incident.lead if incident else None
    if item.risk_id:
        from vigil_ir.risks.models import Risk  # only for risk treatment actions

        risk = session.get(Risk, item.risk_id)
        holders["risk_owner"] = risk.owner if risk else None
    return holders


def ticket_command(deps: Deps, body: dict, rest: str) -> dict:
    """`/incident ticket ACT-<n> [link or key]`, anywhere: link an existing ticket, or create one."""
    config = config_for(deps.settings)
    if not config.enabled:
        return {"text": "No ticket tracker is set up (Jira, GitHub or Linear: see docs/integrations.md)."}
    key, _, given = rest.strip().partition(" ")
    if not actions.KEY.match(key or ""):
        return {"text": f"Usage: `{USAGE_TICKET}`\nWithout a link or key, Vigil creates the ticket in "
                        f"{action_blocks.TRACKER_LABELS[config.default]}."}
    user = body["user_id"]
    who = deps.permissions.actor(user)  # may ask Slack for group members: before the transaction
    with deps.database.session() as session:
        found = actions.by_key(session, key)
        item = actions.locked(session, found.id) if found else None
        if item is None:
            return {"text": f"There is no {esc(key.upper())}."}
        decision = deps.permissions.decide(Action.LINK_TICKET, who, **_action_holders(session, item))
        if not decision:
            return {"text": authz.refusal(decision)}
        try:
            if given.strip():
                row = tickets.link(session, action=item, actor=user, config=config, ref=given)
                reply = (f"Linked {action_blocks.ticket_link(row)} to *{item.key}*. Closing it in "
                         f"{action_blocks.TRACKER_LABELS[row.tracker]} closes the action.")
            else:
                incident = queries.by_id(session, item.incident_id) if item.incident_id else None
                row = tickets.request(session, action=item, actor=user, config=config, incident=incident,
                                      risk=bool(item.risk_id))
                reply = (f"Creating a {action_blocks.TRACKER_LABELS[row.tracker]} ticket for *{item.key}* in "
                         f"{esc(row.project)}; its link follows in the action's history and DMs.")
        except ActionError as problem:
            session.rollback()
            return {"text": f":warning: {problem_text(problem)}"}
    deps.wake_sender()
    return {"text": reply}


def risk_action(deps: Deps, body: dict, risk_key: str, rest: str) -> dict:
    """`/risk action RISK-<n> @owner <due> <text>`: a treatment action, tracked like any follow-up."""
    from vigil_ir.eventlog import append
    from vigil_ir.risks import queries as risk_queries

    match = COMMAND.match(rest)
    due = actions.parse_due(match.group(2), actions.today()) if match else None
    if due is None:
        return {"text": f"Usage: `/risk action RISK-<n> @owner <YYYY-MM-DD|3d|2w|tomorrow> <what needs to be done>`"}
    user = body["user_id"]
    with deps.database.session() as session:
        risk = risk_queries.by_key(session, risk_key)
        if risk is None:
            return {"text": f"There is no {esc(risk_key.upper())}."}
        try:
            item = actions.create(session, actor=user, description=match.group(3), owner=match.group(1), due_on=due,
                                  risk_id=risk.id, source="command")
        except ActionError as problem:
            session.rollback()
            return {"text": f":warning: {problem_text(problem)}"}
        # The risk's own history shows its treatment actions too.
        append(session, stream=risk.stream, kind="risk.treatment_action_added", actor=user,
               data={"action": item.key, "owner": item.owner, "due_on": due.isoformat(),
                     "description": item.description})
        action_blocks.assigned(session, item, user)
        ticket = auto_ticket(deps, session, item, user, risk=True)
    deps.wake_sender()
    return {"text": f"Created treatment action *{item.key}* on {risk.key} for {mention(item.owner)}, due "
                    f"{slack_day(due)}. They get a DM with Done and Update buttons." + ticket}


def list_actions(deps: Deps, body: dict, rest: str) -> dict:
    """`/incident actions [mine|open|INC-<n>]`, anywhere; the default is this incident's, else yours."""
    which, user = rest.strip(), body["user_id"]
    who = deps.permissions.actor(user)  # may ask Slack for group members: before the transaction
    with deps.database.session() as session:
        here = queries.by_channel(session, body.get("channel_id"))
        which = which or (here.key if here else "mine")
        incident = None
        if which.lower() in ("mine", "open"):
            found = actions.listing(session, which.lower(), user=user)
            if which.lower() == "open":  # a private incident's actions only for those who may see it
                found = _visible_actions(deps, session, who, found)
            heading = "Your open follow-up actions" if which.lower() == "mine" else "Open follow-up actions"
        elif which.upper().startswith("INC-") and queries.parse_key(which) is not None:
            incident = queries.by_key(session, which)
            if incident is None:
                return {"text": f"There is no {esc(which.upper())}."}
            decision = deps.permissions.decide(Action.VIEW_PRIVATE_INCIDENT, who,
                                               member=access.members(session, incident))
            if incident.private and not decision:
                return {"text": authz.refusal(decision)}
            found = actions.listing(session, "incident", incident=incident)
            heading = f"Follow-up actions of {incident.key}"
        else:
            return {"text": f"Usage: `{USAGE_ACTIONS}`"}
        today = actions.today()
        shown = found[:LIST_LIMIT]
        linked = tickets.of_actions(session, [a.id for a in shown])
        lines = [action_blocks.line(a, None if incident else actions.parent_ref(session, a), today, linked.get(a.id))
                 for a in shown]
    if not found:
        return {"text": f"*{heading}*: none."}
    more = f"\n…and {len(found) - LIST_LIMIT} more (`vigil export actions`)." if len(found) > LIST_LIMIT else ""
    return {"text": f"*{heading}* ({len(found)})\n" + "\n".join(lines) + more}


def _visible_actions(deps: Deps, session, who, found: list[ActionItem]) -> list[ActionItem]:
    ids = {a.incident_id for a in found if a.incident_id}
    if not ids:
        return found
    incidents = [queries.by_id(session, incident_id) for incident_id in sorted(ids)]
    shown = {incident.id for incident in access.visible(deps.permissions, who, session, incidents)}
    return [a for a in found if not a.incident_id or a.incident_id in shown]


# ---- modal values -----------------------------------------------------------------------------
def date_value(view: dict, block_id: str) -> date | None:
    selected = typed(view, block_id, "selected_date")
    try:
        return date.fromisoformat(selected) if selected else None
    except ValueError:  # not from Slack's date picker: read as no date
        return None


def prefill(text: str, link: str | None) -> str:
    """The message's text as plain text (Slack sends `&`, `<`, `>` escaped), then its permalink."""
    plain = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()
    tail = f"\n\n{link}" if link else ""
    return plain[:actions.TEXT_MAX - len(tail)] + tail


def submit_create(deps: Deps, body: dict, view: dict) -> dict:
    meta = json_metadata(view)
    values = {"description": text_value(view, "description"), "owner": typed(view, "owner", "selected_user"),
              "due_on": date_value(view, "due_on"), "type": option_value(view, "type") or "corrective",
              "ticket_url": text_value(view, "ticket_url")}
    found = actions.problems(**values)
    if values["due_on"] is None:
        found["due_on"] = "Pick a due date."
    config = config_for(deps.settings)
    want_ticket = ticked(view, "create_ticket")
    # A link to a configured tracker's ticket links it (kept in step); any other link is kept as a link.
    linked = config.parse_ref(values["ticket_url"]) if config.enabled and values["ticket_url"] else None
    if want_ticket and linked:
        found["create_ticket"] = "Either link the ticket above or create a new one, not both."
    if found:
        return errors(found)
    actor = body["user"]["id"]
    who = deps.permissions.actor(actor) if want_ticket or linked else None  # before the transaction
    ticket_field = "create_ticket" if want_ticket else "ticket_url"
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}  # the same form submitted twice: already recorded
        incident_id = meta.get("incident_id")
        incident = queries.by_id(session, incident_id) if isinstance(incident_id, int) else None
        if who is not None:
            decision = deps.permissions.decide(Action.LINK_TICKET, who, action_owner=values["owner"],
                                               lead=incident.lead if incident else None)
            if not decision:
                session.rollback()
                return errors({ticket_field: decision.message})
        try:
            item = actions.create(session, actor=actor, incident=incident, source="shortcut",
                                  source_ref={k: meta.get(k) if isinstance(meta.get(k), str) else None
                                              for k in ("channel", "ts", "permalink")}, **values)
            if want_ticket:
                requested(deps, session, item, actor, field=ticket_field, incident=incident)
            elif linked:
                tickets.link(session, action=item, actor=actor, config=config, ref=values["ticket_url"])
        except ActionError as problem:
            session.rollback()
            field_name = ticket_field if problem.field == "ticket" else problem.field
            return errors({field_name or "description": str(problem)})
        action_blocks.assigned(session, item, actor)
        _announce(session, item, incident, actor)
        if not (want_ticket or linked):
            auto_ticket(deps, session, item, actor, incident=incident)
        if actor != item.owner and incident is None:
            action_blocks.dm(session, actor, f":clipboard: Created *{item.key}* for {mention(item.owner)}, due "
                             f"{slack_day(item.due_on)}.", action=item)
    deps.wake_sender()
    return {}


def submit_update(deps: Deps, body: dict, view: dict) -> dict:
    meta = json_metadata(view)
    actor = body["user"]["id"]
    config = config_for(deps.settings)
    link = text_value(view, "ticket_url")
    # A configured tracker's ticket given as the link is linked (kept in step), when the action has none.
    linking = bool(config.enabled and link and config.parse_ref(link))
    who = deps.permissions.actor(actor)  # may ask Slack for group members: before the transaction
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        item = actions.locked(session, meta["id"]) if isinstance(meta.get("id"), int) else None
        last = actions.last_change(session, item) if item else None
        if item is None or last is None or last.stream_seq != meta.get("seq"):
            session.rollback()  # nothing written, and the form can be sent again once reopened
            return errors({"status": "This action changed after you opened the form (or no longer exists). "
                                     "Cancel, then press Update again to see it as it is now."})
        decision = deps.permissions.decide(Action.CHANGE_ACTION, who, **_action_holders(session, item))
        if not decision:
            session.rollback()
            return errors({"status": decision.message})
        previous_owner = item.owner
        linking = linking and tickets.of_action(session, item.id) is None
        if linking:
            decision = deps.permissions.decide(Action.LINK_TICKET, who, **_action_holders(session, item))
            if not decision:
                session.rollback()
                return errors({"ticket_url": decision.message})
        try:
            event = actions.update(session, action=item, actor=actor,
                                   status=option_value(view, "status") or actions.KEEP,
                                   reason=text_value(view, "reason"), owner=typed(view, "owner", "selected_user"),
                                   due_on=date_value(view, "due_on"), ticket_url=text_value(view, "ticket_url"),
                                   evidence=text_value(view, "evidence"))
            if linking:
                tickets.link(session, action=item, actor=actor, config=config, ref=link)
        except ActionError as problem:
            session.rollback()
            return errors({"ticket_url" if problem.field == "ticket" else problem.field or "status": str(problem)})
        if event is not None:
            action_blocks.changed(session, item, actor, event, previous_owner)
            tickets.follow_action(session, action=item, config=config_for(deps.settings))
    deps.wake_sender()
    return {}


# ---- listeners --------------------------------------------------------------------------------
def register(app, deps: Deps) -> None:
    @app.action("action_item_done")
    def done_clicked(ack, body, action):
        ack()
        user = body["user"]["id"]
        who = deps.permissions.actor(user)  # may ask Slack for group members: before the transaction
        with deps.database.session() as session:
            item_id = ref(action.get("value"))
            item = actions.locked(session, item_id) if item_id is not None else None
            try:
                if item is None:
                    raise ActionError("That action no longer exists.")
                decision = deps.permissions.decide(Action.CHANGE_ACTION, who, **_action_holders(session, item))
                if not decision:
                    raise Refused(decision)
                event = actions.complete(session, action=item, actor=user)
            except Refused as refused:  # the refusal names people: mentions, not text to escape
                session.rollback()
                _reply(session, body, authz.refusal(refused.decision) + " Nothing was recorded.")
            except ActionError as problem:  # a double click or a stale button lands here
                session.rollback()
                _reply(session, body, f":information_source: {problem_text(problem)}")
            else:
                action_blocks.completed(session, item, user, event)
                tickets.follow_action(session, action=item, config=config_for(deps.settings))
        deps.wake_sender()

    @app.action("action_item_update")
    def update_clicked(ack, body, action, client):
        ack()
        with deps.database.session() as session:
            item_id = ref(action.get("value"))
            item = session.get(ActionItem, item_id) if item_id is not None else None
            view = action_blocks.update_modal(item, actions.parent_ref(session, item),
                                              actions.last_change(session, item).stream_seq) if item else None
        failure = _open_view(client, body["trigger_id"], view) if view else {"text": "That action no longer exists."}
        if failure:
            tell(deps, body, failure["text"])

    @app.view("action_item_update")
    def update_submitted(ack, body, view):
        ack(**submit_update(deps, body, view))

    @app.view("action_item_create")
    def create_submitted(ack, body, view):
        ack(**submit_create(deps, body, view))

    @app.shortcut("create_action")
    def create_from_message(ack, body, client):
        ack()
        from vigil_ir.slack.listeners.shortcuts import permalink

        channel, message, user = body["channel"]["id"], body["message"], body["user"]["id"]
        link = permalink(body, channel, message["ts"])
        with deps.database.session() as session:
            incident = queries.by_channel(session, channel)
        metadata = {"incident_id": incident.id if incident else None, "channel": channel, "ts": message["ts"],
                    "permalink": link}
        text = message.get("text") if isinstance(message.get("text"), str) else ""
        view = action_blocks.create_modal(prefill(text, link), user, metadata,
                                          incident.key if incident else None, tracker_label(deps))
        failure = _open_view(client, body["trigger_id"], view)
        if failure:
            tell(deps, body, failure["text"])
