"""Who is signed in to the dashboard, and the policy for Slack users.

Every role is read-only; admins may also see the auditor-token list. A Slack user's role is worked
out again on each request from the current settings, so removing someone from
VIGIL_DASHBOARD_VIEWERS takes effect at the next restart without waiting for cookies to expire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vigil_ir.config import Settings

ROLES = ("admin", "viewer", "auditor")


@dataclass(frozen=True)
class Principal:
    kind: str  # "slack" or "token"
    id: str  # Slack user id, or the auditor token id
    name: str
    role: str
    team: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """As recorded in events (Slack users by id, like the rest of the log)."""
        return self.id if self.kind == "slack" else f"auditor:{self.id}"

    @property
    def label(self) -> str:
        return f"{self.name} (auditor token {self.id})" if self.kind == "token" else f"{self.name} ({self.id})"

    def to_session(self) -> dict:
        return {"kind": self.kind, "id": self.id, "name": self.name, "team": self.team}


def slack_role(settings: Settings, user_id: str, team_id: str | None,
               workspace_team: Callable[[], str | None]) -> str | None:
    """`admin`, `viewer`, or None when this Slack user may not view the dashboard.

    `workspace_team` is only asked when the lists do not decide (it may need a Slack call).
    """
    if user_id in settings.admin_ids:
        return "admin"
    if user_id in settings.dashboard_viewer_ids:
        return "viewer"
    if settings.dashboard_allow_workspace and team_id and team_id == workspace_team():
        return "viewer"
    return None
