"""PagerDuty v3 webhooks, verified by `X-PagerDuty-Signature`: `v1=` + hex HMAC-SHA256 of the raw body
under each of the subscription's secrets (several during a rotation; any one matching is enough).

An incident whose `incident_key` is a page Vigil sent becomes a page change (triggered,
acknowledged, escalated, resolved); any other incident is an alert (triggered → firing, resolved →
resolved, reopened → firing again), fingerprinted by the PagerDuty incident id.
"""

from __future__ import annotations

import hashlib
import hmac

from vigil_ir.alerts import severity
from vigil_ir.alerts.signals import (PAGE_KEY_PREFIX, AlertSignal, BadPayload, PageSignal, need_object, parse_time,
                                     text)
from vigil_ir.alerts.sources import load_json

SETTING = "VIGIL_PAGERDUTY_WEBHOOK_SECRET"
NAME = "pagerduty"
PAGE_ACTIONS = {"incident.triggered": "triggered", "incident.acknowledged": "acknowledged",
                "incident.escalated": "escalated", "incident.delegated": "escalated",
                "incident.reassigned": "escalated", "incident.resolved": "resolved"}


def authentic(secret: str, headers, body: bytes) -> bool:
    given = [part.strip() for part in headers.get("x-pagerduty-signature", "").split(",")]
    expected = ["v1=" + hmac.new(key.strip().encode(), body, hashlib.sha256).hexdigest()
                for key in secret.split(",") if key.strip()]
    return any(hmac.compare_digest(mine.encode(), theirs.encode()) for mine in expected for theirs in given)


def parse(body: bytes) -> list:
    event = need_object(load_json(body).get("event"), "event")
    kind, data = event.get("event_type"), event.get("data")
    if event.get("resource_type") != "incident" or not isinstance(data, dict):
        return []  # service and note events say nothing about alerts or pages
    delivery, occurred_at = text(event.get("id"), 200), parse_time(event.get("occurred_at"), "event.occurred_at")
    incident_id = text(data.get("id"), 200)
    if not delivery or not incident_id or occurred_at is None:
        raise BadPayload("event.id, event.occurred_at and event.data.id are required")
    key = text(data.get("incident_key"), 255)
    agent = event.get("agent") if isinstance(event.get("agent"), dict) else {}
    if key.startswith(PAGE_KEY_PREFIX) or kind in ("incident.acknowledged", "incident.escalated",
                                                   "incident.delegated", "incident.reassigned"):
        if kind not in PAGE_ACTIONS:
            return []
        return [PageSignal(provider=NAME, key=key or incident_id, action=PAGE_ACTIONS[kind], occurred_at=occurred_at,
                           delivery=delivery, responder=text(agent.get("summary"), 200) or None,
                           responder_email=text(agent.get("email"), 320) or None,
                           reference=text(data.get("html_url"), 2000) or incident_id)]
    if kind not in ("incident.triggered", "incident.resolved", "incident.reopened"):
        return []
    priority = data.get("priority") if isinstance(data.get("priority"), dict) else {}
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    labels = {name: value for name, value in (
        ("service", text(service.get("summary"), 200)), ("urgency", text(data.get("urgency"), 20)),
        ("priority", text(priority.get("summary"), 20))) if value}
    firing = kind != "incident.resolved"
    starts_at = occurred_at if kind == "incident.reopened" else (parse_time(data.get("created_at"), "data.created_at")
                                                                 or occurred_at)
    return [AlertSignal(source=NAME, fingerprint=incident_id, status="firing" if firing else "resolved",
                        title=text(data.get("title"), 300) or f"PagerDuty incident {incident_id}",
                        starts_at=starts_at, ends_at=None if firing else occurred_at, labels=labels,
                        severity=severity.from_labels({}, priority.get("summary"), data.get("urgency")),
                        url=text(data.get("html_url"), 2000) or None, group_key=incident_id)]
