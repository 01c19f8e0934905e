"""`POST /integrations/alerts/<source>`: authenticate, size-limit, parse, record, then answer.

The answer comes once the delivery is committed (write, then ack): a sender that gets 2xx may forget
the notification. Slack hears of it later, through the outbox. Answers: 200 with what changed; 400 a
body that is not the source's documented shape; 401 a bad signature or token (nothing written); 404
an unknown source, or one with no credential configured; 413 a body over VIGIL_ALERT_MAX_BYTES.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vigil_ir.alerts import intake
from vigil_ir.alerts.signals import BadPayload
from vigil_ir.alerts.sources import sources
from vigil_ir.runtime import Runtime

log = logging.getLogger(__name__)
PATH = "/integrations/alerts/{source}"


def _answer(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": error, "message": message}, status_code=status)


def alert_routes(runtime: Runtime, read_limited) -> list[Route]:
    settings, adapters = runtime.settings, sources()

    async def receive(request: Request) -> Response:
        source = request.path_params["source"]
        adapter = adapters.get(source)
        if adapter is None:
            return _answer(404, "unknown_source", f"Vigil takes alerts from {', '.join(adapters)}.")
        secret = settings.setting(adapter.SETTING)
        if not secret:
            return _answer(404, "source_not_configured", f"Set {adapter.SETTING} to take alerts from {source}.")
        raw = await read_limited(request, settings.alert_max_bytes)
        if raw is None:
            return _answer(413, "request_too_large", f"Alert webhooks are at most {settings.alert_max_bytes} bytes.")
        if not adapter.authentic(secret, request.headers, raw):
            log.warning("alert webhook from %s refused: bad signature or token", source)
            return _answer(401, "unauthenticated", f"The {source} webhook's signature or token does not match.")
        try:
            signals = adapter.parse(raw)
        except BadPayload as problem:
            return _answer(400, "bad_payload", f"Not a {source} webhook: {problem}.")
        received = await run_in_threadpool(intake.record, runtime.database, settings, source, signals)
        if received.changed or received.pages:
            runtime.wake.set()
        return JSONResponse(received.as_json())

    return [Route(PATH, receive, methods=["POST"])]
