"""Who can be paged, from configuration: PagerDuty services by routing key, Opsgenie responders by
team, schedule, escalation or user (docs/integrations.md)."""

from __future__ import annotations

from dataclasses import dataclass

OPSGENIE_TYPES = ("team", "schedule", "escalation", "user")


class TargetError(ValueError):
    """A paging setting that cannot be read; the message names the variable and the entry."""


@dataclass(frozen=True)
class Target:
    provider: str  # pagerduty | opsgenie
    name: str
    routing_key: str | None = None  # PagerDuty Events API v2 integration key
    responders: tuple[tuple[str, str], ...] = ()  # Opsgenie (type, name)

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def label(self) -> str:
        if self.provider == "pagerduty":
            return f"{self.name} (PagerDuty)"
        return f"{self.name} (Opsgenie: {', '.join(f'{kind} {name}' for kind, name in self.responders)})"


def _entries(text: str, variable: str):
    for chunk in (part.strip() for part in (text or "").split(",")):
        if not chunk:
            continue
        name, sep, value = chunk.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TargetError(f"{variable}: write `name=value` entries separated by commas (got `{chunk}`).")
        yield name.strip().lower(), value.strip()


def parse_targets(pagerduty_services: str, opsgenie_responders: str) -> dict[str, Target]:
    """`VIGIL_PAGERDUTY_SERVICES=checkout=<routing key>,…` and
    `VIGIL_OPSGENIE_RESPONDERS=ops=team:Ops+schedule:Ops Primary,…`, by target id."""
    targets = {}
    for name, key in _entries(pagerduty_services, "VIGIL_PAGERDUTY_SERVICES"):
        targets[f"pagerduty:{name}"] = Target("pagerduty", name, routing_key=key)
    for name, value in _entries(opsgenie_responders, "VIGIL_OPSGENIE_RESPONDERS"):
        responders = []
        for part in value.split("+"):
            kind, sep, who = part.strip().partition(":")
            if not sep or kind.strip().lower() not in OPSGENIE_TYPES or not who.strip():
                raise TargetError(f"VIGIL_OPSGENIE_RESPONDERS: `{part.strip()}` in `{name}` is not "
                                  f"{'|'.join(OPSGENIE_TYPES)}:<name>.")
            responders.append((kind.strip().lower(), who.strip()))
        targets[f"opsgenie:{name}"] = Target("opsgenie", name, responders=tuple(responders))
    return targets
