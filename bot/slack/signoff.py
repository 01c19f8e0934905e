"""`/risk sign-off` and `/incident sign-off` in Slack: the modal, its submission, and the outbox item
that signs, for the risk assessment (E10) and the incident-response program review (CC7.4).

The submission only validates and queues a `risk.sign_off` item (dedupe key per view, so a double
submit signs once); the worker then builds the period's report, records the sign-off with the
report kept whole and its SHA-256 (vigil_ir.risks.signoff), and sends the signed file to the signer.
Building a report is too slow for Slack's 3 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.eventlog import append
from vigil_ir.idempotency import first_time, previous_result, remember_result
from vigil_ir.outbox.service import enqueue
from vigil_ir.exports import program_review
from vigil_ir.risks import report, signoff
from vigil_ir.slack import people
from vigil_ir.slack.blocks import _modal, _text_input
from vigil_ir.slack.escape import esc

KIND = "risk.sign_off"  # the outbox kind for both subjects (the payload says which)


@dataclass(frozen=True)
class Subject:
    key: str            # vigil_ir.risks.signoff.RISK_ASSESSMENT or INCIDENT_REVIEW
    callback: str       # the modal's callback_id
    title: str          # the modal's title (24 characters at most)
    what: str           # "the periodic risk assessment report", for the modal and the DM
    file_prefix: str


SUBJECTS = {
    signoff.RISK_ASSESSMENT: Subject(signoff.RISK_ASSESSMENT, "risk_signoff", "Sign off risk assessment",
                                     "the periodic risk assessment report", "risk-assessment"),
    signoff.INCIDENT_REVIEW: Subject(signoff.INCIDENT_REVIEW, "incident_review_signoff", "Sign off program review",
                                     "the incident-response program review", "incident-response-review"),
}
CALLBACK = SUBJECTS[signoff.RISK_ASSESSMENT].callback


def _date(block_id: str, label: str, initial: date, hint: str) -> dict:
    return {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label},
            "hint": {"type": "plain_text", "text": hint},
            "element": {"type": "datepicker", "action_id": "value", "initial_date": initial.isoformat()}}


def last_quarter(today: date) -> tuple[date, date]:
    """The last full calendar quarter before `today`: (first day, last day)."""
    first_this = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last = first_this - timedelta(days=1)
    return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last


def modal(today: date, subject: str = signoff.RISK_ASSESSMENT) -> dict:
    first, last = last_quarter(today)
    chosen = SUBJECTS[subject]
    return _modal(chosen.callback, chosen.title, "Sign off", [
        {"type": "section", "text": {"type": "mrkdwn", "text": (
            f"Vigil builds {chosen.what} for the period, records your sign-off with the "
            "report's SHA-256, keeps the file, and sends it to you. The sign-off shows in the period's report and "
            "evidence bundle.")}},
        _date("period_from", "Period: first day", first, "UTC, included"),
        _date("period_to", "Period: last day", last, "UTC, included"),
        _text_input("role", "Your role", optional=True, max_length=200, hint="e.g. CFO, for the management team"),
        _text_input("comment", "Comment", multiline=True, optional=True, max_length=2000),
    ])


def period_of(first: str | None, last: str | None) -> tuple[datetime | None, datetime | None, dict[str, str]]:
    """[first 00:00, day after last 00:00) in UTC, or inline errors keyed by block."""
    problems: dict[str, str] = {}
    days = {}
    for block, value in (("period_from", first), ("period_to", last)):
        try:
            days[block] = date.fromisoformat(value or "")
        except ValueError:
            problems[block] = "Pick a date."
    if problems:
        return None, None, problems
    if days["period_from"] > days["period_to"]:
        return None, None, {"period_to": "The last day must not be before the first day."}
    start = datetime.combine(days["period_from"], time(), tzinfo=timezone.utc)
    end = datetime.combine(days["period_to"] + timedelta(days=1), time(), tzinfo=timezone.utc)
    return start, end, {}


def queue(session, *, view_id: str, user: str, start: datetime, end: datetime, role: str, comment: str,
          subject: str = signoff.RISK_ASSESSMENT) -> bool:
    """Queue the signing once per modal; False if this view was already submitted."""
    if not first_time(session, f"view:{view_id}"):
        return False
    enqueue(session, kind=KIND, subject=signoff.STREAM, dedupe_key=f"risk-signoff:{view_id}",
            payload={"view_id": view_id, "user": user, "start": clock.iso(start), "end": clock.iso(end),
                     "role": role, "comment": comment, "subject": subject})
    return True


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def report_name(start: datetime, end: datetime, subject: str = signoff.RISK_ASSESSMENT) -> str:
    last = (end - timedelta(microseconds=1)).date()
    return f"{SUBJECTS[subject].file_prefix}-{start.date().isoformat()}-to-{last.isoformat()}.md"


def _report(session, subject: str, start: datetime, end: datetime, settings: Settings) -> bytes:
    if subject == signoff.INCIDENT_REVIEW:
        return program_review.render_review(session, start, end, "md", settings=settings).encode("utf-8")
    return report.render_report(session, start, end, "md").encode("utf-8")


def deliver(database: Database, client, payload: dict, settings: Settings) -> dict:
    """The `risk.sign_off` item: make sure the directory knows the signer, sign with the report
    built now (once: the result is remembered under the view), then send the file to the signer."""
    user, start, end = payload["user"], _parse(payload["start"]), _parse(payload["end"])
    subject = payload.get("subject", signoff.RISK_ASSESSMENT)  # items queued before there were two subjects
    key = f"risk-signoff:{payload['view_id']}:recorded"
    with database.session() as session:
        done = previous_result(session, key)
    if not done:
        people.look_up(database, client, user)
        name = report_name(start, end, subject)
        with database.session() as session:
            content = _report(session, subject, start, end, settings)
            try:
                signed = signoff.sign_off(session, start=start, end=end, by=user, role=payload.get("role", ""),
                                          comment=payload.get("comment", ""), report=content, report_name=name,
                                          actor=user, via="slack", subject=subject)
            except signoff.SignOffRefused as refused:
                session.rollback()
                first_time(session, key, {"refused": str(refused)})
                done = {"refused": str(refused)}
            else:
                done = {"report_id": signed.report_id, "sha256": signed.report_sha256, "event_id": signed.event_id}
                first_time(session, key, done)
    if "refused" in done:
        client.chat_postMessage(channel=user, text=f":warning: Your sign-off was not recorded: {esc(done['refused'])}")
        return done
    if done.get("file_id"):
        return done
    with database.session() as session:
        stored = signoff.stored_report(session, done["report_id"])
        content, filename = bytes(stored.content), stored.filename
    channel = client.conversations_open(users=user)["channel"]["id"]
    answer = client.files_upload_v2(channel=channel, content=content, filename=filename,
                                    title=f"The report you signed off ({filename})",
                                    initial_comment=(f":white_check_mark: Sign-off recorded for {filename}. "
                                                     f"SHA-256 `{done['sha256']}`; the file is kept with the sign-off "
                                                     "and goes into the period's evidence bundle."))
    file_id = (answer.get("file") or {}).get("id") or answer["files"][0]["id"]
    with database.session() as session:
        append(session, stream=signoff.STREAM, kind="risk.signed_report_posted", actor="system:worker",
               data={"report_id": done["report_id"], "sha256": done["sha256"], "file_id": file_id,
                     "channel": channel, "sign_off_event": done["event_id"]})
        remember_result(session, key, {**done, "file_id": file_id})
    return {**done, "file_id": file_id}

