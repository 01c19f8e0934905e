"""Who is signed in to the dashboard, and whether a Slack user may use it (the permissions policy).

Every role is read-only; admins may also manage auditor tokens and sessions. A Slack user's role is
worked out again on each request from the policy (`use_dashboard`: by default dashboard viewers,
commanders and admins, user groups included) plus VIGIL_DASHBOARD_ALLOW_WORKSPACE, so removing
someone takes effect at their next request (a settings change: at the next restart).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from vigil_ir.config import Settings
from vigil_ir.permissions import Action, Permissions

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


@dataclass(frozen=True)
class SlackAccess:
    role: str | None  # "admin", "viewer", or None: refused
    refusal: str = ""  # who may instead, in plain text (for the login page)


_MENTION = re.compile(r"<(?:@|!subteam\^)([A-Z0-9]+)(?:\|[^>]*)?>")


def plain(text: str) -> str:
    """A refusal written for Slack (`<@U1>`, `<!subteam^S1>`) as plain text for a web page."""
    return _MENTION.sub(lambda match: match.group(1), text)


def slack_access(permissions: Permissions, settings: Settings, user_id: str, team_id: str | None,
                 workspace_team: Callable[[], str | None]) -> SlackAccess:
    """Whether this Slack user may use the dashboard, and as what. Admins (the policy's `admins`
    role) are `admin`; `workspace_team` is only asked when the policy refuses (it may call Slack)."""
    actor = permissions.actor(user_id)
    decision = permissions.decide(Action.USE_DASHBOARD, actor)
    if not decision.allowed and not (settings.dashboard_allow_workspace and team_id and team_id == workspace_team()):
        return SlackAccess(None, plain(decision.message))
    return SlackAccess("admin" if "admins" in actor.roles else "viewer")
