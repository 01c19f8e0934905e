"""The shape a Slack request body must have before bolt and our listeners read it.

bolt builds each request's context (team, user, channel…) from the parsed body as soon as the
request object is made, before any middleware runs, and it reads those fields assuming Slack's
types; our listeners index the fields Slack always sends (`body["user"]["id"]`,
`view["state"]["values"]`…). So a body that is not a JSON object, or has a field of the wrong
type, or lacks a field its kind always has, would end in a 500. `bolt_patch.parse_body` replaces
such a body by `malformed(problem)`, and the app's `before_authorize` hook answers it with 400
and the problem, after the signature check (unsigned junk still gets 401).

Values *inside* a modal's `state.values` are read defensively by the view listeners
(`vigil_ir.slack.listeners.views.field`), because Slack leaves out or nulls whatever the user left empty.
"""

from __future__ import annotations

import re
from typing import Any

MALFORMED = "vigil.malformed_request"
SLACK_TS = re.compile(r"[0-9]{1,10}\.[0-9]{1,6}")  # a message's ts: seconds.microseconds, e.g. 1700000000.000100

_TEXT = (str,)
_OPTIONAL_TEXT = (str, type(None))
# Top-level fields (and the same fields inside `event` and `authorizations[0]`, which bolt also
# reads) that must have these types when present.
_TYPES: dict[str, tuple[type, ...]] = {
    "type": _TEXT, "token": _OPTIONAL_TEXT, "team_id": _OPTIONAL_TEXT, "enterprise_id": _OPTIONAL_TEXT,
    "user_id": _OPTIONAL_TEXT, "channel_id": _OPTIONAL_TEXT, "api_app_id": _OPTIONAL_TEXT,
    "event_id": _TEXT, "callback_id": _TEXT, "trigger_id": _TEXT, "action_id": _TEXT,
    "response_url": _TEXT, "command": _TEXT, "text": _OPTIONAL_TEXT,
    "team": (str, dict, type(None)), "enterprise": (str, dict, type(None)), "user": (str, dict, type(None)),
    "channel": (str, dict, type(None)), "authorizations": (list, type(None)), "response_urls": (list,),
    "event": (dict,), "view": (dict,), "actions": (list,), "container": (dict, type(None)),
    "message": (dict,), "item": (dict,), "private_metadata": _OPTIONAL_TEXT, "previous_message": (dict,),
    "assistant_thread": (dict,), "workflow_step": (dict,), "function_data": (dict,),
}
_ID_HOLDERS = ("team", "enterprise", "user", "channel")
_IDS = ("team_id", "user_id", "channel_id", "enterprise_id")
# Slack's user, channel and team ids are about a dozen characters; the columns holding them allow 32.
ID_MAX = 32


def malformed(problem: str) -> dict[str, Any]:
    return {"type": MALFORMED, "problem": problem}


def _type_problem(body: dict, where: str = "") -> str | None:
    for name, kinds in _TYPES.items():
        if name in body and not isinstance(body[name], kinds):
            return f"`{where}{name}` has the wrong type"
    for name in _ID_HOLDERS:
        value = body.get(name)
        if isinstance(value, dict) and not isinstance(value.get("id", ""), str):
            return f"`{where}{name}.id` is not text"
        ident = value.get("id") if isinstance(value, dict) else value
        if isinstance(ident, str) and len(ident) > ID_MAX:
            return f"`{where}{name}` is longer than any Slack id"
    for name in _IDS:
        if isinstance(body.get(name), str) and len(body[name]) > ID_MAX:
            return f"`{where}{name}` is longer than any Slack id"
    return None


def _text(body: dict, *path: str) -> bool:
    value: Any = body
    for part in path:
        if not isinstance(value, dict):
            return False
        value = value.get(part)
    return isinstance(value, str)


def _required(body: dict, kind: str | None) -> str | None:
    """Fields a payload of this kind always carries, which the listeners read."""
    if kind is None and "command" in body:  # a slash command (form encoded)
        needed = [("command",), ("user_id",), ("trigger_id",)]
    elif kind in ("view_submission", "view_closed"):
        needed = [("user", "id"), ("view", "id"), ("view", "callback_id"), ("view", "type")]
        state = body["view"].get("state") if isinstance(body.get("view"), dict) else None
        if kind == "view_submission" and not (isinstance(state, dict) and isinstance(state.get("values"), dict)):
            return "`view.state.values` is missing or not an object"
    elif kind == "block_actions":
        actions = body.get("actions")
        if not actions or not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "`actions` must be a list of actions, each with an action_id"
        needed = [("user", "id"), ("trigger_id",)]
    elif kind == "message_action":
        needed = [("callback_id",), ("trigger_id",), ("response_url",), ("user", "id"), ("channel", "id"),
                  ("message", "ts")]
    elif kind == "shortcut":
        needed = [("callback_id",), ("trigger_id",), ("user", "id")]
    elif kind == "event_callback":
        needed = [("event", "type")]
    else:
        return None
    missing = [".".join(path) for path in needed if not _text(body, *path)]
    if missing:
        return f"missing or not text: {', '.join(missing)}"
    if kind == "message_action" and not SLACK_TS.fullmatch(body["message"]["ts"]):
        return "`message.ts` is not a Slack message timestamp"
    return None


def problem(body: Any) -> str | None:
    """Why `body` cannot be handled, or None when it has the shape of a Slack request."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    found = _type_problem(body)
    for name in ("event",):
        if found is None and isinstance(body.get(name), dict):
            found = _type_problem(body[name], f"{name}.")
    if found is None and "actions" in body and not (body["actions"] and all(isinstance(a, dict)
                                                                              for a in body["actions"])):
        found = "`actions` must be a non-empty list of objects"
    for name in ("authorizations", "response_urls"):
        items = body.get(name) or []
        if found is None and not all(isinstance(item, dict) for item in items):
            found = f"`{name}` must be a list of objects"
        if found is None and items:
            found = _type_problem(items[0], f"{name}[0].")
    if found is None and isinstance(body.get("view"), dict):
        view = body["view"]
        if not isinstance(view.get("private_metadata", ""), str) or not isinstance(view.get("state", {}), dict):
            found = "`view.private_metadata` or `view.state` has the wrong type"
    return found or _required(body, body.get("type") if isinstance(body.get("type"), str) else None)
