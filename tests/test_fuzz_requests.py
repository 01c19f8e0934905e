"""Property-based tests of request parsing: POST /slack/events with arbitrary bodies.

Invariants (issue 7, "Bad input"): never a 5xx, never a traceback in the answer, and a request that
is refused (any status but 200) writes nothing. Signed bodies reach bolt and our listeners; unsigned
ones must be refused with 401 whatever they contain.

Runs on SQLite only (see tests/fuzzing.py): parsing happens before the database is touched.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import slack_requests as sr
from tests.fuzzing import assert_no_traceback, changed, fuzz, hostile_text, json_values, row_counts
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)

CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/json", "text/plain", "",
                 "application/json; charset=utf-8", "multipart/form-data"]
FORM_KEYS = ["command", "text", "user_id", "channel_id", "trigger_id", "response_url", "team_id", "payload",
             "token", "user", "team", "channel", "authorizations", "event", "type", "view", "actions", "ssl_check"]


@pytest.fixture
def app(vigil):
    incident = vigil.declare("Fuzz target", user="U0LEAD")
    vigil.command("lead <@U0LEAD>", channel=incident.channel_id, user="U0LEAD")
    vigil.deliver()
    vigil.incident = incident
    return vigil


def check(app, body: str, content_type: str, *, signed: bool = True, headers: dict | None = None):
    before = row_counts(app.db)
    response = app.post(body, content_type=content_type, headers=headers,
                        secret=sr.SECRET if signed else "not-the-secret")
    after = row_counts(app.db)
    assert response.status_code < 500, (response.status_code, body[:500])
    assert_no_traceback(response.text)
    if response.status_code != 200:
        assert not changed(before, after), (response.status_code, changed(before, after), body[:300])
    if not signed:
        assert response.status_code == 401 or (response.status_code == 200 and "ssl_check" in body)
        assert not changed(before, after)
    return response


@fuzz(100)
@given(body=st.one_of(st.text(max_size=400), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.just("{"), st.just("[1, 2]"), st.just("payload=notjson"), st.just("payload=%5B%5D"),
                      st.just("[" * 5000 + "]" * 5000), st.just("payload=" + "%5B" * 5000)),
       content_type=st.sampled_from(CONTENT_TYPES), signed=st.booleans())
def test_arbitrary_bodies_never_5xx(app, body, content_type, signed):
    check(app, body, content_type, signed=signed)


@fuzz(100)
@given(form=st.dictionaries(st.one_of(st.sampled_from(FORM_KEYS), st.text(max_size=10)),
                            st.one_of(hostile_text, json_values.map(json.dumps)), max_size=8),
       signed=st.booleans())
def test_arbitrary_form_bodies_never_5xx(app, form, signed):
    check(app, urlencode(form), "application/x-www-form-urlencoded", signed=signed)


@fuzz(100)
@given(payload=json_values, wrap=st.booleans())
def test_arbitrary_json_payloads_never_5xx(app, payload, wrap):
    text = json.dumps(payload)
    if wrap:
        check(app, "payload=" + quote(text), "application/x-www-form-urlencoded")
    else:
        check(app, text, "application/json")


# ---- Slack's own shapes, mutated -------------------------------------------------------------------
def templates(app) -> dict[str, tuple[str, object]]:
    """One well-formed request per kind Vigil handles: (encoding, parsed body)."""
    incident = app.incident
    channel = incident.channel_id
    declare_view = {"id": "VFUZZ", "callback_id": "incident_declare", "private_metadata": "{}", "type": "modal"}
    interactive = {
        "view_submission": _unquote(sr.view_submission(declare_view, {
            "title": sr.input_value("plain_text_input", "x"),
            "severity": sr.input_value("static_select", "sev3"),
            "type": sr.input_value("static_select", "availability")})),
        "block_actions": _unquote(sr.block_action("incident_take_lead", str(incident.id), channel=channel,
                                                  message_ts=incident.summary_ts)),
        "snooze": _unquote(sr.block_action("incident_snooze_update", str(incident.id), channel=channel,
                                           message_ts="9.9")),
        "approve": _unquote(sr.block_action("risk_approve", "1", channel="D0X", message_ts="8.8")),
        "step": _unquote(sr.block_action("playbook_step", "x", channel=channel, message_ts="7.7")),
        **{action_id: _unquote(sr.block_action(action_id, value, channel=channel, message_ts="6.6"))
           for action_id, value in [("incident_post_update", str(incident.id)), ("playbook_attach", "generic"),
                                    ("action_item_done", "1"), ("action_item_update", "1"), ("risk_reject", "1"),
                                    ("risk_review_open", "1")]},
        "correct_note": _unquote(sr.message_shortcut("correct_note", channel=channel, message={
            "ts": "1.000003", "text": "a note", "blocks": [{"type": "section", "block_id": "note:1"}]})),
        "message_action": _unquote(sr.message_shortcut("add_to_timeline", channel=channel,
                                                       message={"ts": "1.000001", "text": "hello", "user": "U1"})),
        "create_action": _unquote(sr.message_shortcut("create_action", channel=channel,
                                                      message={"ts": "1.000002", "text": "fix it", "user": "U1"})),
    }
    interactive["step"]["actions"][0].update(type="overflow", selected_option={"value": "info:1"})
    events = {
        "reaction": json.loads(sr.event_callback({"type": "reaction_added", "user": "U1", "reaction": "pushpin",
                                                  "item": {"type": "message", "channel": channel, "ts": "2.000001"}})),
        "home": json.loads(sr.event_callback({"type": "app_home_opened", "user": "U1", "tab": "home"})),
        "url_verification": {"type": "url_verification", "challenge": "abc", "token": "legacy"},
    }
    command = dict(_form(sr.slash_command("note hello", channel=channel)))
    risk = dict(_form(sr.slash_command("list", command="/risk")))
    return {**{k: ("payload", v) for k, v in interactive.items()}, **{k: ("json", v) for k, v in events.items()},
            "command": ("form", command), "risk_command": ("form", risk)}


def _unquote(body: str) -> dict:
    from urllib.parse import unquote

    return json.loads(unquote(body.removeprefix("payload=")))


def _form(body: str):
    from urllib.parse import parse_qsl

    return parse_qsl(body, keep_blank_values=True)


def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, (*prefix, index))


def mutate(data, value, inside: tuple[str, ...] = ()):
    """Delete or replace 1–3 fields anywhere in `value` (a deep copy), or only under the keys `inside`."""
    value = json.loads(json.dumps(value))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        candidates = [p for p in paths(value) if p and (not inside or (p[0] in inside and len(p) > 1))]
        if not candidates:
            break
        path = data.draw(st.sampled_from(candidates), label="path")
        parent = value
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values, label="replacement")
    return value


@fuzz(200)
@given(data=st.data(), deep=st.booleans())
def test_slack_shaped_payloads_with_wrong_types_and_missing_fields_never_5xx(app, data, deep):
    """`deep`: mutate only inside the parts listeners read (actions, view, event, message)."""
    shapes = templates(app)
    kind = data.draw(st.sampled_from(sorted(shapes)), label="kind")
    encoding, body = shapes[kind]
    mutated = mutate(data, body, ("actions", "view", "event", "message", "container") if deep else ())
    if encoding == "payload":
        check(app, "payload=" + quote(json.dumps(mutated)), "application/x-www-form-urlencoded")
    elif encoding == "json":
        check(app, json.dumps(mutated), "application/json")
    else:  # form fields are always text: replace values with text, or drop them
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in mutated.items()}
        check(app, urlencode(form), "application/x-www-form-urlencoded")


@fuzz(40)
@given(text=st.one_of(st.just("payload"), st.text(max_size=30).map(lambda t: f"{t} payload {t}"),
                      st.just("payload={}"), st.just('payload={"type":"view_submission"}'), st.just("note payload=1")))
def test_the_word_payload_anywhere_in_a_command(app, text):
    response = check(app, sr.slash_command(f"note {text}", channel=app.incident.channel_id),
                     "application/x-www-form-urlencoded")
    assert response.status_code == 200 and "Noted on the" in response.text


def test_huge_values_inside_the_limit_are_answered(app):
    """Fields far longer than Slack allows, in a body under the 1 MiB limit: refused or trimmed, not a 500."""
    for text in ("x" * 900_000, "<!channel> " * 40_000):
        response = check(app, sr.slash_command(f"note {text}", channel=app.incident.channel_id),
                         "application/x-www-form-urlencoded")
        assert response.status_code == 200
    shapes = templates(app)
    submission = shapes["view_submission"][1]
    submission["view"]["state"]["values"]["title"]["value"]["value"] = "y" * 500_000
    answer = check(app, "payload=" + quote(json.dumps(submission)), "application/x-www-form-urlencoded").json()
    assert answer["response_action"] == "errors" and answer["errors"]["title"]


def test_malformed_signed_bodies_get_400_saying_why(app):
    for body, content_type in [("{", "application/json"), ("[1]", "application/json"),
                               ('{"type": "view_submission", "view": "x"}', "application/json"),
                               ("command=/incident", "application/x-www-form-urlencoded")]:
        response = check(app, body, content_type)
        assert response.status_code == 400 and response.text.startswith("Malformed Slack request:")
