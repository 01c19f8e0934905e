"""/exports: download links for every export, and the downloads themselves.

Each download is the same text `vigil export …` writes (CSV with a BOM, as in files), sent as an
attachment. The evidence bundle is written to a temporary file by `vigil_ir.exports.bundle.export` and
streamed from there, so a long period does not sit in memory.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlmodel import Session

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from vigil_ir import clock
from vigil_ir.exports import csvsafe
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.exports.population import incident_population, render_population
from vigil_ir.exports.risks import ACCEPTANCE_COLUMNS, REGISTER_COLUMNS, REVIEW_COLUMNS, acceptance_rows, register_rows
from vigil_ir.exports.risks import render as render_rows
from vigil_ir.exports.risks import review_rows
from vigil_ir.followup.action_export import action_rows
from vigil_ir.followup.action_export import render as render_actions
from vigil_ir.risks.report import render_report
from vigil_ir.signing.service import SigningKeyError
from vigil_ir.exports.timeline import FORMATS as TIMELINE_FORMATS
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.filters import PAGE_SIZE, IncidentFilters, bounds, parse_date, period
from vigil_ir.web.dashboard.private import PrivateScope, export_refusal
from vigil_ir.web.dashboard.views import page

TABLE_FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
REPORT_FORMATS = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8"}
DEFAULT_DAYS = 365


def attachment(text: str, filename: str, media_type: str, *, csv: bool = False) -> Response:
    body = csvsafe.for_file(text) if csv else text
    return Response(body.encode("utf-8"), media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _bad(message: str) -> Response:
    return PlainTextResponse(message, status_code=400)


def _required_period(request: Request) -> tuple[date, date] | str:
    errors: list[str] = []
    start, end = period(request.query_params, errors)
    if errors or start is None or end is None or start > end:
        return " ".join(errors) or "Give the period as ?from=YYYY-MM-DD&to=YYYY-MM-DD (both days included, UTC)."
    return start, end


def _format_and_period(request: Request, formats: dict[str, str]) -> tuple[str, tuple[date, date]] | Response:
    """The download's format and period, or the 400 that says what is wrong with them."""
    fmt, span = request.path_params["fmt"], _required_period(request)
    if fmt not in formats:
        return _bad(f"No format {fmt!r}; use {' or '.join(formats)}.")
    if isinstance(span, str):
        return _bad(span)
    return fmt, span


def exports_page(request: Request) -> Response:
    errors: list[str] = []
    today = clock.now().date()
    start, end = period(request.query_params, errors, default_days=DEFAULT_DAYS, today=today)
    as_of = parse_date(request.query_params.get("as_of"), "As of", errors)
    filters = IncidentFilters.parse({**request.query_params, "from": start and start.isoformat(),
                                     "to": end and end.isoformat()})
    scope = PrivateScope(request)
    with dashboard(request).database.read_session() as session:
        incidents, total = filters.run(session, scope.visible_ids(session))
    return page(request, "exports.html", status_code=400 if errors else 200, errors=errors, start=start, end=end,
                as_of=as_of, incidents=incidents, total=total, filters=filters, page_size=PAGE_SIZE,
                timeline_formats=TIMELINE_FORMATS,
                table_formats=tuple(TABLE_FORMATS), report_formats=tuple(REPORT_FORMATS))


@dataclass(frozen=True)
class PeriodExport:
    """A table exported for a period: its rows, how they render, the file name's start."""

    rows: Callable[[Session, datetime, datetime], list[dict]]
    render: Callable[[list[dict], str], str]
    filename: str


PERIOD_EXPORTS = {
    "incidents": PeriodExport(incident_population, render_population, "incidents"),
    "reviews": PeriodExport(review_rows, lambda rows, fmt: render_rows(rows, REVIEW_COLUMNS, fmt), "review-log"),
    "actions": PeriodExport(action_rows, render_actions, "actions"),
    "acceptances": PeriodExport(acceptance_rows, lambda rows, fmt: render_rows(rows, ACCEPTANCE_COLUMNS, fmt),
                                "acceptances"),
}


def period_download(name: str) -> Callable[[Request], Response]:
    export = PERIOD_EXPORTS[name]

    def download(request: Request) -> Response:
        checked = _format_and_period(request, TABLE_FORMATS)
        if isinstance(checked, Response):
            return checked
        fmt, span = checked
        scope = PrivateScope(request)
        with dashboard(request).database.read_session() as session:
            rows = export.rows(session, *bounds(*span))
            hidden = scope.hidden_keys(session)
        if hidden and any(_incident_key(name, row) in hidden for row in rows):
            return export_refusal()
        return attachment(export.render(rows, fmt), f"{export.filename}-{span[0]}-{span[1]}.{fmt}",
                          TABLE_FORMATS[fmt], csv=fmt == "csv")

    return download


def _incident_key(export: str, row: dict) -> str | None:
    """The incident a row of a period export belongs to (the population, the actions of incidents and
    exercises)."""
    if export == "incidents":
        return row.get("key")
    if export == "actions" and row.get("parent_type") in ("incident", "exercise"):
        return row.get("parent_ref")
    return None


def register_download(request: Request) -> Response:
    fmt, errors = request.path_params["fmt"], []
    as_of = parse_date(request.query_params.get("as_of"), "as_of", errors)
    if fmt not in TABLE_FORMATS or errors:
        return _bad(" ".join(errors) or f"No format {fmt!r}; use csv or json.")
    if as_of and as_of > clock.now().date():
        return _bad(f"as_of {as_of} is in the future.")
    with dashboard(request).database.read_session() as session:
        rows = register_rows(session, as_of)
    name = f"risk-register-{as_of or 'live'}.{fmt}"
    return attachment(render_rows(rows, REGISTER_COLUMNS, fmt), name, TABLE_FORMATS[fmt], csv=fmt == "csv")


def report_download(request: Request) -> Response:
    checked = _format_and_period(request, REPORT_FORMATS)
    if isinstance(checked, Response):
        return checked
    fmt, span = checked
    with dashboard(request).database.read_session() as session:
        text = render_report(session, *bounds(*span), fmt)
    return attachment(text, f"risk-assessment-{span[0]}-{span[1]}.{fmt}", REPORT_FORMATS[fmt])


def _hides_private(request: Request, end: datetime) -> bool:
    """Whether the reader may not see a private incident the bundle would hold (declared before its end)."""
    scope = PrivateScope(request)
    with dashboard(request).database.read_session() as session:
        return bool(scope.hidden_keys(session, declared_before=end))


async def bundle_download(request: Request) -> Response:
    dash, span = dashboard(request), _required_period(request)
    if isinstance(span, str):
        return _bad(span)
    start, end = bounds(*span)
    if await run_in_threadpool(_hides_private, request, end):
        return export_refusal()
    folder = Path(tempfile.mkdtemp(prefix="vigil-bundle-"))
    name = f"evidence-{span[0]}-{span[1]}.zip"
    try:
        # Recorded as an `audit.bundle_exported` event by the bundle writer, with who asked.
        await run_in_threadpool(lambda: export_bundle(dash.database, start=start, end=end, output=folder / name,
                                                      actor=request.state.principal.actor, settings=dash.settings))
    except SigningKeyError as unusable:  # the operator's to fix; the detail (a file path) stays in the log
        shutil.rmtree(folder, ignore_errors=True)
        logging.getLogger(__name__).error("bundle download refused: %s", unusable)
        return PlainTextResponse("The bundle cannot be signed: the installation's signing key is not usable. "
                                 "An operator can see why with `vigil signing-key show`.", status_code=503)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(folder / name, media_type="application/zip", filename=name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))


ROUTES = [("/exports", exports_page, ["GET"], False),
          *((f"/exports/{name}.{{fmt}}", period_download(name), ["GET"], False) for name in PERIOD_EXPORTS),
          ("/exports/risks.{fmt}", register_download, ["GET"], False),
          ("/exports/risk-assessment.{fmt}", report_download, ["GET"], False),
          ("/exports/bundle.zip", bundle_download, ["GET"], False)]
