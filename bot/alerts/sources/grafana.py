"""Grafana alerting's webhook contact point (the Alertmanager shape plus Grafana's fields),
authenticated by a bearer token (the contact point's "Authorization Header" credentials)."""

from __future__ import annotations

from vigil_ir.alerts.signals import AlertSignal
from vigil_ir.alerts.sources import bearer_matches, load_json
from vigil_ir.alerts.sources.alertmanager import parse_groups

SETTING = "VIGIL_GRAFANA_TOKEN"
NAME = "grafana"


def authentic(secret: str, headers, body: bytes) -> bool:
    return bearer_matches(secret, headers)


def parse(body: bytes) -> list[AlertSignal]:
    return parse_groups(load_json(body), NAME)
