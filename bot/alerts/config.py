"""The alerts-in and pages-out configuration as recorded evidence (never a credential): which sources
take alerts, where triage happens, the auto-declare rule, the severity rule, whom Vigil can page."""

from __future__ import annotations

from typing import Any

from vigil_ir.alerts import severity
from vigil_ir.alerts.sources import sources
from vigil_ir.paging.targets import parse_targets


def describe(settings) -> dict[str, Any]:
    targets = parse_targets(settings.pagerduty_services, settings.opsgenie_responders)
    return {
        "sources_enabled": sorted(name for name, adapter in sources().items() if settings.setting(adapter.SETTING)),
        "triage_channel": settings.triage_channel,
        "auto_declare_severities": sorted(settings.auto_declare_severities),
        "severity_rule": {"labels": list(severity.LABELS), "words": {sev: list(words) for sev, words in severity.WORDS.items()},
                          "default": severity.DEFAULT},
        "page_targets": {target_id: {"provider": target.provider,
                                     "responders": [f"{kind}:{name}" for kind, name in target.responders]}
                         for target_id, target in sorted(targets.items())},
        "resolve_pages_with_incident": bool(settings.resolve_pages_with_incident),
        "acknowledge_measured_from": "the first page when paged, else the declaration",
    }
