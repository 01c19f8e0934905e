"""Outbox handlers for pages: `page.trigger` and `page.resolve` (run by the outbox sender, so a
provider's 429 or 5xx is retried with backoff, honouring Retry-After, until it answers)."""

from __future__ import annotations

from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.incidents.models import Incident
from vigil_ir.paging import providers, service
from vigil_ir.paging.models import Page
from vigil_ir.paging.targets import parse_targets


def _load(database: Database, settings: Settings, payload: dict):
    with database.session() as session:
        page = session.get(Page, payload["page_id"])
        if page is None:
            raise LookupError(f"page {payload['page_id']} not found")
        incident = session.get(Incident, page.incident_id)
    target = parse_targets(settings.pagerduty_services, settings.opsgenie_responders).get(f"{page.provider}:{page.target}")
    if target is None:
        raise providers.ProviderRefused(f"{page.provider} target {page.target!r} is no longer configured")
    return page, incident, target


def trigger(database: Database, settings: Settings, payload: dict) -> dict:
    page, incident, target = _load(database, settings, payload)
    if page.triggered_at is not None:  # accepted before (e.g. the provider's webhook came first)
        return {"dedup_key": page.dedup_key, "already": True}
    link = f"{settings.base_url.rstrip('/')}/incidents/{incident.key}" if settings.base_url else None
    answer = providers.trigger(page, target, incident_key=incident.key, title=incident.title,
                               severity=incident.severity, link=link, settings=settings)
    with database.session() as session:
        service.triggered(session, page=session.get(Page, page.id), answer=answer)
    return {"dedup_key": page.dedup_key, "answer": answer}


def resolve(database: Database, settings: Settings, payload: dict) -> dict:
    page, incident, target = _load(database, settings, payload)
    answer = providers.resolve(page, target, note=f"{incident.key} is {incident.status} in Vigil.", settings=settings)
    return {"dedup_key": page.dedup_key, "answer": answer}


def handlers(database: Database, settings: Settings) -> dict:
    return {service.TRIGGER_KIND: lambda payload: trigger(database, settings, payload),
            service.RESOLVE_KIND: lambda payload: resolve(database, settings, payload)}
