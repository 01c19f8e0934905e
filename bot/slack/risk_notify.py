"""Queue the Slack side of risk changes (DMs with buttons, channel posts) in the change's transaction.

All go out as `slack.post` outbox items (a user id as channel is a DM from the app), each with a
deterministic dedupe key, so a retried request or a second worker cannot send one twice.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import enqueue
from vigil_ir.risks.approvals import REASONS
from vigil_ir.risks.models import OUTCOMES, Risk, RiskApproval, RiskReview
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, mention


def _section(text: str) -> dict:
    return limits.section(text)


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict:
    return limits.button(text, action_id=action_id, value=value, style=style)


def message(channel: str, text: str, *, key: str, subject: str, blocks: list | None = None) -> dict:
    """The outbox item (enqueue's arguments) that posts `text` to `channel` once."""
    payload = {"channel": channel, "text": text}
    if blocks:
        payload["blocks"] = blocks
    return {"kind": "slack.post", "subject": subject, "payload": payload, "dedupe_key": key}


def post(session: Session, channel: str, text: str, *, key: str, subject: str, blocks: list | None = None
         ) -> OutboxItem | None:
    return enqueue(session, **message(channel, text, key=key, subject=subject, blocks=blocks))


def review_button(review: RiskReview) -> dict:
    return {"type": "actions", "block_id": f"risk_review:{review.id}",
            "elements": [_button("risk_review_open", "Review now", str(review.id), "primary")]}


def when(due_on: date, today: date) -> str:
    days = (due_on - today).days
    if days > 1:
        return f"is due in {days} days ({due_on.isoformat()})"
    if days == 1:
        return f"is due tomorrow ({due_on.isoformat()})"
    if days == 0:
        return "is due today"
    return f"is {-days} day{'s' if days < -1 else ''} overdue (due {due_on.isoformat()})"


def reminder_text(risk: Risk, review: RiskReview, today: date) -> str:
    icon = ":warning:" if review.due_on < today else ":date:"
    kind = review.trigger.replace("_", " ")
    return f"{icon} The {kind} review of *{risk.key}* {esc(risk.title)} {when(review.due_on, today)}."


def owner_reminder(risk: Risk, review: RiskReview, kind: str, today: date) -> dict:
    text = reminder_text(risk, review, today)
    return message(review.reviewer, text, key=f"risk-reminder:{review.id}:{kind}", subject=risk.stream,
                   blocks=[_section(text), review_button(review)])


def escalation(channel: str, risk: Risk, review: RiskReview, kind: str, today: date) -> dict:
    text = (f":rotating_light: Escalation: the review of *{risk.key}* {esc(risk.title)} {when(review.due_on, today)}; "
            f"owner {mention(review.reviewer)}.")
    return message(channel, text, key=f"risk-reminder:{review.id}:{kind}", subject=risk.stream)


def remind_owner(session: Session, risk: Risk, review: RiskReview, kind: str, today: date) -> OutboxItem | None:
    return enqueue(session, **owner_reminder(risk, review, kind, today))


def escalate(session: Session, channel: str, risk: Risk, review: RiskReview, kind: str, today: date
             ) -> OutboxItem | None:
    return enqueue(session, **escalation(channel, risk, review, kind, today))


def proposal_lines(risk: Risk, proposal: dict) -> str:
    return "\n".join(f"• {name.replace('_', ' ')}: {esc(getattr(risk, name, ''))} → {esc(value)}"
                     for name, value in proposal.items()) or "• no field changes"


def review_recorded(session: Session, risk: Risk, review: RiskReview, approval: RiskApproval | None,
                    risk_channel: str | None) -> None:
    """Confirm to the reviewer; ask each approver; announce an escalation."""
    waiting = (f" It needs approval ({', '.join(REASONS[r] for r in approval.reasons)}); asked "
               f"{', '.join(mention(a) for a in approval.approvers)}.") if approval else ""
    post(session, review.completed_by, f":white_check_mark: Recorded {review.ref} for *{risk.key}*: "
         f"{OUTCOMES[review.outcome]}.{waiting} Next review due {risk.next_review_due or '—'}.",
         key=f"risk-review-done:{review.id}", subject=risk.stream)
    if approval:
        text = (f":raised_hand: {mention(review.completed_by)} reviewed *{risk.key}* {esc(risk.title)} and needs "
                f"your approval because {', '.join(REASONS[r] for r in approval.reasons)}.\n"
                f"*Outcome* {OUTCOMES[review.outcome]}\n*Rationale* {esc(review.rationale)}\n"
                f"*Proposed*\n{proposal_lines(risk, approval.proposal)}")
        actions = {"type": "actions", "block_id": f"risk_approval:{approval.id}", "elements": [
            _button("risk_approve", "Approve", str(approval.id), "primary"),
            _button("risk_reject", "Reject…", str(approval.id), "danger")]}
        for approver in approval.approvers:
            post(session, approver, text, key=f"risk-approval:{approval.id}:{approver}", subject=risk.stream,
                 blocks=[_section(text), actions])
    if review.outcome == "escalated" and risk_channel:
        post(session, risk_channel, f":mega: {mention(review.completed_by)} escalated *{risk.key}* {esc(risk.title)}: "
             f"{esc(review.rationale)}", key=f"risk-escalated:{review.id}", subject=risk.stream)


def decision_made(session: Session, risk: Risk, approval: RiskApproval) -> None:
    if approval.state == "approved":
        text = (f":white_check_mark: {mention(approval.decided_by)} approved your review of *{risk.key}*; "
                "it now applies.")
    else:
        text = (f":x: {mention(approval.decided_by)} rejected your review of *{risk.key}*: "
                f"{esc(approval.comment)}\nThe risk is unchanged; review it again with `/risk review {risk.key}`.")
    post(session, approval.requested_by, text, key=f"risk-decision:{approval.id}", subject=risk.stream)


def digest(session: Session, channel: str, week: str, overdue: list[tuple[RiskReview, Risk]],
           pending: list[tuple[RiskApproval, Risk]], today: date) -> OutboxItem | None:
    lines = [f":clipboard: *Risk reviews, week {week}*"]
    lines.append(f"*Overdue reviews ({len(overdue)})*" if overdue else "No overdue reviews.")
    lines += [f"• *{risk.key}* {esc(risk.title)}: {when(review.due_on, today)}, owner {mention(review.reviewer)}"
              for review, risk in overdue[:40]]
    lines.append(f"*Waiting for approval ({len(pending)})*" if pending else "No approvals waiting.")
    lines += [f"• *{risk.key}* {esc(risk.title)}: asked by {mention(approval.requested_by)} on "
              f"{approval.requested_at:%Y-%m-%d}" for approval, risk in pending[:40]]
    text = "\n".join(lines)
    return post(session, channel, text, key=digest_key(week), subject="risk-register")


def digest_key(week: str) -> str:
    return f"risk-digest:{week}"
