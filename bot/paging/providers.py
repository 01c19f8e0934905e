"""The two providers' APIs: PagerDuty Events API v2 (`POST /v2/enqueue`) and Opsgenie's Alert API
(`POST /v2/alerts`, `POST /v2/alerts/<alias>/close?identifierType=alias`).

Both deduplicate by the key Vigil derives from the incident and the page (PagerDuty `dedup_key`,
Opsgenie `alias`), so sending a trigger again after an answer was lost makes no second page.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from vigil_ir import clock
from vigil_ir.paging.models import Page
from vigil_ir.paging.targets import Target

SEVERITY_TO_PAGERDUTY = {"sev1": "critical", "sev2": "error", "sev3": "warning", "sev4": "info"}
SEVERITY_TO_OPSGENIE = {"sev1": "P1", "sev2": "P2", "sev3": "P3", "sev4": "P4"}


class ProviderUnavailable(ConnectionError):
    """429, 5xx or no answer: tried again later for as long as it lasts (Retry-After honoured)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderRefused(Exception):
    """The provider answered that the request itself is wrong (bad routing key, bad API key…)."""


def _send(method: str, url: str, *, timeout: float, **kwargs) -> dict:
    try:
        answer = httpx.request(method, url, timeout=timeout, **kwargs)
    except httpx.HTTPError as failure:
        raise ProviderUnavailable(f"{url}: {type(failure).__name__}: {failure}") from failure
    if answer.status_code == 429 or answer.status_code >= 500:
        retry = answer.headers.get("retry-after")
        raise ProviderUnavailable(f"{url} answered {answer.status_code}",
                                  float(retry) if retry and retry.replace(".", "", 1).isdigit() else None)
    if answer.status_code >= 400:
        raise ProviderRefused(f"{url} answered {answer.status_code}: {answer.text[:300]}")
    try:
        return answer.json()
    except ValueError:
        return {"status": answer.status_code}


def trigger(page: Page, target: Target, *, incident_key: str, title: str, severity: str, link: str | None,
            settings) -> dict:
    timeout = settings.paging_timeout_seconds
    if target.provider == "pagerduty":
        body = {"routing_key": target.routing_key, "event_action": "trigger", "dedup_key": page.dedup_key,
                "client": "Vigil", "payload": {
                    "summary": f"{incident_key}: {page.message}"[:1024], "source": "vigil",
                    "severity": SEVERITY_TO_PAGERDUTY.get(severity, "error"), "timestamp": clock.iso(page.requested_at),
                    "custom_details": {"incident": incident_key, "title": title, "requested_by": page.requested_by}},
                **({"links": [{"href": link, "text": incident_key}]} if link else {})}
        return _send("POST", settings.pagerduty_events_url.rstrip("/") + "/v2/enqueue", json=body, timeout=timeout)
    body = {"message": f"{incident_key}: {page.message}"[:130], "alias": page.dedup_key,
            "description": f"{title}\n\n{page.message}"[:15000],
            "responders": [{"type": kind, "name": name} for kind, name in target.responders],
            "priority": SEVERITY_TO_OPSGENIE.get(severity, "P3"), "source": "Vigil", "tags": [incident_key],
            "details": {"incident": incident_key, "requested_by": page.requested_by}}
    return _send("POST", settings.opsgenie_api_url.rstrip("/") + "/v2/alerts", json=body, timeout=timeout,
                 headers={"Authorization": f"GenieKey {settings.opsgenie_api_key}"})


def resolve(page: Page, target: Target, *, note: str, settings) -> dict:
    timeout = settings.paging_timeout_seconds
    if target.provider == "pagerduty":
        body = {"routing_key": target.routing_key, "event_action": "resolve", "dedup_key": page.dedup_key}
        return _send("POST", settings.pagerduty_events_url.rstrip("/") + "/v2/enqueue", json=body, timeout=timeout)
    url = f"{settings.opsgenie_api_url.rstrip('/')}/v2/alerts/{quote(page.dedup_key, safe='')}/close"
    return _send("POST", url, params={"identifierType": "alias"}, json={"source": "Vigil", "note": note[:25000]},
                 timeout=timeout, headers={"Authorization": f"GenieKey {settings.opsgenie_api_key}"})
