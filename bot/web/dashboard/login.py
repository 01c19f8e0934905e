"""/login (page and token form), /login/slack and its callback, /logout.

Signing in replaces the whole session (no fixation) and records `audit.dashboard_signed_in`.
Both POST forms carry the session's CSRF token, and the cookie is SameSite=Lax.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vigil_ir.auth import tokens
from vigil_ir.auth.principal import Principal, slack_role
from vigil_ir.eventlog import append
from vigil_ir.web.dashboard import oidc
from vigil_ir.web.dashboard.auth import SESSION_KEY, csrf_ok, csrf_token, safe_next
from vigil_ir.web.dashboard.context import dashboard
from vigil_ir.web.dashboard.views import page

log = logging.getLogger(__name__)
REASONS = {
    "expired": "Your auditor token has expired. Ask your contact for a new one.",
    "revoked": "Your auditor token was revoked. Ask your contact for a new one.",
    "unknown": "Your auditor token is no longer known. Sign in again.",
    "not_allowed": "Your Slack account may no longer view this dashboard.",
    "signed_out": "You are signed out.",
}


def _login_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    settings = dashboard(request).settings
    message = REASONS.get(request.query_params.get("reason", ""))
    return page(request, "login.html", status_code=status_code, error=error, message=message,
                csrf_value=csrf_token(request), next=safe_next(request.query_params.get("next")),
                slack_missing=settings.missing_slack_sign_in)


def _start_session(request: Request, principal: Principal, target: str | None) -> Response:
    request.session.clear()
    request.session[SESSION_KEY] = principal.to_session()
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse(safe_next(target), status_code=303)


async def login_form(request: Request) -> Response:
    return _login_page(request)


async def login_with_token(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return _login_page(request, error="The sign-in form had expired; please try again.", status_code=400)
    secret = str(form.get("token") or "").strip()
    if not secret:
        return _login_page(request, error="Paste your auditor token.", status_code=400)

    def check():
        with dashboard(request).database.session() as session:
            return tokens.sign_in(session, secret)

    try:
        token = await run_in_threadpool(check)
    except tokens.TokenRefused as refused:
        log.warning("dashboard token sign-in refused (%s) from %s", refused.reason,
                    request.client.host if request.client else "?")
        return _login_page(request, error=str(refused), status_code=401)
    return _start_session(request, Principal("token", str(token.id), token.name, "auditor"), form.get("next"))


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
    if not pending or not hmac.compare_digest(str(pending.get("state", "")), params.get("state", "")):
        return _login_page(request, error="That sign-in link is stale or was not started here; start again.",
                           status_code=400)
    try:
        who = await run_in_threadpool(oidc.exchange, dash.settings, code=params.get("code", ""),
                                      nonce=pending["nonce"])
    except oidc.SignInFailed as failed:
        return _login_page(request, error=str(failed), status_code=401)
    role = await run_in_threadpool(slack_role, dash.settings, who.user_id, who.team_id, dash.workspace_team)
    if role is None:
        log.warning("dashboard sign-in refused for Slack user %s (team %s)", who.user_id, who.team_id)
        return _login_page(request, status_code=403, error=(
            f"You are signed in to Slack as {who.name} ({who.user_id}), but that account may not view this "
            "dashboard. An admin can add it to VIGIL_DASHBOARD_VIEWERS."))
    principal = Principal("slack", who.user_id, who.name, role, who.team_id)

    def record():
        with dash.database.session() as session:
            append(session, stream=tokens.STREAM, kind="audit.dashboard_signed_in", actor=who.user_id,
                   data={"user": who.user_id, "team": who.team_id, "method": "slack", "role": role})

    await run_in_threadpool(record)
    return _start_session(request, principal, pending.get("next"))


async def logout(request: Request) -> Response:
    form = await request.form()
    if not csrf_ok(request, form.get("csrf")):
        return RedirectResponse("/", status_code=303)  # a forged sign-out changes nothing
    request.session.clear()
    return RedirectResponse("/login?reason=signed_out", status_code=303)


# (path, endpoint, methods, public)
ROUTES = [("/login", login_form, ["GET"], True), ("/login", login_with_token, ["POST"], True),
          ("/login/slack", login_with_slack, ["GET"], True),
          ("/login/slack/callback", slack_callback, ["GET"], True), ("/logout", logout, ["POST"], True)]
