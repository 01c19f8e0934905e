"""Incident pages: the filtered list (/), one incident (/incidents/INC-<n>) and its timeline downloads.

The incident page and the downloads both come from `vigil_ir.exports.timeline.load_timeline`, so the
dashboard shows exactly what the exported evidence packet says.
"""

from __future__ import annotations

from sqlmodel import select
from starlette.requests import Request
from starlette.responses import Response

from vigil_ir.exports.timeline import FORMATS, load_timeline
from vigil_ir.followup import pir
from vigil_ir.followup.models import ActionItem, PostIncidentReview
from vigil_ir.incidents.models import SEVERITIES, STATUSES, TYPES
from vigil_ir.incidents.queries import by_key
from vigil_ir.people import Directory
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.downloads import attachment
from vigil_ir.web.dashboard.filters import EXERCISES, PAGE_SIZE, SECURITY, IncidentFilters
from vigil_ir.web.dashboard.private import PrivateScope
from vigil_ir.web.dashboard.views import page

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "md": "text/markdown; charset=utf-8", "html": "text/html; charset=utf-8"}


def incident_list(request: Request) -> Response:
    filters = IncidentFilters.parse(request.query_params)
    scope = PrivateScope(request)
    with dashboard(request).database.read_session() as session:
        incidents, total = filters.run(session, scope.visible_ids(session))
        people = Directory.load(session)
    pages = max(1, -(-total // PAGE_SIZE))
    return page(request, "incidents.html", status_code=400 if filters.errors else 200, incidents=incidents,
                total=total, filters=filters, pages=pages, severities=SEVERITIES, types=TYPES, statuses=STATUSES,
                security_choices=SECURITY, exercise_choices=EXERCISES, params=filters.params(), errors=filters.errors,
                people=people)


def not_found(request: Request, what: str) -> Response:
    return page(request, "not_found.html", status_code=404, what=what)


def private_refusal(request: Request, key: str) -> Response:
    return page(request, "private.html", status_code=403, key=key)


def incident_page(request: Request) -> Response:
    key = request.path_params["key"]
    scope = PrivateScope(request)
    with dashboard(request).database.read_session() as session:
        incident = by_key(session, key)
        if incident is None:
            return not_found(request, f"incident {key}")
        if not scope.sees(session, incident):
            return private_refusal(request, incident.key)
        timeline = load_timeline(session, incident)
        review = session.exec(select(PostIncidentReview)
                              .where(PostIncidentReview.incident_id == incident.id)).first()
        actions = list(session.exec(select(ActionItem).where(ActionItem.incident_id == incident.id)
                                    .order_by(ActionItem.number)))
    return page(request, "incident.html", incident=incident, report=timeline.report_context(),
                review=review, review_status=pir.status_label(review) if review else None, actions=actions, formats=FORMATS, types=TYPES, people=timeline.people)


def timeline_download(request: Request) -> Response:
    key, fmt = request.path_params["key"], request.path_params["fmt"]
    if fmt not in FORMATS:
        return not_found(request, f"timeline format {fmt}")
    scope = PrivateScope(request)
    with dashboard(request).database.read_session() as session:
        incident = by_key(session, key)
        if incident is None:
            return not_found(request, f"incident {key}")
        if not scope.sees(session, incident):
            return private_refusal(request, incident.key)
        text = load_timeline(session, incident).render(fmt)
    return attachment(text, f"{incident.key}-timeline.{fmt}", MEDIA_TYPES[fmt], csv=fmt == "csv")


ROUTES = [("/", incident_list, ["GET"], False),
          ("/incidents/{key}", incident_page, ["GET"], False),
          ("/incidents/{key}/timeline.{fmt}", timeline_download, ["GET"], False)]
