"""The risk register (/risks, live or as of a date, with inherent and residual heat maps) and the
review log (/reviews). Rows come from the same functions as `vigil export risks|reviews`."""

from __future__ import annotations

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from vigil_ir import clock
from vigil_ir.exports.risks import register_rows, review_rows
from vigil_ir.risks import heatmap
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.filters import bounds, parse_date, period
from vigil_ir.web.dashboard.views import page

REVIEW_LOG_DAYS = 365  # default period of the review log


def risk_register(request: Request) -> Response:
    errors: list[str] = []
    today = clock.now().date()
    as_of = parse_date(request.query_params.get("as_of"), "As of", errors)
    if as_of is not None and as_of > today:
        errors.append(f"As of: {as_of} is in the future; showing the live register.")
        as_of = None
    with dashboard(request).database.read_session() as session:
        rows = register_rows(session, as_of)
    label = as_of.isoformat() if as_of else f"{today.isoformat()} (live)"
    # The SVG is drawn by vigil_ir.risks.heatmap, which escapes every text it places.
    drawing = Markup(heatmap.svg(heatmap.build(rows, label)))
    return page(request, "risks.html", status_code=400 if errors else 200, rows=rows, as_of=as_of, today=today,
                label=label, heatmap_svg=drawing, errors=errors)


def review_log(request: Request) -> Response:
    errors: list[str] = []
    today = clock.now().date()
    start, end = period(request.query_params, errors, default_days=REVIEW_LOG_DAYS, today=today)
    rows: list[dict] = []
    if start and end and start <= end:
        with dashboard(request).database.read_session() as session:
            rows = review_rows(session, *bounds(start, end))
    elif not errors:
        errors.append("Give both From and To.")
    return page(request, "reviews.html", status_code=400 if errors else 200, rows=rows, start=start, end=end,
                errors=errors)


ROUTES = [("/risks", risk_register, ["GET"], False), ("/reviews", review_log, ["GET"], False)]
