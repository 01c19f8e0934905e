"""The `vigil` command: migrate, verify, worker, serve."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
from click.testing import CliRunner
from sqlalchemy import text

from vigil_ir.cli import main
from vigil_ir.incidents import service
from tests import slack_requests
from tests.conftest import PLAYBOOK_FIXTURES


def run(db, *args, env=None):
    return CliRunner().invoke(main, list(args), obj={"database": db}, env=env)


def test_verify_ok_prints_one_summary_line(db):
    with db.session() as s:
        incident = service.declare(s, actor="U1", title="x", severity="sev3", type="other")
        service.add_note(s, incident=incident, actor="U1", text="n")
    result = run(db, "verify")
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("OK: 1 streams, 2 events verified, every state row (incidents (and private incidents' access), risks, risk reviews, approvals, acceptances, "
                                              "follow-up actions, PIRs and playbook runs) agrees with its events; heads digest sha256:")
    assert "incident:1" in run(db, "verify", "--heads").output


def test_verify_names_the_first_broken_event_and_exits_1(db):
    with db.session() as s:
        incident = service.declare(s, actor="U1", title="x", severity="sev3", type="other")
        service.add_note(s, incident=incident, actor="U1", text="original")
    with db.engine.begin() as c:
        c.execute(text("UPDATE event SET actor = 'U666' WHERE stream_seq = 2"))
    result = run(db, "verify")
    assert result.exit_code == 1
    assert "stream incident:1 seq 2: hash mismatch (expected" in result.output


def test_migrate_applies_schema_to_a_new_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    for _ in range(2):
        result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": url})
        assert result.exit_code == 0, result.output
    assert (tmp_path / "new.db").exists()


def test_worker_without_credentials_names_the_missing_variables(tmp_path):
    result = CliRunner().invoke(main, ["worker", "--once"], env={
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""})
    assert result.exit_code != 0 and "SLACK_BOT_TOKEN" in result.output


def test_worker_once_delivers_the_outbox(vigil, fake_slack, database_url):
    vigil.declare(deliver=False)
    result = CliRunner().invoke(main, ["worker", "--once"], env={
        "DATABASE_URL": database_url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s",
        "SLACK_API_URL": fake_slack.base_url, "VIGIL_INCIDENT_FEED_CHANNEL": "C0FEED",
        "VIGIL_PLAYBOOKS_DIR": str(PLAYBOOK_FIXTURES)})
    assert result.exit_code == 0, result.output
    # channel set-up, playbook suggestions, and the declarer looked up for the people directory
    assert "Delivered 3 outbox item(s)" in result.output
    assert len(fake_slack.calls_to("conversations.create")) == 1


def test_socket_mode_without_app_token_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["serve", "--socket"], env={
        "DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", "SLACK_APP_TOKEN": "", "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s"})
    assert result.exit_code != 0 and "SLACK_APP_TOKEN" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vigil_serve_over_real_http_with_background_delivery(tmp_path, fake_slack):
    """The README's run path: `vigil serve` migrates, serves, and its background sender delivers."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_SIGNING_SECRET": slack_requests.SECRET, "SLACK_API_URL": fake_slack.base_url,
           "VIGIL_INCIDENT_FEED_CHANNEL": "C0FEED", "NO_PROXY": "127.0.0.1"}
    server = subprocess.Popen([sys.executable, "-m", "vigil_ir.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        body = slack_requests.slash_command("declare Disk full on db-3")
        response = httpx.post(f"{base}/slack/events", content=body, headers=slack_requests.signed_headers(body))
        assert response.status_code == 200
        view = fake_slack.wait_for("views.open")[0].params["view"]
        body = slack_requests.view_submission(view, {
            "title": slack_requests.input_value("plain_text_input", "Disk full on db-3"),
            "severity": slack_requests.input_value("static_select", "sev2"),
            "type": slack_requests.input_value("static_select", "availability")})
        response = httpx.post(f"{base}/slack/events", content=body, headers=slack_requests.signed_headers(body))
        assert response.status_code == 200
        (created,) = fake_slack.wait_for("conversations.create")
        assert created.params["name"] == "inc-1-disk-full-on-db-3"
        fake_slack.wait_for("chat.postMessage", count=2)
        bad = httpx.post(f"{base}/slack/events", content=body, headers={"X-Slack-Signature": "v0=bad",
                                                                        "X-Slack-Request-Timestamp": "1"})
        assert bad.status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=15)[0].decode()
    assert "Uvicorn running" in output or "Application startup complete" in output
