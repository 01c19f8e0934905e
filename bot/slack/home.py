"""The App Home tab: the open incidents the viewer may see (theirs first), then their risks and reviews due."""

from __future__ import annotations

from sqlmodel import select

from vigil_ir.incidents import access
from vigil_ir.incidents.models import ACTIVE_STATUSES, Incident
from vigil_ir.slack import limits
from vigil_ir.slack.blocks import SEVERITY_EMOJI
from vigil_ir.slack.escape import channel_link, esc
from vigil_ir.slack.risk_home import home_blocks as risk_home_blocks

SHOWN = 20  # incidents on the tab (Slack allows 100 blocks; the risks need theirs)
READ = 500  # open incidents read to choose from: far more than are ever open at once


def home_view(session, who, permissions) -> dict:
    """`who` is the viewer (a user id or the policy's `Actor`, worked out before the session). Every
    open incident they may see outside its channel, as the open-incident list shows it: commanders
    and admins see all of them, private ones marked; anyone else the private ones they are a member
    of and none other (the policy's view_private_incident). Theirs (a role, the declaration, access)
    come first."""
    user = getattr(who, "user", who)
    open_incidents = session.exec(select(Incident).where(Incident.status.in_(ACTIVE_STATUSES))
                                  .order_by(Incident.number.desc()).limit(READ)).all()
    shown = access.visible(permissions, who, session, open_incidents)
    granted = access.granted_incident_ids(session, user)
    mine = [i for i in shown if user in (i.lead, i.comms, i.scribe, i.declared_by) or i.id in granted]
    ids = {i.id for i in mine}
    others = [i for i in shown if i.id not in ids]
    blocks = [limits.header("Your open incidents")]
    if not mine:
        blocks.append(limits.section("None. Declare one with `/incident declare <title>`."))
    blocks += [_line(incident) for incident in mine[:SHOWN]]
    room = max(SHOWN - len(mine), 0)
    if others:
        blocks.append(limits.header("Other open incidents"))
        blocks += [_line(incident) for incident in others[:room]]
    hidden = max(len(mine) - SHOWN, 0) + max(len(others) - room, 0)
    if hidden:
        blocks.append(limits.section(f"…and {hidden} more: `/incident list`."))
    blocks += risk_home_blocks(session, user)
    return {"type": "home", "blocks": blocks}


def _line(incident: Incident) -> dict:
    return limits.section(f"{SEVERITY_EMOJI[incident.severity]} *{incident.key}*"
                          f"{' :lock: private' if incident.private else ''} {esc(incident.title)}\n"
                          f"{incident.status} · {channel_link(incident.channel_id)}")
