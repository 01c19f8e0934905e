"""Auditor tokens: create (shown once), list, revoke, sign in, and the check on each request.

Every change is an event on the `audit` stream, in the same transaction as the row change, so
the register of who could see what is hash-chained like the rest of the record. Only the SHA-256 of a token is stored: a database leak does not leak access.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.auth.models import AuditorToken
from vigil_ir.eventlog import append

STREAM = "audit"
PREFIX = "vigil_at_"  # recognisable by secret scanners and by people


class TokenRefused(Exception):
    """A token that cannot be used; `reason` is `unknown`, `expired` or `revoked`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class NewToken:
    token: AuditorToken
    secret: str  # the only time the plain token exists


def digest(secret: str) -> str:
    return hashlib.sha256(secret.strip().encode("utf-8")).hexdigest()


def actor_for(token: AuditorToken) -> str:
    return f"auditor:{token.id}"


def create(session: Session, *, name: str, expires_at: datetime, actor: str) -> NewToken:
    name = " ".join(name.split())
    if not name:
        raise ValueError("a token needs a name (who it is for), e.g. --name \"Acme Audit LLP\"")
    now, expires_at = clock.now(), clock.to_utc(expires_at)
    if expires_at <= now:
        raise ValueError("the expiry must be in the future")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = AuditorToken(name=name, token_sha256=digest(secret), created_by=actor, created_at=now,
                         expires_at=expires_at)
    session.add(token)
    session.flush()
    append(session, stream=STREAM, kind="audit.token_created", actor=actor,
           data={"token_id": token.id, "name": name, "expires_at": clock.iso(expires_at)})
    return NewToken(token=token, secret=secret)


def all_tokens(session: Session) -> list[AuditorToken]:
    return list(session.exec(select(AuditorToken).order_by(AuditorToken.id)))


def revoke(session: Session, *, token_id: int, actor: str) -> AuditorToken:
    """Revoke now; revoking twice is refused (the first revocation stands in the record)."""
    token = session.get(AuditorToken, token_id)
    if token is None:
        raise LookupError(f"no auditor token {token_id}; `vigil auditor-token list` shows them")
    if token.revoked_at is not None:
        raise ValueError(f"auditor token {token_id} was already revoked at {clock.iso(token.revoked_at)}")
    token.revoked_at, token.revoked_by = clock.now(), actor
    session.add(token)
    append(session, stream=STREAM, kind="audit.token_revoked", actor=actor,
           data={"token_id": token.id, "name": token.name})
    return token


def _usable(token: AuditorToken | None, now: datetime) -> AuditorToken:
    if token is None:
        raise TokenRefused("unknown", "That token is not valid. Check that you pasted all of it.")
    state = token.state(now)
    if state == "revoked":
        raise TokenRefused("revoked", f"This auditor token was revoked on {_day(token.revoked_at)}. "
                                      "Ask your contact for a new one.")
    if state == "expired":
        raise TokenRefused("expired", f"This auditor token expired on {_day(token.expires_at)}. "
                                      "Ask your contact for a new one.")
    return token


def _day(value: datetime | None) -> str:
    return clock.to_utc(value).strftime("%Y-%m-%d %H:%M UTC") if value else "an unknown date"


def sign_in(session: Session, secret: str) -> AuditorToken:
    """The token for `secret`, if usable (its `last_used_at` is this sign-in). Raises TokenRefused.

    The sign-in itself is recorded by `vigil_ir.auth.sessions.start`, with the session it opens.
    """
    token = session.exec(select(AuditorToken).where(AuditorToken.token_sha256 == digest(secret))).first()
    token = _usable(token, clock.now())
    token.last_used_at = clock.now()
    session.add(token)
    return token


def check(session: Session, *, token_id: int) -> AuditorToken:
    """A signed-in token is still usable (checked on every request, so a revocation or expiry ends
    an open session at once). Reads only: page views are recorded by the dashboard's access log.
    Raises TokenRefused."""
    return _usable(session.get(AuditorToken, token_id), clock.now())
