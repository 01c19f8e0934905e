"""Which private incidents a dashboard reader sees.

Auditor tokens and admins see every incident: an auditor is entitled to the whole population, and
the exports they download hold every private incident, marked. A Slack user signed in as a viewer
(`VIGIL_DASHBOARD_VIEWERS`, or anyone in the workspace with `VIGIL_DASHBOARD_ALLOW_WORKSPACE`) sees a
private incident only where the permissions policy's `view_private_incident` rule lets them, as in
Slack: its members, commanders and admins. Such a viewer cannot download an export that holds a
private incident they may not see (the population, the actions, the bundle): an export is the whole
population or nothing, so it is refused rather than cut.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from vigil_ir.incidents import access
from vigil_ir.incidents.models import Incident, key_of
from vigil_ir.permissions import Action
from vigil_ir.web.dashboard.context import dashboard


class PrivateScope:
    """None-or-set of the private incident ids the reader may see (None: all of them)."""

    def __init__(self, request: Request):
        principal = request.state.principal
        self.user = principal.id if principal.kind == "slack" and not principal.is_admin else None
        self.all, self.may_be_member, self.ids = True, False, None
        if self.user is not None:
            permissions = dashboard(request).permissions()
            who = permissions.actor(self.user)  # may ask Slack for group members: before any session
            self.all = permissions.allows(Action.VIEW_PRIVATE_INCIDENT, who, member=frozenset())
            self.may_be_member = permissions.allows(Action.VIEW_PRIVATE_INCIDENT, who, member=frozenset({self.user}))

    def visible_ids(self, session) -> set[int] | None:
        """The private incidents' ids the reader sees, or None for all."""
        if self.all:
            return None
        return access.granted_incident_ids(session, self.user) if self.may_be_member else set()

    def sees(self, session, incident: Incident) -> bool:
        if not incident.private or self.all:
            return True
        return self.may_be_member and incident.id in access.granted_incident_ids(session, self.user)

    def hidden_keys(self, session, declared_before: datetime | None = None) -> set[str]:
        """Keys of the private incidents the reader may not see (declared before a time, if given)."""
        if self.all:
            return set()
        query = select(Incident.id, Incident.number, Incident.exercise).where(Incident.private.is_(True))
        if declared_before is not None:
            query = query.where(Incident.declared_at < declared_before)
        visible = self.visible_ids(session) or set()
        return {key_of(number, exercise) for incident_id, number, exercise in session.exec(query)
                if incident_id not in visible}


def export_refusal() -> Response:
    return PlainTextResponse("This export holds private incidents you may not see. Auditor tokens, admins and "
                             "commanders download every export; private incidents are never left out of one.",
                             status_code=403)
