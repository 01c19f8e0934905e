"""The risk part of the App Home tab: the viewer's risks, reviews due, approvals waiting for them."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from vigil_ir.risks import queries
from vigil_ir.risks.service import levels, today
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.risk_blocks import LEVEL_EMOJI
from vigil_ir.slack.risk_notify import review_button, when

HOME_LIMIT = 15
REVIEWS_AHEAD_DAYS = 30


def _section(text: str, accessory: dict | None = None) -> dict:
    return limits.section(text, **({"accessory": accessory} if accessory else {}))


def home_blocks(session: Session, user_id: str) -> list[dict]:
    on = today()
    blocks: list[dict] = [limits.header("Reviews due")]
    due = queries.open_reviews_for(session, user_id, before=on + timedelta(days=REVIEWS_AHEAD_DAYS))
    if not due:
        blocks.append(_section("Nothing due in the next 30 days."))
    for review, risk in due[:HOME_LIMIT]:
        button = review_button(review)["elements"][0]
        blocks.append(_section(f"*{risk.key}* {esc(risk.title)}\n{review.trigger.replace('_', ' ')} review "
                               f"{when(review.due_on, on)}", button))
    waiting = queries.pending_approvals(session, user_id)
    if waiting:
        blocks.append(limits.header("Approvals waiting for you"))
        blocks += [_section(f"*{risk.key}* {esc(risk.title)}: review by {mention(approval.requested_by)} "
                            f"({', '.join(approval.reasons).replace('_', ' ')}); see your DMs to decide.")
                   for approval, risk in waiting[:HOME_LIMIT]]
    blocks.append(limits.header("Your risks"))
    mine = queries.risks(session, "mine", user=user_id, on=on)
    if not mine:
        blocks.append(_section("You own no open risks. Add one with `/risk add`."))
    for risk in mine[:HOME_LIMIT]:
        residual = levels(risk)[1]
        next_due = risk.next_review_due.isoformat() if risk.next_review_due else "—"
        blocks.append(_section(f"{LEVEL_EMOJI[residual]} *{risk.key}* {esc(risk.title)}\n{residual} · "
                               f"{risk.status.replace('_', ' ')} · next review {next_due}"))
    return blocks
