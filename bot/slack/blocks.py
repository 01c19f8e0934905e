"""Block Kit builders for incident messages. Plain dicts; user text always goes through `esc`."""

from __future__ import annotations

from datetime import datetime

from vigil_ir import clock
from vigil_ir.incidents.models import (CAUSE_CATEGORIES, EXERCISE_BANNER, EXERCISE_KINDS, ROLES, SEVERITIES, TYPES,
                                       Incident)
from vigil_ir.slack import limits
from vigil_ir.slack.escape import channel_link, esc, mention

SEVERITY_EMOJI = {"sev1": ":red_circle:", "sev2": ":large_orange_circle:", "sev3": ":large_yellow_circle:",
                  "sev4": ":white_circle:"}
STATUS_EMOJI = {"investigating": ":mag:", "identified": ":dart:", "monitoring": ":eyes:",
                "resolved": ":white_check_mark:", "closed": ":lock:"}


def slack_date(value: datetime | None) -> str:
    """A date Slack renders in each reader's own time zone, with a UTC fallback."""
    if value is None:
        return "—"
    value = clock.to_utc(value)
    fallback = value.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(value.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def with_banner(incident: Incident, text: str) -> str:
    """`text` with the exercise banner above it when the incident is an exercise, so nobody mistakes a
    rehearsal for the real thing (every message Vigil posts about an exercise goes through this)."""
    return f"{EXERCISE_BANNER}\n{text}" if incident.exercise else text


def banner_blocks(incident: Incident) -> list[dict]:
    """The exercise banner as a block to put first in a message ([] for a real incident)."""
    if not incident.exercise:
        return []
    kind = EXERCISE_KINDS.get(incident.exercise_kind or "", "Exercise")
    return [limits.section(f"*{EXERCISE_BANNER}* · {kind}\n*Scenario:* {limits.mrkdwn(incident.scenario, 2500)}")]


def _fields(incident: Incident) -> list[dict]:
    pairs = [
        ("Severity", f"{SEVERITY_EMOJI[incident.severity]} {incident.severity}"),
        ("Status", f"{STATUS_EMOJI.get(incident.status, '')} {incident.status}"),
        ("Type", TYPES.get(incident.type, incident.type) + (" · security" if incident.security else "")
         + (" · :lock: private" if incident.private else "")),
        ("Lead", mention(incident.lead)),
        ("Comms", mention(incident.comms)),
        ("Scribe", mention(incident.scribe)),
        ("Detected", slack_date(incident.detected_at)),
        ("Declared", f"{slack_date(incident.declared_at)} by {mention(incident.declared_by)}"),
    ]
    return [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in pairs]


def summary_text(incident: Incident) -> str:
    """Notification fallback text (shown in push notifications and screen readers)."""
    return with_banner(incident, f"{incident.key} [{incident.severity}, {incident.status}] {esc(incident.title)}")


def summary_blocks(incident: Incident) -> list[dict]:
    blocks = [
        limits.header(f"{incident.key}: {incident.title}"),
        *banner_blocks(incident),
        {"type": "section", "fields": _fields(incident)},
    ]
    if incident.description:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*Impact*\n{limits.mrkdwn(incident.description, 2900)}"}})
    if incident.current_summary:
        due = f"\n_Next update due {slack_date(incident.next_update_due)}_" if incident.next_update_due else ""
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*Current situation*\n{limits.mrkdwn(incident.current_summary, 2800)}{due}"}})
    if incident.is_open:
        blocks.append({"type": "actions", "block_id": "incident_actions", "elements": [
            {"type": "button", "action_id": "incident_take_lead", "value": str(incident.id),
             "text": {"type": "plain_text", "text": "Take the lead"}},
            {"type": "button", "action_id": "incident_post_update", "value": str(incident.id),
             "text": {"type": "plain_text", "text": "Post an update"}}]})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                   "Commands: `/incident status|severity|lead|role|note|update|resolve|close|timeline|help`"
                   " · :pushpin: a message to put it on the timeline"}]})
    return blocks


def private_feed_text(incident: Incident, what: str | None = None) -> str:
    """The only line the feed carries about a private incident: no title, summary, channel or people."""
    return with_banner(incident, f":lock: {incident.key} (private) {what or 'declared'}, {incident.severity}" + (
        f" · {incident.status}" if what is None and incident.status != "investigating" else ""))


def announcement_text(incident: Incident) -> str:
    """The feed announcement's fallback text (redacted for a private incident)."""
    return private_feed_text(incident) if incident.private else summary_text(incident)


def announcement_blocks(incident: Incident) -> list[dict]:
    if incident.private:
        return [{"type": "section", "text": {"type": "mrkdwn", "text": private_feed_text(incident)}}]
    return [
        *banner_blocks(incident),
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"{SEVERITY_EMOJI[incident.severity]} *{incident.key}: {esc(incident.title)}*\n"
            f"{incident.severity} · {incident.status} · {TYPES.get(incident.type, incident.type)}"
            f" · lead {mention(incident.lead)} · {channel_link(incident.channel_id)}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"Declared {slack_date(incident.declared_at)} by {mention(incident.declared_by)}"}]},
    ]


def _option(value: str, text: str) -> dict:
    return limits.option(text, value)


def _select(block_id: str, label: str, options: list[dict], initial: str | None = None,
            optional: bool = False) -> dict:
    element = {"type": "static_select", "action_id": "value", "options": options}
    if initial:
        element["initial_option"] = next(o for o in options if o["value"] == initial)
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": {"type": "plain_text", "text": label}, "element": element}


def _text_input(block_id: str, label: str, *, multiline: bool = False, optional: bool = False,
                initial: str | None = None, max_length: int = 3000, hint: str | None = None) -> dict:
    element = {"type": "plain_text_input", "action_id": "value", "multiline": multiline,
               "max_length": max_length}
    if initial:
        element["initial_value"] = limits.initial(initial, max_length)
    block = {"type": "input", "block_id": block_id, "optional": optional,
             "label": {"type": "plain_text", "text": label}, "element": element}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def _modal(callback_id: str, title: str, submit: str, blocks: list[dict], metadata: str = "") -> dict:
    return limits.modal(callback_id, title, submit, blocks, metadata)


def status_options(include_resolved: bool = True) -> list[dict]:
    statuses = ["investigating", "identified", "monitoring"] + (["resolved"] if include_resolved else [])
    return [_option(s, s.capitalize()) for s in statuses]


def declare_modal(title: str, metadata: str, private_types: frozenset[str] = frozenset(), *,
                  severity: str | None = None, detected_at: int | None = None) -> dict:
    """`private_types`: incident types private whether the box is ticked (VIGIL_PRIVATE_INCIDENT_TYPES).
    `severity`, `detected_at` (epoch seconds): prefilled, e.g. from an alert."""
    listed = [TYPES[t].lower() + (" (or marked security)" if t == "security" else "") for t in TYPES if t in private_types]
    always = f" Always private: {', '.join(listed)} incidents." if listed else ""
    severities = [_option(key, f"{key} — {text}") for key, text in SEVERITIES.items()]
    types = [_option(key, label) for key, label in TYPES.items()]
    return _modal("incident_declare", "Declare an incident", "Declare", [
        _text_input("title", "Title", initial=title, max_length=150,
                    hint="What is broken, in a few words. It names the channel, unless the incident is private."),
        _select("severity", "Severity", severities, initial=severity),
        _select("type", "Type", types),
        _text_input("description", "Description and impact", multiline=True, optional=True),
        {"type": "input", "block_id": "detected_at", "optional": True,
         "label": {"type": "plain_text", "text": "Detected at"},
         "hint": {"type": "plain_text", "text": "When the problem was first noticed. Leave empty for now."},
         "element": {"type": "datetimepicker", "action_id": "value",
                     **({"initial_date_time": detected_at} if detected_at else {})}},
        {"type": "input", "block_id": "security", "optional": True,
         "label": {"type": "plain_text", "text": "Security incident"},
         "element": {"type": "checkboxes", "action_id": "value", "options": [
             _option("yes", "This is a security incident (handled under the security policy)")]}},
        {"type": "input", "block_id": "private", "optional": True,
         "label": {"type": "plain_text", "text": "Private incident"},
         "hint": {"type": "plain_text", "text": "A private channel named after the number only; the feed and "
                                                "listings outside it never show the title." + always},
         "element": {"type": "checkboxes", "action_id": "value", "options": [
             _option("yes", "Only invited people see this incident")]}},
        {"type": "input", "block_id": "exercise", "optional": True,
         "label": {"type": "plain_text", "text": "Exercise"},
         "hint": {"type": "plain_text", "text": "A rehearsal: numbered EX-<n>, marked as an exercise in every message, "
                                                "and left out of incident figures. Playbooks and clocks run as for real."},
         "element": {"type": "checkboxes", "action_id": "value", "options": [
             _option("yes", "This is an exercise, not a real incident")]}},
        _select("exercise_kind", "Kind of exercise", [_option(key, label) for key, label in EXERCISE_KINDS.items()],
                optional=True),
        _text_input("scenario", "Exercise scenario", multiline=True, optional=True,
                    hint="What the participants rehearse (required for an exercise)."),
    ], metadata)


def update_modal(incident: Incident) -> dict:
    return _modal("incident_update", f"Update {incident.key}", "Post update", [
        _select("status", "Status", status_options(), initial=incident.status),
        _text_input("summary", "Current situation", multiline=True, initial=incident.current_summary,
                    hint="What we know, what we are doing, what customers see."),
        {"type": "input", "block_id": "next_update_due", "optional": True,
         "label": {"type": "plain_text", "text": "Next update due"},
         "element": {"type": "datetimepicker", "action_id": "value"}},
    ], str(incident.id))


def close_modal(incident: Incident, open_items: list[str] = (), tracker: str | None = None) -> dict:
    from vigil_ir.slack.action_blocks import ticket_box

    tickets = [ticket_box("follow_up_tickets", f"Create a {tracker} ticket for each follow-up")] if tracker else []
    warning = []
    if open_items:
        listed = "\n".join(f"• {limits.mrkdwn(item, 140)}" for item in open_items[:20])
        warning = [limits.section(f":warning: *Still open:*\n{listed}"),
                   _text_input("override_reason", "Reason for closing with these open", multiline=True,
                               hint="Recorded on the timeline with the list above.")]
    return _modal("incident_close", f"Close {incident.key}", "Close incident", warning + [
        _text_input("customer_impact", "Customer impact", multiline=True),
        _text_input("root_cause", "Root cause", multiline=True),
        _select("cause_category", "Root-cause category", [_option(key, label) for key, label in CAUSE_CATEGORIES.items()],
                optional=True),
        _text_input("lessons_learned", "Lessons learned", multiline=True, optional=True),
        _text_input("follow_ups", "Follow-up actions", multiline=True, optional=True,
                    hint="One action per line; start a line with YYYY-MM-DD for its due date. "
                         "You own them and can reassign them."),
        *tickets,
    ], str(incident.id))


def correct_note_modal(incident: Incident, note_event_id: int, original: str) -> dict:
    return _modal("incident_correct_note", f"Correct note #{note_event_id}", "Save correction", [
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": f"The original stays on the timeline:\n>{limits.mrkdwn(original, 2000)}"}]},
        _text_input("text", "Corrected note", multiline=True, initial=original),
    ], f"{incident.id}:{note_event_id}")


def role_label(role: str) -> str:
    return ROLES.get(role, role)


def playbook_buttons(files) -> list[dict]:
    """Sections offering playbooks, each with an Attach button (value: the playbook id)."""
    rows = []
    for file in files[:20]:
        playbook = file.playbook
        rows.append({"type": "section", "text": {"type": "mrkdwn", "text":
                     f"*{esc(playbook.title)}* `{esc(playbook.id)}` v{esc(playbook.version)}\n"
                     f"{limits.mrkdwn(' '.join(playbook.description.split()), 200)}"},
                     "accessory": limits.button("Attach", action_id="playbook_attach", value=playbook.id)})
    return rows


def suggestion_blocks(files) -> list[dict]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text":
             ":clipboard: *Suggested playbooks* for this incident. Attach one to get a step-by-step checklist "
             "(or `/incident playbook <id>`)."}}] + playbook_buttons(files)


def step_modal(callback_id: str, title: str, step, element: dict, label: str, hint: str | None = None) -> dict:
    block = {"type": "input", "block_id": "value", "label": {"type": "plain_text", "text": label},
             "element": {**element, "action_id": "value"}}
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return _modal(callback_id, title, "Save", [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{esc(step.title)}*"}}, block], str(step.id))


def done_modal(step) -> dict:
    kind = step.evidence
    element = ({"type": "url_text_input"} if kind == "link" else
               {"type": "plain_text_input", "multiline": True, "max_length": 2000})
    label = "Link to the evidence" if kind == "link" else "What was done, and what you found"
    return step_modal("playbook_done", "Mark step done", step, element, label,
                      "Recorded on the timeline as the evidence for this step.")


def skip_modal(step) -> dict:
    return step_modal("playbook_skip", "Skip step", step,
                      {"type": "plain_text_input", "multiline": True, "max_length": 2000},
                      "Why is this step skipped?", "Required: the reason goes on the timeline.")


def assign_modal(step) -> dict:
    return step_modal("playbook_assign", "Assign step", step, {"type": "users_select"}, "Assign to")


def pir_modal(incident: Incident, review=None) -> dict:
    """The post-incident review form, prefilled with what the close form recorded."""
    return _modal("incident_pir", f"Review of {incident.key}", "Record review", [
        {"type": "input", "block_id": "held_at", "label": {"type": "plain_text", "text": "Held at"},
         "element": {"type": "datetimepicker", "action_id": "value"}},
        {"type": "input", "block_id": "attendees", "label": {"type": "plain_text", "text": "Attendees"},
         "element": {"type": "multi_users_select", "action_id": "value"}},
        _text_input("summary", "Summary", multiline=True, initial=incident.current_summary or incident.description),
        _text_input("root_cause", "Root cause", multiline=True, initial=incident.root_cause),
        _text_input("contributing_factors", "Contributing factors", multiline=True, optional=True),
        _text_input("went_well", "What went well", multiline=True, optional=True),
        _text_input("went_poorly", "What went poorly", multiline=True, optional=True),
        _text_input("detection_gap", "Detection gap", multiline=True, optional=True,
                    hint="How could we have noticed sooner?"),
        {"type": "input", "block_id": "plan_change", "label": {"type": "plain_text",
                                                               "text": "Does the response plan need a change?"},
         "element": {"type": "radio_buttons", "action_id": "value", "initial_option": _option("no", "No"),
                     "options": [_option("no", "No"), _option("yes", "Yes")]}},
        _text_input("plan_change_ref", "Plan change reference", optional=True, max_length=300,
                    hint="A ticket or document for the change, if one is needed."),
    ], str(incident.id))
