"""Secrets are never logged, and a database password never shows in a CLI error.

Flows run with every logger at DEBUG (bolt, slack_sdk, urllib, SQLAlchemy, ours) and the raw log
records are searched: the message, its arguments, extras and any traceback. This checks the source,
not the redaction safety net of bot/logs.py (tests/test_logs.py covers that): a secret must not be
handed to a logger in the first place.
"""

from __future__ import annotations

import logging
import traceback

import pytest
from click.testing import CliRunner

from vigil_ir.cli import main
from tests import slack_requests as sr

BOT_TOKEN = "xoxb-111-222-SecretBotTokenValue"
CLIENT_SECRET = "client-secret-ValueNeverLogged"
SESSION_SECRET = "session-secret-ValueNeverLogged"
DB_PASSWORD = "DbPassw0rdNeverShown"


def record_text(record: logging.LogRecord) -> str:
    parts = [str(record.name), str(record.msg), repr(record.args)]
    try:
        parts.append(record.getMessage())
    except Exception:  # noqa: BLE001 - a bad format string is not our concern here
        pass
    parts += [repr(value) for key, value in vars(record).items() if key not in ("msg", "args", "exc_info")]
    if record.exc_info:
        parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def assert_not_logged(records, secrets):
    assert records, "the flow logged something (DEBUG is on)"
    for record in records:
        text = record_text(record)
        for secret in secrets:
            assert secret not in text, (secret, record.name, text[:500])


@pytest.fixture
def debug_logs(caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("slack_bolt", "slack_sdk", "urllib3", "httpx", "sqlalchemy.engine", "bot", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_slack_flows_log_no_token_or_signing_secret(db, fake_slack, settings_for, debug_logs):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    settings = settings_for(DATABASE_URL=db.url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_CLIENT_SECRET=CLIENT_SECRET,
                            VIGIL_SESSION_SECRET=SESSION_SECRET)
    vigil = VigilHarness(build_runtime(settings, db), fake_slack)
    try:
        incident = vigil.declare("Secrets stay secret")
        vigil.command("note something happened", channel=incident.channel_id)
        fake_slack.fail_next("chat.postMessage", status=500, error="internal_error")
        fake_slack.fail_next("chat.update", status=429, retry_after=0)
        vigil.command("status identified", channel=incident.channel_id)
        vigil.deliver()
        fake_slack.fail_next("views.open", status=200, error="expired_trigger_id")
        vigil.command("update", channel=incident.channel_id)
        assert vigil.post(sr.slash_command("help"), secret="wrong-secret").status_code == 401
        assert vigil.post("{", content_type="application/json").status_code == 400
        assert vigil.post(sr.interactive({"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "t",
                                          "actions": [{"action_id": "nobody_handles_this"}]})).status_code == 404
    finally:
        vigil.client.close()
    assert_not_logged(debug_logs.records, [BOT_TOKEN, sr.SECRET, CLIENT_SECRET, SESSION_SECRET])


def test_dashboard_sign_in_logs_no_client_secret_session_secret_or_auditor_token(db, fake_slack, debug_logs):
    from tests.dashboard_seed import make_token, seed
    from tests.test_dashboard import Dash
    from tests.test_dashboard_slack import sign_in

    seed(db)
    _, auditor_secret = make_token(db)
    dash = Dash(db, SLACK_API_URL=fake_slack.base_url, SLACK_CLIENT_ID="1.2", SLACK_CLIENT_SECRET=CLIENT_SECRET,
                VIGIL_BASE_URL="https://vigil.example.com", VIGIL_ADMINS="U0ADMIN",
                VIGIL_SESSION_SECRET=SESSION_SECRET, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=sr.SECRET)
    try:
        assert dash.sign_in(auditor_secret + "x").status_code == 401  # a wrong token
        assert dash.sign_in(auditor_secret).status_code == 303
        assert dash.client.get("/exports/incidents.csv?from=2025-01-01&to=2025-12-31").status_code == 200
        dash.client.cookies.clear()
        assert sign_in(dash, fake_slack, "U0ADMIN").status_code == 303
        assert dash.client.get("/admin/tokens").status_code == 200
    finally:
        dash.client.close()
    assert_not_logged(debug_logs.records, [BOT_TOKEN, CLIENT_SECRET, SESSION_SECRET, auditor_secret])


UNREACHABLE = f"postgresql://vigil:{DB_PASSWORD}@127.0.0.1:1/vigil"
COMMANDS = [["verify"], ["migrate"], ["export", "incidents", "--from", "2025-01-01", "--to", "2025-02-01"],
            ["export", "risks"], ["sample", "incidents", "--from", "2025-01-01", "--to", "2025-02-01"],
            ["auditor-token", "list"], ["worker", "--once"], ["serve"]]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_an_unreachable_database_is_named_with_its_password_masked(args, debug_logs, tmp_path):
    env = {"DATABASE_URL": UNREACHABLE, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": sr.SECRET,
           "VIGIL_PLAYBOOKS_DIR": str(tmp_path)}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), f"a traceback: {result.exception!r}"
    assert DB_PASSWORD not in result.output
    last = result.output.strip().splitlines()[-1]  # log lines (the worker's, in JSON) may come before it
    assert last.startswith("Error: ") and "127.0.0.1:1/vigil" in last and "***" in last, result.output
    assert_not_logged(debug_logs.records or [logging.makeLogRecord({})], [DB_PASSWORD, BOT_TOKEN])
