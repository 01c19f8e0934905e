"""Block Kit and DMs for follow-up actions: list lines, owner DMs with Done / Update, the two modals.

Plain dicts; user text always goes through `esc`. Block ids are the domain's field names, so a domain
error keyed by field lands next to the right input. DMs are `slack.post` outbox items to the owner's
user id, queued in the transaction of the change they announce.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timezone

from sqlmodel import Session

from vigil_ir.eventlog import Event, StreamHead
from vigil_ir.followup.actions import OPEN, is_overdue, parent_ref
from vigil_ir.followup.models import ACTION_STATUSES, ACTION_TYPES, ActionItem
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue
from vigil_ir.incidents.models import Incident
from vigil_ir.slack.blocks import _modal, _option, _select, _text_input, with_banner
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, mention

STATUS_LABEL = {"open": "Open", "in_progress": "In progress", "done": "Done", "cancelled": "Cancelled"}
STATUS_EMOJI = {"open": ":white_circle:", "in_progress": ":large_blue_circle:", "done": ":white_check_mark:",
                "cancelled": ":heavy_multiplication_x:"}
SHORT = 300


def slack_day(day: date | None) -> str:
    """A due date as a Slack date token (`today`, `tomorrow`, `Jun 3`…), falling back to ISO.

    Noon UTC keeps the calendar date the same for readers from UTC-11 to UTC+11.
    """
    if day is None:
        return "no due date"
    noon = datetime.combine(day, time(12), timezone.utc)
    return f"<!date^{int(noon.timestamp())}^{{date_short_pretty}}|{day.isoformat()}>"


def short(text: str, limit: int = SHORT) -> str:
    flat = " ".join((text or "").split())
    return esc(flat if len(flat) <= limit else flat[:limit - 1] + "…")


def title(action: ActionItem, parent: str | None) -> str:
    return f"*{action.key}*" + (f" ({parent})" if parent else "")


def due(action: ActionItem) -> str:
    return f"due {slack_day(action.due_on)}" if action.due_on else "no due date"


def line(action: ActionItem, parent: str | None, today: date, ticket=None) -> str:
    """One line of `/incident actions` (with its ticket and the ticket's state, when it has one)."""
    late = " · :warning: *overdue*" if is_overdue(action, today) else ""
    linked = ""
    if ticket is not None:
        state = esc(ticket.state_name or ticket.state)
        flag = " :warning:" if ticket.divergence else ""
        linked = f" · {ticket_link(ticket)} ({state}){flag}"
    return (f"{STATUS_EMOJI[action.status]} {title(action, parent)} {short(action.description, 150)} · "
            f"{mention(action.owner)} · {due(action)} · {STATUS_LABEL[action.status]}{late}{linked}")


def buttons(action: ActionItem, *, update: str = "Update") -> dict:
    """Update always (evidence, reopening); Done only while the action is open."""
    elements = [{"type": "button", "action_id": "action_item_update", "value": str(action.id),
                 "text": {"type": "plain_text", "text": update}}]
    if action.status in OPEN:
        elements.insert(0, {"type": "button", "action_id": "action_item_done", "value": str(action.id),
                            "style": "primary", "text": {"type": "plain_text", "text": "Done"}})
    return {"type": "actions", "block_id": f"action_item:{action.id}", "elements": elements}


def dm(session: Session, user: str, text: str, *, action: ActionItem, key: str | None = None,
       controls: dict | None = None) -> OutboxItem | None:
    """A DM to `user`; `controls` is the buttons block (None: plain text)."""
    incident = session.get(Incident, action.incident_id) if action.incident_id else None
    if incident is not None and incident.exercise:  # an action raised in an exercise says so
        text = with_banner(incident, text)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": limits.fit(text)}}]
    if controls:
        blocks.append(controls)
    return enqueue(session, kind="slack.post", subject=action.stream, dedupe_key=key,
                   payload={"channel": user, "text": text, "blocks": blocks})


def _seq(session: Session, action: ActionItem) -> int:
    head = session.get(StreamHead, action.stream)
    return head.seq if head else 0


def assigned(session: Session, action: ActionItem, actor: str, previous: str | None = None) -> None:
    """Tell the (new) owner, with the buttons; tell a previous owner the action moved on."""
    parent = parent_ref(session, action)
    who = "You own" if actor == action.owner else f"{mention(actor)} assigned you"
    when_due = due(action)
    text = (f":clipboard: {who} {title(action, parent)}: {short(action.description)}\n"
            f"{when_due[0].upper() + when_due[1:]}. Press *Done* when it is finished, or *Update* to change it.")
    seq = _seq(session, action)
    dm(session, action.owner, text, action=action, key=f"action-assigned:{action.number}:{seq}",
       controls=buttons(action))
    if previous and previous != action.owner:
        dm(session, previous, f":arrow_right: {mention(actor)} reassigned {title(action, parent)} to "
           f"{mention(action.owner)}.", action=action, key=f"action-unassigned:{action.number}:{seq}")


def when(due_on: date, today: date) -> str:
    days = (due_on - today).days
    if days == 1:
        return f"is due tomorrow ({due_on.isoformat()})"
    if days == 0:
        return f"is due today ({due_on.isoformat()})"
    if days > 1:
        return f"is due in {days} days ({due_on.isoformat()})"
    return f"is {-days} day{'s' if days < -1 else ''} overdue (due {due_on.isoformat()})"


def reminder(session: Session, action: ActionItem, today: date, key: str) -> OutboxItem | None:
    icon = ":warning:" if action.due_on < today else ":date:"
    text = (f"{icon} {title(action, parent_ref(session, action))} {when(action.due_on, today)}: "
            f"{short(action.description)}")
    return dm(session, action.owner, text, action=action, key=key, controls=buttons(action))


def change_lines(event: Event) -> str:
    labels = {"status": "status", "owner": "owner", "due_on": "due", "ticket_url": "ticket", "evidence": "evidence",
              "status_reason": "reason"}
    out = []
    for name, change in event.data.get("changes", {}).items():
        if name in labels:
            show = mention if name == "owner" else (lambda v: short(str(v or "—"), 200))
            out.append(f"• {labels[name]}: {show(change['from'])} → {show(change['to'])}")
    return "\n".join(out)


def changed(session: Session, action: ActionItem, actor: str, event: Event, previous_owner: str | None) -> None:
    """After a change: a new owner gets the assignment DM; an owner changed by someone else is told."""
    if action.owner != previous_owner:
        assigned(session, action, actor, previous_owner)
    elif actor != action.owner:
        dm(session, action.owner, f":pencil2: {mention(actor)} updated {title(action, parent_ref(session, action))}:"
           f"\n{change_lines(event)}", action=action, key=f"action-changed:{action.number}:{event.stream_seq}",
           controls=buttons(action))


def completed(session: Session, action: ActionItem, actor: str, event: Event) -> None:
    """Done by one click: offer the clicker a place for evidence; tell the owner if someone else did it."""
    text = (f":white_check_mark: {title(action, parent_ref(session, action))} is done. If there is proof (a ticket, "
            "a pull request, a document), add it as evidence with *Update*: auditors check remediation.")
    dm(session, actor, text, action=action, key=f"action-done:{action.number}:{event.stream_seq}",
       controls=buttons(action, update="Add evidence"))
    changed(session, action, actor, event, action.owner)


# ---- modals -----------------------------------------------------------------------------------
def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": limits.fit(text)}]}


def _input(block_id: str, label: str, element: dict, *, optional: bool = False, hint: str | None = None) -> dict:
    block = {"type": "input", "block_id": block_id, "optional": optional,
             "label": {"type": "plain_text", "text": label}, "element": {**element, "action_id": "value"}}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _owner(initial: str | None) -> dict:
    return _input("owner", "Owner", {"type": "users_select", **({"initial_user": initial} if initial else {})},
                  hint="One accountable person; they get the reminders.")


def _due(initial: date | None, optional: bool) -> dict:
    element = {"type": "datepicker", **({"initial_date": initial.isoformat()} if initial else {})}
    return _input("due_on", "Due date", element, optional=optional)


def _ticket(initial: str, tracker: str | None = None) -> dict:
    hint = f"A {tracker} link keeps the action and the ticket in step." if tracker else None
    return _input("ticket_url", "Ticket link", {"type": "url_text_input", **({"initial_value": initial} if initial
                                                                            else {})}, optional=True, hint=hint)


def ticket_box(block_id: str, text: str) -> dict:
    """An optional checkbox asking for tickets in the tracker (ticked: `selected_options` has "yes")."""
    return _input(block_id, "Ticket", {"type": "checkboxes", "options": [_option("yes", text)]}, optional=True)


def update_modal(action: ActionItem, parent: str | None, seq: int) -> dict:
    statuses = [_option(s, STATUS_LABEL[s]) for s in ACTION_STATUSES]
    return _modal("action_item_update", f"Update {action.key}", "Save", [
        _context(f"{title(action, parent)}: {short(action.description, 1000)}"),
        _select("status", "Status", statuses, initial=action.status),
        _text_input("reason", "Reason", multiline=True, optional=True, max_length=1000,
                    hint="Required to cancel. Recorded on the action's history."),
        _owner(action.owner),
        _due(action.due_on, optional=True),
        _ticket(action.ticket_url),
        _text_input("evidence", "Evidence of completion", multiline=True, optional=True, initial=action.evidence,
                    hint="A link or a note showing it was done: what an auditor would check."),
    ], json.dumps({"id": action.id, "seq": seq}))


def create_modal(description: str, owner: str, metadata: dict, incident_key: str | None,
                 tracker: str | None = None) -> dict:
    where = (f"Linked to *{incident_key}*." if incident_key else
             "Not linked to an incident: this is not an incident channel.")
    types = [_option(key, label) for key, label in ACTION_TYPES.items()]
    return _modal("action_item_create", "Follow-up action", "Create", [
        _context(where),
        _text_input("description", "What needs to be done", multiline=True, initial=description),
        _owner(owner),
        _due(None, optional=False),
        _select("type", "Type", types, initial="corrective"),
        _ticket("", tracker),
        *([ticket_box("create_ticket", f"Create a {tracker} ticket for it")] if tracker else []),
    ], json.dumps(metadata))


# ---- tickets ----------------------------------------------------------------------------------
TRACKER_LABELS = {"jira": "Jira", "github": "GitHub", "linear": "Linear"}


def ticket_link(row) -> str:
    """`<url|OPS-12>` (the key alone when the URL is not known yet)."""
    key = esc(row.key or "(being created)")
    return f"<{row.url}|{key}>" if row.url and "|" not in row.url and ">" not in row.url else key


def ticket_changed(session: Session, action: ActionItem, row, event: Event) -> OutboxItem | None:
    """Tell the owner what a change in the tracker did to their action (an `action.*` event by the sync)."""
    if not event.kind.startswith("action.") or not action.owner:
        return None
    tracker = TRACKER_LABELS.get(row.tracker, row.tracker)
    text = (f":arrows_counterclockwise: {ticket_link(row)} changed in {tracker}, so "
            f"{title(action, parent_ref(session, action))} did too:\n{change_lines(event)}")
    return dm(session, action.owner, text, action=action, key=f"ticket-changed:{action.number}:{event.stream_seq}",
              controls=buttons(action))


def ticket_divergence(session: Session, action: ActionItem, row, event: Event) -> OutboxItem | None:
    """Tell the owner, once per flag, that the action and its ticket disagree and what to do about it."""
    tracker = TRACKER_LABELS.get(row.tracker, row.tracker)
    state = esc(row.state_name or row.state)
    if row.divergence == "ticket_done":
        what = (f"its {tracker} ticket {ticket_link(row)} is *{state}*, but the action is still "
                f"{STATUS_LABEL[action.status].lower()}. Press *Done* if the work is finished, or reopen the ticket.")
    else:
        what = (f"the action is {STATUS_LABEL[action.status].lower()}, but its {tracker} ticket {ticket_link(row)} "
                f"is still *{state}*. Close the ticket, or reopen the action with *Update*.")
    text = f":warning: {title(action, parent_ref(session, action))} and its ticket disagree: {what}"
    return dm(session, action.owner, text, action=action, key=f"ticket-divergence:{action.number}:{event.stream_seq}",
              controls=buttons(action))
