"""`vigil serve --socket` for real: app token and bot token only, requests over a WebSocket, and a
Slack that cannot be reached is retried with one clear line each time, never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from urllib.parse import parse_qsl

import pytest
from sqlmodel import select

from tests import slack_requests
from tests.fakes.socket_mode import FakeSocketMode
from vigil_ir.db import Database
from vigil_ir.incidents.models import Incident

pytestmark = pytest.mark.slow


def socket_env(tmp_path, fake_slack, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "VIGIL_"))}
    return {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}", "SLACK_APP_TOKEN": "xapp-1-test",
            "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake_slack.base_url, "NO_PROXY": "127.0.0.1",
            "VIGIL_LOG_FORMAT": "text", **extra}


class Output:
    """Collects a process's output lines and lets a test wait for one to appear."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process) -> None:
        for line in process.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()

    def wait_for(self, text: str, count: int = 1, timeout: float = 60.0) -> None:
        with self._seen:
            if not self._seen.wait_for(lambda: sum(text in line for line in self.lines) >= count, timeout):
                raise AssertionError(f"{text!r} did not appear {count} time(s):\n{''.join(self.lines)}")

    def text(self) -> str:
        self._thread.join(timeout=15)
        return "".join(self.lines)


def start(env, tmp_path) -> tuple[subprocess.Popen, Output]:
    process = subprocess.Popen([sys.executable, "-m", "vigil_ir.cli", "serve", "--socket"], env=env, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, Output(process)


def stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def test_socket_mode_serves_with_the_app_and_bot_tokens_alone(tmp_path, fake_slack):
    socket = FakeSocketMode()
    fake_slack.socket_url = socket.url
    process, output = start(socket_env(tmp_path, fake_slack), tmp_path)  # no SLACK_SIGNING_SECRET at all
    try:
        assert socket.connected.wait(60), output.text()
        command = dict(parse_qsl(slack_requests.slash_command("declare Disk full on db-3")))
        socket.wait_for_ack(socket.send("slash_commands", command))
        view = fake_slack.wait_for("views.open")[0].params["view"]
        submission = slack_requests.view_submission(view, {
            "title": slack_requests.input_value("plain_text_input", "Disk full on db-3"),
            "severity": slack_requests.input_value("static_select", "sev2"),
            "type": slack_requests.input_value("static_select", "availability")})
        payload = json.loads(dict(parse_qsl(submission))["payload"])
        socket.wait_for_ack(socket.send("interactive", payload))
        (created,) = fake_slack.wait_for("conversations.create")
        assert created.params["name"] == "inc-1-disk-full-on-db-3"
    finally:
        code = stop(process)
        socket.close()
    assert code == 0, output.text()
    assert "Traceback" not in output.text()
    database = Database(f"sqlite:///{tmp_path / 'socket.db'}")
    with database.session() as session:
        (incident,) = session.exec(select(Incident)).all()
    assert incident.title == "Disk full on db-3"
    assert [call.headers["authorization"] for call in fake_slack.calls_to("apps.connections.open")] == \
        ["Bearer xapp-1-test"]


def test_socket_mode_retries_an_unreachable_slack_with_one_line_each_time(tmp_path, fake_slack):
    fake_slack.socket_url = None  # apps.connections.open fails until a URL is there
    unreachable = socket_env(tmp_path, fake_slack, SLACK_API_URL="http://127.0.0.1:9/api/")
    process, output = start(unreachable, tmp_path)
    try:
        output.wait_for("Cannot connect to Slack in Socket Mode", count=2)
    finally:
        code = stop(process)
    text = output.text()
    assert code == 0, text
    assert "Traceback" not in text
    assert "trying again in 1 s" in text and "trying again in 2 s" in text


def test_socket_mode_with_a_refused_app_token_ends_with_a_clear_error(tmp_path, fake_slack):
    fake_slack.fail_always("apps.connections.open", status=200, error="invalid_auth")
    process, output = start(socket_env(tmp_path, fake_slack), tmp_path)
    code = process.wait(timeout=60)
    text = output.text()
    assert code != 0 and "Traceback" not in text
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in text


def test_socket_mode_names_what_is_missing_and_not_the_signing_secret(tmp_path, fake_slack):
    process, output = start(socket_env(tmp_path, fake_slack, SLACK_APP_TOKEN=""), tmp_path)
    code = process.wait(timeout=60)
    text = output.text()
    assert code != 0 and "Socket Mode needs SLACK_APP_TOKEN" in text
    assert "SLACK_SIGNING_SECRET" not in text
