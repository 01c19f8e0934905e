"""What Slack gets while the database cannot be reached (bot/slack/failures.py), on both backends.

The app is real (signed requests, bolt, listeners); only its database URL points at nothing: a
SQLite file in a folder that does not exist, a PostgreSQL port nobody listens on. The PostgreSQL
restart under load is in test_faults_postgres.py.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from urllib.parse import unquote

import pytest

from vigil_ir import logs
from vigil_ir.db import CommitUncertain, Database
from vigil_ir.slack import blocks, failures
from tests import slack_requests as sr
from tests.conftest import VigilHarness
from tests.fuzzing import assert_no_traceback

CHANNEL = "C0INCIDENT"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def unreachable_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'vigil.db'}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/vigil"


@pytest.fixture
def cut_off(unreachable_url, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime

    database = Database(unreachable_url)
    harness = VigilHarness(build_runtime(settings_for(DATABASE_URL=unreachable_url), database), fake_slack)
    yield harness
    harness.client.close()
    database.dispose()


class ContextCapture(logging.Handler):
    """Records with the request context they were logged in (the JSON formatter reads it the same way)."""

    def __init__(self):
        super().__init__()
        self.records: list[tuple[logging.LogRecord, dict]] = []

    def emit(self, record):
        self.records.append((record, logs.context()))


@pytest.fixture
def failure_log():
    handler = ContextCapture()
    logger = logging.getLogger("vigil_ir.slack.failures")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def wait_for_response(fake, name: str, timeout: float = 10.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while not (found := fake.responses(name)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return found


def test_a_slash_command_gets_a_clear_ephemeral_answer_and_the_error_is_logged_with_the_request_id(
        cut_off, failure_log):
    response = cut_off.command("note the API is down", channel=CHANNEL)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer == {"response_type": "ephemeral", "text": f":warning: {failures.DATABASE_DOWN}"}
    assert_no_traceback(response.text)
    (record, context), = failure_log.records
    assert record.levelno == logging.WARNING and "database unavailable during a Slack command" in record.getMessage()
    assert context["request_id"] == response.headers["x-request-id"]
    assert record.exc_info is None  # an outage is expected: one line, no traceback


def test_risk_commands_get_the_same_answer(cut_off):
    response = cut_off.command("list mine", command="/risk")
    assert (response.status_code, response.json()["text"]) == (200, f":warning: {failures.DATABASE_DOWN}")


def test_an_event_gets_503_so_slack_retries_it(cut_off):
    pin = {"type": "reaction_added", "user": "U0PINNER", "reaction": "pushpin",
           "item": {"type": "message", "channel": CHANNEL, "ts": "1764300000.000100"}}
    response = cut_off.event(pin, event_id="EvOUTAGE1")
    assert response.status_code == 503
    assert response.json() == {"ok": False, "error": "database_unavailable"}
    assert_no_traceback(response.text)


def test_a_form_stays_open_with_the_message_on_its_first_field(cut_off):
    view = {**blocks.declare_modal("Checkout down", json.dumps({"origin_channel": "C0GENERAL"})), "id": "V0OUTAGE"}
    response = cut_off.submit(view, {"title": sr.input_value("plain_text_input", "Checkout down"),
                                     "severity": sr.input_value("static_select", "sev2"),
                                     "type": sr.input_value("static_select", "availability")})
    assert response.status_code == 200
    assert response.json() == {"response_action": "errors", "errors": {"title": failures.DATABASE_DOWN}}


def test_a_button_is_acked_and_the_message_goes_to_its_response_url(cut_off, fake_slack):
    response = cut_off.post(sr.block_action("incident_take_lead", "1", channel=CHANNEL, message_ts="1764300000.000200",
                                            response_url=fake_slack.response_url("take-lead")))
    assert (response.status_code, response.text) == (200, "")
    notices = wait_for_response(fake_slack, "take-lead")
    assert [n["text"] for n in notices] == [f":warning: {failures.DATABASE_DOWN}"]
    assert notices[0]["response_type"] == "ephemeral" and notices[0]["replace_original"] is False


@pytest.mark.parametrize("response_url", ["", None, "https://evil.example/hook"])
def test_a_button_without_a_usable_response_url_is_still_acked_not_refused(cut_off, response_url):
    body = json.loads(unquote(sr.block_action("incident_take_lead", "1", channel=CHANNEL,
                                              message_ts="1764300000.000300").removeprefix("payload=")))
    if response_url is None:
        del body["response_url"]
    else:
        body["response_url"] = response_url  # a foreign one is blanked before any listener sees it
    response = cut_off.post(sr.interactive(body))
    assert (response.status_code, response.text) == (200, "")


def test_healthz_says_the_database_is_unreachable(cut_off):
    response = cut_off.client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_what_needs_no_database_still_works(cut_off):
    response = cut_off.command("help")
    assert response.status_code == 200 and "/incident note" in response.text


# ---- the answer's shape for the other two causes (a bug; a commit whose outcome is unknown) ------
COMMAND = {"command": "/incident", "text": "note x", "user_id": "U0A", "channel_id": CHANNEL}
EVENT = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "reaction_added"}}


def with_request_id(rid: str, call, *args):
    token = logs.request_id.set(rid)
    try:
        return call(*args)
    finally:
        logs.request_id.reset(token)


def test_a_bug_says_something_went_wrong_with_a_reference_and_events_get_500():
    answer = with_request_id("rid-bug", failures.handle_error, RuntimeError("boom"), COMMAND)
    text = json.loads(answer.body)["text"]
    assert answer.status == 200 and "Something went wrong in Vigil (reference rid-bug)" in text
    assert "boom" not in text and "RuntimeError" not in text
    assert with_request_id("rid-bug", failures.handle_error, RuntimeError("boom"), EVENT).status == 500


def test_a_commit_cut_off_midway_does_not_claim_nothing_was_recorded():
    answer = with_request_id("rid-doubt", failures.handle_error, CommitUncertain("connection lost"), COMMAND)
    text = json.loads(answer.body)["text"]
    assert "may or may not have been recorded" in text and "rid-doubt" in text
    assert "nothing was recorded" not in text
    assert with_request_id("rid-doubt", failures.handle_error, CommitUncertain("lost"), EVENT).status == 503
