"""How the permissions policy's answers look in Slack: refusals, and the requests that follow them.

Shared by several listeners, so it lives below them. A refusal's text comes from the policy
(`Decision.message`), which names who may instead; Vigil builds it only from validated ids.
"""

from __future__ import annotations

from vigil_ir.incidents.models import Incident
from vigil_ir.permissions import Decision
from vigil_ir.slack import limits


def refusal(decision: Decision | str) -> str:
    return f":no_entry: {decision.message if isinstance(decision, Decision) else decision}"


def request_lead_reply(incident: Incident, decision: Decision) -> dict:
    """The refusal to replace a lead, with a "Request the lead" button the current lead answers."""
    text = refusal(decision) + f" You can ask the current lead to hand {incident.key} over to you."
    return {"text": text, "blocks": [
        limits.section(text),
        {"type": "actions", "block_id": "lead_request", "elements": [
            limits.button("Request the lead", action_id="incident_request_lead", value=str(incident.id))]}]}


def decision_buttons(prefix: str, value: str, yes: str, no: str) -> dict:
    """An actions block with a primary yes and a no button (value: the request's event id)."""
    return {"type": "actions", "elements": [
        limits.button(yes, action_id=f"{prefix}_accept", value=value, style="primary"),
        limits.button(no, action_id=f"{prefix}_decline", value=value)]}
