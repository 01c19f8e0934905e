"""/admin/tokens and /admin/sessions, for admins only: the auditor tokens (managed with the CLI) and
the signed-in sessions, which an admin may end here (a POST carrying the CSRF token)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vigil_ir import clock
from vigil_ir.auth import sessions, tokens
from vigil_ir.people.directory import Directory
from vigil_ir.web.dashboard.auth import client_address, csrf_ok
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.views import page


def token_list(request: Request) -> Response:
    if not request.state.principal.is_admin:
        return page(request, "forbidden.html", status_code=403)
    with dashboard(request).database.session() as session:
        rows = tokens.all_tokens(session)
    now = clock.now()
    return page(request, "tokens.html", tokens=[(t, t.state(now)) for t in rows])


def _session_page(request: Request, *, message: str | None = None, error: str | None = None,
                  status_code: int = 200) -> Response:
    include_ended = request.query_params.get("all") == "1"
    with dashboard(request).database.session() as session:
        rows = sessions.listing(session, include_ended=include_ended, limit=200)
        people = Directory.load(session)
    now = clock.now()
    listed = [(row, row.state(now), people.label(row.subject) if row.kind == "slack" else
               f"{row.name} (auditor token {row.subject})") for row in rows]
    return page(request, "sessions.html", status_code=status_code, sessions=listed, include_ended=include_ended,
                message=message, error=error, current=getattr(request.state, "session_id", None))


def session_list(request: Request) -> Response:
    if not request.state.principal.is_admin:
        return page(request, "forbidden.html", status_code=403)
    return _session_page(request)


async def session_revoke(request: Request) -> Response:
    principal = request.state.principal
    if not principal.is_admin:
        return page(request, "forbidden.html", status_code=403)
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return await run_in_threadpool(lambda: _session_page(request, status_code=400, error=(
            "The form had expired; nothing was revoked. Please try again.")))
    raw, dash, address = str(form.get("session_id") or "").strip(), dashboard(request), client_address(request)

    def revoke() -> Response:
        try:
            with dash.database.session() as session:
                row = sessions.revoke(session, session_id=int(raw), actor=principal.actor, address=address)
                label = row.name
        except ValueError as exc:  # includes a session id that is not a number
            text = str(exc) if raw.isdigit() else f"{raw[:20]!r} is not a session id"
            return _session_page(request, status_code=400, error=f"Nothing was revoked: {text}.")
        except LookupError as exc:
            return _session_page(request, status_code=404, error=f"Nothing was revoked: {exc}.")
        return _session_page(request, message=f"Ended session {raw} ({label}).")

    if raw.isdigit() and len(raw) < 12:
        return await run_in_threadpool(revoke)
    return await run_in_threadpool(lambda: _session_page(request, status_code=400, error=(
        f"Nothing was revoked: {raw[:20]!r} is not a session id.")))


ROUTES = [("/admin/tokens", token_list, ["GET"], False), ("/admin/sessions", session_list, ["GET"], False),
          ("/admin/sessions/revoke", session_revoke, ["POST"], False)]
