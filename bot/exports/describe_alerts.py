"""Readable sentences for the alert and page events on an incident's timeline (merged into
vigil_ir.exports.describe)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vigil_ir.eventlog import Event


def _alert(verb: str) -> Callable[[Event, dict], str]:
    return lambda e, d: f"alert {verb}: \"{d.get('title')}\" ({d.get('severity')}, {d.get('source')} {d.get('fingerprint')})"


def _responder(d: dict) -> str:
    named = d.get("responder_user") or d.get("responder") or d.get("responder_email")
    return f" by {named}" if named else ""


def _page(verb: str) -> Callable[[Event, dict], str]:
    return lambda e, d: f"page #{d.get('page_id')} {verb}{_responder(d)} ({d.get('dedup_key')})"


DESCRIBERS: dict[str, Callable[[Event, dict], Any]] = {
    "incident.alerts_linked": lambda e, d: (
        f"{'declared it from' if d.get('how') == 'declared' else 'attached'} {d.get('alerts')} {d.get('source')} "
        f"alert(s) \"{d.get('title')}\" ({d.get('severity')}, first fired {d.get('first_started_at')})"
        + (f" by rule {d['rule']}" if d.get("rule") else "")),
    "incident.alert_fired": _alert("fired"),
    "incident.alert_refired": _alert("fired again"),
    "incident.alert_resolved": _alert("resolved"),
    "incident.detected_at_changed": lambda e, d: (f"moved the detection time from {d.get('from')} to {d.get('to')} "
                                                  f"({d.get('source')})"),
    "page.requested": lambda e, d: f"paged {d.get('target')} through {d.get('provider')}: \"{d.get('message')}\" "
                                   f"(page #{d.get('page_id')}, {d.get('dedup_key')})",
    "page.triggered": _page("triggered"),
    "page.acknowledged": _page("acknowledged"),
    "page.escalated": _page("escalated"),
    "page.resolve_requested": lambda e, d: f"asked to resolve page #{d.get('page_id')} ({d.get('because')})",
    "page.resolved": _page("resolved"),
}
