"""The App Home tab: the viewer's open incidents, then their risks and reviews due."""

from __future__ import annotations

from sqlmodel import or_, select

from vigil_ir.incidents.models import ACTIVE_STATUSES, Incident, IncidentAccess
from vigil_ir.slack import limits
from vigil_ir.slack.blocks import SEVERITY_EMOJI
from vigil_ir.slack.escape import channel_link, esc
from vigil_ir.slack.risk_home import home_blocks as risk_home_blocks


def home_view(session, user_id: str) -> dict:
    """Only incidents the viewer is part of: a role, the declaration, or an access grant (so a private
    incident shows to its members and to no one else)."""
    granted = select(IncidentAccess.incident_id).where(IncidentAccess.user_id == user_id)
    mine = list(session.exec(select(Incident).where(
        Incident.status.in_(ACTIVE_STATUSES),
        or_(Incident.lead == user_id, Incident.comms == user_id, Incident.scribe == user_id,
            Incident.declared_by == user_id, Incident.id.in_(granted))).order_by(Incident.number.desc()).limit(20)))
    blocks = [limits.header("Your open incidents")]
    if not mine:
        blocks.append(limits.section("None. Declare one with `/incident declare <title>`."))
    for incident in mine:
        blocks.append(limits.section(f"{SEVERITY_EMOJI[incident.severity]} *{incident.key}*"
                                     f"{' :lock:' if incident.private else ''} {esc(incident.title)}\n"
                                     f"{incident.status} · {channel_link(incident.channel_id)}"))
    blocks += risk_home_blocks(session, user_id)
    return {"type": "home", "blocks": blocks}
