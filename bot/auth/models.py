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
