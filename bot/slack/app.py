"""The bolt App factory: verification, dedupe of retried events, listeners."""

from __future__ import annotations

import logging
import threading
import time

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from vigil_ir.bidi import neutralise_all
from vigil_ir.idempotency import previous_result
from vigil_ir.slack import bolt_patch, envelope, failures, hooks, limits
from vigil_ir.slack.deps import Deps
from vigil_ir.slack.listeners import actions, events, incident_command, playbook_actions, shortcuts, views
from vigil_ir.slack.listeners import risk_actions, risk_command, risk_views, signoff_views
from vigil_ir.slack.listeners import action_listeners, alert_actions, page_views

log = logging.getLogger(__name__)
bolt_patch.apply()


# Calls made while Slack waits for our ack (views.open, users.info, auth.test) must end well inside
# Slack's 3 s: a short timeout, and a 429 is answered to the user instead of slept on.
INLINE_TIMEOUT_SECONDS = 2.0


class SafeTextClient(WebClient):
    """Every call's text shows bidi control characters instead of obeying them (vigil_ir.bidi), and its
    blocks and views are held to Slack's limits (vigil_ir.slack.limits.enforce): one place for all of
    Vigil's Slack output, whichever builder made it."""

    def api_call(self, api_method, *, data=None, params=None, json=None, **kwargs):  # noqa: A002 - slack_sdk's name
        return super().api_call(api_method, data=limits.enforce_call(neutralise_all(data)),
                                params=limits.enforce_call(neutralise_all(params)),
                                json=limits.enforce_call(neutralise_all(json)), **kwargs)


def make_client(settings, *, retry_rate_limits: bool = True, timeout: float | None = None) -> WebClient:
    """The Web API client: the CLI's retries one 429; the outbox and inline calls handle their own."""
    handlers = [ConnectionErrorRetryHandler()]
    if retry_rate_limits:
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    return SafeTextClient(token=settings.slack_bot_token, base_url=settings.slack_api_url,
                          timeout=timeout or settings.slack_timeout_seconds, retry_handlers=handlers)


def make_inline_client(settings) -> WebClient:
    return make_client(settings, retry_rate_limits=False,
                       timeout=min(INLINE_TIMEOUT_SECONDS, settings.slack_timeout_seconds))


AUTH_RETRY_SECONDS = 30


def cached_authorize(client: WebClient):
    """Bolt's authorize hook without `auth.test` at construction (it would need Slack to start).

    The bot's own ids come from `auth.test` once, on first use; they let bolt ignore the bot's
    own events. If Slack cannot answer, requests go through without them, and `auth.test` is
    tried again at most every AUTH_RETRY_SECONDS, by one request, outside the lock, so a slow
    Slack never holds other acks back.
    """
    identity: dict = {}
    state = {"next_try": 0.0}
    lock = threading.Lock()

    def authorize(enterprise_id, team_id):
        with lock:
            known = dict(identity)
            should_try = not known and time.monotonic() >= state["next_try"]
            if should_try:
                state["next_try"] = time.monotonic() + AUTH_RETRY_SECONDS
        if should_try:
            try:
                answer = client.auth_test()
                known = {"bot_user_id": answer.get("user_id"), "bot_id": answer.get("bot_id"),
                         "team_id": answer.get("team_id")}
                with lock:
                    identity.update(known)
            except Exception as failure:  # noqa: BLE001 - Slack being down must not block requests
                log.warning("auth.test failed (%s); continuing without the bot's ids", failure)
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=known.get("team_id") or team_id,
                               bot_token=client.token, bot_user_id=known.get("bot_user_id"),
                               bot_id=known.get("bot_id"))

    return authorize


def before_authorize(settings):
    def check_body(body, next):
        """A signed body without the shape of a Slack request (see bot/slack/envelope.py): 400, saying why.

        A `response_url` outside Slack's hooks host is dropped here, before any listener could follow it.
        """
        if body.get("type") == envelope.MALFORMED:
            return BoltResponse(status=400, body=f"Malformed Slack request: {body.get('problem')}")
        hooks.drop_foreign_response_urls(body, settings.slack_hooks_url)
        return next()
    return check_body


def create_bolt_app(deps: Deps, client: WebClient | None = None, *, socket_mode: bool = False) -> App:
    """In Socket Mode Slack's requests arrive over the app token's own connection, unsigned: there is
    no signing secret to check them with (and none is needed)."""
    settings = deps.settings
    client = client or make_inline_client(settings)
    # bolt gives each request a client carrying the token from `authorize`; the template it copies
    # (base URL, timeout, retry handlers) must hold no token, or bolt warns that it ignores it.
    template = WebClient(base_url=client.base_url, timeout=client.timeout, retry_handlers=client.retry_handlers)
    app = App(client=template, signing_secret=None if socket_mode else settings.slack_signing_secret,
              request_verification_enabled=not socket_mode, authorize=cached_authorize(client),
              process_before_response=True, raise_error_for_unhandled_request=False,
              before_authorize=before_authorize(settings))
    app.error(failures.handle_error)  # a clear answer instead of bolt's bare 500 (bot/slack/failures.py)

    @app.middleware
    def drop_redelivered_events(body, next):
        """Slack redelivers events (X-Slack-Retry-Num); one already recorded is acked and skipped.

        Listeners insert the key in the same transaction as their change, so a first delivery
        that failed half-way is not mistaken for a handled one.
        """
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            with deps.database.read_session() as session:  # a read: no write lock on SQLite
                if previous_result(session, f"slack-event:{event_id}") is not None:
                    return BoltResponse(status=200, body="")
        return next()

    incident_command.register(app, deps)
    views.register(app, deps)
    events.register(app, deps)
    shortcuts.register(app, deps)
    actions.register(app, deps)
    risk_command.register(app, deps)
    risk_views.register(app, deps)
    signoff_views.register(app, deps)
    risk_actions.register(app, deps)
    playbook_actions.register(app, deps)
    action_listeners.register(app, deps)
    alert_actions.register(app, deps)
    page_views.register(app, deps)
    return app
