"""The outbox items that talk to trackers: create a ticket, read one back, close or comment on one.

Each handler re-reads the action and its ticket row first, so a late or repeated item does what is
still needed now. Creating is exactly once: before the create call, `create_started_at` is committed;
a definite refusal (4xx, 429) clears it, but an answer that never came (5xx, timeout, dropped
connection, a crash) leaves it, and the next attempt first looks for the ticket by its marker and
adopts it instead of creating a second one.
"""

from __future__ import annotations

from typing import Any

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.followup import actions
from vigil_ir.followup.models import ActionItem
from vigil_ir.people.models import Person
from vigil_ir.tickets import service
from vigil_ir.tickets.config import TicketConfig, config_for
from vigil_ir.tickets.models import ActionTicket
from vigil_ir.tickets.trackers import NewTicket, Target, TicketNotFound, Tracker, TrackerError


class TicketDeliverer:
    def __init__(self, database: Database, settings: Settings):
        self.database, self.settings = database, settings

    @property
    def config(self) -> TicketConfig:
        return config_for(self.settings)

    def handlers(self) -> dict:
        return {service.CREATE: self.create, service.SYNC: self.sync, service.CLOSE: self.close}

    def _tracker(self, row: ActionTicket) -> Tracker:
        tracker = self.config.tracker(row.tracker)
        if tracker is None:
            raise TrackerError(f"{row.tracker} is no longer set up; set its credentials again, then "
                               "`vigil outbox retry`")
        return tracker

    def _load(self, session, action_id: int, *, lock: bool = False) -> tuple[ActionItem | None, ActionTicket | None]:
        action = actions.locked(session, action_id) if lock else session.get(ActionItem, action_id)
        return action, service.of_action(session, action_id, lock=lock) if action else None

    # ticket.create
    def create(self, payload: dict) -> dict[str, Any]:
        with self.database.session() as session:
            action, row = self._load(session, payload["action_id"], lock=True)
            if action is None or row is None:
                return {"skipped": "no such action or ticket"}
            if row.key:
                return {"key": row.key}
            tracker = self._tracker(row)
            uncertain = row.create_started_at is not None
            row.create_started_at = row.create_started_at or clock.now()
            session.add(row)
            owner = session.get(Person, action.owner) if action.owner else None
            target = Target(row.project, row.issue_type)
            new = NewTicket(title=service.title_of(action), description=self._description(session, action),
                            target=target, marker=row.marker, due_on=action.due_on,
                            assignee_email=owner.email if owner else None)
        if uncertain:  # an earlier attempt may have created it: find it before creating again
            found = tracker.find_marked(new.marker, target)
            if found is not None:
                return self._created(payload["action_id"], tracker, found, adopted=True)
        try:
            ticket = tracker.create(new)
        except TrackerError as failure:
            if not failure.uncertain:  # refused with an answer: nothing was created
                with self.database.session() as session:
                    _, row = self._load(session, payload["action_id"], lock=True)
                    if row is not None and row.key is None:
                        row.create_started_at = None
                        session.add(row)
            raise
        return self._created(payload["action_id"], tracker, ticket, adopted=False)

    def _created(self, action_id: int, tracker: Tracker, ticket, adopted: bool) -> dict[str, Any]:
        with self.database.session() as session:
            action, row = self._load(session, action_id, lock=True)
            if action is None or row is None:
                return {"skipped": "the action or its ticket row is gone", "key": ticket.key}
            if row.key is None:
                service.record_created(session, action=action, row=row, ticket=ticket, adopted=adopted)
        return {"key": ticket.key, "adopted": adopted}

    def _description(self, session, action: ActionItem) -> str:
        parent = actions.parent_ref(session, action)
        due = action.due_on.isoformat() if action.due_on else "no due date"
        source = f" from {parent}" if parent else ""
        return (f"{action.description}\n\nFollow-up action {action.key}{source}, recorded in Vigil; due {due}. "
                "Closing this ticket closes the action.")

    # ticket.sync (a link, the reconcile)
    def sync(self, payload: dict) -> dict[str, Any]:
        with self.database.session() as session:
            action, row = self._load(session, payload["action_id"])
            if action is None or row is None or row.key is None:
                return {"skipped": "nothing to read yet"}
            tracker, key = self._tracker(row), row.key
        try:
            ticket = tracker.fetch(key)
        except TicketNotFound as gone:
            with self.database.session() as session:
                action, row = self._load(session, payload["action_id"], lock=True)
                if action is not None and row is not None and row.key == key:
                    service.record_missing(session, action=action, row=row, label=tracker.label,
                                           source=payload.get("source") or "reconcile", error=str(gone))
            return {"key": key, "state": "missing"}
        with self.database.session() as session:
            action, row = self._load(session, payload["action_id"], lock=True)
            if action is None or row is None or row.key != key:
                return {"skipped": "the ticket changed meanwhile"}
            event = service.apply_remote(session, action=action, row=row, ticket=ticket, label=tracker.label,
                                         source=payload.get("source") or "reconcile")
            if event is not None:
                from vigil_ir.slack import action_blocks  # the owner's DM: a Slack rendering of the change

                action_blocks.ticket_changed(session, action, row, event)
        return {"key": key, "state": ticket.state, "event": event.kind if event else None}

    # ticket.close
    def close(self, payload: dict) -> dict[str, Any]:
        with self.database.session() as session:
            action, row = self._load(session, payload["action_id"])
            if action is None or row is None or row.key is None or action.status not in service.CLOSED:
                return {"skipped": "the action is open again or has no ticket"}
            tracker, key, status = self._tracker(row), row.key, action.status
            who = action.completed_by or actions.last_change(session, action).actor
        ticket = tracker.fetch(key)  # closed already (by someone, or an earlier attempt)? then only record it
        text = (f"{action.key} was marked {status} in Vigil" + (f" by {self._name(who)}" if who else "") + "."
                + (f" Reason: {action.status_reason}" if status == "cancelled" and action.status_reason else ""))
        if ticket.state == "open":
            if payload.get("mode") == "comment":
                tracker.comment(key, text)
                with self.database.session() as session:
                    action, row = self._load(session, payload["action_id"], lock=True)
                    service.record_comment(session, action=action, row=row, text=text)
                return {"key": key, "commented": True}
            tracker.close(key, cancelled=status == "cancelled")
            ticket = tracker.fetch(key)
        with self.database.session() as session:
            action, row = self._load(session, payload["action_id"], lock=True)
            service.apply_remote(session, action=action, row=row, ticket=ticket, label=tracker.label,
                                 source="vigil", kind="ticket.closed")
        return {"key": key, "state": ticket.state}

    def _name(self, user: str) -> str:
        if not user.startswith(("U", "W")):
            return user
        with self.database.session() as session:
            person = session.get(Person, user)
        return person.display if person and person.display else user
