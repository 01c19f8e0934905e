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

from vigil_ir.alerts import service, triage
from vigil_ir.alerts.models import AlertGroup
from vigil_ir.alerts.signals import BadPayload, Signal
from vigil_ir.alerts.sources import sources
from vigil_ir.runtime import Runtime
from vigil_ir.paging import service as paging
from vigil_ir.slack import notify
from vigil_ir.slack.escape import esc, mention

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
        received = await run_in_threadpool(record, runtime, source, signals)
        if received.changed or received.pages:
            runtime.wake.set()
        return JSONResponse(received.as_json())

    return [Route(PATH, receive, methods=["POST"])]


PAGE_WORDS = {"acknowledged": ":eyes: acknowledged", "escalated": ":arrow_double_up: escalated",
              "resolved": ":white_check_mark: resolved"}


def page_changed(session, signal) -> bool:
    """A provider's word about a page: recorded on the incident, and said in its channel."""
    from vigil_ir.incidents.models import Incident

    page = paging.page_for(session, signal)
    if page is None:
        return False
    paging.record_signal(session, signal)
    if signal.action in PAGE_WORDS:
        who = mention(page.acknowledged_by) if signal.action == "acknowledged" and page.acknowledged_by else \
            esc(signal.responder or signal.provider)
        notify.post_in_channel(session, session.get(Incident, page.incident_id),
                               f"{PAGE_WORDS[signal.action]}: the page to *{esc(page.target)}* ({who}).")
    return True


def record(runtime: Runtime, source: str, signals: list[Signal]) -> service.Received:
    """One delivery in one transaction; a new group whose severity VIGIL_ALERT_AUTO_DECLARE names is
    declared at once, set up like any incident."""
    with runtime.database.session() as session:
        received = service.receive(session, source=source, signals=signals, page_handler=page_changed)
        for group_id in received.opened_groups:
            incident = triage.auto_declare(session, group=session.get(AlertGroup, group_id),
                                           severities=runtime.settings.auto_declare_severities)
            if incident is not None:
                notify.setup_incident(session, incident)
                notify.suggest_playbooks(session, incident)
    return received
