"""Block Kit for the risk register: the add and review modals, the reject modal, `/risk show`.

Plain dicts; user text always goes through `esc`. Block ids are the domain's field names, so a
domain error keyed by field lands next to the right input (`response_action: errors`).
"""

from __future__ import annotations

from datetime import date

from vigil_ir.eventlog import Event
from vigil_ir.risks.models import (CATEGORIES, CLOSURE_REASONS, OUTCOMES, RISK_TYPES, TREATMENTS, Risk, RiskApproval,
                              RiskReview)
from vigil_ir.risks.scoring import methodology
from vigil_ir.risks.service import effective_cadence, levels
from vigil_ir.slack.blocks import _modal, _option, _select, _text_input, slack_date
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, mention

LEVEL_EMOJI = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:",
               "low": ":large_green_circle:"}


def _rating_options(axis: str) -> list[dict]:
    """Each value with its label, and the scale's definition as the option's description."""
    scale = getattr(methodology(), axis)
    return [{**_option(str(s.value), f"{s.value} — {s.label}"),
             "description": {"type": "plain_text", "text": limits.plain(s.definition, limits.OPTION_DESCRIPTION)}} for s in scale]


def _rating(block_id: str, label: str, axis: str, initial: int | None, optional: bool = False) -> dict:
    return _select(block_id, label, _rating_options(axis), initial=str(initial) if initial else None,
                   optional=optional)


def _date(block_id: str, label: str, initial: date | None = None, hint: str | None = None) -> dict:
    element = {"type": "datepicker", "action_id": "value"}
    if initial:
        element["initial_date"] = initial.isoformat()
    block = {"type": "input", "block_id": block_id, "optional": True,
             "label": {"type": "plain_text", "text": label}, "element": element}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": limits.fit(text)}]}


def add_modal(metadata: str = "") -> dict:
    return _modal("risk_add", "Add a risk", "Add risk", [
        _text_input("title", "Title", max_length=120, hint="A few words, e.g. “Laptop theft exposes customer data”."),
        _text_input("statement", "Risk statement", multiline=True, max_length=2000,
                    hint="Because of <cause>, <event> may occur, resulting in <impact>."),
        _text_input("description", "Description", multiline=True, optional=True),
        _select("category", "Category", [_option(k, v) for k, v in CATEGORIES.items()]),
        _select("risk_type", "Type", [_option(t, t.capitalize()) for t in RISK_TYPES]),
        {"type": "input", "block_id": "owner", "label": {"type": "plain_text", "text": "Owner"},
         "hint": {"type": "plain_text", "text": "One accountable person; they get the review reminders."},
         "element": {"type": "users_select", "action_id": "value"}},
        _rating("inherent_likelihood", "Inherent likelihood (before controls)", "likelihood", None),
        _rating("inherent_impact", "Inherent impact", "impact", None),
        _rating("residual_likelihood", "Residual likelihood (after controls)", "likelihood", None, optional=True),
        _rating("residual_impact", "Residual impact", "impact", None, optional=True),
        _select("treatment", "Treatment", [_option(t, t.capitalize()) for t in TREATMENTS if t != "accept"],
                initial="untreated"),
        _text_input("treatment_plan", "Treatment plan", multiline=True, optional=True,
                    hint="Required to mitigate, transfer or avoid."),
        _date("treatment_due", "Treatment due"),
        _text_input("cadence", "Review cadence", optional=True, max_length=200,
                    hint="quarterly, monthly, semiannual, annual or an RRULE; empty = by level."),
        _text_input("tsc_refs", "Criteria (SOC 2, ISO 27001)", optional=True, max_length=200,
                    hint="e.g. CC6.1, A.5.17 (`vigil criteria list` shows them all)"),
        _text_input("incidents", "Linked incidents", optional=True, max_length=200, hint="e.g. INC-12, INC-15"),
    ], metadata)


def risk_summary(risk: Risk) -> str:
    inherent, residual = levels(risk)
    m = methodology(risk.methodology)
    return (f"*{risk.key}: {esc(risk.title)}*\n"
            f"Inherent {risk.inherent_likelihood}×{risk.inherent_impact} = "
            f"{m.score(risk.inherent_likelihood, risk.inherent_impact)} {LEVEL_EMOJI[inherent]} {inherent} · "
            f"Residual {risk.residual_likelihood}×{risk.residual_impact} = "
            f"{m.score(risk.residual_likelihood, risk.residual_impact)} {LEVEL_EMOJI[residual]} {residual}\n"
            f"Owner {mention(risk.owner)} · {risk.status.replace('_', ' ')} · treatment *{risk.treatment}*")


def review_modal(risk: Risk, review: RiskReview | None, since: list[str], metadata: str) -> dict:
    what = f"{review.ref} ({review.trigger.replace('_', ' ')}, due {review.due_on.isoformat()})" if review \
        else "an ad-hoc review"
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": limits.fit(risk_summary(risk))}},
        _context(f"You are completing {what}. Since the last review:\n" + ("\n".join(since) or "nothing recorded.")),
        _select("outcome", "Outcome", [_option(k, v) for k, v in OUTCOMES.items()]),
        _text_input("rationale", "Rationale", multiline=True,
                    hint="Why the risk is still valid, or what changed and why. Required."),
        _rating("inherent_likelihood", "Inherent likelihood", "likelihood", risk.inherent_likelihood),
        _rating("inherent_impact", "Inherent impact", "impact", risk.inherent_impact),
        _rating("residual_likelihood", "Residual likelihood", "likelihood", risk.residual_likelihood),
        _rating("residual_impact", "Residual impact", "impact", risk.residual_impact),
        _select("treatment", "Treatment", [_option(t, t.capitalize()) for t in TREATMENTS], initial=risk.treatment),
        _text_input("treatment_plan", "Treatment plan", multiline=True, optional=True, initial=risk.treatment_plan),
        _date("treatment_due", "Treatment due", risk.treatment_due),
        _date("acceptance_expires", "Acceptance expires (if requesting acceptance)",
              hint="Default: the next review date; at most 12 months."),
        _select("closure_reason", "Closure reason (if requesting closure)",
                [_option(k, v) for k, v in CLOSURE_REASONS.items()], optional=True),
    ]
    return _modal("risk_review", f"Review {risk.key}", "Submit review", blocks, metadata)


def reject_modal(approval: RiskApproval, risk: Risk) -> dict:
    return _modal("risk_reject", f"Reject for {risk.key}", "Reject", [
        _context(f"The reviewer {mention(approval.requested_by)} sees your comment."),
        _text_input("comment", "Why do you reject it?", multiline=True),
    ], str(approval.id))


def describe_event(event: Event) -> str:
    data = event.data
    changes = data.get("changes") or {}
    changed = ", ".join(f"{name.replace('_', ' ')} {esc(c['from'])} → {esc(c['to'])}" for name, c in changes.items()
                        if name not in ("version", "updated_at", "last_reviewed_at"))
    kind = event.kind.removeprefix("risk.").replace("_", " ")
    detail = {"risk.reviewed": f"{OUTCOMES.get(data.get('outcome'), '')}: “{limits.mrkdwn(data.get('rationale', ''), 200)}”",
              "risk.incident_linked": f"{esc(data.get('incident'))}",
              "risk.approval_rejected": f"“{limits.mrkdwn(data.get('comment') or '', 200)}”",
              "risk.reminder_sent": f"{esc(data.get('kind'))} to {mention(data.get('recipient'))}"}.get(event.kind, "")
    parts = [p for p in (detail, changed) if p]
    suffix = f": {'; '.join(parts)}" if parts else ""
    return f"• {slack_date(event.recorded_at)} {kind} by {mention(event.actor)}{suffix}"


def show_blocks(risk: Risk, last: RiskReview | None, history: list[Event]) -> list[dict]:
    last_text = (f"{slack_date(last.completed_at)} by {mention(last.completed_by)}: "
                 f"{OUTCOMES.get(last.outcome, last.outcome)}") if last else "never"
    lines = [
        f"*Statement* {limits.mrkdwn(risk.statement, 1200)}",
        f"*Category* {CATEGORIES.get(risk.category, risk.category)} · *Type* {risk.risk_type}"
        + (f" · *Criteria* {', '.join(risk.tsc_refs)}" if risk.tsc_refs else ""),
        f"*Treatment plan* {esc(risk.treatment_plan) or '—'}"
        + (f" (due {risk.treatment_due.isoformat()})" if risk.treatment_due else ""),
        f"*Last review* {last_text}",
        f"*Next review due* {risk.next_review_due.isoformat() if risk.next_review_due else '—'} "
        f"(cadence {esc(effective_cadence(risk))})",
    ]
    if risk.acceptance_expires:
        lines.append(f"*Accepted until* {risk.acceptance_expires.isoformat()}")
    if risk.closure_reason:
        lines.append(f"*Closed* {CLOSURE_REASONS.get(risk.closure_reason, risk.closure_reason)}")
    if risk.linked_incidents:
        lines.append(f"*Linked incidents* {', '.join(risk.linked_incidents)}")
    return [{"type": "section", "text": {"type": "mrkdwn", "text": limits.fit(risk_summary(risk))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": limits.fit("\n".join(lines))}},
            {"type": "section", "text": {"type": "mrkdwn", "text": limits.fit("*Recent history*\n" + "\n".join(
                describe_event(e) for e in history))}}]
