"""An action's ticket: request one, link one, record what the tracker says. One event per change.

Every event that touches a ticket carries its full folded state (`ticket`), so the row is the last
such event's state (tickets/fold.py). A change on the tracker's side that also changes the action
(done, reopened, cancelled, assignee, due date, title) is one event: the action's own
(`action.completed`, `action.reassigned`…) with the ticket's state, the source (`webhook`,
`reconcile`) and the webhook's delivery id in its data. A ticket change that leaves the action as it
is becomes `ticket.synced`.

Only transitions drive the action: a ticket that moves to done closes its open action, one that
moves back to open reopens it. A ticket that was already done when it was linked, or an action
closed in Slack while its ticket stays open, is a disagreement, flagged after a grace period
(`check_divergence`), never silently "fixed".
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.followup import actions
from vigil_ir.followup.actions import KEEP, OPEN, ActionError
from vigil_ir.followup.models import ActionItem
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue
from vigil_ir.tickets.config import ROUTE_VARIABLES, TicketConfig
from vigil_ir.tickets.models import FOLDED, ActionTicket
from vigil_ir.tickets.trackers import Ticket

CREATE, SYNC, CLOSE = "ticket.create", "ticket.sync", "ticket.close"
WORKER = "system:worker"
CLOSED = ("done", "cancelled")
KNOWN = ("open", "done", "cancelled")  # states read from the tracker (not pending, not unknown)
WHERE = {"jira": "project", "github": "repository", "linear": "team"}
EXAMPLE = {"jira": "default=OPS/Task", "github": "default=acme/ops", "linear": "default=ENG"}
TITLE_MAX = 200


def marker_for(action: ActionItem) -> str:
    return f"vigil-act-{action.number}"


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    return value.isoformat() if isinstance(value, date) else value


def snapshot(row: ActionTicket) -> dict[str, Any]:
    return {name: _json(getattr(row, name)) for name in FOLDED}


def title_of(action: ActionItem) -> str:
    first = next((line.strip() for line in action.description.splitlines() if line.strip()), action.key)
    return first if len(first) <= TITLE_MAX else first[:TITLE_MAX - 1] + "…"


# ---- reading ----------------------------------------------------------------------------------
def of_action(session: Session, action_id: int, *, lock: bool = False) -> ActionTicket | None:
    query = select(ActionTicket).where(ActionTicket.action_id == action_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.exec(query).first()


def of_actions(session: Session, action_ids: list[int]) -> dict[int, ActionTicket]:
    """action id -> its ticket, for a listing (ids: at most a page of them)."""
    if not action_ids:
        return {}
    return {row.action_id: row for row in session.exec(select(ActionTicket).where(
        ActionTicket.action_id.in_(action_ids)))}


def by_ticket(session: Session, tracker: str, ticket: Ticket) -> ActionTicket | None:
    """The row of a ticket a webhook is about: by the tracker's own id (stable when a Jira issue moves
    to another project and changes key), else by key."""
    if ticket.external_id:
        row = session.exec(select(ActionTicket).where(ActionTicket.tracker == tracker,
                                                      ActionTicket.external_id == ticket.external_id)).first()
        if row is not None:
            return row
    return session.exec(select(ActionTicket).where(ActionTicket.tracker == tracker,
                                                  ActionTicket.key == ticket.key)).first()


# ---- writing ----------------------------------------------------------------------------------
def _write(session: Session, *, action: ActionItem, row: ActionTicket, actor: str, kind: str | None,
           extra: dict[str, Any] | None = None, **action_changes: Any) -> Event:
    """The row's change and the action's (if any) as one event on the action's stream."""
    session.add(row)
    session.flush()
    data = {**(extra or {}), "ticket": snapshot(row)}
    changes = {name: value for name, value in action_changes.items() if value is not KEEP}
    event = actions.update(session, action=action, actor=actor, kind=kind, extra=data, **changes) if changes else None
    return event or append(session, stream=action.stream, kind=kind or "ticket.synced", actor=actor,
                           data={"key": action.key, **data})


def _no_ticket_yet(session: Session, action: ActionItem) -> None:
    """Refuse a second ticket; a ticket the tracker no longer finds makes way for a new one (its
    history stays on the action's stream)."""
    row = of_action(session, action.id)
    if row is not None and row.state == "missing":
        session.delete(row)
        session.flush()
    elif row is not None:
        raise ActionError(f"{action.key} already has a ticket ({row.key or 'being created in ' + row.tracker}).",
                          "ticket")


def request(session: Session, *, action: ActionItem, actor: str, config: TicketConfig,
            incident: Any = None, risk: bool = False, reason: str = "") -> ActionTicket:
    """Queue the creation of `action`'s ticket in the default tracker (the outbox creates it once)."""
    tracker = config.tracker()
    if tracker is None:
        raise ActionError("No ticket tracker is set up (see docs/integrations.md).", "ticket")
    target = config.target_for(tracker.name, incident, risk)
    if target is None:
        parent = "risk treatment actions" if risk else (f"{incident.type} / {incident.severity} incidents" if incident
                                                        else "actions without an incident")
        raise ActionError(f"No {tracker.label} {WHERE[tracker.name]} is set for {parent}: add one to "
                          f"{ROUTE_VARIABLES[tracker.name]} (e.g. {EXAMPLE[tracker.name]}).", "ticket")
    _no_ticket_yet(session, action)
    row = ActionTicket(action_id=action.id, tracker=tracker.name, project=target.project, issue_type=target.issue_type,
                       marker=marker_for(action), state="pending", requested_by=actor, created_at=clock.now())
    event = _write(session, action=action, row=row, actor=actor, kind="ticket.requested",
                   extra={"reason": reason} if reason else None)
    # Keyed by the request's place on the stream: a ticket that went missing can be asked for anew.
    enqueue(session, kind=CREATE, subject=action.stream, payload={"action_id": action.id},
            dedupe_key=f"ticket-create:{action.number}:{event.stream_seq}")
    return row


def link(session: Session, *, action: ActionItem, actor: str, config: TicketConfig, ref: str) -> ActionTicket:
    """Link an existing ticket, given by its URL or key; the outbox reads its state next."""
    parsed = config.parse_ref(ref)
    if parsed is None:
        names = " or ".join(t.label for t in config.trackers.values()) or "a configured tracker"
        raise ActionError(f"`{ref.strip()[:200]}` is not a ticket of {names}: give its link or its key "
                          "(OPS-12, acme/ops#7, ENG-42).", "ticket")
    name, key = parsed
    _no_ticket_yet(session, action)
    taken = session.exec(select(ActionTicket).where(ActionTicket.tracker == name, ActionTicket.key == key)).first()
    if taken is not None:
        other = session.get(ActionItem, taken.action_id)
        raise ActionError(f"{key} is already the ticket of {other.key if other else 'another action'}.", "ticket")
    tracker = config.trackers[name]
    given = ref.strip().strip("<>").split("|", 1)[0]
    url = given if given.lower().startswith(("http://", "https://")) else tracker.url_for(key)
    row = ActionTicket(action_id=action.id, tracker=name, key=key, url=url, marker=marker_for(action), state="unknown",
                       requested_by=actor, created_at=clock.now())
    event = _write(session, action=action, row=row, actor=actor, kind="ticket.linked", ticket_url=url or KEEP)
    enqueue(session, kind=SYNC, subject=action.stream, payload={"action_id": action.id, "source": "link"},
            dedupe_key=f"ticket-sync:{action.number}:{event.stream_seq}:link")
    return row


def _take(row: ActionTicket, ticket: Ticket) -> None:
    row.key, row.url, row.external_id = ticket.key, ticket.url or row.url, ticket.external_id or row.external_id
    row.state, row.state_name, row.title = ticket.state, ticket.state_name[:255], ticket.title
    row.assignee, row.due_on = (ticket.assignee or None), ticket.due_on
    if ticket.updated_at is not None:
        row.ticket_updated_at = clock.to_utc(ticket.updated_at)


def record_created(session: Session, *, action: ActionItem, row: ActionTicket, ticket: Ticket, adopted: bool) -> Event:
    """The tracker made the ticket (or it was found by its marker after a lost answer: `adopted`)."""
    _take(row, ticket)
    row.create_started_at, row.synced_at = None, clock.now()
    event = _write(session, action=action, row=row, actor=WORKER, kind="ticket.created",
                   extra={"adopted": adopted}, ticket_url=ticket.url or KEEP)
    if not ticket.state_name:  # a create answer names no status (Jira's): read the ticket once now
        enqueue(session, kind=SYNC, subject=action.stream, payload={"action_id": action.id, "source": "created"},
                dedupe_key=f"ticket-sync:{action.number}:{event.stream_seq}:created")
    return event


def _action_changes(session: Session, action: ActionItem, row: ActionTicket, ticket: Ticket, before: dict,
                    label: str) -> dict[str, Any]:
    from vigil_ir.people.service import resolve

    changes: dict[str, Any] = {}
    if before["state"] in KNOWN and before["state"] != ticket.state:
        if ticket.state == "done" and action.status in OPEN:
            changes["status"] = "done"
        elif ticket.state == "cancelled" and action.status in OPEN:
            changes["status"] = "cancelled"
            changes["reason"] = f"{ticket.key} was closed in {label} as {ticket.state_name or 'cancelled'}."
        elif ticket.state == "open" and action.status in CLOSED:
            changes["status"] = "open"
    # The first read of a linked ticket sets the baseline; later edits of its title rename the action.
    if before["title"] and ticket.title.strip() and ticket.title != before["title"]:
        changes["description"] = ticket.title.strip()[:actions.TEXT_MAX]
    if ticket.assignee and ticket.assignee != before["assignee"] and "@" in ticket.assignee:
        person = resolve(session, ticket.assignee)
        if person is not None and person.user_id != action.owner:
            changes["owner"] = person.user_id
    if ticket.due_on and _json(ticket.due_on) != before["due_on"] and ticket.due_on != action.due_on and \
            ticket.due_on >= actions.today() - timedelta(days=1):
        changes["due_on"] = ticket.due_on
    return changes


def apply_remote(session: Session, *, action: ActionItem, row: ActionTicket, ticket: Ticket, label: str,
                 source: str, delivery: str | None = None, kind: str | None = None) -> Event | None:
    """What the tracker says of the ticket now, applied: None when it is older than what was applied
    already (webhooks arrive out of order) or changes nothing."""
    if row.key is None:
        return None  # the creation has not been recorded yet; it reads the ticket itself
    if ticket.updated_at is not None and row.ticket_updated_at is not None and \
            clock.to_utc(ticket.updated_at) < clock.to_utc(row.ticket_updated_at):
        return None
    before = snapshot(row)
    _take(row, ticket)
    row.synced_at = clock.now()
    after = snapshot(row)
    ticket_changes = {name: {"from": before[name], "to": after[name]} for name in FOLDED if before[name] != after[name]}
    if not ticket_changes and kind is None:
        session.add(row)
        return None
    changes = _action_changes(session, action, row, ticket, before, label)
    extra = {"source": source, "delivery": delivery, "tracker": row.tracker, "ticket_key": row.key,
             "ticket_state": row.state, "ticket_changes": ticket_changes}
    if changes:
        try:  # a value the action's own checks refuse is kept on the ticket only, and said so
            return _write(session, action=action, row=row, actor=f"system:{row.tracker}", kind=None, extra=extra,
                          **changes)
        except ActionError as refused:
            extra["not_applied"] = f"{refused.field or 'change'}: {refused}"
    return _write(session, action=action, row=row, actor=f"system:{row.tracker}", kind=kind, extra=extra)


def record_missing(session: Session, *, action: ActionItem, row: ActionTicket, label: str, source: str,
                   error: str) -> Event | None:
    """The tracker no longer finds the ticket: recorded once; it is no longer read back or flagged."""
    if row.state == "missing":
        return None
    row.state, row.synced_at = "missing", clock.now()
    return _write(session, action=action, row=row, actor=f"system:{row.tracker}", kind="ticket.missing",
                  extra={"source": source, "error": error[:300], "tracker": row.tracker, "ticket_key": row.key,
                         "ticket_state": "missing"})


def record_comment(session: Session, *, action: ActionItem, row: ActionTicket, text: str) -> Event:
    return _write(session, action=action, row=row, actor=WORKER, kind="ticket.commented", extra={"comment": text})


# ---- closing the ticket when the action closes in Vigil ---------------------------------------
def _last_seq(session: Session, action: ActionItem, kinds: tuple[str, ...]) -> int | None:
    return session.exec(select(Event.stream_seq).where(Event.stream == action.stream, Event.kind.in_(kinds))
                        .order_by(Event.stream_seq.desc()).limit(1)).first()


def closing_seq(session: Session, action: ActionItem) -> int | None:
    """The stream position of the event that last closed the action (done or cancelled), if that was
    after its ticket was asked for or linked: a ticket linked to an action already closed is left as
    it is (a disagreement the owner is told about), never closed behind its owner's back."""
    closed = _last_seq(session, action, ("action.completed", "action.cancelled"))
    ticketed = _last_seq(session, action, ("ticket.requested", "ticket.linked"))
    return closed if closed is not None and ticketed is not None and closed > ticketed else None


def follow_action(session: Session, *, action: ActionItem, config: TicketConfig) -> OutboxItem | None:
    """After the action was closed in Vigil: close (or comment on) its ticket if it is still open,
    once per closing (the outbox key is the closing event's position)."""
    if config.on_done == "none" or action.status not in CLOSED:
        return None
    row = of_action(session, action.id)
    if row is None or row.key is None or row.state not in ("open", "unknown"):
        return None
    seq = closing_seq(session, action)
    if seq is None:
        return None
    return enqueue(session, kind=CLOSE, subject=action.stream, dedupe_key=f"ticket-close:{action.number}:{seq}",
                   payload={"action_id": action.id, "mode": config.on_done, "seq": seq})


# ---- divergence -------------------------------------------------------------------------------
def disagreement(action_status: str, ticket_state: str) -> str:
    if ticket_state in CLOSED and action_status in OPEN:
        return "ticket_done"
    if ticket_state == "open" and action_status in CLOSED:
        return "action_done"
    return ""


def check_divergence(session: Session, *, action: ActionItem, row: ActionTicket, now: datetime,
                     grace: timedelta) -> Event | None:
    """Start the grace clock when the two disagree, flag once it has run out, clear when they agree."""
    kind = disagreement(action.status, row.state)
    if not kind:
        row.disagree_since = None
        session.add(row)
        if not row.divergence:
            return None
        previous, row.divergence = row.divergence, ""
        return _write(session, action=action, row=row, actor=WORKER, kind="ticket.divergence_cleared",
                      extra={"was": previous})
    if row.disagree_since is None:
        row.disagree_since = now
        session.add(row)
        return None
    if row.divergence == kind or now - clock.to_utc(row.disagree_since) < grace:
        return None
    row.divergence = kind
    return _write(session, action=action, row=row, actor=WORKER, kind="ticket.divergence_flagged",
                  extra={"divergence": kind, "since": clock.iso(row.disagree_since), "action_status": action.status})
