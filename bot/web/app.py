"""The Starlette app uvicorn serves: `POST /slack/events`, `GET /healthz`, the dashboard pages,
`POST /integrations/alerts/<source>` (bot/web/alerts.py).

bolt's sync `App.dispatch` runs in Starlette's thread pool so requests do not queue behind
each other on the event loop.
"""

from __future__ import annotations

import contextlib
import logging

from slack_bolt import BoltRequest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vigil_ir.runtime import Runtime
from vigil_ir.web.alerts import alert_routes
from vigil_ir.tickets.webhooks import route as ticket_webhooks
from vigil_ir.web.dashboard.app import create_dashboard
from vigil_ir.web.metrics import RequestContext, ack_timer, metrics_route

log = logging.getLogger(__name__)


def not_configured_message(missing: list[str]) -> str:
    return (f"Slack is not configured: set {', '.join(missing)} (create the Slack app from manifest.yaml; "
            "see README.md, 'Slack app setup').")


# Slack's payloads are well under this; a larger POST is refused before it is read into memory.
MAX_SLACK_BODY_BYTES = 1024 * 1024


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None once it is known to exceed `limit` bytes (by Content-Length, or while
    reading a chunked body): the rest is never read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_web_app(runtime: Runtime, *, background_delivery: bool = True) -> Starlette:
    missing = runtime.settings.missing_slack_credentials
    if missing:
        log.warning(not_configured_message(missing))

    @ack_timer
    async def slack_events(request: Request) -> Response:
        if runtime.bolt is None:
            return JSONResponse({"ok": False, "error": "slack_not_configured",
                                 "message": not_configured_message(missing)}, status_code=503)
        raw = await read_limited(request, MAX_SLACK_BODY_BYTES)
        if raw is None:
            return JSONResponse({"ok": False, "error": "request_too_large",
                                 "message": f"Slack requests are at most {MAX_SLACK_BODY_BYTES} bytes."},
                                status_code=413)
        body = raw.decode("utf-8", errors="replace")
        bolt_request = BoltRequest(body=body, query=request.url.query, headers=dict(request.headers))
        bolt_response = await run_in_threadpool(runtime.bolt.dispatch, bolt_request)
        return Response(status_code=bolt_response.status, content=bolt_response.body,
                        headers=bolt_response.first_headers_without_set_cookie())

    def database_ok() -> bool:
        try:
            with runtime.database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - reported as unhealthy
            return False

    async def healthz(_: Request) -> Response:
        healthy = await run_in_threadpool(database_ok)
        return JSONResponse({"ok": healthy, "database": "ok" if healthy else "unreachable",
                             "slack": "configured" if runtime.bolt else "not configured"},
                            status_code=200 if healthy else 503)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        if background_delivery:
            runtime.start_background_delivery()
        try:
            yield
        finally:
            runtime.shutdown()

    # The dashboard's routes each carry their own session + sign-in middleware (bot/web/dashboard).
    return Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"]),
                             Route("/healthz", healthz, methods=["GET"]),
                             metrics_route(runtime.settings, runtime.database),
                             *alert_routes(runtime, read_limited),
                             ticket_webhooks(runtime.settings, runtime.database, runtime.wake.set),
                             *create_dashboard(runtime.settings, runtime.database)], lifespan=lifespan,
                     middleware=[Middleware(RequestContext)])
