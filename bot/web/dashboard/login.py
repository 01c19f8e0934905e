"""/login (page and token form), /login/slack and its callback, /logout.

Signing in opens a server-side session (`vigil_ir.auth.sessions`: `audit.dashboard_signed_in`) and
replaces the whole cookie (no fixation); signing out ends the session row (`audit.dashboard_signed_out`),
so a copy of the cookie stops working too. Failed token sign-ins are throttled per address and per
token prefix (`vigil_ir.auth.throttle`). Both POST forms carry the session's CSRF token, and the
cookie is SameSite=Lax.
"""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vigil_ir.auth import sessions, tokens
from vigil_ir.auth.principal import slack_access
from vigil_ir.web.dashboard import oidc
from vigil_ir.web.dashboard.auth import SESSION_KEY, client_address, csrf_ok, csrf_token, safe_next, same_secret
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.views import page

log = logging.getLogger(__name__)
REASONS = {
    "expired": "Your auditor token has expired. Ask your contact for a new one.",
    "revoked": "Your auditor token was revoked. Ask your contact for a new one.",
    "unknown": "Your auditor token is no longer known. Sign in again.",
    "not_allowed": "Your Slack account may no longer view this dashboard.",
    "signed_out": "You are signed out.",
    "session_revoked": "Your session was ended by an admin. Sign in again.",
    "session_expired": "Your session has expired. Sign in again.",
}


def _login_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    settings = dashboard(request).settings
    message = REASONS.get(request.query_params.get("reason", ""))
    return page(request, "login.html", status_code=status_code, error=error, message=message,
                csrf_value=csrf_token(request), next=safe_next(request.query_params.get("next")),
                slack_missing=settings.missing_slack_sign_in)


def _start_session(request: Request, sid: str, target: str | None) -> Response:
    request.session.clear()
    request.session[SESSION_KEY] = sid
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(safe_next(target), status_code=303)


def _end_previous(session, request: Request, address: str | None) -> None:
    """Signing in again in the same browser ends the session it had (one live session per cookie)."""
    previous = request.session.get(SESSION_KEY)
    if previous:
        sessions.sign_out(session, sid=previous, address=address)


def _too_many(request: Request, seconds: int) -> Response:
    minutes = max(1, -(-seconds // 60))
    response = _login_page(request, status_code=429, error=(
        f"Too many failed sign-ins from this address or with this token. Try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."))
    response.headers["Retry-After"] = str(seconds)
    return response


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login_with_token(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return _login_page(request, error="The sign-in form had expired; please try again.", status_code=400)
    secret = str(form.get("token") or "").strip()
    if not secret:
        return _login_page(request, error="Paste your auditor token.", status_code=400)

    dash, address = dashboard(request), client_address(request)
    keys = dash.throttle.keys(address=address, secret=secret)

    def check() -> tuple[str, object]:
        """("wait", seconds) | ("refused", TokenRefused) | ("ok", session id)."""
        with dash.database.session() as session:
            wait = dash.throttle.retry_after(session, keys)
            if wait is not None:  # refused without looking at the token; still counted
                dash.throttle.failed(session, keys, reason="throttled", address=address, secret=secret)
                return "wait", wait
            try:
                token = tokens.sign_in(session, secret)
            except tokens.TokenRefused as refused:
                dash.throttle.failed(session, keys, reason=refused.reason, address=address, secret=secret)
                return "refused", refused
            _end_previous(session, request, address)
            new = sessions.start(session, kind="token", subject=str(token.id), name=token.name, team=None,
                                 hours=dash.settings.session_hours, address=address, method="auditor_token")
            dash.access_log.start(session, new.row.actor)
            return "ok", new.sid

    outcome, value = await run_in_threadpool(check)
    if outcome == "wait":
        log.warning("dashboard token sign-in throttled from %s", address or "?")
        return _too_many(request, value)
    if outcome == "refused":
        log.warning("dashboard token sign-in refused (%s) from %s", value.reason, address or "?")
        return _login_page(request, error=str(value), status_code=401)
    return _start_session(request, value, form.get("next"))


async def login_with_slack(request: Request) -> Response:
    settings = dashboard(request).settings
    if settings.missing_slack_sign_in:
        return RedirectResponse("/login", status_code=303)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    request.session["oidc"] = {"state": state, "nonce": nonce, "next": safe_next(request.query_params.get("next"))}
    team = settings.slack_team_id if settings.dashboard_allow_workspace else None
    return RedirectResponse(oidc.authorize_url(settings, state=state, nonce=nonce, team=team), status_code=303)


async def slack_callback(request: Request) -> Response:
    dash, params = dashboard(request), request.query_params
    pending = request.session.pop("oidc", None)  # one use only
    if dash.settings.missing_slack_sign_in:
        return RedirectResponse("/login", status_code=303)
    if params.get("error"):
        return _login_page(request, error=f"Slack did not sign you in ({params['error']}).", status_code=401)
    if not pending or not same_secret(params.get("state"), pending.get("state")):
        return _login_page(request, error="That sign-in link is stale or was not started here; start again.",
                           status_code=400)
    try:
        who = await run_in_threadpool(oidc.exchange, dash.settings, code=params.get("code", ""),
                                      nonce=pending["nonce"])
    except oidc.SignInFailed as failed:
        return _login_page(request, error=str(failed), status_code=401)
    access = await run_in_threadpool(slack_access, dash.permissions(), dash.settings, who.user_id, who.team_id,
                                      dash.workspace_team)
    if access.role is None:
        log.warning("dashboard sign-in refused for Slack user %s (team %s)", who.user_id, who.team_id)
        return _login_page(request, status_code=403, error=(
            f"You are signed in to Slack as {who.name} ({who.user_id}), but that account may not use this "
            f"dashboard. {access.refusal} An admin can add you to VIGIL_DASHBOARD_VIEWERS."))

    def record() -> str:
        with dash.database.session() as session:
            _end_previous(session, request, client_address(request))
            new = sessions.start(session, kind="slack", subject=who.user_id, name=who.name, team=who.team_id,
                                 hours=dash.settings.session_hours, address=client_address(request),
                                 method="slack", extra={"team": who.team_id, "role": access.role})
            dash.access_log.start(session, new.row.actor)
            return new.sid

    sid = await run_in_threadpool(record)
    return _start_session(request, sid, pending.get("next"))


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return RedirectResponse("/", status_code=303)  # a forged sign-out changes nothing
    sid, dash = request.session.get(SESSION_KEY), dashboard(request)
    if sid:
        def end() -> None:
            with dash.database.session() as session:
                row = sessions.sign_out(session, sid=sid, address=client_address(request))
                if row is not None:
                    dash.access_log.flush(session, row.actor)

        await run_in_threadpool(end)
    request.session.clear()
    return RedirectResponse("/login?reason=signed_out", status_code=303)


# (path, endpoint, methods, public)
ROUTES = [("/login", login_form, ["GET"], True), ("/login", login_with_token, ["POST"], True),
          ("/login/slack", login_with_slack, ["GET"], True),
          ("/login/slack/callback", slack_callback, ["GET"], True), ("/logout", logout, ["POST"], True)]
