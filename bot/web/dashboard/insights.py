"""Insights (/insights): the program review's figures and charts over a chosen period, filtered by
type, severity and security flag; every count of incidents links to the incident list behind it.
The figures come from vigil_ir.exports.program_review, so they are the signed review's figures."""

from __future__ import annotations

import calendar
from datetime import date

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from vigil_ir import clock
from vigil_ir.exports import program_review
from vigil_ir.incidents.models import SEVERITIES, TYPES
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.filters import SECURITY, IncidentFilters, bounds
from vigil_ir.web.dashboard.private import PrivateScope
from vigil_ir.web.dashboard.views import page, query

DEFAULT_DAYS = 90


def _matches(filters: IncidentFilters, hidden: set[str]):
    """The filters, and the private incidents the reader may not see left out (as the list does)."""
    def keep(row: dict) -> bool:
        return (row["key"] not in hidden
                and (not filters.type or row["type"] == filters.type)
                and (not filters.severity or row["severity_final"] == filters.severity)
                and (not filters.security or row["security"] == SECURITY[filters.security]))
    return keep


def _list_link(filters: IncidentFilters, start: date, end: date, **narrower: str) -> str:
    """The incident list of exactly these incidents (the same period and filters, narrowed)."""
    params = {**filters.params(), "status": "", "exercises": "", "from": start.isoformat(), "to": end.isoformat(),
              **narrower}
    return "/?" + query(params)


def insights(request: Request) -> Response:
    filters = IncidentFilters.parse(request.query_params)
    today = clock.now().date()
    if filters.start is None and filters.end is None and not filters.errors:
        filters.start, filters.end = date.fromordinal(today.toordinal() - DEFAULT_DAYS + 1), today
    errors = list(filters.errors)
    if not (filters.start and filters.end):
        errors.append("Give both From and To.")
    choices = dict(severities=tuple(SEVERITIES), security_choices=tuple(SECURITY), types=TYPES)
    if errors or filters.start > filters.end:  # the filter reader has said what is wrong
        return page(request, "insights.html", status_code=400, filters=filters, sections=[], links={},
                    errors=errors, total=0, all_link=None, **choices)
    scope = PrivateScope(request)  # may ask Slack for group members: before the session
    with dashboard(request).database.read_session() as session:
        review = program_review.build(session, *bounds(filters.start, filters.end),
                                      settings=dashboard(request).settings,
                                      where=_matches(filters, scope.hidden_keys(session)))
    sections = program_review.sections(review)
    volume, timing = sections[0], sections[2]
    links = {volume.title: [_month_link(filters, row[0]) for row in volume.rows],
             timing.title: [_list_link(filters, filters.start, filters.end, severity=row[0]) for row in timing.rows]}
    for section in sections:
        section.chart = Markup(section.chart)  # drawn by vigil_ir.exports.charts, every text escaped
    return page(request, "insights.html", filters=filters, sections=sections, links=links, errors=errors,
                total=len(review.incidents), all_link=_list_link(filters, filters.start, filters.end), **choices)


def _month_link(filters: IncidentFilters, month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    first = max(date(year, number, 1), filters.start)
    last = min(date(year, number, calendar.monthrange(year, number)[1]), filters.end)
    return _list_link(filters, first, last)


ROUTES = [("/insights", insights, ["GET"], False)]
