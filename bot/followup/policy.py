"""Follow-up policy from configuration: update cadence, PIR due dates, business days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from vigil_ir.incidents.models import SEVERITIES
from vigil_ir.playbooks.durations import parse_duration


def _per_severity(text: str, parse, setting: str) -> dict[str, object]:
    """`sev1=30m,sev2=1h,…` → {severity: parsed or None}; every severity must be named once."""
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        severity, sep, raw = part.partition("=")
        severity, raw = severity.strip(), raw.strip()
        if not sep or severity not in SEVERITIES or severity in values:
            raise ValueError(f"{setting}: '{part}' is not `sevN=value` for a new severity sev1..sev4")
        try:
            values[severity] = None if raw == "none" else parse(raw)
        except ValueError as problem:
            raise ValueError(f"{setting}: {severity}: {problem}") from None
    missing = [s for s in SEVERITIES if s not in values]
    if missing:
        raise ValueError(f"{setting}: no value for {', '.join(missing)} (use `none` to turn one off)")
    return values


def _repeat(raw: str) -> timedelta | None:
    raw = (raw or "").strip()
    if raw in ("", "none"):
        return None
    try:
        return parse_duration(raw)
    except ValueError as problem:
        raise ValueError(f"VIGIL_UPDATE_REMINDER_REPEAT: {problem} (or `none` to remind once per due time)") from None


def _business_days(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"'{raw}' is not a whole number of business days")
    return int(raw)


@dataclass(frozen=True)
class Policy:
    update_cadence: dict[str, timedelta | None]
    pir_business_days: dict[str, int | None]
    holidays: frozenset[date]
    update_reminder_repeat: timedelta | None = None  # None: one reminder per due time

    @classmethod
    def from_settings(cls, settings) -> "Policy":
        holidays = frozenset(date.fromisoformat(d.strip()) for d in settings.holidays.split(",") if d.strip())
        return cls(update_cadence=_per_severity(settings.update_cadence, parse_duration, "VIGIL_UPDATE_CADENCE"),
                   pir_business_days=_per_severity(settings.pir_due, _business_days, "VIGIL_PIR_DUE"),
                   holidays=holidays, update_reminder_repeat=_repeat(settings.update_reminder_repeat))

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """`days` working days after `start` (Mon–Fri, not a holiday), same time of day, UTC."""
        current = start
        while days > 0:
            current += timedelta(days=1)
            if current.weekday() < 5 and current.date() not in self.holidays:
                days -= 1
        return current
