"""Work around bolt's form parser treating any body containing "payload" as interactivity.

slack-bolt 1.30 `parse_body` checks `"payload" in body` on the raw string, so a slash command
such as `/incident note payload api down` is parsed as `{}` and answered 404. We parse the form
first and only unwrap a real `payload` field. Re-run tests/test_slack_http.py's "payload"
regression test before dropping this on a newer bolt.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import slack_bolt.request.request as _request


def parse_body(body: str, content_type: str | None) -> dict:
    if not body:
        return {}
    if (content_type or "").startswith("application/json") or body.lstrip().startswith("{"):
        return json.loads(body)
    params = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in params:
        return json.loads(params["payload"])
    return params


def apply() -> None:
    _request.parse_body = parse_body  # we use the sync App only
