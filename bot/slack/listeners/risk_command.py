"""`/risk …`: parse, read or call one domain function, answer ephemerally.

The only inline Slack call is `views.open` (add and review forms), made after the session is
closed: on SQLite a session holds the write lock, and Slack may be slow.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from vigil_ir.permissions import Action
from vigil_ir.risks import queries, reviews, service
from vigil_ir.risks.models import Risk
from vigil_ir.risks.service import RiskError, today
from vigil_ir.slack import authz, risk_blocks
from vigil_ir.slack import signoff as slack_signoff
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc, mention
from vigil_ir.slack.listeners.incident_command import open_view

USAGE = """*Vigil — `/risk`*
`/risk add` — add a risk to the register (form)
`/risk list [mine|overdue|all]` — your risks, overdue reviews, or every risk (default: open risks)
`/risk show RISK-<n>` — score, level, owner, treatment, last and next review, recent history
`/risk review RISK-<n>` — review a risk (form): outcome, rationale, new scores
`/risk link RISK-<n> INC-<n>` — link an incident to a risk
`/risk action RISK-<n> @owner <due> <text>` — a treatment action, tracked with reminders like follow-ups
`/risk sign-off` — management sign-off of the periodic risk assessment (form); Vigil sends you the signed report
`/risk help` — this message
Scores are likelihood × impact (1–5 each): low 1–4, medium 5–9, high 10–16, critical 17–25."""
LIST_LIMIT = 40


def register(app, deps: Deps) -> None:
    @app.command("/risk")
    def risk_command(ack, body, client):
        ack(**handle(deps, body, client))


def handle(deps: Deps, body: dict, client) -> dict:
    verb, _, rest = (body.get("text") or "").strip().partition(" ")
    verb, rest, user = verb.lower(), rest.strip(), body["user_id"]
    if verb == "add":
        return open_view(client, body["trigger_id"], risk_blocks.add_modal()) or {}
    if verb in ("", "help"):
        return {"text": USAGE}
    if verb in ("sign-off", "signoff"):
        decision = deps.permissions.decide(Action.SIGN_OFF_RISK_ASSESSMENT, user)
        if not decision:
            return {"text": authz.refusal(decision) + " Nothing was recorded."}
        return open_view(client, body["trigger_id"], slack_signoff.modal(today())) or {}
    if verb == "list":
        which = rest.lower() or "open"
        if which in ("open", "overdue", "all"):  # beyond your own risks: the register is for its viewers
            decision = deps.permissions.decide(Action.VIEW_REGISTER, user)
            if not decision:
                return {"text": authz.refusal(decision) + " `/risk list mine` shows the risks you own."}
        return list_risks(deps, user, which)
    if verb in ("show", "review", "link", "action"):
        key = rest.split()[0] if rest else ""
        if queries.parse_key(key) is None:
            extra = {"link": " INC-<n>", "action": " @owner <due> <text>"}.get(verb, "")
            return {"text": f"Usage: `/risk {verb} RISK-<n>{extra}`"}
        if verb == "action":
            from vigil_ir.slack.listeners.action_listeners import risk_action

            return risk_action(deps, body, key, rest.partition(" ")[2].strip())
        if verb == "show":
            return show(deps, key, user)
        if verb == "link":
            return link(deps, body, key, rest.split()[1:])
        view = review_form(deps, key, user)
        if "view" not in view:
            return view
        return open_view(client, body["trigger_id"], view["view"]) or {}
    return {"text": f"Unknown subcommand `{esc(verb)}`.\n\n{USAGE}"}


def _not_found(key: str) -> dict:
    return {"text": f"There is no {esc(key.upper())} in the register. `/risk list all` shows every risk."}


def list_risks(deps: Deps, user: str, which: str) -> dict:
    if which not in ("open", "mine", "overdue", "all"):
        return {"text": "Usage: `/risk list [mine|overdue|all]`"}
    with deps.database.session() as session:
        found = queries.risks(session, which, user=user, on=today())
        lines = [line(risk) for risk in found[:LIST_LIMIT]]
    title = {"open": "Open risks", "mine": "Your risks", "overdue": "Risks with an overdue review",
             "all": "Every risk"}[which]
    if not found:
        return {"text": f"*{title}*: none."}
    more = f"\n…and {len(found) - LIST_LIMIT} more (`vigil risks export`)." if len(found) > LIST_LIMIT else ""
    return {"text": f"*{title}* ({len(found)})\n" + "\n".join(lines) + more}


def line(risk: Risk) -> str:
    _, residual = service.levels(risk)
    due = risk.next_review_due.isoformat() if risk.next_review_due else "—"
    late = " :warning: overdue" if risk.next_review_due and risk.next_review_due < today() else ""
    return (f"{risk_blocks.LEVEL_EMOJI[residual]} *{risk.key}* {esc(risk.title)} · {residual} · "
            f"{risk.status.replace('_', ' ')} · {mention(risk.owner)} · review {due}{late}")


def show(deps: Deps, key: str, user: str) -> dict:
    """A risk you own, review or are asked to approve; any risk for the register's viewers."""
    who = deps.permissions.actor(user)
    with deps.database.session() as session:
        risk = queries.by_key(session, key)
        if risk is None:
            return _not_found(key)  # keys are sequential: that one exists says nothing
        involved = user == risk.owner or user in _reviewers_and_approvers(session, risk)
        decision = deps.permissions.decide(Action.VIEW_REGISTER, who)
        if not involved and not decision:
            return {"text": authz.refusal(decision) + " You can see the risks you own (`/risk list mine`)."}
        blocks = risk_blocks.show_blocks(risk, queries.last_completed_review(session, risk),
                                         queries.recent_events(session, risk))
    return {"text": f"{risk.key}: {esc(risk.title)}", "blocks": blocks}


def _reviewers_and_approvers(session: Session, risk: Risk) -> set[str]:
    from sqlmodel import select

    from vigil_ir.risks.models import RiskApproval, RiskReview

    reviewers = set(session.exec(select(RiskReview.reviewer).where(RiskReview.risk_id == risk.id,
                                                                  RiskReview.status == "open")))
    for approvers in session.exec(select(RiskApproval.approvers).where(RiskApproval.risk_id == risk.id,
                                                                      RiskApproval.state == "pending")):
        reviewers |= set(approvers or [])
    return reviewers


def link(deps: Deps, body: dict, key: str, args: list[str]) -> dict:
    from vigil_ir.risks.validation import incident_keys

    try:
        (incident,) = incident_keys(args[:1]) if len(args) == 1 else ("",)
    except ValueError:
        incident = ""
    if not incident:
        return {"text": "Usage: `/risk link RISK-<n> INC-<n>`"}
    with deps.database.session() as session:
        risk = queries.by_key(session, key)
        if risk is None:
            return _not_found(key)
        try:
            service.link_incident(session, risk=risk, actor=body["user_id"], incident_key=incident)
        except RiskError as problem:
            session.rollback()
            return {"text": f":warning: {esc(problem)}"}
    return {"text": f":link: Linked {incident} to {risk.key}. Closing {incident} will ask its owner for a review."}


def since_last_review(session: Session, risk: Risk) -> list[str]:
    last = queries.last_completed_review(session, risk)
    events = queries.recent_events(session, risk, limit=8, since=last.completed_at if last else None)
    return [risk_blocks.describe_event(e) for e in events if e.kind != "risk.reminder_sent"]


def decision_makers(deps: Deps) -> frozenset[str]:
    from vigil_ir.slack.listeners.risk_actions import decision_makers as who_decides

    return who_decides(deps)


def review_form(deps: Deps, key: str, user: str, review_id: int | None = None) -> dict:
    """The review modal for `key` (its earliest open review, or an ad-hoc one), or a refusal."""
    makers = decision_makers(deps)  # may ask Slack for group members: before the transaction
    with deps.database.session() as session:
        risk = queries.by_key(session, key)
        if risk is None:
            return _not_found(key)
        if not service.can_review(risk, user, makers):
            return {"text": f"Only the owner of {risk.key} ({mention(risk.owner)}) or a Vigil admin or risk "
                            "approver can review it."}
        if risk.status == "closed":
            return {"text": f"{risk.key} is closed; there is nothing to review."}
        if reviews.pending_approval(session, risk):
            return {"text": f"A review of {risk.key} is waiting for approval; it must be decided first."}
        # The review due (or due within two weeks) is the one completed; earlier is an ad-hoc review.
        review = queries.first_open_review(session, risk, due_by=today() + timedelta(days=queries.DUE_SOON_DAYS)) \
            if review_id is None else session.get(reviews.RiskReview, review_id)
        if review is not None and review.status != "open":
            return {"text": f"{review.ref} of {risk.key} is already {review.status}."}
        metadata = f"{risk.id}:{review.id if review else ''}"
        return {"view": risk_blocks.review_modal(risk, review, since_last_review(session, risk), metadata)}
