"""Fake alert senders: the webhook bodies Alertmanager, Grafana, PagerDuty and Opsgenie document, and
the headers each authenticates with, so tests send exactly what the real tools send.

Shapes: Alertmanager's webhook_config (payload version 4), Grafana's webhook contact point (its docs'
example body), PagerDuty v3 webhooks (`event` with `event_type`, `agent`, `data` an incident; signed
`X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>`, one per secret), Opsgenie's outgoing
webhook (alert action data: `action`, `alert`, `source`, `integrationId`, `integrationName`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

TOKENS = {"alertmanager": "am-token", "grafana": "gf-token", "generic": "generic-token", "opsgenie": "og-token"}
PAGERDUTY_SECRET = "pd-secret-1"


def settings_overrides() -> dict:
    return {"VIGIL_ALERTMANAGER_TOKEN": TOKENS["alertmanager"], "VIGIL_GRAFANA_TOKEN": TOKENS["grafana"],
            "VIGIL_GENERIC_ALERT_TOKEN": TOKENS["generic"], "VIGIL_OPSGENIE_WEBHOOK_TOKEN": TOKENS["opsgenie"],
            "VIGIL_PAGERDUTY_WEBHOOK_SECRET": PAGERDUTY_SECRET, "VIGIL_TRIAGE_CHANNEL": "C0TRIAGE"}


def am_alert(fingerprint: str, *, status: str = "firing", alertname: str = "ProbeFailure",
             starts_at: str = "2026-12-04T06:00:00.123456789Z", ends_at: str = "0001-01-01T00:00:00Z",
             severity: str = "critical", instance: str = "https://server.example.org") -> dict:
    return {"status": status,
            "labels": {"alertname": alertname, "instance": instance, "job": "http_checks", "severity": severity},
            "annotations": {"description": f"Instance {instance} has been down for over 5m.",
                            "summary": f"BlackBox Probe Failure: {instance}"},
            "startsAt": starts_at, "endsAt": ends_at,
            "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=probe_success+%3D%3D+0",
            "fingerprint": fingerprint}


def alertmanager(alerts: list[dict], *, group_key: str = '{}/{severity="critical"}:{alertname="ProbeFailure"}') -> dict:
    status = "firing" if any(alert["status"] == "firing" for alert in alerts) else "resolved"
    common = {"alertname": alerts[0]["labels"]["alertname"]} if alerts else {}
    return {"receiver": "vigil", "status": status, "alerts": alerts, "groupLabels": common, "commonLabels": common,
            "commonAnnotations": {}, "externalURL": "http://prometheus.example.org:9093", "version": "4",
            "groupKey": group_key, "truncatedAlerts": 0}


def grafana(fingerprint: str = "c6eadffa33fcdf37", *, status: str = "firing") -> dict:
    alert = {"status": status, "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
             "annotations": {"description": "The system has high memory usage",
                             "runbook_url": "https://myrunbook.com/runbook/1234",
                             "summary": "This alert was triggered for zone us-1"},
             "startsAt": "2026-12-04T09:51:03.157076+02:00",
             "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-12-04T10:01:03.157076+02:00",
             "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit", "fingerprint": fingerprint,
             "silenceURL": "https://play.grafana.org/alerting/silence/new", "dashboardURL": "", "panelURL": "",
             "values": {"B": 44.23943737541908, "C": 1}}
    return {"receiver": "My Super Webhook", "status": status, "orgId": 1, "alerts": [alert],
            "groupLabels": {"alertname": "High memory usage"}, "commonLabels": alert["labels"],
            "commonAnnotations": {}, "externalURL": "https://play.grafana.org/", "version": "1",
            "groupKey": '{}:{alertname="High memory usage"}', "truncatedAlerts": 0,
            "title": "[FIRING:1] High memory usage", "state": "alerting", "message": "**Firing**"}


def pagerduty(event_type: str, *, incident_id: str = "PGR0VU2", incident_key: str = "d3640fbd41094207a1c11e58e46b1662",
              occurred_at: str = "2026-12-04T06:05:00.169Z", event_id: str | None = None, status: str = "triggered",
              agent: str | None = "Tenex Engineer", title: str = "A little bump in the road") -> dict:
    return {"event": {
        "id": event_id or str(uuid.uuid4()), "event_type": event_type, "resource_type": "incident",
        "occurred_at": occurred_at,
        "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                  "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": agent,
                  "type": "user_reference"} if agent else None,
        "client": {"name": "PagerDuty"},
        "data": {"id": incident_id, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{incident_id}",
                 "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}", "number": 2, "status": status,
                 "incident_key": incident_key, "created_at": "2026-12-04T06:00:27Z", "title": title,
                 "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                             "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "API Service",
                             "type": "service_reference"},
                 "assignees": [], "escalation_policy": {"id": "PUS0KTE", "summary": "Default",
                                                        "type": "escalation_policy_reference"},
                 "teams": [], "priority": {"id": "PSO75BM", "summary": "P1", "type": "priority_reference"},
                 "urgency": "high", "conference_bridge": None, "resolve_reason": None}}}


def pagerduty_signature(body: bytes, *secrets: str) -> str:
    return ",".join("v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                    for secret in (secrets or (PAGERDUTY_SECRET,)))


def opsgenie(action: str, *, alias: str = "aliastest", alert_id: str = "052652ac-5d1c-464a-812a-7dd18bbfba8c",
             username: str = "fili@ifountain.com", updated_at: int = 1796364300000000000,
             message: str = "test alert") -> dict:
    return {"source": {"name": "web", "type": "API"},
            "alert": {"updatedAt": updated_at, "tags": ["tag1", "tag2"], "teams": ["team1"],
                      "recipients": ["recipient1"], "message": message, "username": username, "alertId": alert_id,
                      "source": username, "alias": alias, "tinyId": "23", "createdAt": 1796364000000,
                      "userId": "daed1180-0ce8-438b-8f8e-57e1a5920a2d", "entity": "", "priority": "P2"},
            "action": action, "integrationId": "37c8f316-17c6-49d7-899b-9c7e540c048d",
            "integrationName": "Vigil"}


def encode(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def headers_for(source: str, body: bytes) -> dict:
    if source == "pagerduty":
        return {"Content-Type": "application/json", "X-PagerDuty-Signature": pagerduty_signature(body)}
    return {"Content-Type": "application/json", "Authorization": f"Bearer {TOKENS[source]}"}
