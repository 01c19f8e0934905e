"""`POST /integrations/tickets/<tracker>`: a tracker's webhook, verified, deduplicated, applied.

Answers: 404 for a tracker that is not set up, 413 for a body over 1 MiB, 401 when the signature does
not match (or a Linear delivery is over a minute old), 400 for a body that is not JSON, and 200
otherwise, with what was done (`applied`, `duplicate`, `unchanged`, `stale`, `not_linked`, or
`ignored` with the reason). A refusal writes nothing. A delivery id already handled changes nothing
(`ticket-webhook:<tracker>:<delivery>` in processed_key, written in the transaction that applies it).
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.followup import actions
from vigil_ir.idempotency import first_time
from vigil_ir.tickets import service
from vigil_ir.tickets.config import config_for
from vigil_ir.tickets.trackers import Tracker, Webhook, WebhookRefused

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024


def apply(database: Database, tracker: Tracker, hook: Webhook) -> dict:
    ticket = hook.ticket
    with database.session() as session:
        row = service.by_ticket(session, tracker.name, ticket)
        if row is None:
            return {"result": "not_linked", "ticket": ticket.key}
        if not first_time(session, f"ticket-webhook:{tracker.name}:{hook.delivery}"):
            return {"result": "duplicate", "delivery": hook.delivery}
        action = actions.locked(session, row.action_id)
        row = service.of_action(session, row.action_id, lock=True)
        before = row.ticket_updated_at
        event = service.apply_remote(session, action=action, row=row, ticket=ticket, label=tracker.label,
                                     source="webhook", delivery=hook.delivery)
        if event is not None:
            from vigil_ir.slack import action_blocks  # the owner's DM: a Slack rendering of the change

            action_blocks.ticket_changed(session, action, row, event)
        if event is None:
            stale = before is not None and ticket.updated_at is not None and \
                clock.to_utc(ticket.updated_at) < clock.to_utc(before)
            return {"result": "stale" if stale else "unchanged", "ticket": ticket.key}
        return {"result": "applied", "ticket": ticket.key, "event": event.kind, "action": action.key}


def route(settings: Settings, database: Database, wake=None) -> Route:
    async def receive(request: Request) -> JSONResponse:
        name = request.path_params["tracker"]
        tracker = config_for(settings).trackers.get(name)
        if tracker is None:
            return JSONResponse({"ok": False, "error": "tracker_not_configured",
                                 "message": f"No tracker {name!r} is set up here (docs/integrations.md)."},
                                status_code=404)
        from vigil_ir.web.app import read_limited

        body = await read_limited(request, MAX_BODY_BYTES)
        if body is None:
            return JSONResponse({"ok": False, "error": "request_too_large"}, status_code=413)
        try:
            hook = tracker.webhook(dict(request.headers), body)
        except WebhookRefused as refused:
            log.warning("%s webhook refused: %s", tracker.label, refused)
            return JSONResponse({"ok": False, "error": "invalid_signature", "message": str(refused)}, status_code=401)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as bad:
            return JSONResponse({"ok": False, "error": "invalid_payload",
                                 "message": f"Not a {tracker.label} webhook body ({type(bad).__name__})."},
                                status_code=400)
        if hook.ticket is None:
            return JSONResponse({"ok": True, "result": "ignored", "reason": hook.ignored})
        outcome = await run_in_threadpool(apply, database, tracker, hook)
        if outcome["result"] == "applied" and wake is not None:
            wake()  # the owner's DM, a ticket close, are outbox items
        return JSONResponse({"ok": True, **outcome})

    return Route("/integrations/tickets/{tracker}", receive, methods=["POST"])

