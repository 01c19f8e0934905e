"""Sign-in enforcement for every dashboard page and download, CSRF tokens, security headers.

The signed cookie carries only a random session id; on each request the server's session row
decides (not signed out, not revoked, not past VIGIL_SESSION_HOURS), then the principal is checked
again: an auditor token must still be active, a Slack user must still be allowed by the
permissions policy. Anything else goes to /login. A page view (GET) writes only its access-log
event (`vigil_ir.web.dashboard.access`), and not even that above the per-viewer limit.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from vigil_ir.auth import sessions, tokens
from vigil_ir.auth.principal import Principal, slack_access
from vigil_ir.web.dashboard.context import SCOPE_KEY, Dashboard

SESSION_KEY = "sid"  # the cookie's only claim to a signed-in session
# Why a session ended, as the login page's `reason` (messages in login.py).
ENDED = {"signed_out": "signed_out", "revoked": "session_revoked", "expired": "session_expired"}
# No scripts at all; styles only from our own stylesheet; forms only post back to us.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); every POST form carries it."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def same_secret(given: object, expected: object) -> bool:
    """Constant-time equality of a submitted value and a secret, for any text a visitor sends: compared
    as UTF-8 bytes (hmac.compare_digest raises TypeError on a str with non-ASCII characters)."""
    if not isinstance(given, str) or not isinstance(expected, str) or not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def csrf_ok(request: Request, submitted: str | None) -> bool:
    return same_secret(submitted, request.session.get("csrf"))


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


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def resolve(dash: Dashboard, request: Request, route: str) -> tuple[Principal | None, str | None, int | None]:
    """(principal, None, session id) or (None, why not, None). Records the page view (GET/HEAD)."""
    sid = request.session.get(SESSION_KEY)
    if not sid:
        return None, None, None
    with dash.database.session() as session:
        try:
            row = sessions.find(session, sid)
        except sessions.SessionEnded as ended:
            return None, ENDED.get(ended.reason), None
        if row.kind == "token":
            try:
                token = tokens.check(session, token_id=int(row.subject))
            except tokens.TokenRefused as refused:
                return None, refused.reason, None
            principal = Principal("token", str(token.id), token.name, "auditor")
        else:
            access = slack_access(dash.permissions(), dash.settings, row.subject, row.team, dash.workspace_team)
            if access.role is None:
                return None, "not_allowed", None
            principal = Principal("slack", row.subject, row.name, access.role, row.team)
        if request.method in ("GET", "HEAD"):
            dash.access_log.record(session, principal, session_id=row.id, route=route, path=request.url.path,
                                   query_params=request.query_params)
        return principal, None, row.id


class SignIn(BaseHTTPMiddleware):
    """Wraps each dashboard route; `public` routes (login, logout) skip the check."""

    def __init__(self, app, *, dashboard: Dashboard, public: bool = False, route: str = ""):
        super().__init__(app)
        self.dashboard, self.public, self.route = dashboard, public, route

    async def dispatch(self, request: Request, call_next) -> Response:
        request.scope[SCOPE_KEY] = self.dashboard
        if self.public:
            response = await call_next(request)
        else:
            principal, refused, session_id = await run_in_threadpool(resolve, self.dashboard, request, self.route)
            if principal is None:
                if request.session.get(SESSION_KEY):  # the session is dead: forget it
                    request.session.clear()
                response = login_redirect(request, refused)
            else:
                request.state.principal, request.state.session_id = principal, session_id
                response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Audit data should not linger in shared browser caches.
        response.headers.setdefault("Cache-Control", "no-store")
        return response
