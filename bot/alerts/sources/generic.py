"""Anything else: the generic JSON shape documented in docs/integrations.md, with a bearer token.

    {"alerts": [{"fingerprint": "…", "status": "firing|resolved", "title": "…", "summary": "…",
                 "severity": "critical", "labels": {…}, "starts_at": "RFC 3339", "ends_at": "…",
                 "url": "…", "group": "…"}]}

A single alert object (without the `alerts` list) is accepted too.
"""

from __future__ import annotations

from vigil_ir.alerts import severity
from vigil_ir.alerts.signals import AlertSignal, BadPayload, need_object, parse_time, string_map, text
from vigil_ir.alerts.sources import bearer_matches, load_json
from vigil_ir import clock

SETTING = "VIGIL_GENERIC_ALERT_TOKEN"
NAME = "generic"


def authentic(secret: str, headers, body: bytes) -> bool:
    return bearer_matches(secret, headers)


def parse(body: bytes) -> list[AlertSignal]:
    payload = load_json(body)
    alerts = payload["alerts"] if "alerts" in payload else [payload]
    if not isinstance(alerts, list):
        raise BadPayload("`alerts` must be a list")
    signals = []
    for position, raw in enumerate(alerts):
        alert = need_object(raw, f"alerts[{position}]")
        fingerprint, title = text(alert.get("fingerprint"), 255), text(alert.get("title"), 300)
        if not fingerprint or not title:
            raise BadPayload(f"alerts[{position}] needs a `fingerprint` and a `title`")
        status = alert.get("status", "firing")
        if status not in ("firing", "resolved"):
            raise BadPayload(f"alerts[{position}].status must be firing or resolved")
        labels = string_map(alert.get("labels"), f"alerts[{position}].labels")
        starts_at = parse_time(alert.get("starts_at"), f"alerts[{position}].starts_at") or clock.now()
        ends_at = parse_time(alert.get("ends_at"), f"alerts[{position}].ends_at")
        signals.append(AlertSignal(
            source=NAME, fingerprint=fingerprint, status=status, title=title, starts_at=starts_at,
            ends_at=(ends_at or clock.now()) if status == "resolved" else None,
            summary=text(alert.get("summary")), labels=labels,
            severity=severity.from_labels(labels, alert.get("severity")), url=text(alert.get("url"), 2000) or None,
            group_key=text(alert.get("group"), 255) or labels.get("alertname") or title))
    return signals
