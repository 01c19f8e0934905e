"""Structured logs: JSON lines, the request id (also from bolt's listener thread), redaction."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from click.testing import CliRunner

from vigil_ir import logs
from vigil_ir.cli import main
from tests import slack_requests

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def captured():
    """JSON lines logged on the `vigil.test` and `slack_bolt` loggers during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter(logs.Redactor(["a-configured-signing-secret"])))
    loggers = [logging.getLogger("vigil.test"), logging.getLogger("slack_bolt")]
    for logger in loggers:
        logger.addHandler(handler)
    loggers[0].setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_json_line_has_ts_level_logger_message_and_extras(captured):
    log = logging.getLogger("vigil.test")
    log.info("delivered %s items", 3, extra={"incident": "INC-4"})
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("it failed")
    first, second = captured()
    assert TS.match(first["ts"]) and first["level"] == "INFO" and first["logger"] == "vigil.test"
    assert first["message"] == "delivered 3 items" and first["incident"] == "INC-4"
    assert "request_id" not in first  # outside a request
    assert second["level"] == "ERROR" and "ValueError: bad thing" in second["exc"]


def test_the_request_id_reaches_lines_logged_by_bolt_listeners_in_the_threadpool(vigil, captured):
    seen = []

    def log_in_listener(next):  # a bolt global middleware: runs where listeners run
        seen.append(threading.current_thread())
        logging.getLogger("vigil.test").info("inside bolt")
        return next()

    vigil.runtime.bolt.use(log_in_listener)
    response = vigil.command("help")
    assert response.status_code == 200
    (line,) = [entry for entry in captured() if entry["message"] == "inside bolt"]
    assert line["request_id"] == response.headers["x-request-id"]
    assert seen and seen[0].name == "AnyIO worker thread"  # Starlette's run_in_threadpool, not the event loop
    other = vigil.command("help")
    assert other.headers["x-request-id"] != line["request_id"]


def test_bound_fields_stay_in_their_thread(captured):
    def work():
        logs.bind(worker="worker:host:1")
        logging.getLogger("vigil.test").info("in worker")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    logging.getLogger("vigil.test").info("in main")
    in_worker, in_main = captured()
    assert in_worker["worker"] == "worker:host:1" and "worker" not in in_main


def test_secrets_are_redacted_in_messages_extras_and_tracebacks(captured):
    log = logging.getLogger("vigil.test")
    log.warning("token xoxb-1234-5678-abcdefABCDEF and app xapp-1-A0-123-abc, user xoxp-9-9 refresh xoxe.xoxp-1-x")
    log.warning("db postgresql+psycopg://vigil:hunter2secret@db:5432/vigil", extra={"dsn": "postgres://u:pw123456@h/d"})
    log.warning("auditor vigil_at_Zm9vYmFyYmF6 header Authorization: Bearer abc.def-123 secret a-configured-signing-secret")
    log.warning('"GET /login/slack/callback?code=4242.abc&state=xyz HTTP/1.1" 302')
    log.debug("body token=legacyVerif1&team_id=T1 and %s", '{"token": "legacyVerif2", "type": "event_callback"}')
    log.warning("no ack for %s", slack_requests.interactive({"type": "block_actions", "token": "legacyVerif3"}))
    try:
        raise RuntimeError("called with xoxb-999-secret")
    except RuntimeError:
        log.exception("failed")
    text = json.dumps(captured())
    for secret in ("1234-5678-abcdef", "A0-123-abc", "xoxp-9-9", "xoxp-1-x", "hunter2secret", "pw123456",
                   "Zm9vYmFyYmF6", "abc.def-123", "a-configured-signing-secret", "4242.abc", "xyz", "999-secret", "legacyVerif"):
        assert secret not in text, secret
    lines = captured()
    assert lines[0]["message"].startswith("token xoxb-[REDACTED] and app xapp-[REDACTED]")
    assert "postgresql+psycopg://vigil:[REDACTED]@db:5432/vigil" in lines[1]["message"]
    assert lines[1]["dsn"] == "postgres://u:[REDACTED]@h/d"


def test_secrets_of_settings_include_the_configured_values_and_the_database_password(settings_for):
    settings = settings_for(DATABASE_URL="postgresql://vigil:s3cr3t-pass@db/vigil",
                            VIGIL_SESSION_SECRET="session-secret-value", VIGIL_METRICS_TOKEN="metrics-token-value")
    found = logs.secrets_of(settings)
    assert {"s3cr3t-pass", "session-secret-value", "metrics-token-value", slack_requests.SECRET} <= set(found)
    redact = logs.Redactor(found)
    assert redact(f"signing {slack_requests.SECRET} ok") == "signing [REDACTED] ok"
    assert logs.Redactor(["short"])("a short word") == "a short word"  # too short to redact safely


def test_text_format_adds_the_request_id_and_redacts():
    formatter = logs.TextFormatter(logs.Redactor())
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "token xoxb-1-2-3"})
    token = logs.request_id.set("abc123")
    try:
        line = formatter.format(record)
    finally:
        logs.request_id.reset(token)
    assert line.endswith("x: token xoxb-[REDACTED] [request_id=abc123]")


def test_the_default_format_is_text_on_a_terminal_and_json_otherwise(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert logs.choose_format(None) == "json" and logs.choose_format("TEXT") == "text"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert logs.choose_format(None) == "text"


def test_the_cli_writes_json_lines_when_asked(tmp_path):
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        result = CliRunner().invoke(main, ["--log-format", "json", "migrate"],
                                    env={"DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}"})
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        assert any(line["logger"].startswith("alembic") for line in lines)
        assert "Database is at the latest schema." in result.stderr
        result = CliRunner().invoke(main, ["migrate"], env={"DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}",
                                                            "VIGIL_LOG_FORMAT": "text"})
        assert result.exit_code == 0 and not any(line.startswith("{") for line in result.stderr.splitlines())
    finally:
        for handler in [h for h in root.handlers if getattr(h, "vigil", False)]:
            root.removeHandler(handler)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_vigil_serve_logs_json_with_request_ids_in_the_access_log(tmp_path, fake_slack):
    """uvicorn's own lines and its access log go through the same formatter; tokens never appear."""
    from tests.test_cli import free_port

    port, bot_token = free_port(), "xoxb-1111-2222-NeverLogThis"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "SLACK_BOT_TOKEN": bot_token,
           "SLACK_SIGNING_SECRET": slack_requests.SECRET, "SLACK_API_URL": fake_slack.base_url,
           "NO_PROXY": "127.0.0.1", "VIGIL_LOG_FORMAT": "json"}
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
        body = slack_requests.slash_command("help")
        response = httpx.post(f"{base}/slack/events", content=body, headers=slack_requests.signed_headers(body))
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=15)[0].decode()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    assert any(line["logger"] == "uvicorn.error" and "Uvicorn running" in line["message"] for line in lines)
    (access,) = [line for line in lines if line["logger"] == "uvicorn.access" and "/slack/events" in line["message"]]
    assert access["request_id"] == request_id and TS.match(access["ts"])
    assert "NeverLogThis" not in output
