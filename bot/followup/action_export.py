"""Follow-up actions for a period (E5 `action_items`): created, due or completed in it.

Rows are plain dicts with the E5 columns; JSON and CSV carry the same columns (CSV formula-safe).
`evidence_recorded_by` is whoever last recorded the completion evidence (from the action's events; Vigil has
no separate verification step, so the column says what it is), `cancelled_reason` why it was cancelled, and
`overdue` is as of the export: still open with its due date passed. There are no control links yet,
so `linked_control_refs` is empty. The `ticket_*` columns are the action's ticket in a tracker as last
read (docs/integrations.md); `ticket_divergence` is set once the action and the ticket have disagreed
for longer than the grace period.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports import csvsafe
from vigil_ir.followup.actions import is_overdue
from vigil_ir.followup.models import ActionItem
from vigil_ir.incidents.models import Incident
from vigil_ir.people import Directory
from vigil_ir.people.columns import PersonColumn, add_names, with_name_columns

FORMATS = ("csv", "json")
# The action's ticket in a tracker (docs/integrations.md): empty when it has none.
TICKET_COLUMNS = ("ticket_tracker", "ticket_key", "ticket_url", "ticket_state", "ticket_state_name", "ticket_synced_at",
                  "ticket_divergence")
# The owner's name when the action was created, the verifier's when it was completed.
PEOPLE = (PersonColumn("owner", at="created_at"), PersonColumn("evidence_recorded_by", at="completed_at"))
BASE_COLUMNS = ("action_ref", "parent_type", "parent_ref", "description", "action_type", "owner", "created_at", "due_at",
           "status", "cancelled_reason", "completed_at", "verification_evidence", "evidence_recorded_by",
           "external_ticket_url",
           "linked_control_refs", "overdue", *TICKET_COLUMNS)
COLUMNS = with_name_columns(BASE_COLUMNS, PEOPLE)
CHUNK = 500  # streams per IN (...) query, well under SQLite's bound-parameter limit


def _verifiers(session: Session, actions: list[ActionItem]) -> dict[str, str]:
    """stream -> the actor of the latest event that set non-empty evidence."""
    found: dict[str, str] = {}
    streams = [a.stream for a in actions if a.evidence]
    for offset in range(0, len(streams), CHUNK):
        query = (select(Event).where(Event.stream.in_(streams[offset:offset + CHUNK]))
                 .order_by(Event.stream, Event.stream_seq))
        for event in session.exec(query):
            if (event.data.get("changes", {}).get("evidence") or {}).get("to"):
                found[event.stream] = event.actor
    return found


def _parents(session: Session, actions: list[ActionItem]) -> dict[tuple[str, int], str]:
    refs: dict[tuple[str, int], str] = {}
    incident_ids = sorted({a.incident_id for a in actions if a.incident_id})
    for offset in range(0, len(incident_ids), CHUNK):
        for incident in session.exec(select(Incident).where(Incident.id.in_(incident_ids[offset:offset + CHUNK]))):
            refs[("incident", incident.id)] = incident.key  # EX-<n> for an exercise's action
    risk_ids = sorted({a.risk_id for a in actions if a.risk_id})
    if risk_ids:
        from vigil_ir.risks.models import Risk  # only when actions treat risks

        for offset in range(0, len(risk_ids), CHUNK):
            for risk in session.exec(select(Risk).where(Risk.id.in_(risk_ids[offset:offset + CHUNK]))):
                refs[("risk", risk.id)] = risk.key
    return refs


def _tickets(session: Session, actions: list[ActionItem]) -> dict[int, Any]:
    from vigil_ir.tickets.models import ActionTicket  # the ticket sync sits above the follow-up records

    ids, found = [a.id for a in actions], {}
    for offset in range(0, len(ids), CHUNK):
        for row in session.exec(select(ActionTicket).where(ActionTicket.action_id.in_(ids[offset:offset + CHUNK]))):
            found[row.action_id] = row
    return found


def ticket_columns(action: ActionItem, row: Any) -> dict[str, Any]:
    from vigil_ir.tickets.service import disagreement

    if row is None:
        return {name: None for name in TICKET_COLUMNS}
    # A flag whose cause is gone (the two agree again; the worker records the clearing within a
    # minute) is not shown: the column says what holds at generation.
    flagged = row.divergence if row.divergence and row.divergence == disagreement(action.status, row.state) else None
    return {"ticket_tracker": row.tracker, "ticket_key": row.key, "ticket_url": row.url or None,
            "ticket_state": row.state, "ticket_state_name": row.state_name or None,
            "ticket_synced_at": clock.iso(row.synced_at), "ticket_divergence": flagged}


def action_row(action: ActionItem, parents: dict, verifiers: dict, today: date, people: Directory,
               ticket: Any = None) -> dict[str, Any]:
    if action.incident_id:
        parent = ("incident", action.incident_id)
    else:
        parent = ("risk", action.risk_id) if action.risk_id else (None, None)
    ref = parents.get(parent)
    kind = "exercise" if parent[0] == "incident" and (ref or "").startswith("EX-") else parent[0]
    return add_names({"action_ref": action.key, "parent_type": kind, "parent_ref": ref,
            "description": action.description, "action_type": action.type, "owner": action.owner,
            "created_at": clock.iso(action.created_at),
            "due_at": action.due_on.isoformat() if action.due_on else None, "status": action.status,
            "completed_at": clock.iso(action.completed_at), "verification_evidence": action.evidence or None,
            "evidence_recorded_by": verifiers.get(action.stream),
            "cancelled_reason": action.status_reason or None if action.status == "cancelled" else None, "external_ticket_url": action.ticket_url or None,
            "linked_control_refs": None, "overdue": is_overdue(action, today), **ticket_columns(action, ticket)},
            people, PEOPLE)


def action_rows(session: Session, start: datetime, end: datetime,
                people: Directory | None = None) -> list[dict[str, Any]]:
    """Every action created, due or completed in [start, end), in key order."""
    start, end = clock.to_utc(start), clock.to_utc(end)
    first_day, last_day = start.date(), (end - timedelta(microseconds=1)).date()
    actions = list(session.exec(select(ActionItem).where(or_(
        and_(ActionItem.created_at >= start, ActionItem.created_at < end),
        and_(ActionItem.completed_at >= start, ActionItem.completed_at < end),
        and_(ActionItem.due_on >= first_day, ActionItem.due_on <= last_day))).order_by(ActionItem.number)))
    parents, verifiers, today = _parents(session, actions), _verifiers(session, actions), clock.now().date()
    people = people or Directory.load(session)
    tickets = _tickets(session, actions)
    return [action_row(action, parents, verifiers, today, people, tickets.get(action.id)) for action in actions]


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([{name: row[name] for name in COLUMNS} for row in rows], indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return csvsafe.to_csv(COLUMNS, rows)
    raise ValueError(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
