"""Tickets asked for as actions are created (a form's box, or VIGIL_TICKETS_ALWAYS), shared by the
listeners that create actions."""

from __future__ import annotations

from vigil_ir.followup.actions import ActionError
from vigil_ir.followup.models import ActionItem
from vigil_ir.slack import action_blocks
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc
from vigil_ir.tickets import service as tickets
from vigil_ir.tickets.config import config_for
from vigil_ir.tickets.models import ActionTicket

# Close requests whose form asked for tickets: processed_key `close-tickets:<request event id>`, read on approval.
CLOSE_TICKETS = "close-tickets:{}"


def tracker_label(deps: Deps) -> str | None:
    """The tracker new tickets go to ("Jira"), None when none is set up (forms then show no ticket box)."""
    config = config_for(deps.settings)
    return action_blocks.TRACKER_LABELS[config.default] if config.enabled else None


def ticked(view: dict, block_id: str) -> bool:
    from vigil_ir.slack.listeners.views import field

    options = field(view, block_id).get("selected_options")
    return isinstance(options, list) and any(isinstance(o, dict) and o.get("value") == "yes" for o in options)


def requested(deps: Deps, session, item: ActionItem, actor: str, *, field: str, incident=None,
              reason: str = "") -> ActionTicket:
    """A ticket a person asked for in a form: an ActionError names the form's `field`."""
    try:
        return tickets.request(session, action=item, actor=actor, config=config_for(deps.settings),
                               incident=incident, risk=bool(item.risk_id), reason=reason)
    except ActionError as problem:
        raise ActionError(str(problem), field) from None


def auto_ticket(deps: Deps, session, item: ActionItem, actor: str, *, incident=None, risk: bool = False,
                asked: bool = False) -> str:
    """Request the ticket when the settings want one for every action of this kind (VIGIL_TICKETS_ALWAYS),
    or `asked` (a close request's form asked, and the close was approved since); a sentence for the
    reply. A ticket that cannot be requested (no route set) leaves the action as it is."""
    config = config_for(deps.settings)
    always = config.always_for(incident, risk)
    if always is None and not asked:
        return ""
    reason = f"VIGIL_TICKETS_ALWAYS: {always}" if always else "asked for with the request to close"
    try:
        row = tickets.request(session, action=item, actor=actor, config=config, incident=incident, risk=risk,
                              reason=reason)
    except ActionError as problem:
        return f"\n:warning: No ticket was requested: {esc(problem)}"
    return f"\nA {action_blocks.TRACKER_LABELS[row.tracker]} ticket is being created in {esc(row.project)}."
