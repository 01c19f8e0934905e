"""Dashboard sessions kept on the server: start, find, sign out, revoke, list.

The browser's cookie carries only a random session id; the row found by its SHA-256 decides on
every request whether the browser is still signed in. So signing out, a revocation or the end of
VIGIL_SESSION_HOURS ends the session for every copy of the cookie. Each start and end is an event
on the `audit` stream in the same transaction as the row change: who, which session, from where.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.auth.models import DashboardSession
from vigil_ir.eventlog import append
from vigil_ir.people.ids import is_user_id
from vigil_ir.people.service import sight

STREAM = "audit"
MAX_ADDRESS = 64


class SessionEnded(Exception):
    """The cookie's session is not signed in; `reason` is `unknown`, `expired`, `signed_out` or `revoked`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NewSession:
    row: DashboardSession
    sid: str  # goes into the cookie; only its SHA-256 is stored


def digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def _address(address: str | None) -> str | None:
    return address[:MAX_ADDRESS] if address else None


def _describe(row: DashboardSession) -> dict:
    data = {"session_id": row.id, "kind": row.kind, "name": row.name}
    data["user" if row.kind == "slack" else "token_id"] = row.subject if row.kind == "slack" else int(row.subject)
    return data


def start(session: Session, *, kind: str, subject: str, name: str, team: str | None, hours: float,
          address: str | None, method: str, extra: dict | None = None) -> NewSession:
    """A new session for a principal who has just proved who they are; records the sign-in."""
    if kind not in ("slack", "token"):
        raise ValueError(f"unknown session kind {kind!r}")
    now, sid = clock.now(), secrets.token_urlsafe(32)
    row = DashboardSession(sid_sha256=digest(sid), kind=kind, subject=subject, name=name[:200], team=team,
                           address=_address(address), created_at=now, expires_at=now + timedelta(hours=hours))
    session.add(row)
    session.flush()
    if kind == "slack" and is_user_id(subject):
        sight(session, [subject], seen_at=now)  # so the people directory learns their name
    append(session, stream=STREAM, kind="audit.dashboard_signed_in", actor=row.actor,
           data={**_describe(row), "method": method, "address": row.address,
                 "expires_at": clock.iso(row.expires_at), **(extra or {})})
    return NewSession(row=row, sid=sid)


def find(session: Session, sid: str | None, now: datetime | None = None) -> DashboardSession:
    """The live session for a cookie's id. Reads only. Raises SessionEnded."""
    if not isinstance(sid, str) or not sid:
        raise SessionEnded("unknown")
    row = session.exec(select(DashboardSession).where(DashboardSession.sid_sha256 == digest(sid))).first()
    if row is None:
        raise SessionEnded("unknown")
    state = row.state(now or clock.now())
    if state != "active":
        raise SessionEnded(state)
    return row


def _end(session: Session, row: DashboardSession, *, reason: str, actor: str, address: str | None,
         kind: str) -> DashboardSession:
    row.ended_at, row.ended_by, row.end_reason = clock.now(), actor[:64], reason
    session.add(row)
    append(session, stream=STREAM, kind=kind, actor=actor,
           data={**_describe(row), "address": _address(address), "signed_in_from": row.address,
                 "signed_in_at": clock.iso(row.created_at)})
    return row


def sign_out(session: Session, *, sid: str, address: str | None) -> DashboardSession | None:
    """End the cookie's session (the owner signing out). None when it was not live: nothing to end."""
    try:
        row = find(session, sid)
    except SessionEnded:
        return None
    return _end(session, row, reason="signed_out", actor=row.actor, address=address,
                kind="audit.dashboard_signed_out")


def revoke(session: Session, *, session_id: int, actor: str, address: str | None = None) -> DashboardSession:
    """End session `session_id` now (an admin's act). LookupError / ValueError say why not."""
    row = session.get(DashboardSession, session_id)
    if row is None:
        raise LookupError(f"no dashboard session {session_id}; `vigil dashboard sessions list` shows them")
    state = row.state(clock.now())
    if state != "active":
        raise ValueError(f"dashboard session {session_id} is not active ({state.replace('_', ' ')})")
    return _end(session, row, reason="revoked", actor=actor, address=address, kind="audit.dashboard_session_revoked")


def subject_of(who: str) -> tuple[str, str]:
    """(kind, subject) from a Slack user id (`U…`) or `auditor:<token id>`; ValueError otherwise."""
    who = who.strip()
    if who.startswith("auditor:") and who[len("auditor:"):].isdigit():
        return "token", str(int(who[len("auditor:"):]))
    if is_user_id(who):
        return "slack", who
    raise ValueError(f"{who!r} is neither a Slack user id (U…) nor an auditor token (auditor:<id>)")


def revoke_all_for(session: Session, *, who: str, actor: str, address: str | None = None) -> list[DashboardSession]:
    """End every active session of a Slack user or an auditor token; an empty list when none was."""
    kind, subject = subject_of(who)
    now = clock.now()
    rows = session.exec(select(DashboardSession).where(DashboardSession.kind == kind,
                                                        DashboardSession.subject == subject,
                                                        DashboardSession.ended_at.is_(None))
                        .order_by(DashboardSession.id)).all()
    return [_end(session, row, reason="revoked", actor=actor, address=address, kind="audit.dashboard_session_revoked")
            for row in rows if row.state(now) == "active"]


def listing(session: Session, *, include_ended: bool = False, limit: int = 500) -> list[DashboardSession]:
    """Sessions newest first: the active ones, or every one (capped at `limit`)."""
    query = select(DashboardSession)
    if not include_ended:
        query = query.where(DashboardSession.ended_at.is_(None), DashboardSession.expires_at > clock.now())
    return list(session.exec(query.order_by(DashboardSession.id.desc()).limit(limit)))
