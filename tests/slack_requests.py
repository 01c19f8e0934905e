"""Build and sign Slack requests in Slack's own shapes (see bolt-python tests/scenario_tests)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import quote, urlencode

SECRET = "test-signing-secret"
TEAM = {"id": "T0FAKE", "domain": "fake"}
_counter = itertools.count(1)


def signed_headers(body: str, *, secret: str = SECRET, timestamp: int | None = None,
                   content_type: str = "application/x-www-form-urlencoded") -> dict:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": content_type}


def slash_command(text: str, *, user: str = "U0DECLARER", channel: str = "C0GENERAL", command: str = "/incident",
                  response_url: str = "http://127.0.0.1:9/none") -> str:
    return urlencode({
        "token": "legacy", "team_id": TEAM["id"], "team_domain": TEAM["domain"], "channel_id": channel,
        "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command, "text": text,
        "api_app_id": "A0VIGIL", "is_enterprise_install": "false", "response_url": response_url,
        "trigger_id": f"trigger.{next(_counter)}",
    })


def interactive(payload: dict) -> str:
    return "payload=" + quote(json.dumps(payload))


def input_value(block_type: str, value) -> dict:
    """The view.state.values entry for one input element."""
    if value is None:
        return {"type": block_type}
    key = {"plain_text_input": "value", "static_select": "selected_option", "datetimepicker": "selected_date_time",
           "checkboxes": "selected_options"}[block_type]
    if block_type == "static_select":
        value = {"value": value, "text": {"type": "plain_text", "text": value}}
    return {"type": block_type, key: value}


def view_submission(view: dict, values: dict, *, user: str = "U0DECLARER", view_id: str | None = None) -> str:
    """`values` maps block_id -> state entry (use `input_value`)."""
    submitted = {**view, "id": view_id or view.get("id") or f"V{next(_counter):08d}", "team_id": TEAM["id"],
                 "state": {"values": {block: {"value": entry} for block, entry in values.items()}},
                 "hash": "h", "app_id": "A0VIGIL", "bot_id": "B0BOT", "root_view_id": None}
    return interactive({"type": "view_submission", "team": TEAM, "api_app_id": "A0VIGIL", "token": "legacy",
                        "trigger_id": f"trigger.{next(_counter)}",
                        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
                        "view": submitted, "response_urls": []})


def message_shortcut(callback_id: str, *, channel: str, message: dict, user: str = "U0DECLARER",
                     response_url: str = "http://127.0.0.1:9/none") -> str:
    return interactive({"type": "message_action", "callback_id": callback_id, "team": TEAM, "api_app_id": "A0VIGIL",
                        "token": "legacy", "trigger_id": f"trigger.{next(_counter)}", "action_ts": "1.2",
                        "user": {"id": user, "name": user.lower(), "team_id": TEAM["id"]},
                        "channel": {"id": channel, "name": "inc"}, "message": {"type": "message", **message},
                        "response_url": response_url, "message_ts": message["ts"]})


def event_callback(event: dict, *, event_id: str | None = None) -> str:
    return json.dumps({"token": "legacy", "team_id": TEAM["id"], "api_app_id": "A0VIGIL", "event": event,
                       "type": "event_callback", "event_id": event_id or f"Ev{next(_counter):08d}",
                       "event_time": int(time.time()),
                       "authorizations": [{"enterprise_id": None, "team_id": TEAM["id"], "user_id": "U0BOT",
                                           "is_bot": True, "is_enterprise_install": False}]})


def block_action(action_id: str, value: str, *, channel: str, message_ts: str, user: str = "U0CLICKER",
                 response_url: str = "http://127.0.0.1:9/none") -> str:
    return interactive({
        "type": "block_actions", "team": TEAM, "api_app_id": "A0VIGIL", "token": "legacy",
        "trigger_id": f"trigger.{next(_counter)}", "response_url": response_url,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "inc"}, "message": {"type": "message", "ts": message_ts, "text": ""},
        "actions": [{"action_id": action_id, "block_id": "incident_actions", "type": "button", "value": value,
                     "action_ts": f"{time.time():.6f}"}],
    })
