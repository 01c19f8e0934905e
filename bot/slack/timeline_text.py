"""The ephemeral `/incident timeline`: latest events, times in the viewer's time zone."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil_ir.incidents import queries
from vigil_ir.incidents.models import Incident
from vigil_ir.people.models import Person
from vigil_ir.slack.describe import describe
from vigil_ir.slack.escape import mention

log = logging.getLogger(__name__)
_TZ_CACHE: dict[str, tuple[float, str]] = {}
_TZ_LOCK = threading.Lock()
TZ_CACHE_SECONDS = 3600


def viewer_timezone(client, user_id: str, database=None) -> ZoneInfo:
    """The user's time zone: from the people directory when it knows it (no Slack call while Slack
    waits for the ack), else from Slack (cached for an hour); UTC if neither can tell."""
    if database is not None:
        with database.read_session() as session:
            person = session.get(Person, user_id)
            known = person.tz if person is not None else None
        if known:
            return _zone(known)
    with _TZ_LOCK:
        cached = _TZ_CACHE.get(user_id)
    name = cached[1] if cached and cached[0] > time.monotonic() else None
    if name is None:
        try:
            name = client.users_info(user=user_id)["user"].get("tz") or "UTC"
        except Exception as failure:  # a timeline without local times beats no timeline
            log.info("users.info failed for %s: %s", user_id, failure)
            return ZoneInfo("UTC")
        with _TZ_LOCK:
            _TZ_CACHE[user_id] = (time.monotonic() + TZ_CACHE_SECONDS, name)
    return _zone(name)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def timeline_text(session, incident: Incident, *, zone: ZoneInfo, limit: int = 20) -> str:
    events = queries.latest_events(session, incident, limit=limit)
    lines = [f"*Timeline of {incident.key}* (latest {len(events)}, times in {zone.key})"]
    for event in events:
        lines.append(f"`{local(event.occurred_at, zone)}` {mention(event.actor) if not event.actor.startswith('system:') else '_Vigil_'}"
                     f" — {describe(event)}")
    milestones = queries.incident_milestones(session, incident)
    facts = [("acknowledge" + (" (from the first page)" if milestones.paged else ""), milestones.minutes_to_acknowledge),
             ("mitigate", milestones.minutes_to_mitigate), ("resolve", milestones.minutes_to_resolve)]
    known = [f"time to {name}: {minutes:g} min" for name, minutes in facts if minutes is not None]
    if known:
        lines.append("_" + " · ".join(known) + "_")
    lines.append("Full export: `vigil export timeline " + incident.key + " --format html`")
    return "\n".join(lines)
