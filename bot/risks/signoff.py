"""Management sign-off of a periodic report: the risk assessment (E10) or the incident-response
program review (CC7.4): who approved which period, when, and the report file they signed.

The signer is a person in the directory (vigil_ir.people), given by Slack user id or e-mail; a
name typed by hand cannot be tied to anyone, so it is refused. The report signed is stored whole
(`signed_report`, with its SHA-256), so the hash recorded in the sign-off can be checked against a
file that is there; the evidence bundle of the period carries it. Each sign-off is an event on the
`audit` stream, hash-chained like everything else, and belongs to the period it names, however
long after the period it was recorded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.people import is_user_id, label_unknown, resolve
from vigil_ir.people.service import not_a_person
from vigil_ir.risks.signed_reports import SignedReport

STREAM = "audit"
RISK_ASSESSMENT, INCIDENT_REVIEW = "risk_assessment", "incident_review"
KINDS = {RISK_ASSESSMENT: "risk.assessment_signed_off", INCIDENT_REVIEW: "incidents.review_signed_off"}
KIND = KINDS[RISK_ASSESSMENT]
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
MEDIA_TYPES = {".md": "text/markdown", ".html": "text/html", ".htm": "text/html", ".pdf": "application/pdf",
               ".txt": "text/plain", ".json": "application/json", ".csv": "text/csv"}


class SignOffRefused(ValueError):
    """A sign-off that cannot be recorded; the message says why and what to give instead."""


@dataclass(frozen=True)
class SignOff:
    by: str                     # Slack user id (older records: the name as typed)
    by_name: str | None
    by_email: str | None
    by_title: str | None
    role: str
    comment: str
    report_sha256: str | None
    report_file: str | None     # the stored file's name, when the signed report is kept
    report_id: int | None
    period_start: str
    period_end: str
    signed_at: str
    actor: str
    via: str
    event_id: int
    event_hash: str

    @property
    def label(self) -> str:
        if not is_user_id(self.by):
            return self.by
        return f"{self.by_name} ({self.by})" if self.by_name else label_unknown(self.by)


def media_type(filename: str) -> str:
    suffix = filename[filename.rfind("."):].lower() if "." in filename else ""
    return MEDIA_TYPES.get(suffix, "application/octet-stream")


def sign_off(session: Session, *, start: datetime, end: datetime, by: str, role: str = "", comment: str = "",
             report: bytes | None = None, report_name: str | None = None, report_sha256: str | None = None,
             actor: str, via: str = "cli", subject: str = RISK_ASSESSMENT) -> SignOff:
    """Record a sign-off of the assessment for [start, end) by the person `by` (Slack user id or
    e-mail), keeping the `report` bytes they signed. Raises SignOffRefused naming the problem;
    nothing is written then."""
    role, comment = role.strip(), comment.strip()
    if clock.to_utc(start) >= clock.to_utc(end):
        raise SignOffRefused("the period start must be before its end")
    given = (by or "").strip()
    if not given:
        raise SignOffRefused("say who signs off: a Slack user id (U…) or their e-mail address")
    person = resolve(session, given)
    if person is None:
        raise SignOffRefused(not_a_person(given))
    if person.deactivated:
        raise SignOffRefused(f"{person.display} ({person.user_id}) is deactivated in Slack and cannot sign off")
    if report_sha256 is not None and not _SHA256.match(report_sha256):
        raise SignOffRefused(f"{report_sha256!r} is not a SHA-256 (64 lower-case hex digits)")
    stored = None
    if report is not None:
        digest = hashlib.sha256(report).hexdigest()
        if report_sha256 is not None and report_sha256 != digest:
            raise SignOffRefused(f"the report file's SHA-256 is {digest}, not {report_sha256}")
        report_sha256 = digest
        name = (report_name or "risk-assessment-report").rsplit("/", 1)[-1][:200]
        stored = SignedReport(period_start=clock.to_utc(start), period_end=clock.to_utc(end), filename=name,
                              media_type=media_type(name), sha256=digest, size=len(report), content=report,
                              stored_at=clock.now(), stored_by=actor[:64])
        session.add(stored)
        session.flush()
    data = {"period_start": clock.iso(start), "period_end": clock.iso(end), "by": person.user_id,
            "by_name": person.display, "by_email": person.email, "by_title": person.title, "role": role,
            "comment": comment, "report_sha256": report_sha256, "via": via,
            "report_file": stored.filename if stored else None, "report_id": stored.id if stored else None}
    event = append(session, stream=STREAM, kind=KINDS[subject], actor=actor, data=data)
    return _from_event(event)


def sign_offs(session: Session, start: datetime, end: datetime, *, subject: str = RISK_ASSESSMENT) -> list[SignOff]:
    """Sign-offs of `subject` recorded for exactly this period (whenever recorded), oldest first."""
    wanted = (clock.iso(start), clock.iso(end))
    query = select(Event).where(Event.stream == STREAM, Event.kind == KINDS[subject]).order_by(Event.stream_seq)
    return [_from_event(event) for event in session.exec(query)
            if (event.data.get("period_start"), event.data.get("period_end")) == wanted]


def stored_report(session: Session, report_id: int) -> SignedReport | None:
    return session.get(SignedReport, report_id)


def _from_event(event: Event) -> SignOff:
    d = event.data
    return SignOff(by=d["by"], by_name=d.get("by_name"), by_email=d.get("by_email"), by_title=d.get("by_title"),
                   role=d.get("role", ""), comment=d.get("comment", ""), report_sha256=d.get("report_sha256"),
                   report_file=d.get("report_file"), report_id=d.get("report_id"),
                   period_start=d["period_start"], period_end=d["period_end"],
                   signed_at=clock.iso(event.recorded_at), actor=event.actor, via=d.get("via", "cli"),
                   event_id=event.id, event_hash=event.hash)
