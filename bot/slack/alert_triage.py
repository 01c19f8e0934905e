"""The triage message of an alert group in VIGIL_TRIAGE_CHANNEL: posted once, then updated in place
as alerts join the group or someone decides what it is (`alerts.triage` outbox items, coalesced, so
an alert storm costs a few updates of one message, not a message per alert)."""

from __future__ import annotations

from vigil_ir.alerts.models import Alert, AlertGroup
from vigil_ir.alerts.service import TRIAGE_KIND, alerts_of
from vigil_ir.incidents.models import Incident
from vigil_ir.outbox import service as outbox
from vigil_ir.slack import limits
from vigil_ir.slack.escape import esc, link, mention

SEVERITY_EMOJI = {"sev1": ":red_circle:", "sev2": ":large_orange_circle:", "sev3": ":large_yellow_circle:",
                  "sev4": ":white_circle:"}
LISTED = 10  # alerts named one by one; the rest are counted


def linkable(url: str | None) -> bool:
    """Only plain http(s) links: a `|` or space would end Slack's <url|label> early."""
    return bool(url) and url.startswith(("https://", "http://")) and not any(c in url for c in "| \n")


def summary_text(group: AlertGroup, alerts: list[Alert]) -> str:
    firing = sum(1 for alert in alerts if alert.status == "firing")
    return (f"{SEVERITY_EMOJI.get(group.severity, '')} Alert from {group.source} ({group.severity}): "
            f"{group.title} — {firing} of {len(alerts)} firing")


def decision_text(group: AlertGroup, incident: Incident | None) -> str | None:
    if group.state == "open":
        return None
    who = mention(group.decided_by) if group.decided_by and not group.decided_by.startswith("system:") else "_Vigil_"
    if group.state == "dismissed":
        return f":no_bell: Dismissed by {who}: {esc(group.reason)}"
    key = incident.key if incident else "an incident"
    verb = "Declared as" if group.state == "declared" else "Attached to"
    return f":white_check_mark: {verb} *{key}* by {who}."


def triage_blocks(group: AlertGroup, alerts: list[Alert], incident: Incident | None, *,
                  buttons: list[dict] | None = None) -> list:
    labels = " ".join(f"`{esc(name)}={esc(value)}`" for name, value in sorted(group.labels.items())[:15])
    lines = []
    for alert in alerts[:LISTED]:
        title = link(alert.url, alert.title) if linkable(alert.url) else esc(alert.title)
        mark = ":fire:" if alert.status == "firing" else ":white_check_mark:"
        lines.append(f"{mark} {title}" + (f" — {esc(alert.summary[:200])}" if alert.summary else ""))
    if len(alerts) > LISTED:
        lines.append(f"…and {len(alerts) - LISTED} more")
    built = [limits.header(f"{group.severity} · {group.title}"),
             limits.section("\n".join(lines) or "_no alerts_"),
             limits.context(f"{group.source} · first fired <!date^{int(group.first_started_at.timestamp())}"
                            f"^{{date_short_pretty}} {{time}}|{group.first_started_at:%Y-%m-%d %H:%M} UTC>"
                            + (f" · {labels}" if labels else ""))]
    decided = decision_text(group, incident)
    if decided:
        built.append(limits.section(decided))
    elif buttons:
        built.append({"type": "actions", "block_id": "alert_triage", "elements": buttons})
    return built


def triage_buttons(group: AlertGroup) -> list[dict]:
    value = str(group.id)
    return [limits.button("Declare incident", action_id="alert_declare", value=value, style="primary"),
            limits.button("Attach to INC-n", action_id="alert_attach", value=value),
            limits.button("Dismiss", action_id="alert_dismiss", value=value)]


def attach_modal(group: AlertGroup, incidents: list[Incident]) -> dict:
    options = [limits.option(f"{incident.key} · {incident.title}", str(incident.id)) for incident in incidents]
    return limits.modal("alert_attach", "Attach alerts", "Attach", [
        limits.section(f"*{esc(group.title)}* ({group.severity}, from {esc(group.source)})"),
        {"type": "input", "block_id": "incident", "label": {"type": "plain_text", "text": "Open incident"},
         "element": {"type": "static_select", "action_id": "value", "options": options}}], str(group.id))


def dismiss_modal(group: AlertGroup) -> dict:
    return limits.modal("alert_dismiss", "Dismiss alerts", "Dismiss", [
        limits.section(f"*{esc(group.title)}* ({group.severity}, from {esc(group.source)})"),
        {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Why no incident?"},
         "hint": {"type": "plain_text", "text": "Recorded as evidence, e.g. planned maintenance, a known false alarm."},
         "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 500}}],
        str(group.id))


def deliver(deliverer, payload: dict) -> dict:
    channel = deliverer.settings.triage_channel
    with deliverer.database.session() as session:
        group = session.get(AlertGroup, payload["group_id"])
        if group is None:
            raise LookupError(f"alert group {payload['group_id']} not found")
        alerts = alerts_of(session, group)
        incident = session.get(Incident, group.incident_id) if group.incident_id else None
        posted = outbox.last_result(session, kind=TRIAGE_KIND, subject=group.stream)
    text = summary_text(group, alerts)
    blocks = triage_blocks(group, alerts, incident, buttons=triage_buttons(group))
    if posted.get("ts"):
        deliverer._call("chat_update", channel=posted["channel"], ts=posted["ts"], text=text, blocks=blocks)
        return posted
    if not channel or group.state != "open":
        return {}  # no triage channel, or decided before a message was needed (auto-declared)
    ts = deliverer._post_once(f"{group.stream}:triage", channel, text=text, blocks=blocks)
    return {"channel": channel, "ts": ts}
