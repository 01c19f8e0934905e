"""Modal submissions: validate (inline errors, nothing written), record once per view, ack."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from vigil_ir.followup import pir, updates
from vigil_ir.followup.actions import create_from_lines
from vigil_ir.slack.ticket_requests import CLOSE_TICKETS, auto_ticket, requested, ticked
from vigil_ir.idempotency import first_time
from vigil_ir.incidents import access, queries, service
from vigil_ir.incidents.service import IncidentError
from vigil_ir.permissions import Action, Refused
from vigil_ir.playbooks import runner
from vigil_ir.slack import action_blocks, authz, limits, notify
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.escape import esc, mention


# Slack leaves out, or sends null for, an input the user left empty. Whatever else does not have the
# type Slack gives that element is read as empty too, so validation answers it inline (never a 500).
def field(view: dict, block_id: str) -> dict:
    block = view["state"]["values"].get(block_id)
    entry = block.get("value") if isinstance(block, dict) else None
    return entry if isinstance(entry, dict) else {}


def typed(view: dict, block_id: str, key: str, kind: type | tuple[type, ...] = str):
    """`state.values[block_id].value[key]` if it has the type `kind`, else None."""
    value = field(view, block_id).get(key)
    return value if isinstance(value, kind) else None


def text_value(view: dict, block_id: str) -> str:
    return (typed(view, block_id, "value") or "").strip()


def option_value(view: dict, block_id: str) -> str | None:
    selected = typed(view, block_id, "selected_option", dict) or {}
    return selected.get("value") if isinstance(selected.get("value"), str) else None


def date_value(view: dict, block_id: str) -> str | None:
    """A datepicker's `YYYY-MM-DD`, as Slack sent it (checked by whoever reads it)."""
    return typed(view, block_id, "selected_date")


def users_value(view: dict, block_id: str) -> list[str]:
    return [user for user in typed(view, block_id, "selected_users", list) or [] if isinstance(user, str)]


def datetime_value(view: dict, block_id: str) -> datetime | None:
    epoch = typed(view, block_id, "selected_date_time", int)
    try:
        return datetime.fromtimestamp(epoch, timezone.utc) if epoch and not isinstance(epoch, bool) else None
    except (OverflowError, OSError, ValueError):  # beyond year 9999: not from Slack's picker
        return None


def ref(value: object) -> int | None:
    """A row id Vigil put in a button value or a modal's private_metadata, as Slack echoes it back."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 19 else None


def register(app, deps: Deps) -> None:
    handlers = {"incident_declare": declare, "incident_update": update, "incident_close": close,
                "incident_pir": review, "incident_correct_note": correct}
    for callback_id, handle in handlers.items():
        app.view(callback_id)(_listener(deps, handle))


def _listener(deps: Deps, handle):
    # bolt fills a listener's arguments by name, so the handler is bound here, not as a default.
    def submitted(ack, body, view):
        ack(**handle(deps, body, view))
    return submitted


def errors(found: dict[str, str]) -> dict:
    return {"response_action": "errors", "errors": found}


def declare(deps: Deps, body: dict, view: dict) -> dict:
    values = {"title": text_value(view, "title"), "severity": option_value(view, "severity"),
              "type": option_value(view, "type"), "detected_at": datetime_value(view, "detected_at")}
    exercise = bool(field(view, "exercise").get("selected_options"))
    kind, scenario = option_value(view, "exercise_kind"), text_value(view, "scenario")
    if not exercise and (kind or scenario):  # half an exercise must not become a real incident
        return errors({"exercise": "Tick this box to declare an exercise (a kind or scenario was given), "
                                   "or clear the exercise fields."})
    if exercise:
        values.update(exercise=kind or "", scenario=scenario)
    problems = service.validate_declaration(**values)
    if problems:
        return errors(problems)
    security = bool(field(view, "security").get("selected_options"))
    private = bool(field(view, "private").get("selected_options")) or access.private_by_default(
        type=values["type"], security=security or values["type"] == "security",
        private_types=deps.settings.private_types)
    origin = json_metadata(view).get("origin_channel")
    origin = origin if isinstance(origin, str) else None
    decision = deps.permissions.decide(Action.DECLARE, body["user"]["id"])
    if not decision:
        return errors({"title": decision.message})
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}  # the same modal submitted twice: already recorded
        incident = service.declare(session, actor=body["user"]["id"], description=text_value(view, "description"),
                                   security=security, origin_channel=origin, private=private, **values)
        group_id = ref(str(json_metadata(view).get("alert_group")))
        if group_id is not None:
            problem = link_alerts(session, incident, group_id, body["user"]["id"], values["detected_at"],
                                  json_metadata(view).get("alert_started"))
            if problem:
                session.rollback()
                return errors({"title": problem})
        notify.setup_incident(session, incident)
        notify.suggest_playbooks(session, incident)
    deps.wake_sender()
    return {}


def link_alerts(session, incident, group_id: int, actor: str, detected_at: datetime | None, prefilled) -> str | None:
    """Link the alert group the form was opened from; the problem to show if it was decided meanwhile.
    The detection time is the alerts' unless the declarer changed the prefilled one."""
    from vigil_ir.alerts import triage
    from vigil_ir.alerts.models import AlertGroup

    group = session.get(AlertGroup, group_id)
    if group is None:
        return "These alerts no longer exist."
    changed = detected_at is not None and int(detected_at.timestamp()) != prefilled
    try:
        triage.declared(session, group=group, incident=incident, actor=actor, detection="person" if changed else "alert")
    except triage.AlreadyDecided as decided:
        return str(decided)
    return None


def json_metadata(view: dict) -> dict:
    """The object Vigil stored in the modal's private_metadata ({} if it is not one)."""
    try:
        value = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _incident_for(session, view: dict):
    incident_id = ref((view.get("private_metadata") or "").split(":")[0])
    incident = queries.by_id(session, incident_id) if incident_id is not None else None
    if incident is None:
        raise IncidentError("That incident no longer exists.")
    return incident


def update(deps: Deps, body: dict, view: dict) -> dict:
    summary, status = text_value(view, "summary"), option_value(view, "status")
    due = datetime_value(view, "next_update_due")
    if not summary:
        return errors({"summary": "Describe the current situation."})
    actor = body["user"]["id"]
    who = deps.permissions.actor(actor)
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            incident = _incident_for(session, view)
            if status == "resolved" and incident.status != "resolved":
                deps.permissions.require(Action.RESOLVE, who, lead=incident.lead, declarer=incident.declared_by)
            due = due or updates.default_next_update(incident, deps.policy)
            service.post_update(session, incident=incident, actor=actor, status=status, summary=summary,
                                next_update_due=due)
            if status == "resolved":
                pir.schedule(session, incident=incident, policy=deps.policy)
        except Refused as refused:
            session.rollback()
            return errors({"status": refused.decision.message})
        except IncidentError as problem:
            session.rollback()
            block = "next_update_due" if "next update" in str(problem) else "summary"
            return errors({block: str(problem)})
        notify.post_in_channel(session, incident, f":loudspeaker: *Update on {incident.key}* ({status}) from "
                               f"{mention(actor)}:\n{esc(summary)}", also_feed=True)
    deps.wake_sender()
    return {}


def close(deps: Deps, body: dict, view: dict) -> dict:
    """Close, or, where the policy wants a second person (worst severity reached, security), record a
    request to close with the form's data and ask the commanders and admins to approve it."""
    required = {"customer_impact": "Describe the customer impact (or write “none”).",
                "root_cause": "Record the root cause (or what is known of it)."}
    missing = {block: message for block, message in required.items() if not text_value(view, block)}
    if missing:
        return errors(missing)
    actor = body["user"]["id"]
    who = deps.permissions.actor(actor)
    approvers = deps.permissions.holders_of(Action.APPROVE_CLOSE) - {actor}
    closers = deps.permissions.holders_of(Action.CLOSE)
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            incident = _incident_for(session, view)
            deps.permissions.require(Action.CLOSE, who, lead=incident.lead)
            want_tickets = ticked(view, "follow_up_tickets")
            if want_tickets:  # the closer will own the follow-ups
                decision = deps.permissions.decide(Action.LINK_TICKET, who, action_owner=actor, lead=incident.lead)
                if not decision:
                    session.rollback()
                    return errors({"follow_up_tickets": decision.message})
            open_items = runner.close_blockers(session, incident)
            override = text_value(view, "override_reason")
            if open_items and not override:
                session.rollback()
                block = "override_reason" if "override_reason" in view["state"]["values"] else "customer_impact"
                return errors({block: "Items are still open (required playbook steps or deadlines); "
                                      "give a reason for closing anyway, or finish them first."})
            form = {"open_items": open_items, "override_reason": override,
                    "customer_impact": text_value(view, "customer_impact"), "root_cause": text_value(view, "root_cause"),
                    "cause_category": option_value(view, "cause_category"),
                    "lessons_learned": text_value(view, "lessons_learned"),
                    "follow_ups": text_value(view, "follow_ups").splitlines()}
            if deps.permissions.policy.needs_second_person(severity_reached=queries.severity_reached(session, incident),
                                                          security=incident.security):
                request = service.request_close(session, incident=incident, actor=actor, **form)
                if want_tickets:  # read when the close is approved and its follow-ups are created
                    first_time(session, CLOSE_TICKETS.format(request.id), {"asked_by": actor})
                ask_to_approve_close(session, incident, request, approvers)
                deps.wake_sender()
                return {}
            service.close(session, incident=incident, actor=actor, admins=closers, **form)
            for action in create_from_lines(session, incident=incident, actor=actor, lines=incident.follow_ups):
                action_blocks.assigned(session, action, actor)  # the closer owns them, and can reassign
                if want_tickets:
                    requested(deps, session, action, actor, field="follow_up_tickets", incident=incident,
                              reason=f"asked for when closing {incident.key}")
                else:
                    auto_ticket(deps, session, action, actor, incident=incident)
        except Refused as refused:
            session.rollback()
            return errors({"customer_impact": refused.decision.message})
        except IncidentError as problem:
            session.rollback()
            return errors({getattr(problem, "field", None) or "customer_impact": str(problem)})
        notify.post_in_channel(session, incident, f":lock: {mention(actor)} closed {incident.key}.", also_feed=True)
    deps.wake_sender()
    return {}


def ask_to_approve_close(session, incident, request, approvers: frozenset[str]) -> None:
    """In the incident channel (Approve / Refuse buttons) and by DM to each commander and admin."""
    text = (f":lock: {mention(request.actor)} asks to close {incident.key}. A {incident.severity}"
            f"{' security' if incident.security else ''} incident needs a second person: a commander or admin "
            f"other than {mention(request.actor)} approves or refuses.\n*Customer impact:* "
            f"{esc(request.data['customer_impact'])}\n*Root cause:* {esc(request.data['root_cause'])}")
    value = str(request.id)
    notify.post_in_channel(session, incident, text, dedupe_key=f"close-request:{request.id}", buttons=[
        {"action_id": "incident_close_accept", "text": "Approve closing", "value": value},
        {"action_id": "incident_close_decline", "text": "Refuse", "value": value}])
    controls = authz.decision_buttons("incident_close", value, "Approve closing", "Refuse")
    for user in sorted(approvers):
        notify.direct_message(session, incident, user, text, dedupe_key=f"close-request:{request.id}:{user}",
                              blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": limits.fit(text)}}, controls])


def correct(deps: Deps, body: dict, view: dict) -> dict:
    text = text_value(view, "text")
    if not text:
        return errors({"text": "The corrected note cannot be empty."})
    note_id = ref((view.get("private_metadata") or "").partition(":")[2])
    if note_id is None:
        return errors({"text": "That note no longer exists."})
    actor = body["user"]["id"]
    who = deps.permissions.actor(actor)
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            incident = _incident_for(session, view)
            from vigil_ir.slack.listeners.incident_command import require_correction

            require_correction(deps, session, incident, who, note_id)
            event = service.correct_note(session, incident=incident, actor=actor, note_event_id=note_id, text=text)
        except Refused as refused:
            session.rollback()
            return errors({"text": refused.decision.message})
        except IncidentError as problem:
            session.rollback()
            return errors({"text": str(problem)})
        notify.post_in_channel(session, incident, f":pencil2: {mention(actor)} corrected note #{note_id}: {esc(text)}",
                               block_id=f"note:{event.id}", refresh=False)
    deps.wake_sender()
    return {}


def review(deps: Deps, body: dict, view: dict) -> dict:
    held_at = datetime_value(view, "held_at")
    attendees = users_value(view, "attendees")
    values = {name: text_value(view, name) for name in pir.TEXT_FIELDS}
    problems = pir.validate(held_at=held_at, attendees=attendees, values=values)
    if problems:
        return errors(problems)
    actor = body["user"]["id"]
    with deps.database.session() as session:
        if not first_time(session, f"view:{view['id']}"):
            return {}
        try:
            incident = _incident_for(session, view)
            pir.complete(session, incident=incident, actor=actor, policy=deps.policy, held_at=held_at,
                         attendees=attendees, values=values, plan_change_needed=option_value(view, "plan_change") == "yes")
        except IncidentError as problem:
            session.rollback()
            return errors({"summary": str(problem)})
        notify.post_in_channel(session, incident, f":memo: {mention(actor)} recorded the post-incident review of "
                               f"{incident.key}; the review document follows.", refresh=False)
        notify.pir_document(session, incident)
    deps.wake_sender()
    return {}
