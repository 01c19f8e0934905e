"""Follow-up actions (`ACT-<n>`): create, change, complete, list. Every change is one event on `action:<n>`.

Functions take plain values and a session and know nothing about Slack. They raise `ActionError`
(an `IncidentError`, so the incident listeners' handling applies) before changing anything.
`action.created` carries the full `state`; every later event carries `changes: {field: {from, to}}`,
so folding the stream rebuilds the action as it stood after any event.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.followup.models import ACTION_STATUSES, ACTION_TYPES, ActionItem
from vigil_ir.incidents.models import Incident
from vigil_ir.incidents.service import IncidentError
from vigil_ir.keys import next_number
from vigil_ir.keys import bounded_number

OPEN = ("open", "in_progress")
FIELDS = ("number", "incident_id", "risk_id", "description", "owner", "due_on", "type", "status", "status_reason",
          "ticket_url", "evidence", "created_by", "created_at", "completed_by", "completed_at")
TEXT_MAX = 3000
URL = re.compile(r"^https?://[^\s<>|]+$")  # `<`, `>` and `|` would break a Slack link
USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RELATIVE = re.compile(r"^(\d{1,3})([dw])$", re.IGNORECASE)
KEY = re.compile(r"^\s*(?:ACT-)?(\d+)\s*$", re.IGNORECASE)
BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


class ActionError(IncidentError):
    """A change to an action item that cannot be made; `field` names the form field at fault."""


class ActionAlreadyHandled(ActionError):
    """A double click or a stale button: says who made the current state, and when."""

    def __init__(self, what: str, by: str | None = None, at: datetime | None = None):
        self.what, self.by, self.at = what, by, at
        super().__init__(what + (f" by {by}" if by else "") + (f" at {clock.iso(at)}" if at else "") + ".")


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # "leave this field as it is" (None and "" are real values: clear it)


# ---- validation -------------------------------------------------------------------------------
def today() -> date:
    return clock.now().date()


def parse_due(token: str, on: date) -> date | None:
    """`YYYY-MM-DD`, `3d`, `2w`, `today` or `tomorrow` relative to `on`; None if not a due date."""
    token = (token or "").strip().lower()
    if token in ("today", "tomorrow"):
        return on + timedelta(days=token == "tomorrow")
    if match := RELATIVE.match(token):
        return on + timedelta(days=int(match.group(1)) * (7 if match.group(2) == "w" else 1))
    if ISO_DAY.match(token):
        try:
            return date.fromisoformat(token)
        except ValueError:
            return None
    return None


def problems(*, description: Any = KEEP, owner: Any = KEEP, due_on: Any = KEEP, type: Any = KEEP,
             ticket_url: Any = KEEP, evidence: Any = KEEP, reason: Any = KEEP) -> dict[str, str]:
    """Field errors for the given values (fields left out are not checked), keyed by field name."""
    found = {}
    for name, value in (("description", description), ("evidence", evidence), ("reason", reason)):
        if value is not KEEP and len((value or "").strip()) > TEXT_MAX:
            found[name] = f"Keep it under {TEXT_MAX} characters (it has {len(value.strip())})."
    if description is not KEEP and not (description or "").strip():
        found["description"] = "Say what needs to be done."
    if owner is not KEEP and not (owner and USER.match(owner)):
        found["owner"] = "Pick the person who owns this action."
    # A day of grace: the UTC date can be a day ahead of the person's own.
    if due_on not in (KEEP, None) and due_on < today() - timedelta(days=1):
        found["due_on"] = f"{due_on.isoformat()} has passed; pick today or a later day."
    if type is not KEEP and type not in ACTION_TYPES:
        found["type"] = f"Type must be one of {', '.join(ACTION_TYPES)}."
    if ticket_url not in (KEEP, None, "") and not URL.match(ticket_url.strip()):
        found["ticket_url"] = "Give the ticket as a link (https://…)."
    return found


def _check(**values: Any) -> None:
    found = problems(**values)
    if found:
        field, message = next(iter(found.items()))
        raise ActionError(message, field)


# ---- events -----------------------------------------------------------------------------------
def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    return value.isoformat() if isinstance(value, date) else value


def snapshot(action: ActionItem) -> dict[str, Any]:
    return {name: _json(getattr(action, name)) for name in FIELDS}


def _kind(changes: dict[str, dict]) -> str:
    if "status" in changes:
        before, after = changes["status"]["from"], changes["status"]["to"]
        if after in ("done", "cancelled"):
            return {"done": "action.completed", "cancelled": "action.cancelled"}[after]
        return "action.reopened" if before in ("done", "cancelled") else "action.status_changed"
    single = {"owner": "action.reassigned", "due_on": "action.due_changed", "ticket_url": "action.ticket_set",
              "evidence": "action.evidence_added"}
    return single.get(next(iter(changes)), "action.updated") if len(changes) == 1 else "action.updated"


def _record(session: Session, action: ActionItem, actor: str, before: dict[str, Any], kind: str | None = None,
            extra: dict[str, Any] | None = None) -> Event | None:
    after = snapshot(action)
    changes = {name: {"from": before[name], "to": after[name]} for name in FIELDS if before[name] != after[name]}
    if not changes:
        return None
    session.add(action)
    session.flush()
    return append(session, stream=action.stream, kind=kind or _kind(changes), actor=actor,
                  data={**(extra or {}), "key": action.key, "changes": changes})


# ---- changes ----------------------------------------------------------------------------------
def create(session: Session, *, actor: str, description: str, owner: str, due_on: date | None = None,
           type: str = "corrective", incident: Incident | None = None, risk_id: int | None = None,
           ticket_url: str = "", source: str = "command", source_ref: dict | None = None) -> ActionItem:
    _check(description=description, owner=owner, due_on=due_on, type=type, ticket_url=ticket_url)
    action = ActionItem(number=next_number(session, "action"), incident_id=incident.id if incident else None,
                        risk_id=risk_id, description=description.strip(), owner=owner, due_on=due_on, type=type,
                        ticket_url=(ticket_url or "").strip(), created_by=actor, created_at=clock.now())
    session.add(action)
    session.flush()
    append(session, stream=action.stream, kind="action.created", actor=actor, data={
        "key": action.key, "incident": incident.key if incident else None, "source": source,
        "source_ref": source_ref or {}, "state": snapshot(action)})
    return action


def split_line(line: str) -> tuple[str | None, str]:
    """A close-form follow-up line: an optional leading `YYYY-MM-DD`, then the action (bullets dropped)."""
    text = BULLET.sub("", line.strip(), count=1)
    first, _, rest = text.partition(" ")
    return (first, rest.strip()) if ISO_DAY.match(first) else (None, text)


def create_from_lines(session: Session, *, incident: Incident, actor: str, lines: list[str]) -> list[ActionItem]:
    """One action per non-empty line, owned by `actor` (who can reassign); all or none."""
    created = []
    for number, line in enumerate((line for line in lines if line.strip()), 1):
        day, text = split_line(line)
        due = parse_due(day, today()) if day else None
        if day and due is None:
            raise ActionError(f"Follow-up line {number}: {day} is not a date (YYYY-MM-DD).", "follow_ups")
        try:
            created.append(create(session, actor=actor, description=text, owner=actor, due_on=due,
                                  incident=incident, source="close"))
        except ActionError as problem:
            raise ActionError(f"Follow-up line {number}: {problem}", "follow_ups") from None
    return created


def update(session: Session, *, action: ActionItem, actor: str, status: Any = KEEP, reason: Any = KEEP,
           owner: Any = KEEP, due_on: Any = KEEP, ticket_url: Any = KEEP, evidence: Any = KEEP,
           description: Any = KEEP, kind: str | None = None, extra: dict[str, Any] | None = None) -> Event | None:
    """Apply the given changes as one event (None if nothing changed). Cancelling needs a reason.

    A value equal to the current one counts as unchanged, so a form sent back with an old (past) due
    date is not refused for it. `kind` names the event when the change has a cause of its own (a
    ticket's webhook), and `extra` adds to its data (the ticket's state, the delivery id)."""
    owner, due_on, ticket_url, evidence, description = (
        KEEP if value == getattr(action, name) else value for name, value in (
            ("owner", owner), ("due_on", due_on), ("ticket_url", ticket_url), ("evidence", evidence),
            ("description", description)))
    _check(owner=owner, due_on=due_on, ticket_url=ticket_url, evidence=evidence, reason=reason,
           description=description)
    if status is not KEEP and status not in ACTION_STATUSES:
        raise ActionError(f"Status must be one of {', '.join(ACTION_STATUSES)}.", "status")
    reason = (reason or "").strip() if reason is not KEEP else ""
    moving = status is not KEEP and status != action.status
    if moving and status == "cancelled" and not reason:
        raise ActionError(f"Say why {action.key} is cancelled: the reason stays on its record.", "reason")
    before = snapshot(action)
    if moving:
        action.status, action.status_reason = status, reason
        done = status == "done"
        action.completed_by, action.completed_at = (actor, clock.now()) if done else (None, None)
    for name, value in (("owner", owner), ("due_on", due_on), ("ticket_url", ticket_url), ("evidence", evidence),
                        ("description", description)):
        if value is not KEEP:
            setattr(action, name, value.strip() if isinstance(value, str) else value)
    return _record(session, action, actor, before, kind, extra)


def _require_changed(event: Event | None, message: str) -> Event:
    if event is None:
        raise ActionError(message)
    return event


def complete(session: Session, *, action: ActionItem, actor: str, evidence: str = "") -> Event:
    if action.status in ("done", "cancelled"):
        last = last_change(session, action)
        what = f"{action.key} is already done" if action.status == "done" else \
            f"{action.key} was cancelled ({action.status_reason})"
        raise ActionAlreadyHandled(what, last.actor if last else None, last.recorded_at if last else None)
    return update(session, action=action, actor=actor, status="done", evidence=evidence or KEEP)


def set_status(session: Session, *, action: ActionItem, actor: str, status: str, reason: str = "") -> Event:
    if status == "done":
        return complete(session, action=action, actor=actor)
    event = update(session, action=action, actor=actor, status=status, reason=reason)
    return _require_changed(event, f"{action.key} is already {status.replace('_', ' ')}.")


def reassign(session: Session, *, action: ActionItem, actor: str, owner: str) -> Event:
    return _require_changed(update(session, action=action, actor=actor, owner=owner),
                            f"That person already owns {action.key}.")


def set_due(session: Session, *, action: ActionItem, actor: str, due_on: date | None) -> Event:
    return _require_changed(update(session, action=action, actor=actor, due_on=due_on),
                            f"{action.key} already has that due date.")


def set_ticket(session: Session, *, action: ActionItem, actor: str, ticket_url: str) -> Event:
    return _require_changed(update(session, action=action, actor=actor, ticket_url=ticket_url),
                            f"{action.key} already links that ticket.")


# ---- reading ----------------------------------------------------------------------------------
def locked(session: Session, action_id: int) -> ActionItem | None:
    """The action, row-locked until commit (PostgreSQL), so two clicks at once take turns."""
    return session.exec(select(ActionItem).where(ActionItem.id == action_id).with_for_update()
                        .execution_options(populate_existing=True)).first()


def by_key(session: Session, key: str) -> ActionItem | None:
    match = KEY.match(key or "")
    number = bounded_number(match.group(1)) if match else None
    return session.exec(select(ActionItem).where(ActionItem.number == number)).first() if number else None


def last_change(session: Session, action: ActionItem) -> Event | None:
    """The latest event that changed the action (reminders change nothing)."""
    return session.exec(select(Event).where(Event.stream == action.stream, Event.kind != "action.reminded")
                        .order_by(Event.stream_seq.desc()).limit(1)).first()


def is_overdue(action: ActionItem, on: date) -> bool:
    return action.status in OPEN and action.due_on is not None and action.due_on < on


def listing(session: Session, which: str, *, user: str | None = None, incident: Incident | None = None
            ) -> list[ActionItem]:
    """`mine` (open, owned by `user`), `open` (all open), `incident` (every action of `incident`)."""
    query = select(ActionItem)
    if which == "mine":
        query = query.where(ActionItem.owner == user, ActionItem.status.in_(OPEN))
    elif which == "open":
        query = query.where(ActionItem.status.in_(OPEN))
    else:
        query = query.where(ActionItem.incident_id == incident.id)
    # Undated actions last, then by due date and number.
    return list(session.exec(query.order_by(ActionItem.due_on.is_(None), ActionItem.due_on, ActionItem.number)))


def parent_ref(session: Session, action: ActionItem) -> str | None:
    if action.incident_id:
        incident = session.get(Incident, action.incident_id)
        return incident.key if incident else None
    if action.risk_id:
        from vigil_ir.risks.models import Risk  # optional: only when the action treats a risk

        risk = session.get(Risk, action.risk_id)
        return risk.key if risk else None
    return None
