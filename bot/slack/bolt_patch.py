"""Work around bolt's form parser treating any body containing "payload" as interactivity.

slack-bolt 1.30 `parse_body` checks `"payload" in body` on the raw string, so a slash command
such as `/incident note payload api down` is parsed as `{}` and answered 404. We parse the form
first and only unwrap a real `payload` field. Re-run tests/test_slack_http.py's "payload"
regression test before dropping this on a newer bolt.

A body that does not parse, or does not have the shape of a Slack request, becomes
`envelope.malformed(...)` instead of raising: bolt parses while building the request, before it
checks the signature, so raising here was a 500 for anyone (tests/test_fuzz_requests.py).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import slack_bolt.request.request as _request

from vigil_ir.slack import envelope


def _parse(body: str, content_type: str | None):
    if (content_type or "").startswith("application/json") or body.lstrip().startswith("{"):
        return json.loads(body)
    params = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in params:
        return json.loads(params["payload"])
    return params


def storable(value):
    """`value` with NUL characters removed (PostgreSQL text cannot hold them) and lone surrogates
    (a JSON escape such as \\ud800 with no pair, which no database can encode) replaced by U+FFFD."""
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "")
        return value.replace("\x00", "").encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def parse_body(body: str, content_type: str | None) -> dict:
    if not body:
        return {}
    try:
        parsed = storable(_parse(body, content_type))
    except (ValueError, RecursionError):  # JSONDecodeError; JSON nested thousands deep
        return envelope.malformed("the body is not valid JSON or form data")
    problem = envelope.problem(parsed)
    return parsed if problem is None else envelope.malformed(problem)


def apply() -> None:
    _request.parse_body = parse_body  # we use the sync App only
