"""Property-based test of every button and menu Vigil registers: signed block_actions with arbitrary
values, selected options, users and response_urls (Slack echoes back whatever a message carried; an
old or forged message carries anything).

Invariants: the answer is a 200 with nothing in it (a button press is acked; what went wrong goes to
the response_url), no listener raised (no "Slack block_actions failed" in the logs, no traceback),
and whatever was queued for Slack is delivered.

SQLite only (see tests/fuzzing.py).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from vigil_ir.outbox.models import OutboxItem
from vigil_ir.playbooks.models import PlaybookRun, PlaybookStep
from vigil_ir.slack import checklist
from tests import slack_requests as sr
from tests.fuzzing import assert_no_traceback, fuzz, hostile_text, json_values
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)

LEAD = "U0LEAD"
SOURCES = Path(__file__).resolve().parents[1] / "bot" / "slack"
REGISTERED = sorted({m for f in SOURCES.rglob("*.py") for m in re.findall(r'app\.action\("([a-z_]+)"\)', f.read_text())}
                    | {checklist.PAGE_BACK, checklist.PAGE_NEXT})


def test_the_fuzzed_action_ids_are_the_registered_ones():
    assert len(REGISTERED) >= 15 and "playbook_step" in REGISTERED and "risk_approve" in REGISTERED


class ListenerFailures(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def app(vigil):
    incident = vigil.declare("Fuzzed buttons", user=LEAD)
    vigil.command(f"lead <@{LEAD}>", channel=incident.channel_id, user=LEAD)
    vigil.command("playbook generic", channel=incident.channel_id, user=LEAD)
    vigil.deliver()
    with vigil.db.session() as s:
        run = s.exec(select(PlaybookRun)).one()
        step = s.exec(select(PlaybookStep)).first()
    vigil.ids = [str(incident.id), str(run.id), str(step.id), f"{run.id}:0", f"{run.id}:1", f"done:{step.id}",
                 f"undo:{step.id}", f"info:{step.id}", f"skip:{step.id}", f"assign:{step.id}", "generic", "1"]
    vigil.incident = incident
    failures = ListenerFailures()
    logging.getLogger().addHandler(failures)
    vigil.failures = failures
    yield vigil
    logging.getLogger().removeHandler(failures)


def values(app):
    return st.one_of(st.sampled_from(app.ids), hostile_text, st.sampled_from(["", "0", "-1", "99999999999999999999999",
                                                                              "1:2:3", ":", "done:", "x:1"]))


@st.composite
def press(draw, app):
    action_id = draw(st.sampled_from(REGISTERED))
    body = json.loads(unquote(sr.block_action(action_id, "x", channel=app.incident.channel_id,
                                              message_ts=draw(st.sampled_from(["1.1", app.incident.summary_ts])),
                                              user=draw(st.sampled_from([LEAD, "U0STRANGER", "U0ADMIN"])),
                                              response_url=app.fake.response_url("fuzz")).removeprefix("payload=")))
    action = body["actions"][0]
    shape = draw(st.sampled_from(["button", "overflow", "static_select", "users_select", "weird"]))
    if shape == "button":
        action["value"] = draw(values(app))
    elif shape in ("overflow", "static_select"):
        action.update(type=shape, selected_option={"text": {"type": "plain_text", "text": "x"},
                                                   "value": draw(values(app))})
        del action["value"]
    elif shape == "users_select":
        action.update(type=shape, selected_user=draw(st.one_of(st.just(LEAD), hostile_text)))
    else:
        action.update(value=draw(json_values), selected_option=draw(json_values))
    if draw(st.integers(0, 5)) == 0:
        body["response_url"] = draw(st.sampled_from(["", "https://evil.example/x"]))
    if draw(st.integers(0, 5)) == 0:
        body.pop("channel", None)
        body["container"] = draw(st.sampled_from([{}, {"type": "view", "view_id": "V1"}]))
    return body


@fuzz(120)
@given(data=st.data())
def test_every_button_and_menu_with_arbitrary_values_is_acked_without_a_listener_failing(app, data):
    body = data.draw(press(app), label="body")
    response = app.post(sr.interactive(body))
    assert response.status_code == 200, (response.status_code, response.text[:300], body["actions"])
    assert_no_traceback(response.text)
    assert response.text == "", response.text[:300]
    assert not app.failures.records, [(r.getMessage(), body["actions"]) for r in app.failures.records]
    app.deliver()
    with app.db.session() as s:
        stuck = s.exec(select(OutboxItem).where(OutboxItem.status != "done", OutboxItem.attempts > 0)).all()
    assert not [(i.kind, i.last_error) for i in stuck], body["actions"]
    for notice in app.fake.responses("fuzz"):
        assert_no_traceback(notice.get("text", ""))
