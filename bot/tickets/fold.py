"""Action tickets as their events say they are: every event on an action's stream that touches its
ticket carries the ticket's whole folded state (`ticket`), so the row is the last one's state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, select

from vigil_ir.eventlog.folding import Mismatch, differences
from vigil_ir.followup.models import ActionItem
from vigil_ir.tickets.models import FOLDED, ActionTicket
from vigil_ir.tickets.service import snapshot

PREFIX = "action:"


class TicketFold:
    prefix = PREFIX
    kinds = None  # a webhook's change is the action's own event (action.completed…) carrying the ticket

    def new(self, stream: str) -> dict[str, Any]:
        return {"ticket": None}

    def apply(self, state: dict[str, Any], event: Any) -> None:
        ticket = (event.data or {}).get("ticket")
        if isinstance(ticket, dict):
            state["ticket"] = ticket

    def compare(self, session: Session, finished: dict[str, dict[str, Any]]) -> Iterable[Mismatch]:
        numbers = [int(stream.removeprefix(PREFIX)) for stream in finished]
        rows = {number: row for number, row in session.exec(
            select(ActionItem.number, ActionTicket).join(ActionTicket, ActionTicket.action_id == ActionItem.id)
            .where(ActionItem.number.in_(numbers)))} if numbers else {}
        for stream, folded in finished.items():
            number = int(stream.removeprefix(PREFIX))
            record, row = f"ticket of ACT-{number}", rows.get(number)
            if folded["ticket"] is None and row is None:
                continue
            if row is None:
                yield Mismatch(record, "row", "an action_ticket row", "none (the row was removed)")
            elif folded["ticket"] is None:
                yield Mismatch(record, "events", "a ticket event", "none (a row no event mentions)")
            else:
                yield from differences(record, {name: folded["ticket"].get(name) for name in FOLDED}, snapshot(row))

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]:
        return ()  # a ticket row belongs to an action; an action row without events is reported by its fold
