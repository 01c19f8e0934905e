"""A readable sentence per timeline event, for CSV summaries and Markdown/HTML reports.

Plain text (no markup): each output format escapes it itself. User text is quoted in full; the
subject (the actor) is shown in its own column, so sentences start with a verb. Note numbers are
event ids, the same `#n` that Slack shows and `/incident note correct` takes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.canonical import canonical_json
from vigil_ir.exports.describe_alerts import DESCRIBERS as ALERT_DESCRIBERS
from vigil_ir.exports.describe_records import DESCRIBERS
from vigil_ir.incidents.models import TYPES


def when(value: datetime | str | None) -> str:
    """A time for people: `YYYY-MM-DD HH:MM:SS UTC` (exports keep full ISO form in their data)."""
    if value is None:
        return "not set"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return clock.to_utc(value).strftime("%Y-%m-%d %H:%M:%S UTC")


def _q(text: Any) -> str:
    return f'"{text}"' if text not in (None, "") else "(empty)"


def _declared(e: Event, d: dict) -> str:
    kind = TYPES.get(d.get("type"), d.get("type"))
    security = (", security incident" if d.get("security") else "") + (", private" if d.get("private") else "")
    text = (f"declared {d.get('key', 'the incident')} {_q(d.get('title'))} "
            f"({d.get('severity')}, {kind}{security}); detected {when(d.get('detected_at'))}")
    return text + (f"; description: {_q(d['description'])}" if d.get("description") else "")


def _role(e: Event, d: dict) -> str:
    previous = f"previously {d['from']}" if d.get("from") else "previously unassigned"
    return f"assigned the {d.get('role')} role to {d.get('to')} ({previous})"


def _corrected(e: Event, d: dict) -> str:
    return (f"corrected note #{e.corrects} to {_q(d.get('text'))} "
            f"(original, still in the log: {_q(d.get('original_text'))})")


def _update(e: Event, d: dict) -> str:
    due = f"; next update due {when(d['next_update_due'])}" if d.get("next_update_due") else ""
    return f"posted an update (status {d.get('status')}): {_q(d.get('summary'))}{due}"


def _message(e: Event, d: dict) -> str:
    text = f"added a message by {d.get('author') or 'unknown author'} to the timeline: {_q(d.get('text'))}"
    if d.get("permalink"):
        text += f" ({d['permalink']})"
    return text + (f" via {d['via']}" if d.get("via") else "")


def _closed(e: Event, d: dict) -> str:
    follow_ups = "; ".join(_q(item) for item in d.get("follow_ups") or []) or "none"
    text = (f"closed the incident. Customer impact: {_q(d.get('customer_impact'))}. "
            f"Root cause: {_q(d.get('root_cause'))}. Lessons learned: {_q(d.get('lessons_learned'))}. "
            f"Follow-ups: {follow_ups}.")
    if d.get("open_items"):
        text += (f" Closed with items still open ({'; '.join(str(item) for item in d['open_items'])}), "
                 f"override reason: {_q(d.get('override_reason'))}.")
    if d.get("approved_by"):
        text += f" Closing was requested by {d.get('requested_by')} and approved by {d['approved_by']}."
    return text


def _close_requested(e: Event, d: dict) -> str:
    return (f"asked to close the incident (a second person must approve). Customer impact: "
            f"{_q(d.get('customer_impact'))}. Root cause: {_q(d.get('root_cause'))}.")


def _members_changed(e: Event, d: dict) -> str:
    name = d.get("handle") or d.get("group")
    if d.get("first_seen"):
        return f"saw the members of user group {name} for the first time: {', '.join(d.get('members') or []) or 'none'}"
    return (f"saw user group {name} change: added {', '.join(d.get('added') or []) or 'no one'}, "
            f"removed {', '.join(d.get('removed') or []) or 'no one'}")


def _policy(e: Event, d: dict) -> str:
    rules = "; ".join(f"{action}: {', '.join(roles)}" for action, roles in sorted((d.get("rules") or {}).items()))
    roles = "; ".join(f"{role} = {', '.join(subjects) or 'none'}" for role, subjects in sorted((d.get("roles") or {}).items()))
    return (f"recorded the permissions policy in force (sha256 {d.get('sha256')}). Roles: {roles}. Rules: {rules}. "
            f"Closing needs a second person for: {', '.join(d.get('close_approval') or []) or 'none'}")


def _step(verb: str) -> Callable[[Event, dict], str]:
    def sentence(e: Event, d: dict) -> str:
        text = f"{verb} playbook step {_q(d.get('title'))} ({d.get('playbook_id')} v{d.get('version')})"
        if d.get("evidence"):
            text += f"; evidence: {_q(d['evidence'])}"
        if d.get("reason"):
            text += f"; reason: {_q(d['reason'])}"
        if "to" in d:
            text += f" to {d['to']}"
        if e.corrects:
            text += f" (undoes event id {e.corrects}, which stays in the log)"
        return text
    return sentence


def _attached(e: Event, d: dict) -> str:
    skipped = f"; not applicable: {', '.join(d['not_applicable'])}" if d.get("not_applicable") else ""
    return (f"attached playbook {_q(d.get('title'))} ({d.get('playbook_id')} v{d.get('version')}, "
            f"sha256 {d.get('sha256')}) with {len(d.get('steps') or [])} steps{skipped}")


def _deadline(state: str) -> Callable[[Event, dict], str]:
    return lambda e, d: f"deadline {_q(d.get('label'))} {state} (due {when(d.get('due_at'))})"


def _pir_completed(e: Event, d: dict) -> str:
    timing = "on time" if d.get("on_time") else f"late (was due {when(d.get('due_at'))})"
    return (f"recorded the post-incident review held {when(d.get('held_at'))} with "
            f"{', '.join(d.get('attendees') or []) or 'no attendees'} ({timing}). Root cause: {_q(d.get('root_cause'))}. "
            f"Response plan change needed: {'yes' if d.get('plan_change_needed') else 'no'}.")


_DESCRIBERS: dict[str, Callable[[Event, dict], str]] = {
    "incident.update_reminded": lambda e, d: f"reminded {d.get('reminded') or 'the channel'} that a status update "
                                             f"was due at {when(d.get('due_at'))}",
    "incident.update_snoozed": lambda e, d: f"snoozed the update reminder until {when(d.get('until'))}",
    "incident.role_reminded": lambda e, d: f"reminded {d.get('reminded')} that no one holds the {d.get('role')} role",
    "pir.scheduled": lambda e, d: (f"scheduled the post-incident review, due {when(d.get('due_at'))}, facilitator "
                                   f"{d.get('facilitator') or 'not set'}" if d.get("required") else
                                   "noted that a post-incident review is optional at this severity"),
    "pir.reminded": lambda e, d: f"reminded {d.get('reminded')} that the post-incident review is due "
                                 f"({d.get('step')}, due {when(d.get('due_at'))})",
    "pir.completed": _pir_completed,
    "pir.document_posted": lambda e, d: f"posted the review document {d.get('name')} (sha256 {d.get('sha256')})",
    "playbook.attached": _attached,
    "playbook.step_completed": _step("completed"),
    "playbook.step_skipped": _step("skipped"),
    "playbook.step_assigned": _step("assigned"),
    "playbook.step_reopened": _step("reopened"),
    "playbook.step_overdue_reminded": lambda e, d: f"reminded {d.get('reminded') or 'the channel'} that step "
                                                   f"{d.get('step_id')} is overdue (due {when(d.get('due_at'))})",
    "playbook.deadline_started": _deadline("started"),
    "playbook.deadline_met": _deadline("met"),
    "playbook.deadline_missed": _deadline("missed"),
    "playbook.deadline_decided": lambda e, d: (f"ended deadline {_q(d.get('label'))} by a decision: {d.get('decision')} "
                                               f"(reason: {_q(d.get('reason'))}; was due {when(d.get('due_at'))})"),
    "playbook.deadline_reminded": lambda e, d: f"reminded that {d.get('percent')}% of the time for deadline "
                                               f"{d.get('deadline_id')} has passed (due {when(d.get('due_at'))})",
    "incident.declared": _declared,
    "incident.status_changed": lambda e, d: f"changed status from {d.get('from')} to {d.get('to')}",
    "incident.severity_changed": lambda e, d: f"changed severity from {d.get('from')} to {d.get('to')}",
    "incident.security_changed": lambda e, d: (f"{'marked it a security incident' if d.get('to') else 'marked it not a security incident'}"
                                               f" (reason: {_q(d.get('reason'))})"),
    "incident.role_assigned": _role,
    "incident.note_added": lambda e, d: f"added note #{e.id}: {_q(d.get('text'))}",
    "incident.note_corrected": _corrected,
    "incident.update_posted": _update,
    "incident.message_added": _message,
    "incident.channel_created": lambda e, d: f"created channel #{d.get('name')} ({d.get('channel')})",
    "incident.summary_posted": lambda e, d: f"posted the incident summary in {d.get('channel')} (ts {d.get('ts')})",
    "incident.announcement_posted": lambda e, d: f"announced the incident in {d.get('channel')} (ts {d.get('ts')})",
    "incident.closed": _closed,
    "incident.close_requested": _close_requested,
    "incident.close_approved": lambda e, d: f"approved closing the incident, as asked by {d.get('requested_by')}",
    "incident.close_refused": lambda e, d: (f"refused closing the incident, as asked by {d.get('requested_by')}"
                                            + (f": {_q(d['reason'])}" if d.get("reason") else "")),
    "incident.lead_requested": lambda e, d: f"asked {d.get('lead')} to hand over the lead",
    "incident.lead_request_accepted": lambda e, d: f"accepted handing the lead to {d.get('requested_by')}",
    "incident.lead_request_declined": lambda e, d: f"declined handing the lead to {d.get('requested_by')}",
    "permissions.policy_in_force": _policy,
    "permissions.group_members_changed": _members_changed,
    **DESCRIBERS,  # risks, actions, people, audit
    **ALERT_DESCRIBERS,  # alerts linked to the incident, pages
}


def describe(event: Event) -> str:
    """One sentence for `event`; unknown kinds (or odd data) fall back to kind + compact data."""
    data = event.data if isinstance(event.data, dict) else {}
    describer = _DESCRIBERS.get(event.kind)
    if describer is not None:
        try:
            return describer(event, data)
        except (KeyError, TypeError, AttributeError):
            pass  # data not in the shape this kind usually has: show it raw rather than fail
    return f"{event.kind} {canonical_json(event.data)}"


def one_line(text: str) -> str:
    """For CSV summaries: line breaks shown as ` ¶ ` (the `data` column keeps the exact text)."""
    return " ¶ ".join(part for part in text.splitlines() if part.strip())
