"""The dashboard's routes, each wrapped in the session cookie and the sign-in check.

The routes are added to the main Starlette app one by one (not under a catch-all mount), so
/slack/events and /healthz keep their own behaviour and see neither the cookie nor the check.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from vigil_ir.auth.throttle import Throttle
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.web.dashboard import admin, downloads, incidents, insights, login, people, registers
from vigil_ir.web.dashboard.access import AccessLog
from vigil_ir.web.dashboard.auth import SignIn
from vigil_ir.web.dashboard.context import Dashboard

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "vigil_session"


def session_secret(settings: Settings) -> str:
    if settings.session_secret:
        return settings.session_secret
    log.warning("VIGIL_SESSION_SECRET is not set: using a random one, so dashboard sessions end when "
                "this process restarts (and are not shared between processes).")
    return secrets.token_urlsafe(32)


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secure_cookie(settings: Settings) -> bool:
    """`Secure` unless Vigil is reached over plain http on loopback: the base URL when set, else
    the address `vigil serve` listens on (127.0.0.1 by default, for trying it out locally)."""
    url = urlsplit(settings.base_url or f"http://{settings.host}")
    return not (url.scheme.lower() == "http" and _loopback(url.hostname))


def create_dashboard(settings: Settings, database: Database) -> list[BaseRoute]:
    dashboard = Dashboard(database=database, settings=settings,
                          access_log=AccessLog(limit=settings.access_log_limit,
                                               window=timedelta(minutes=settings.access_log_window_minutes)),
                          throttle=Throttle(limit=settings.sign_in_failure_limit,
                                            window=timedelta(minutes=settings.sign_in_window_minutes)))
    # The cookie only carries the session id (and CSRF / sign-in state); the server row decides.
    session = Middleware(SessionMiddleware, secret_key=session_secret(settings), session_cookie=COOKIE,
                         max_age=int(settings.session_hours * 3600), same_site="lax",
                         https_only=secure_cookie(settings))
    routes: list[BaseRoute] = []
    for module in (login, incidents, insights, registers, people, downloads, admin):
        for path, endpoint, methods, public in module.ROUTES:
            stack = [session, Middleware(SignIn, dashboard=dashboard, public=public, route=path)]
            routes.append(Route(path, endpoint, methods=methods, middleware=stack))
    # The stylesheet holds no data; it is public so the login page is styled too.
    routes.append(Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"))
    return routes
