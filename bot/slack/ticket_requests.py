"""Tickets asked for as actions are created (VIGIL_TICKETS_ALWAYS), shared by the listeners that create actions."""

from __future__ import annotations

from vigil_ir.followup.actions import ActionError
from vigil_ir.followup.models import ActionItem
from vigil_ir.slack import action_blocks
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc
from vigil_ir.tickets import service as tickets
from vigil_ir.tickets.config import config_for


def auto_ticket(deps: Deps, session, item: ActionItem, actor: str, *, incident=None, risk: bool = False) -> str:
    """Request the ticket when the settings want one for every action of this kind (VIGIL_TICKETS_ALWAYS);
    a sentence for the reply. A ticket that cannot be requested (no route set) leaves the action as it is."""
    config = config_for(deps.settings)
    reason = config.always_for(incident, risk)
    if reason is None:
        return ""
    try:
        row = tickets.request(session, action=item, actor=actor, config=config, incident=incident, risk=risk,
                              reason=f"VIGIL_TICKETS_ALWAYS: {reason}")
    except ActionError as problem:
        return f"\n:warning: No ticket was requested: {esc(problem)}"
    return f"\nA {action_blocks.TRACKER_LABELS[row.tracker]} ticket is being created in {esc(row.project)}."
