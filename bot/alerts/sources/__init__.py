"""One small adapter per source behind one interface.

An adapter module has `SETTING` (the variable holding its credential), `authentic(secret, headers,
body) -> bool` (its own signature scheme, or a bearer token) and `parse(body) -> list[Signal]`
(raising BadPayload). `SOURCES` maps the `<source>` of `POST /integrations/alerts/<source>` to it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from types import ModuleType

from vigil_ir.alerts.signals import BadPayload


def bearer_matches(secret: str, headers: Mapping[str, str]) -> bool:
    """`Authorization: Bearer <secret>`, compared in constant time."""
    scheme, _, given = headers.get("authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), secret.encode())


def load_json(body: bytes) -> dict:
    try:
        value = json.loads(body)
    except ValueError:
        raise BadPayload("the body is not JSON") from None
    if not isinstance(value, dict):
        raise BadPayload("the body must be a JSON object")
    return value


def sources() -> dict[str, ModuleType]:
    from vigil_ir.alerts.sources import alertmanager, generic, grafana, opsgenie, pagerduty

    return {"alertmanager": alertmanager, "grafana": grafana, "pagerduty": pagerduty, "opsgenie": opsgenie,
            "generic": generic}
