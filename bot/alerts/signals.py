"""What a source's webhook says, in one shape for every source (the adapters in `sources/` build it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

TITLE_MAX = 300


class BadPayload(ValueError):
    """The body is not what the source documents; the message says what is wrong (answered 400)."""


@dataclass(frozen=True)
class AlertSignal:
    """One alert's state as the source reports it."""

    source: str
    fingerprint: str
    status: str  # firing | resolved
    title: str
    starts_at: datetime
    ends_at: datetime | None = None
    summary: str = ""
    labels: dict[str, Any] = field(default_factory=dict)
    severity: str = "sev3"
    url: str | None = None
    group_key: str = ""


@dataclass(frozen=True)
class PageSignal:
    """A change of a page Vigil may have sent (matched by the provider's dedup key or alias)."""

    provider: str  # pagerduty | opsgenie
    key: str  # PagerDuty incident_key (our dedup_key), Opsgenie alias
    action: str  # triggered | acknowledged | escalated | resolved
    occurred_at: datetime
    delivery: str  # the provider's id of this notification (a retried delivery repeats it)
    responder: str | None = None  # a name
    responder_email: str | None = None
    reference: str | None = None  # the provider's incident or alert URL or id


Signal = AlertSignal | PageSignal

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any, what: str) -> datetime | None:
    """An RFC 3339 time (nanoseconds allowed, as Alertmanager sends); None for Go's zero time, which
    Alertmanager and Grafana send as `endsAt` of an alert still firing. Epoch milliseconds too."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        while seconds > 10**11:  # Opsgenie's updatedAt is in nanoseconds
            seconds /= 1000
        return datetime.fromtimestamp(seconds, timezone.utc)
    if not isinstance(value, str):
        raise BadPayload(f"{what} is not a time: {value!r}")
    if value.startswith("0001-01-01"):
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"))
    except ValueError:
        raise BadPayload(f"{what} is not an RFC 3339 time: {value[:60]!r}") from None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def text(value: Any, limit: int = 3000) -> str:
    return (value if isinstance(value, str) else "" if value is None else str(value)).strip()[:limit]


def string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPayload(f"{what} must be an object")
    return {str(key)[:200]: text(item, 1000) for key, item in list(value.items())[:100]}


def need_object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise BadPayload(f"{what} must be a JSON object")
    return value

# Pages Vigil sends carry dedup keys / aliases starting with this (vigil_ir.paging), so the providers'
# webhooks about them are told apart from alerts that start there.
PAGE_KEY_PREFIX = "vigil-"
