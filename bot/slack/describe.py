"""One line of mrkdwn per event, for Slack (escaped)."""

from __future__ import annotations

from vigil_ir.eventlog import Event
from vigil_ir.slack.escape import channel_link, esc, mention

TEXT_LIMIT = 300


def short(text: object) -> str:
    """Escaped, on one line, cut to TEXT_LIMIT characters (the export has the full text)."""
    flat = " ".join(str(text or "").split())
    return esc(flat if len(flat) <= TEXT_LIMIT else flat[:TEXT_LIMIT - 1] + "…")


def describe(event: Event) -> str:
    d = event.data
    match event.kind:
        case "incident.declared":
            return f"declared *{short(d.get('title', ''))}* ({d.get('severity')}, {d.get('type')})"
        case "incident.status_changed":
            return f"status {d.get('from')} → *{d.get('to')}*"
        case "incident.severity_changed":
            return f"severity {d.get('from')} → *{d.get('to')}*"
        case "incident.security_changed":
            return f"security incident: {'yes' if d.get('to') else 'no'} ({esc(d.get('reason') or '')})"
        case "incident.role_assigned":
            return f"{d.get('role')}: {mention(d.get('to'))}"
        case "incident.note_added":
            return f"note #{event.id}: {short(d.get('text', ''))}"
        case "incident.note_corrected":
            return f"corrected note #{event.corrects}: {short(d.get('text', ''))}"
        case "incident.update_posted":
            return f"update ({d.get('status')}): {short(d.get('summary', ''))}"
        case "incident.message_added":
            return f"message from {mention(d.get('author'))}: {short(d.get('text'))}"
        case "incident.channel_created":
            return f"channel {channel_link(d.get('channel'))} created"
        case "incident.summary_posted":
            return "summary pinned in the channel"
        case "incident.announcement_posted":
            return "announced in the incident feed"
        case "playbook.attached":
            return f"playbook *{short(d.get('title'))}* v{esc(d.get('version'))} attached"
        case "playbook.step_completed" | "playbook.step_skipped" | "playbook.step_reopened":
            verb = event.kind.rsplit("_", 1)[1]
            return f"step {verb}: {short(d.get('title'))}" + (f" — {short(d.get('reason'))}" if d.get("reason") else "")
        case "playbook.step_assigned":
            return f"step assigned to {mention(d.get('to'))}: {short(d.get('title'))}"
        case "playbook.deadline_met" | "playbook.deadline_missed":
            return f"deadline {event.kind.rsplit('_', 1)[1]}: {short(d.get('label'))}"
        case "pir.completed":
            return f"post-incident review recorded — root cause: {short(d.get('root_cause'))}"
        case "incident.update_snoozed":
            return "update reminder snoozed"
        case "incident.alerts_linked":
            return (f"{d.get('alerts')} {esc(d.get('source'))} alert(s) linked: *{short(d.get('title'))}*"
                    + (f" (rule {esc(d.get('rule'))})" if d.get("rule") else ""))
        case "incident.alert_fired" | "incident.alert_refired" | "incident.alert_resolved":
            verb = {"incident.alert_fired": "fired", "incident.alert_refired": "fired again"}.get(event.kind, "resolved")
            return f":rotating_light: alert {verb}: {short(d.get('title'))} ({esc(d.get('severity'))})"
        case "incident.detected_at_changed":
            return f"detection time set to the earliest alert's start ({esc(d.get('to'))})"
        case "page.requested":
            return f":pager: paged *{esc(d.get('target'))}* ({esc(d.get('provider'))}): {short(d.get('message'))}"
        case "page.triggered" | "page.acknowledged" | "page.escalated" | "page.resolved":
            who = mention(d["responder_user"]) if d.get("responder_user") else esc(d.get("responder") or "")
            return f"page to {esc(d.get('target') or d.get('dedup_key'))} {event.kind.split('.')[1]}" + (f" by {who}" if who else "")
        case "page.resolve_requested":
            return f"asked the provider to resolve the page ({esc(d.get('because'))})"
        case "incident.closed":
            return f"closed — root cause: {short(d.get('root_cause', ''))}"
    return esc(event.kind)
