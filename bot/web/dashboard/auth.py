"""Sign-in enforcement for every dashboard page and download, CSRF tokens, security headers.

The principal lives in the signed session cookie; it is checked again on each request: an auditor
token must still be active (and each use is logged as an `audit.dashboard_access` event), a Slack
user must still be allowed by the current settings. Anything else goes to /login.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from vigil_ir.auth import tokens
from vigil_ir.auth.principal import Principal, slack_role
from vigil_ir.web.dashboard.context import SCOPE_KEY, Dashboard

SESSION_KEY = "principal"
# No scripts at all; styles only from our own stylesheet; forms only post back to us.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); every POST form carries it."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(expected, submitted)


def safe_next(target: str | None) -> str:
    """Only paths on this site: `//evil.example` or `https://…` would make /login an open redirect."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def login_redirect(request: Request, reason: str | None = None) -> Response:
    if request.method not in ("GET", "HEAD"):
        return PlainTextResponse("Sign in first (GET /login).", status_code=401)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    params = {"next": here} if here != "/" else {}
    if reason:
        params["reason"] = reason
    return RedirectResponse("/login" + (f"?{urlencode(params)}" if params else ""), status_code=303)


def resolve(dash: Dashboard, request: Request) -> tuple[Principal | None, str | None]:
    """(principal, None) or (None, why not); logs the access when it is an auditor token."""
    data = request.session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None, None
    if data.get("kind") == "token":
        try:
            with dash.database.session() as session:
                token = tokens.use(session, token_id=int(data["id"]), path=request.url.path,
                                   query=request.url.query)
        except tokens.TokenRefused as refused:
            return None, refused.reason
        return Principal("token", str(token.id), token.name, "auditor"), None
    if data.get("kind") == "slack":
        role = slack_role(dash.settings, data["id"], data.get("team"), dash.workspace_team)
        if role is None:
            return None, "not_allowed"
        return Principal("slack", data["id"], data.get("name") or data["id"], role, data.get("team")), None
    return None, None


class SignIn(BaseHTTPMiddleware):
    """Wraps each dashboard route; `public` routes (login, logout) skip the check."""

    def __init__(self, app, *, dashboard: Dashboard, public: bool = False):
        super().__init__(app)
        self.dashboard, self.public = dashboard, public

    async def dispatch(self, request: Request, call_next) -> Response:
        request.scope[SCOPE_KEY] = self.dashboard
        if self.public:
            response = await call_next(request)
        else:
            principal, refused = await run_in_threadpool(resolve, self.dashboard, request)
            if principal is None:
                if refused:  # the session is dead: forget it, say why on the login page
                    request.session.clear()
                response = login_redirect(request, refused)
            else:
                request.state.principal = principal
                response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Audit data should not linger in shared browser caches.
        response.headers.setdefault("Cache-Control", "no-store")
        return response
