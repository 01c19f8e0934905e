"""The configuration a control depends on, recorded as evidence whenever it changes.

At start-up (`vigil serve`, `vigil worker`) the configuration in force is written out as one
document: update cadence, PIR due policy and holidays, severity definitions, what each milestone
means, how the security flag is set, who holds which role, reminder schedules and the risk
methodology. When its SHA-256 differs from the last one recorded, it is appended as a
`config.recorded` event on the `config` stream (with the parts that changed), so the bundle can show
every version in force during a period and from when to when.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.eventlog.canonical import canonical_json

STREAM = "config"
KIND = "config.recorded"

MILESTONES = {
    "acknowledged": "the first human action on the incident by someone other than the declarer, or a lead "
                    "assignment; time to acknowledge counts from the declaration",
    "mitigated": "the first move to monitoring (or straight to resolved); counted from detection",
    "resolved": "the latest move to resolved that was not undone; counted from detection",
    "closed": "the close event (lead, commander or admin, after resolved; sev1, sev2 and security incidents "
              "after a second person approved; open required steps need an override reason)",
}
SECURITY_FLAG = ("set at declaration when the type is security or the form's security box is ticked; changed "
                 "afterwards only with `/incident security yes|no <reason>` by the incident lead, a commander or an admin, each "
                 "change an incident.security_changed event")


def document(settings) -> dict[str, Any]:
    """The configuration in force, as plain JSON values (what is recorded and compared)."""
    from vigil_ir.followup.action_reminders import SCHEDULE as ACTION_SCHEDULE
    from vigil_ir.followup.policy import Policy
    from vigil_ir.incidents.models import SEVERITIES
    from vigil_ir.reminders.incident_updates import PIR_SCHEDULE
    from vigil_ir.reminders.playbooks import THRESHOLDS
    from vigil_ir.risks.reminders import KINDS as REVIEW_REMINDERS
    from vigil_ir.risks.scoring import CURRENT

    from vigil_ir.permissions import policy_from_settings
    from vigil_ir.tickets.config import config_for
    from vigil_ir.alerts.config import describe as describe_alerts

    policy = Policy.from_settings(settings)
    permissions = policy_from_settings(settings).describe()
    return {
        "update_cadence": {sev: (str(every) if every else "none") for sev, every in sorted(policy.update_cadence.items())},
        "pir_due_business_days": {sev: days for sev, days in sorted(policy.pir_business_days.items())},
        "holidays": sorted(day.isoformat() for day in policy.holidays),
        "severity_definitions": dict(SEVERITIES),
        "milestone_definitions": MILESTONES,
        "security_flag": SECURITY_FLAG,
        # Which incidents are private, what the feed says of them, who is invited to every one.
        "private_incidents": {"types": sorted(settings.private_types), "feed": settings.private_feed,
                              "invited": list(settings.security_subjects)},
        # Who holds each configured role (user ids, user group ids or @handles) and what each may do:
        # the permissions policy (vigil_ir.permissions), as it describes itself.
        "roles": {role: sorted(subjects) for role, subjects in permissions["roles"].items()},
        "permissions": {"rules": permissions["rules"], "close_approval": permissions["close_approval"],
                        "dashboard_allow_workspace": bool(settings.dashboard_allow_workspace)},
        "reminder_schedules": {
            "risk_review_days_from_due": {kind: days for kind, days in REVIEW_REMINDERS},
            "action_days_from_due": {label: days for label, days in ACTION_SCHEDULE},
            "pir_from_due": {step: str(offset) for step, offset in PIR_SCHEDULE},
            "playbook_deadline_percent": list(THRESHOLDS),
            "status_update": "when the next update is due (update_cadence, or the time the last update set)",
            "status_update_repeat_while_overdue": (str(policy.update_reminder_repeat)
                                                   if policy.update_reminder_repeat else "none"),
        },
        "risk_methodology": CURRENT.describe(),
        # Follow-up actions' tickets (docs/integrations.md): where they go and how the sync treats them.
        "tickets": config_for(settings).describe(),
        # Alerts in and pages out (docs/integrations.md): sources, triage, auto-declare, page targets.
        "alerts_and_pages": describe_alerts(settings),
    }


def digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(values).encode("utf-8")).hexdigest()


def record_if_changed(session: Session, settings, *, actor: str = "system:startup") -> Event | None:
    """Append the configuration when it differs from the last recorded; None when unchanged."""
    current = document(settings)
    last = session.exec(select(Event).where(Event.stream == STREAM, Event.kind == KIND)
                        .order_by(Event.stream_seq.desc())).first()
    if last is not None and last.data.get("sha256") == digest(current):
        return None
    before = (last.data.get("document") or {}) if last is not None else {}
    changed = sorted(key for key in current if before.get(key) != current[key])
    return append(session, stream=STREAM, kind=KIND, actor=actor,
                  data={"sha256": digest(current), "changed": changed, "document": current})


@dataclass(frozen=True)
class Version:
    sha256: str
    recorded_at: datetime
    until: datetime | None  # when the next version was recorded (None: still in force)
    changed: list[str]
    document: dict[str, Any]
    event_hash: str


def all_versions(session: Session) -> list[Version]:
    """Every recorded configuration, oldest first, each with when the next one replaced it."""
    events = list(session.exec(select(Event).where(Event.stream == STREAM, Event.kind == KIND)
                               .order_by(Event.stream_seq)))
    return [Version(event.data.get("sha256"), clock.to_utc(event.recorded_at),
                    clock.to_utc(events[position + 1].recorded_at) if position + 1 < len(events) else None,
                    list(event.data.get("changed") or []), event.data.get("document") or {}, event.hash)
            for position, event in enumerate(events)]


def versions_in_force(session: Session, start: datetime, end: datetime) -> list[Version]:
    """Every recorded configuration in force at some time in [start, end): the one in force at the
    start (recorded before it) and each recorded during it."""
    return [version for version in all_versions(session)
            if version.recorded_at < clock.to_utc(end) and (version.until is None or version.until > clock.to_utc(start))]


_RECORDED_DURATION = re.compile(r"(?:(\d+) days?, )?(\d+):(\d\d):(\d\d)")


def recorded_duration(text: str) -> timedelta | None:
    """A duration as `document()` records it (`str(timedelta)`: "0:30:00", "1 day, 2:00:00"); None
    for "none" or anything else."""
    match = _RECORDED_DURATION.fullmatch(text or "")
    if match is None:
        return None
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


class CadenceInForce:
    """The status-update cadence that applied at a given time: from the configuration version
    recorded in force then, else (nothing recorded before that time) the settings at generation.

    The evidence for a due time must use the rule that was in force when it was set, not today's."""

    def __init__(self, session: Session, fallback: dict[str, timedelta | None]):
        self._versions = all_versions(session)
        self._fallback = fallback

    def at(self, when: datetime, severity: str) -> tuple[timedelta | None, str]:
        """(cadence, where it came from) for `severity` at `when`."""
        when = clock.to_utc(when)
        in_force = next((v for v in self._versions if v.recorded_at <= when and (v.until is None or when < v.until)), None)
        if in_force is None:
            return self._fallback.get(severity), "settings at generation (no configuration recorded yet)"
        recorded = (in_force.document.get("update_cadence") or {}).get(severity)
        return recorded_duration(recorded), f"configuration sha256:{in_force.sha256[:12]} of {clock.iso(in_force.recorded_at)}"
