"""Socket Mode: Slack's requests arrive over a connection Vigil opens, so no public URL is needed.

The connection is opened with the app-level token (`apps.connections.open` on SLACK_API_URL, then
the WebSocket it names). Slack being unreachable at start is not a crash: one log line saying why,
then another try after a growing pause (1 s … 60 s), until it connects or the process is told to
stop. Once connected, slack_sdk's client reconnects by itself. A refused token is final: retrying
cannot fix it, so it ends the command with a message naming the variable.
"""

from __future__ import annotations

import logging
import threading

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 60.0
# Answers of apps.connections.open that no retry can change.
REFUSED_TOKEN_ERRORS = {"invalid_auth", "not_authed", "not_allowed_token_type", "account_inactive",
                        "token_revoked", "token_expired", "missing_scope"}


class SocketModeRefused(Exception):
    """Slack refused the app-level token; the message says what to change."""


def pauses(first: float = FIRST_PAUSE_SECONDS, longest: float = LONGEST_PAUSE_SECONDS):
    """1, 2, 4 … seconds, capped."""
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, longest)


def why(failure: BaseException) -> str:
    """One line: Slack's error code, or the network error, never a traceback."""
    if isinstance(failure, SlackApiError):
        return f"Slack answered {failure.response.get('error') or failure.response.status_code}"
    reason = getattr(failure, "reason", None) or failure
    return f"{type(failure).__name__}: {str(reason).strip().splitlines()[0][:200] if str(reason).strip() else ''}"


def connect_with_retries(handler: SocketModeHandler, stop: threading.Event) -> bool:
    """Connect, retrying with backoff; False if told to stop first. SocketModeRefused for a bad token."""
    waits = pauses()
    while not stop.is_set():
        try:
            handler.connect()
            return True
        except SlackApiError as refused:
            error = refused.response.get("error")
            if error in REFUSED_TOKEN_ERRORS:
                raise SocketModeRefused(
                    f"Slack refused SLACK_APP_TOKEN ({error}): use the app-level token (xapp-…) with the "
                    "connections:write scope from the app's Basic Information page.") from None
            failure: BaseException = refused
        except Exception as unreachable:  # noqa: BLE001 - network errors of every kind: retried
            failure = unreachable
        pause = next(waits)
        log.warning("Cannot connect to Slack in Socket Mode (%s); trying again in %.0f s", why(failure), pause)
        stop.wait(pause)
    return False


def serve_socket_mode(bolt: App, *, app_token: str, api_url: str, timeout: float, stop: threading.Event) -> None:
    """Connect and serve until `stop` is set."""
    # apps.connections.open goes to SLACK_API_URL like every other call (tests point it at a fake).
    web_client = WebClient(base_url=api_url, timeout=timeout)
    handler = SocketModeHandler(bolt, app_token=app_token, web_client=web_client)
    try:
        if connect_with_retries(handler, stop):
            log.info("Connected to Slack in Socket Mode")
            stop.wait()
    finally:
        handler.close()
