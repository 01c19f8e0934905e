"""The auditor token table. The token itself is never stored: only its SHA-256."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from vigil_ir import clock


class AuditorToken(SQLModel, table=True):
    """A read-only dashboard credential for an outside auditor. History: the `audit` stream."""

    __tablename__ = "auditor_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    token_sha256: str = Field(max_length=64, unique=True)
    created_by: str = Field(max_length=64)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=64)
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> str:
        """`active`, `expired` or `revoked` (revocation wins: it is the deliberate act)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if clock.to_utc(self.expires_at) <= now else "active"


class DashboardSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries only a random session id; this row (found by the
    id's SHA-256) decides whether it is still signed in. History: the `audit` stream."""

    __tablename__ = "dashboard_session"

    id: int | None = Field(default=None, primary_key=True)
    sid_sha256: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)  # "slack" or "token"
    subject: str = Field(max_length=64, index=True)  # Slack user id, or the auditor token id
    name: str = Field(max_length=200)
    team: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=64)  # where it signed in from
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = Field(default=None, max_length=64)
    end_reason: str | None = Field(default=None, max_length=16)  # "signed_out" or "revoked"

    @property
    def actor(self) -> str:
        """Who this session is, as events name actors (Slack users by id)."""
        return self.subject if self.kind == "slack" else f"auditor:{self.subject}"

    def state(self, now: datetime) -> str:
        """`active`, `expired`, `signed_out` or `revoked`."""
        if self.ended_at is not None:
            return self.end_reason or "ended"
        return "expired" if clock.to_utc(self.expires_at) <= now else "active"


class SignInThrottle(SQLModel, table=True):
    """Failed sign-ins counted per client address or token prefix in the current window."""

    __tablename__ = "sign_in_throttle"

    key: str = Field(max_length=100, primary_key=True)  # "address:203.0.113.9" or "prefix:vigil_at_AbCd1234"
    window_start: datetime
    failures: int = 0


class DashboardViewCount(SQLModel, table=True):
    """A dashboard viewer's page views in the current access-log window: how many were recorded as
    events and how many more came (to be summarised as one event). One row per viewer, kept in the
    database so the count survives a restart and is shared by every process."""

    __tablename__ = "dashboard_view_count"

    actor: str = Field(max_length=80, primary_key=True)  # a Slack user id, or auditor:<token id>
    window_start: datetime = Field(index=True)
    recorded: int = 0
    further: int = 0
