"""Prometheus Alertmanager's `webhook_config` (payload version 4), authenticated by a bearer token
(`http_config.authorization.credentials`)."""

from __future__ import annotations

from vigil_ir.alerts import severity
from vigil_ir.alerts.signals import AlertSignal, BadPayload, need_object, parse_time, string_map, text
from vigil_ir.alerts.sources import bearer_matches, load_json

SETTING = "VIGIL_ALERTMANAGER_TOKEN"
NAME = "alertmanager"


def authentic(secret: str, headers, body: bytes) -> bool:
    return bearer_matches(secret, headers)


def parse(body: bytes) -> list[AlertSignal]:
    return parse_groups(load_json(body), NAME)


def parse_groups(payload: dict, source: str) -> list[AlertSignal]:
    """The Alertmanager notification shape, which Grafana's webhook contact point also sends."""
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise BadPayload("`alerts` must be a list")
    group_key = text(payload.get("groupKey"), 255)
    common = string_map(payload.get("commonLabels"), "commonLabels")
    signals = []
    for position, raw in enumerate(alerts):
        alert = need_object(raw, f"alerts[{position}]")
        labels = string_map(alert.get("labels"), f"alerts[{position}].labels")
        annotations = string_map(alert.get("annotations"), f"alerts[{position}].annotations")
        status = alert.get("status")
        if status not in ("firing", "resolved"):
            raise BadPayload(f"alerts[{position}].status must be firing or resolved")
        fingerprint = text(alert.get("fingerprint"), 255)
        if not fingerprint:
            raise BadPayload(f"alerts[{position}].fingerprint is missing (Alertmanager 0.19 or later sends it)")
        starts_at = parse_time(alert.get("startsAt"), f"alerts[{position}].startsAt")
        if starts_at is None:
            raise BadPayload(f"alerts[{position}].startsAt is missing")
        name = labels.get("alertname") or common.get("alertname") or fingerprint
        signals.append(AlertSignal(
            source=source, fingerprint=fingerprint, status=status, starts_at=starts_at,
            ends_at=parse_time(alert.get("endsAt"), f"alerts[{position}].endsAt") if status == "resolved" else None,
            title=text(annotations.get("summary") or name, 300),
            summary=text(annotations.get("description") or annotations.get("summary")),
            labels=labels, severity=severity.from_labels(labels), url=text(alert.get("generatorURL"), 2000) or None,
            group_key=group_key or name))
    return signals
