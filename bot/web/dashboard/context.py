"""What the dashboard's pages share: the database, settings, the permissions policy, the access log,
the sign-in throttle and the Slack workspace."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from vigil_ir.auth.throttle import Throttle
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.web.dashboard.access import AccessLog

log = logging.getLogger(__name__)
SCOPE_KEY = "vigil.dashboard"
TEAM_RETRY_SECONDS = 60


@dataclass
class Dashboard:
    database: Database
    settings: Settings
    access_log: AccessLog
    throttle: Throttle
    _team: str | None = None
    _team_failed_at: float = float("-inf")
    _team_lock: threading.Lock = field(default_factory=threading.Lock)
    _permissions: Any = None

    def workspace_team(self) -> str | None:
        """The Slack team whose members may sign in when VIGIL_DASHBOARD_ALLOW_WORKSPACE is on:
        SLACK_TEAM_ID, else the bot token's team (auth.test: kept once known, retried a minute
        after a failure so an unreachable Slack does not slow every request)."""
        settings = self.settings
        if not settings.dashboard_allow_workspace:
            return None
        if settings.slack_team_id or not settings.slack_bot_token:
            return settings.slack_team_id
        with self._team_lock:
            if self._team is None and time.monotonic() - self._team_failed_at > TEAM_RETRY_SECONDS:
                from slack_sdk import WebClient

                try:
                    answer = WebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                                       timeout=settings.slack_timeout_seconds).auth_test()
                    self._team = answer.get("team_id")
                except Exception as exc:  # noqa: BLE001 - no team known: nobody gets in by team
                    self._team_failed_at = time.monotonic()
                    log.warning("could not learn the workspace team from auth.test (%s); set SLACK_TEAM_ID", exc)
            return self._team

    def permissions(self):
        """The permissions policy (vigil_ir.permissions), with user groups asked of Slack when a bot
        token is set: which Slack users may use the dashboard, and see a private incident."""
        with self._team_lock:
            if self._permissions is None:
                from vigil_ir.permissions import build_permissions

                client = None
                if self.settings.slack_bot_token:
                    from vigil_ir.slack.app import make_inline_client

                    client = make_inline_client(self.settings)
                self._permissions = build_permissions(self.settings, client=client, database=self.database)
            return self._permissions


def dashboard(request: Request) -> Dashboard:
    return request.scope[SCOPE_KEY]
