"""Opsgenie's outgoing webhook integration (alert action data), authenticated by a bearer token sent
as a custom header (`Authorization: Bearer <token>`; Opsgenie signs nothing).

An alert whose alias is a page Vigil sent becomes a page change (Create → triggered, Acknowledge →
acknowledged with the responder's e-mail, Escalate… → escalated, Close → resolved); any other alert is
an alert (Create → firing, Close → resolved), fingerprinted by its alias.
"""

from __future__ import annotations

from vigil_ir import clock
from vigil_ir.alerts import severity
from vigil_ir.alerts.signals import PAGE_KEY_PREFIX, AlertSignal, BadPayload, PageSignal, need_object, parse_time, text
from vigil_ir.alerts.sources import bearer_matches, load_json

SETTING = "VIGIL_OPSGENIE_WEBHOOK_TOKEN"
NAME = "opsgenie"
PAGE_ACTIONS = {"Create": "triggered", "Acknowledge": "acknowledged", "Escalate": "escalated",
                "EscalateNext": "escalated", "AssignOwnership": "escalated", "Close": "resolved"}


def authentic(secret: str, headers, body: bytes) -> bool:
    return bearer_matches(secret, headers)


def parse(body: bytes) -> list:
    payload = load_json(body)
    action, alert = payload.get("action"), need_object(payload.get("alert"), "alert")
    alert_id = text(alert.get("alertId"), 200)
    if not isinstance(action, str) or not alert_id:
        raise BadPayload("`action` and `alert.alertId` are required")
    alias = text(alert.get("alias"), 255) or alert_id
    updated_at = parse_time(alert.get("updatedAt"), "alert.updatedAt") or clock.now()
    delivery = f"{alert_id}:{action}:{alert.get('updatedAt')}"
    username = text(alert.get("username"), 320)
    if alias.startswith(PAGE_KEY_PREFIX) or action in ("Acknowledge", "Escalate", "EscalateNext", "AssignOwnership"):
        if action not in PAGE_ACTIONS:
            return []
        return [PageSignal(provider=NAME, key=alias, action=PAGE_ACTIONS[action], occurred_at=updated_at,
                           delivery=delivery, responder=username or None,
                           responder_email=username if "@" in username else None, reference=alert_id)]
    if action not in ("Create", "Close"):
        return []
    tags = [text(tag, 100) for tag in alert.get("tags") or [] if isinstance(tag, str)]
    labels = {"priority": text(alert.get("priority"), 10), "entity": text(alert.get("entity"), 200),
              "tags": ",".join(tags)[:1000]}
    labels = {name: value for name, value in labels.items() if value}
    firing = action == "Create"
    return [AlertSignal(source=NAME, fingerprint=alias, status="firing" if firing else "resolved",
                        title=text(alert.get("message"), 300) or alias,
                        starts_at=parse_time(alert.get("createdAt"), "alert.createdAt") or updated_at,
                        ends_at=None if firing else updated_at, summary=text(alert.get("description")),
                        labels=labels, severity=severity.from_labels(labels), group_key=alias)]
