"""Management sign-off of a periodic risk assessment (E10): who approved which period, when, and
optionally the SHA-256 of the report they read. Each sign-off is an event on the `audit` stream,
so it is hash-chained like everything else and shows in the next report and bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append

STREAM = "audit"
KIND = "risk.assessment_signed_off"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SignOff:
    by: str
    role: str
    comment: str
    report_sha256: str | None
    period_start: str
    period_end: str
    signed_at: str
    actor: str


def sign_off(session: Session, *, start: datetime, end: datetime, by: str, role: str = "", comment: str = "",
             report_sha256: str | None = None, actor: str) -> SignOff:
    """Record a sign-off of the assessment for [start, end). Raises ValueError naming a bad value."""
    by, role, comment = by.strip(), role.strip(), comment.strip()
    if not by:
        raise ValueError("say who signs off (a name, e.g. 'Jane Doe, CFO')")
    if clock.to_utc(start) >= clock.to_utc(end):
        raise ValueError("the period start must be before its end")
    if report_sha256 is not None and not _SHA256.match(report_sha256):
        raise ValueError(f"{report_sha256!r} is not a SHA-256 (64 lower-case hex digits)")
    data = {"period_start": clock.iso(start), "period_end": clock.iso(end), "by": by, "role": role,
            "comment": comment, "report_sha256": report_sha256}
    event = append(session, stream=STREAM, kind=KIND, actor=actor, data=data)
    return _from_event(event)


def sign_offs(session: Session, start: datetime, end: datetime) -> list[SignOff]:
    """Sign-offs recorded for exactly this period, oldest first."""
    wanted = (clock.iso(start), clock.iso(end))
    query = select(Event).where(Event.stream == STREAM, Event.kind == KIND).order_by(Event.stream_seq)
    return [_from_event(event) for event in session.exec(query)
            if (event.data.get("period_start"), event.data.get("period_end")) == wanted]


def _from_event(event: Event) -> SignOff:
    d = event.data
    return SignOff(by=d["by"], role=d.get("role", ""), comment=d.get("comment", ""),
                   report_sha256=d.get("report_sha256"), period_start=d["period_start"],
                   period_end=d["period_end"], signed_at=clock.iso(event.recorded_at), actor=event.actor)
