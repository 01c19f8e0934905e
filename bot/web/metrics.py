"""Request id + HTTP metrics middleware, the Slack ack timer and `GET /metrics`.

`/metrics` is outside the dashboard sign-in. With VIGIL_METRICS_TOKEN set it requires
`Authorization: Bearer <token>`; unset, it is open (keep it off the public internet, or set the
token). It shows counts and ages, never records or secrets.
"""

from __future__ import annotations

import functools
import hmac
import time
import uuid

from prometheus_client import generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from vigil_ir import logs
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.metrics import HTTP_REQUESTS, SLACK_ACK_SECONDS, build_registry, slack_request_type

# generate_latest writes the classic text format (what every Prometheus version reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A slash command names its `command` field before the free `text`, well within this.
PEEK_BYTES = 1024
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestContext:
    """ASGI middleware: a fresh request id (context variable + `X-Request-Id` response header) and
    `vigil_http_requests_total` by route template (not raw path, to bound the label values)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = uuid.uuid4().hex
        token = logs.request_id.set(rid)
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            method = scope["method"] if scope["method"] in METHODS else "other"
            HTTP_REQUESTS.labels(getattr(route, "path", None) or "unmatched", method, str(status)).inc()
        # Left set when the app raised, so the server's error log line still carries the id.
        logs.request_id.reset(token)


def ack_timer(handler):
    """Time the Slack endpoint into `vigil_slack_ack_seconds{type}`. The type comes from the content
    type and the first bytes of the body, seen as the handler reads it (never read or parsed twice)."""
    @functools.wraps(handler)
    async def timed(request: Request) -> Response:
        started, prefix = time.perf_counter(), bytearray()

        async def peek():
            message = await request.receive()
            if message["type"] == "http.request" and len(prefix) < PEEK_BYTES:
                prefix.extend(message.get("body", b"")[:PEEK_BYTES - len(prefix)])
            return message

        response = await handler(Request(request.scope, peek))
        kind = slack_request_type(request.headers.get("content-type", ""), bytes(prefix))
        SLACK_ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
        return response
    return timed


def metrics_route(settings: Settings, database: Database) -> Route:
    registry = build_registry(database, settings)
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse("Send Authorization: Bearer <VIGIL_METRICS_TOKEN>.\n", status_code=401,
                                         headers={"WWW-Authenticate": 'Bearer realm="vigil-metrics"'})
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, headers={"Content-Type": CONTENT_TYPE})

    return Route("/metrics", metrics, methods=["GET"])
