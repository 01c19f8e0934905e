"""`/incident …`: parse the text, call one domain function, answer ephemerally.

Everything slow (channel posts, summary refresh) is queued in the outbox inside the same
transaction; the only inline Slack call is `views.open`, which must use the trigger_id at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.bidi import neutralise_all
from vigil_ir.followup import pir
from vigil_ir.eventlog import Event
from vigil_ir.incidents import access, queries, service
from vigil_ir.incidents.models import ACTIVE_STATUSES, ROLES, SEVERITIES, Incident
from vigil_ir.incidents.service import IncidentError
from vigil_ir.keys import bounded_number
from vigil_ir.permissions import Action, Actor, Refused
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.loader import suggest
from vigil_ir.risks import signoff
from vigil_ir.slack import authz, blocks, limits, notify
from vigil_ir.slack import signoff as slack_signoff
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import channel_link, esc, first_mention, mention
from vigil_ir.slack.listeners.action_listeners import cmd_action, list_actions, ticket_command
from vigil_ir.slack.ticket_requests import tracker_label
from vigil_ir.slack.timeline_text import timeline_text, viewer_timezone

log = logging.getLogger(__name__)

USAGE = """*Vigil — `/incident`*
`/incident [declare] [title]` — declare an incident (opens a form)
Inside an incident channel:
`/incident status investigating|identified|monitoring|resolved`
`/incident severity sev1|sev2|sev3|sev4`
`/incident security yes|no <reason>` — whether this is a security incident (lead, commander or admin; recorded with the reason)
`/incident lead @user` · `/incident role comms|scribe @user`
`/incident invite @user` — give someone access to a private incident and invite them (lead, commander or admin)
`/incident remove @user` — take someone's access to a private incident away and remove them from its channel (lead, commander or admin)
`/incident note <text>` · `/incident correct <note-id> <text>`
`/incident update` — post a status update (form)
`/incident resolve` · `/incident close` (lead, commander or admin; form)
`/incident page` — page a service or team through PagerDuty or Opsgenie (form)
`/incident playbook [id]` — list the playbooks that fit, or attach one
`/incident deadline <deadline-id> not-reportable|not-required|not-applicable <reason>` — end a deadline clock by a decision (lead, commander or admin)
`/incident timeline` — latest events, in your time zone
`/incident pir` — record the post-incident review (form)
`/incident action @owner <YYYY-MM-DD|3d|2w|tomorrow> <text>` — add a follow-up action
`/incident actions [mine|open|INC-<n>]` — list follow-up actions (works anywhere)
`/incident ticket ACT-<n> [ticket link or key]` — link the action's Jira, GitHub or Linear ticket, or create one (works anywhere)
`/incident list` — the open incidents you can see (works anywhere)
`/incident sign-off` — management sign-off of the periodic incident-response program review (commanders and admins; form; works anywhere)
`/incident help` — this message
React with :pushpin: on a message here to add it to the timeline."""

@dataclass
class Command:
    """A subcommand run inside an incident channel."""

    deps: Deps
    session: Session
    incident: Incident
    user: str
    rest: str
    zone: ZoneInfo | None = None
    who: Actor | None = None  # the user with the roles and groups they hold (permissions policy)
    privileged: frozenset[str] = frozenset()  # who may, besides the lead (for domain checks that take it)

    def require(self, action: Action, **holders) -> None:
        """Raise Refused (saying who may instead) unless the policy lets this user take `action`."""
        self.deps.permissions.require(action, self.who or self.user, **holders)


# Subcommands whose domain function takes who may act besides the lead (worked out before the transaction).
PRIVILEGED = {"security": Action.CLASSIFY_SECURITY, "deadline": Action.DECIDE_DEADLINE}
# Subcommands that change the incident: its row is locked by the lookup itself (PostgreSQL), not re-read to lock it.
CHANGES_INCIDENT = {"status", "severity", "security", "lead", "role", "note", "correct", "resolve", "invite", "remove",
                    "playbook", "action", "deadline"}
IN_CHANNEL_ONLY = {"status", "severity", "security", "lead", "role", "note", "correct", "update", "resolve", "close", "timeline",
                   "playbook", "pir", "action", "deadline", "invite", "remove", "page"}


def register(app, deps: Deps) -> None:
    @app.command("/incident")
    def incident_command(ack, body, client):
        ack(**handle(deps, body, client))


def handle(deps: Deps, body: dict, client) -> dict:
    text = (body.get("text") or "").strip()
    verb, _, rest = text.partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("", "declare", "new"):
        decision = deps.permissions.decide(Action.DECLARE, body["user_id"])
        if not decision:
            return {"text": authz.refusal(decision)}
        return open_declare(body, client, rest, deps.settings.private_types)
    if verb == "help":
        return {"text": USAGE}
    if verb == "actions":  # works outside incident channels too
        return list_actions(deps, body, rest)
    if verb == "ticket":
        return ticket_command(deps, body, rest)
    if verb == "list":
        return list_open(deps, body)
    if verb in ("sign-off", "signoff"):  # works anywhere
        decision = deps.permissions.decide(Action.SIGN_OFF_PROGRAM_REVIEW, body["user_id"])
        if not decision:
            return {"text": authz.refusal(decision) + " Nothing was recorded."}
        return open_view(client, body["trigger_id"],
                         slack_signoff.modal(clock.now().date(), signoff.INCIDENT_REVIEW)) or {}
    if verb not in IN_CHANNEL_ONLY:
        return {"text": f"Unknown subcommand `{esc(verb)}`.\n\n{USAGE}"}
    # Slack calls happen outside the transaction: on SQLite it holds the write lock.
    zone = viewer_timezone(client, body["user_id"], deps.database) if verb in ("timeline", "action") else None
    who = deps.permissions.actor(body["user_id"])  # may ask Slack for group members: before the transaction
    privileged = deps.permissions.holders_of(PRIVILEGED[verb]) if verb in PRIVILEGED else frozenset()
    with deps.database.session() as session:
        incident = queries.by_channel(session, body.get("channel_id"), lock=verb in CHANGES_INCIDENT)
        if incident is None:
            return {"text": not_in_incident_channel(deps, session, verb, who)}
        try:
            reply = SUBCOMMANDS[verb](Command(deps, session, incident, body["user_id"], rest, zone, who, privileged))
        except Refused as refused:
            session.rollback()
            return {"text": authz.refusal(refused.decision)}
        except IncidentError as problem:
            session.rollback()
            return {"text": f":warning: {esc(problem)}"}
    if "view" in reply:
        return open_view(client, body["trigger_id"], reply["view"]) or {}
    deps.wake_sender()
    return reply


def open_incident_lines(deps: Deps, session, who: Actor, limit: int = 10) -> list[str]:
    """The open incidents this person may see, newest first (a private one only for its members,
    commanders and admins: the policy's view_private_incident rule)."""
    open_incidents = access.visible(deps.permissions, who, session, session.exec(
        select(Incident).where(Incident.status.in_(ACTIVE_STATUSES)).order_by(Incident.number.desc())))
    lines = [f"• {i.key}{' :lock: private' if i.private else ''} {esc(i.title)} — {channel_link(i.channel_id)}"
             for i in open_incidents[:limit]]
    if len(open_incidents) > limit:
        lines.append(f"…and {len(open_incidents) - limit} more (`/incident list`).")
    return lines


def list_open(deps: Deps, body: dict) -> dict:
    """`/incident list`, anywhere: the open incidents this person may see."""
    who = deps.permissions.actor(body["user_id"])  # may ask Slack for group members: before the session
    with deps.database.session() as session:
        lines = open_incident_lines(deps, session, who, limit=40)
    if not lines:
        return {"text": "There are no open incidents you can see. Declare one with `/incident declare <title>`."}
    return {"text": "*Open incidents*\n" + "\n".join(lines)}


def not_in_incident_channel(deps: Deps, session, verb: str, who: Actor) -> str:
    """The refusal, with the open incidents this person may see."""
    open_incidents = open_incident_lines(deps, session, who)
    lines = [f"`/incident {verb}` works inside an incident channel, and this is not one."]
    if open_incidents:
        lines.append("Open incidents:")
        lines += open_incidents
    else:
        lines.append("There are no open incidents. Declare one with `/incident declare <title>`.")
    return "\n".join(lines)


def open_view(client, trigger_id: str, view: dict) -> dict | None:
    """Open a modal; on a Slack failure return the ephemeral reply explaining it."""
    try:
        # bolt's own client: shown bidi controls (vigil_ir.bidi) and Slack's limits, as SafeTextClient does
        client.views_open(trigger_id=trigger_id, view=limits.enforce(neutralise_all(view)))
    except SlackApiError as failure:
        log.warning("views.open failed: %s", failure.response.get("error"))
        return {"text": ":warning: Slack did not open the form "
                        f"({esc(failure.response.get('error', 'error'))}). Nothing was recorded; please try again."}
    except OSError as failure:
        log.warning("views.open failed: %s", failure)
        return {"text": ":warning: Slack could not be reached to open the form. Nothing was recorded; please try again."}
    return None


def open_declare(body: dict, client, title: str, private_types: frozenset[str] = frozenset()) -> dict:
    metadata = json.dumps({"origin_channel": body.get("channel_id")})
    return open_view(client, body["trigger_id"], blocks.declare_modal(title[:150], metadata, private_types)) or {}


def _usage(line: str) -> dict:
    return {"text": f"Usage: `{line}`"}


def cmd_status(c: Command) -> dict:
    status = c.rest.lower()
    if status not in ("investigating", "identified", "monitoring", "resolved"):
        return _usage("/incident status investigating|identified|monitoring|resolved")
    if status == "resolved":
        c.require(Action.RESOLVE, lead=c.incident.lead, declarer=c.incident.declared_by)
    event = service.set_status(c.session, incident=c.incident, actor=c.user, status=status)
    notify.post_in_channel(c.session, c.incident, f"{blocks.STATUS_EMOJI[status]} {mention(c.user)} changed "
                           f"the status from *{event.data['from']}* to *{status}*.", also_feed=status == "resolved")
    if status == "resolved":
        return {"text": f"{c.incident.key} is now resolved. {pir_note(c.session, c.incident, c.deps.policy)}"}
    return {"text": f"{c.incident.key} is now {status}."}


def pir_note(session, incident, policy) -> str:
    """Schedule the post-incident review on resolution and say when it is due."""
    review = pir.schedule(session, incident=incident, policy=policy)
    if not review.required:
        return "A post-incident review is optional at this severity (`/incident pir` to record one)."
    return f"Post-incident review due {blocks.slack_date(review.due_at)}: record it with `/incident pir`."


def cmd_resolve(c: Command) -> dict:
    return cmd_status(replace(c, rest="resolved"))


def cmd_severity(c: Command) -> dict:
    severity = c.rest.lower()
    if severity not in SEVERITIES:
        return _usage("/incident severity sev1|sev2|sev3|sev4")
    c.require(severity_action(c.incident.severity, severity), lead=c.incident.lead)
    event = service.set_severity(c.session, incident=c.incident, actor=c.user, severity=severity)
    notify.post_in_channel(c.session, c.incident, f"{blocks.SEVERITY_EMOJI[severity]} {mention(c.user)} changed "
                           f"the severity from *{event.data['from']}* to *{severity}*.", also_feed=True)
    return {"text": f"{c.incident.key} is now {severity}."}


def severity_action(current: str, wanted: str) -> Action:
    """sev1 is the worst: going from sev1 to sev3 is a downgrade."""
    return Action.SEVERITY_DOWN if queries.SEVERITY_ORDER.index(wanted) > queries.SEVERITY_ORDER.index(current) \
        else Action.SEVERITY_UP


def lead_decision(deps: Deps, incident: Incident, who: Actor | str):
    """Taking a lead no one holds, or replacing the one someone holds (the current lead controls it)."""
    if incident.lead is None:
        return deps.permissions.decide(Action.TAKE_LEAD, who)
    return deps.permissions.decide(Action.REPLACE_LEAD, who, lead=incident.lead)


def cmd_security(c: Command) -> dict:
    choice, _, reason = c.rest.partition(" ")
    if choice.lower() not in ("yes", "no") or not reason.strip():
        return _usage("/incident security yes|no <reason>")
    security = choice.lower() == "yes"
    c.require(Action.CLASSIFY_SECURITY, lead=c.incident.lead)
    service.set_security(c.session, incident=c.incident, actor=c.user, admins=c.privileged,
                         security=security, reason=reason)
    notify.post_in_channel(c.session, c.incident, f":shield: {mention(c.user)} marked {c.incident.key} "
                           f"{'a' if security else 'not a'} security incident: {esc(reason.strip())}")
    return {"text": f"{c.incident.key} is {'now' if security else 'no longer'} a security incident."}


def _assign(c: Command, role: str, user: str | None) -> dict:
    if user is None:
        return _usage("/incident lead @user" if role == "lead" else "/incident role comms|scribe @user")
    if role == "lead" and user != c.incident.lead:
        decision = lead_decision(c.deps, c.incident, c.who or c.user)
        if not decision:
            return authz.request_lead_reply(c.incident, decision)
    service.assign_role(c.session, incident=c.incident, actor=c.user, role=role, user=user)
    if c.incident.private:  # a role holder may not be in the private channel yet
        notify.invite_to_channel(c.session, c.incident, [user])
    notify.post_in_channel(c.session, c.incident, f":bust_in_silhouette: {mention(user)} is now "
                           f"*{blocks.role_label(role)}* (set by {mention(c.user)}).")
    return {"text": f"{mention(user)} is now {blocks.role_label(role).lower()} of {c.incident.key}."}


def cmd_invite(c: Command) -> dict:
    """`/incident invite @user`: the lead (or a commander, an admin) grants someone access to a private
    incident; the grant is an event, then Slack invites them to the channel."""
    user = first_mention(c.rest)
    if user is None:
        return _usage("/incident invite @user")
    if not c.incident.private:
        return {"text": f"{c.incident.key} is not private: anyone may join its channel (Slack's `/invite` "
                        "adds someone)."}
    c.require(Action.INVITE_TO_INCIDENT, lead=c.incident.lead)
    granted = access.grant(c.session, incident=c.incident, actor=c.user, user=user, via="invite")
    notify.invite_to_channel(c.session, c.incident, [user])
    if granted is None:
        return {"text": f"{mention(user)} already has access to {c.incident.key}; invited to the channel again."}
    notify.post_in_channel(c.session, c.incident, f":key: {mention(c.user)} gave {mention(user)} access to "
                           f"this private incident.", refresh=False)
    return {"text": f"{mention(user)} now has access to {c.incident.key} and is invited to this channel."}


def cmd_remove(c: Command) -> dict:
    """`/incident remove @user`: the lead (or a commander, an admin) takes someone's access to a private
    incident away; the revocation is an event, then Slack removes them from the channel. Someone who
    holds a role keeps it until it is handed over: a lead without access is no lead."""
    user = first_mention(c.rest)
    if user is None:
        return _usage("/incident remove @user")
    if not c.incident.private:
        return {"text": f"{c.incident.key} is not private: there is no access to take away (Slack's `/remove` "
                        "takes someone out of its channel)."}
    c.require(Action.REMOVE_FROM_INCIDENT, lead=c.incident.lead)
    held = [role for role in ROLES if getattr(c.incident, role, None) == user]
    if held:
        role = blocks.role_label(held[0]).lower()
        return {"text": f"{mention(user)} is the {role} of {c.incident.key}: give the role to someone else first "
                        f"(`/incident {'lead' if held[0] == 'lead' else 'role ' + held[0]} @user`), then remove them."}
    revoked = access.revoke(c.session, incident=c.incident, actor=c.user, user=user, via="removed")
    notify.remove_from_channel(c.session, c.incident, [user])
    if revoked is None:
        return {"text": f"{mention(user)} has no access to {c.incident.key}; removed from this channel if they "
                        "were in it."}
    notify.post_in_channel(c.session, c.incident, f":no_entry_sign: {mention(c.user)} removed {mention(user)} from "
                           f"this private incident.", refresh=False)
    notify.publish_home(c.session, user)  # their App Home no longer lists it
    return {"text": f"{mention(user)} no longer has access to {c.incident.key} and is removed from this channel."}


def cmd_lead(c: Command) -> dict:
    return _assign(c, "lead", first_mention(c.rest))


def cmd_role(c: Command) -> dict:
    role, _, who = c.rest.partition(" ")
    if role.lower() not in ROLES:
        return _usage("/incident role comms|scribe @user")
    return _assign(c, role.lower(), first_mention(who))


def cmd_note(c: Command) -> dict:
    if not c.rest:
        return _usage("/incident note <text>")
    event = service.add_note(c.session, incident=c.incident, actor=c.user, text=c.rest)
    notify.post_in_channel(c.session, c.incident, f":memo: Note #{event.id} from {mention(c.user)}: {esc(c.rest)}",
                           block_id=f"note:{event.id}", refresh=False)
    return {"text": f"Noted on the {c.incident.key} timeline as note #{event.id}."}


def cmd_correct(c: Command) -> dict:
    note_id, _, text = c.rest.partition(" ")
    digits = note_id.removeprefix("#")
    if not (digits.isascii() and digits.isdigit()) or not text.strip():
        return _usage("/incident correct <note-id> <corrected text>")
    number = bounded_number(digits)  # a number no event id can have is no note, not an overflow
    if number is None:
        raise IncidentError(f"There is no note #{digits} on {c.incident.key}.")
    require_correction(c.deps, c.session, c.incident, c.who or c.user, number)
    event = service.correct_note(c.session, incident=c.incident, actor=c.user, note_event_id=number, text=text)
    notify.post_in_channel(c.session, c.incident, f":pencil2: {mention(c.user)} corrected note "
                           f"#{event.corrects}: {esc(text.strip())}", block_id=f"note:{event.id}",
                           refresh=False)
    return {"text": f"Correction recorded; note #{event.corrects} stays on the timeline as it was."}


def note_author(session, incident: Incident, note_event_id: int) -> str | None:
    """Who wrote the note (a correction of a correction still belongs to the note's author)."""
    event = session.get(Event, note_event_id)
    seen = 0
    while event is not None and event.stream == incident.stream and event.kind == "incident.note_corrected" \
            and event.corrects and seen < 100:
        event, seen = session.get(Event, event.corrects), seen + 1
    return event.actor if event is not None and event.stream == incident.stream else None


def require_correction(deps: Deps, session, incident: Incident, who, note_event_id: int) -> None:
    """Corrections: only the note's author, the lead, a commander or an admin (raises Refused)."""
    author = note_author(session, incident, note_event_id)
    if author is None:
        raise IncidentError(f"There is no note #{note_event_id} on {incident.key}.")
    deps.permissions.require(Action.CORRECT_NOTE, who, note_author=author, lead=incident.lead)


def cmd_update(c: Command) -> dict:
    if c.incident.status in ("resolved", "closed"):
        return {"text": f"{c.incident.key} is {c.incident.status}; status updates are for open incidents."}
    return {"view": blocks.update_modal(c.incident)}


def cmd_close(c: Command) -> dict:
    c.require(Action.CLOSE, lead=c.incident.lead)
    if c.incident.status != "resolved":
        return {"text": f"Resolve {c.incident.key} before closing it: `/incident resolve`."}
    waiting = service.pending_close_request(c.session, c.incident)
    if waiting is not None:
        return {"text": f"{mention(waiting.actor)} asked to close {c.incident.key}; it waits for a commander or "
                        "admin to approve or refuse it."}
    return {"view": blocks.close_modal(c.incident, runner.close_blockers(c.session, c.incident),
                                       tracker_label(c.deps))}


def cmd_timeline(c: Command) -> dict:
    return {"text": timeline_text(c.session, c.incident, zone=c.zone)}


def cmd_deadline(c: Command) -> dict:
    parts = c.rest.split(maxsplit=2)
    usage = "/incident deadline <deadline-id> not-reportable|not-required|not-applicable <reason>"
    if len(parts) < 3:
        return _usage(usage)
    wanted, decision, reason = parts[0], parts[1].lower(), parts[2]
    c.require(Action.DECIDE_DEADLINE, lead=c.incident.lead)
    for run in runner.runs_for(c.session, c.incident):
        for deadline in runner.deadlines_for(c.session, run):
            if deadline.deadline_id == wanted:
                runner.decide_deadline(c.session, incident=c.incident, run=run, deadline=deadline, actor=c.user,
                                       admins=c.privileged, decision=decision, reason=reason)
                notify.post_in_channel(c.session, c.incident, f":heavy_minus_sign: {mention(c.user)} ended the "
                                       f"deadline *{esc(deadline.label)}*: {esc(deadline.decision)} — {esc(reason)}")
                notify.refresh_checklist(c.session, run)
                return {"text": f"Recorded: {deadline.label} — {deadline.decision}."}
    return {"text": f"No deadline `{esc(wanted)}` in this incident's playbooks."}


def cmd_playbook(c: Command) -> dict:
    from vigil_ir.slack.listeners.playbook_actions import attach_playbook

    if c.rest:
        return {"text": attach_playbook(c.deps, c.session, c.incident, c.user, c.rest.split()[0].lower())}
    library = c.deps.library
    if not library:
        return {"text": "No playbooks are installed (see `vigil playbooks list`)."}
    fitting = suggest(library, c.incident.type, c.incident.severity)
    others = [f for key, f in sorted(library.items()) if f not in fitting]
    intro = (f"*Playbooks that fit {c.incident.key}* ({c.incident.type}, {c.incident.severity}):" if fitting
             else f"No playbook is marked for {c.incident.type}/{c.incident.severity}; all playbooks:")
    listed = blocks.playbook_buttons(fitting or others)
    text = intro + " " + ", ".join(f"`{f.playbook.id}`" for f in (fitting or others))
    return {"text": text, "blocks": [limits.section(intro)] + listed}


def cmd_pir(c: Command) -> dict:
    if c.incident.status not in ("resolved", "closed"):
        return {"text": f"Resolve {c.incident.key} first; the post-incident review comes after the fire."}
    review = pir.for_incident(c.session, c.incident)
    if review is not None and review.status == "completed":
        return {"text": f"The review of {c.incident.key} was recorded by {mention(review.completed_by)} "
                        f"{blocks.slack_date(review.completed_at)}."}
    return {"view": blocks.pir_modal(c.incident, review)}


def cmd_page(c: Command) -> dict:
    from vigil_ir.slack.listeners.page_views import open_page_form

    return open_page_form(c.deps, c.incident, c.who or c.user)


SUBCOMMANDS = {"status": cmd_status, "resolve": cmd_resolve, "severity": cmd_severity, "security": cmd_security,
               "lead": cmd_lead,
               "role": cmd_role, "note": cmd_note, "correct": cmd_correct, "update": cmd_update,
               "close": cmd_close, "timeline": cmd_timeline, "playbook": cmd_playbook,
               "pir": cmd_pir, "action": cmd_action, "deadline": cmd_deadline, "invite": cmd_invite,
               "remove": cmd_remove, "page": cmd_page}
