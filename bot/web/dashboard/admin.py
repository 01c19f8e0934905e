"""/admin/tokens: the auditor tokens and their state, for admins only (managed with the CLI)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.views import page


def token_list(request: Request) -> Response:
    if not request.state.principal.is_admin:
        return page(request, "forbidden.html", status_code=403)
    with dashboard(request).database.session() as session:
        rows = tokens.all_tokens(session)
    now = clock.now()
    return page(request, "tokens.html", tokens=[(t, t.state(now)) for t in rows])


ROUTES = [("/admin/tokens", token_list, ["GET"], False)]
