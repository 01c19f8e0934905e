"""Reading the dashboard's query-string filters: dates, periods, choices, page numbers.

A bad value is reported on the page (and the filter ignored) instead of failing the request, so a
hand-edited URL still shows something useful.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_
from sqlmodel import Session, select

from vigil_ir.incidents.models import ACTIVE_STATUSES, SEVERITIES, STATUSES, TYPES, Incident

PAGE_SIZE = 50
MAX_PAGE = 10**9  # past the last page shows an empty page; beyond this the offset no longer fits a column
SECURITY = {"yes": True, "no": False}
# Exercises are left out of the incident list unless asked for: with them, or only them.
EXERCISES = {"include": "incidents and exercises", "only": "exercises only"}


def parse_date(value: str | None, label: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value.strip())
        day_start(day + timedelta(days=1))  # a period ends at the start of the day after its last
    except ValueError:
        errors.append(f"{label}: {value!r} is not a date (YYYY-MM-DD); ignored.")
        return None
    except OverflowError:
        errors.append(f"{label}: {value!r} is outside the dates Vigil can count (years 1 to 9999, UTC); ignored.")
        return None
    return day


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, timezone.utc)


def period(params, errors: list[str], *, default_days: int | None = None,
           today: date | None = None) -> tuple[date | None, date | None]:
    """`from`/`to` as dates, `to` inclusive; with `default_days`, a missing period is the last N days."""
    start, end = parse_date(params.get("from"), "From", errors), parse_date(params.get("to"), "To", errors)
    if default_days and today and start is None and end is None and not errors:
        start, end = today - timedelta(days=default_days - 1), today
    if start and end and start > end:
        errors.append(f"From ({start}) is after To ({end}); showing nothing until that is fixed.")
    return start, end


def bounds(start: date | None, end: date | None) -> tuple[datetime | None, datetime | None]:
    """[start of `start`, start of the day after `end`) in UTC."""
    return (day_start(start) if start else None, day_start(end + timedelta(days=1)) if end else None)


@dataclass
class IncidentFilters:
    start: date | None = None
    end: date | None = None
    severity: str = ""
    type: str = ""
    security: str = ""
    status: str = ""
    exercises: str = ""
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, params) -> IncidentFilters:
        errors: list[str] = []
        start, end = period(params, errors)

        def choice(name: str, allowed) -> str:
            value = (params.get(name) or "").strip()
            if value and value not in allowed:
                errors.append(f"{name.capitalize()}: {value!r} is not one of {', '.join(allowed)}; ignored.")
                return ""
            return value

        try:
            number = min(max(1, int(params.get("page") or 1)), MAX_PAGE)
        except ValueError:
            number = 1
        return cls(start=start, end=end, severity=choice("severity", tuple(SEVERITIES)),
                   type=choice("type", tuple(TYPES)), security=choice("security", tuple(SECURITY)),
                   status=choice("status", ("open", *STATUSES)), exercises=choice("exercises", tuple(EXERCISES)),
                   page=number, errors=errors)

    def params(self) -> dict[str, str]:
        """The filters as query parameters (for pagination and export links)."""
        return {"from": self.start.isoformat() if self.start else "", "to": self.end.isoformat() if self.end else "",
                "severity": self.severity, "type": self.type, "security": self.security, "status": self.status,
                "exercises": self.exercises}

    def _where(self, query):
        begin, finish = bounds(self.start, self.end)
        if begin is not None:
            query = query.where(Incident.declared_at >= begin)
        if finish is not None:
            query = query.where(Incident.declared_at < finish)
        if self.severity:
            query = query.where(Incident.severity == self.severity)
        if self.type:
            query = query.where(Incident.type == self.type)
        if self.security:
            query = query.where(Incident.security == SECURITY[self.security])
        if self.status == "open":
            query = query.where(Incident.status.in_(ACTIVE_STATUSES))
        elif self.status:
            query = query.where(Incident.status == self.status)
        if self.exercises != "include":
            query = query.where(Incident.exercise.is_(self.exercises == "only"))
        return query

    def run(self, session: Session, private_ids: set[int] | None = None) -> tuple[list[Incident], int]:
        """One page of matching incidents (newest first) and the total count. `private_ids`: the only
        private incidents to include (None: all of them; vigil_ir.web.dashboard.private)."""
        def where(query):
            query = self._where(query)
            if private_ids is not None:
                query = query.where(or_(Incident.private.is_(False), Incident.id.in_(sorted(private_ids))))
            return query

        total = session.exec(where(select(func.count()).select_from(Incident))).one()
        rows = session.exec(where(select(Incident)).order_by(Incident.number.desc())
                            .offset((self.page - 1) * PAGE_SIZE).limit(PAGE_SIZE))
        return list(rows), int(total)
