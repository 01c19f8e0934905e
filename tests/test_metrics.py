"""GET /metrics: Prometheus text, request and ack counts, outbox and event-log gauges, the token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from vigil_ir import clock
from vigil_ir.db import Database
from vigil_ir.metrics import build_registry, slack_request_type
from vigil_ir.outbox import service as outbox
from vigil_ir.reminders import scheduler
from tests import slack_requests
from tests.conftest import PLAYBOOK_FIXTURES


def samples(body: str) -> dict:
    """{(name, ((label, value), ...)): value} for every sample in a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_type_is_read_from_the_content_type_and_body_prefix():
    assert slack_request_type("application/json", b'{"type":"event_callback"}') == "event"
    assert slack_request_type("application/x-www-form-urlencoded", b"payload=%7B%22type%22") == "interactive"
    assert slack_request_type("application/x-www-form-urlencoded",
                              slack_requests.slash_command("help").encode()) == "command"
    assert slack_request_type("application/x-www-form-urlencoded", b"ssl_check=1&token=x") == "other"


def test_signed_slack_requests_are_counted_and_timed_by_type(vigil):
    before = scrape(vigil.client)
    vigil.declare()  # a slash command and a modal submission
    assert vigil.event({"type": "app_home_opened", "user": "U0DECLARER", "tab": "home"}).status_code == 200
    after = scrape(vigil.client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("vigil_http_requests_total", route="/slack/events", method="POST", status="200") == 3
    assert grew("vigil_slack_ack_seconds_count", type="command") == 1
    assert grew("vigil_slack_ack_seconds_count", type="interactive") == 1
    assert grew("vigil_slack_ack_seconds_count", type="event") == 1
    assert grew("vigil_slack_ack_seconds_bucket", type="command", le="+Inf") == 1
    assert grew("vigil_slack_ack_seconds_sum", type="command") > 0
    # The scrape before counts as a /metrics request; routes are templates, unknown paths one label.
    assert grew("vigil_http_requests_total", route="/metrics", method="GET", status="200") == 1
    vigil.client.get("/no/such/page-12345")
    assert ("vigil_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404"))) \
        in scrape(vigil.client)
    # Channel set-up was delivered by the sender: counted by kind; the event log is visible.
    assert grew("vigil_outbox_deliveries_total", kind="incident.setup", outcome="delivered") >= 1
    assert value(after, "vigil_database_up") == 1
    assert value(after, "vigil_event_streams") >= 1
    assert value(after, "vigil_events_total") >= 1
    assert value(after, "vigil_event_head_mismatches") == 0


def test_every_response_carries_a_fresh_request_id(vigil):
    first, second = vigil.client.get("/healthz"), vigil.client.get("/metrics")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_metrics_is_open_without_a_token_and_not_behind_the_dashboard_sign_in(vigil):
    response = vigil.client.get("/metrics", follow_redirects=False)
    assert response.status_code == 200 and "vigil_outbox_pending" in response.text
    assert vigil.client.get("/", follow_redirects=False).status_code in (302, 303, 307)  # the dashboard is not


def test_a_metrics_token_is_required_when_set(db, fake_slack, settings_for):
    from starlette.testclient import TestClient

    from vigil_ir.runtime import build_runtime
    from vigil_ir.web.app import create_web_app

    runtime = build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_METRICS_TOKEN="scrape-me-0123456789"), db)
    with TestClient(create_web_app(runtime, background_delivery=False)) as client:
        missing = client.get("/metrics")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "scrape-me-0123456789"}).status_code == 401
        assert ("vigil_outbox_pending", ()) in scrape(client, Authorization="Bearer scrape-me-0123456789")
        assert client.get("/healthz").status_code == 200  # health checks need no token


def test_outbox_depth_and_oldest_age_are_read_at_scrape_time(vigil):
    found = scrape(vigil.client)
    assert value(found, "vigil_outbox_pending") == 0 and value(found, "vigil_outbox_oldest_pending_age_seconds") == 0
    with clock.frozen(clock.now() - timedelta(minutes=10)), vigil.db.session() as session:
        outbox.enqueue(session, kind="slack.post", subject="test", payload={"channel": "C1", "text": "old"})
    with vigil.db.session() as session:
        outbox.enqueue(session, kind="slack.post", subject="test", payload={"channel": "C1", "text": "new"})
    found = scrape(vigil.client)
    assert value(found, "vigil_outbox_pending") == 2
    assert 600 <= value(found, "vigil_outbox_oldest_pending_age_seconds") < 700
    vigil.deliver()
    found = scrape(vigil.client)
    assert value(found, "vigil_outbox_pending") == 0 and value(found, "vigil_outbox_oldest_pending_age_seconds") == 0


def test_failed_deliveries_are_counted_by_kind(vigil, fake_slack):
    before = scrape(vigil.client)
    fake_slack.fail_next("chat.postMessage", status=500, error="internal_error")
    with vigil.db.session() as session:
        outbox.enqueue(session, kind="slack.post", subject="test", payload={"channel": "C1", "text": "x"})
    vigil.deliver()
    after = scrape(vigil.client)
    assert value(after, "vigil_outbox_deliveries_total", kind="slack.post", outcome="failed") \
        - value(before, "vigil_outbox_deliveries_total", kind="slack.post", outcome="failed") == 1
    assert value(after, "vigil_outbox_pending") == 1  # retried later, never dropped


def test_reminders_queued_and_failed_sweeps_are_counted_by_sweep(vigil, monkeypatch):
    def broken(session, now, settings):
        raise RuntimeError("boom")

    monkeypatch.setattr(scheduler, "_SWEEPS", {"test.three": lambda session, now, settings: 3, "test.broken": broken})
    monkeypatch.setattr(scheduler, "registered", lambda: dict(scheduler._SWEEPS))
    before = scrape(vigil.client)
    started = time.time()
    assert vigil.sweep() == {"test.three": 3, "test.broken": -1}
    after = scrape(vigil.client)
    assert value(after, "vigil_reminders_queued_total", sweep="test.three") \
        - value(before, "vigil_reminders_queued_total", sweep="test.three") == 3
    assert value(after, "vigil_sweep_failures_total", sweep="test.broken") \
        - value(before, "vigil_sweep_failures_total", sweep="test.broken") == 1
    assert value(after, "vigil_sweeps_last_run_timestamp_seconds") >= int(started)


def test_event_log_gauges_and_the_cheap_head_check(vigil):
    incident = vigil.declare(deliver=False)
    found = scrape(vigil.client)
    with vigil.db.session() as session:
        streams, events = session.execute(text("SELECT count(*), sum(seq) FROM stream_head")).one()
    assert value(found, "vigil_event_streams") == streams and value(found, "vigil_events_total") == events
    assert value(found, "vigil_event_head_mismatches") == 0
    with vigil.db.engine.begin() as connection:  # a deleted tail: the head no longer matches an event
        connection.execute(text("UPDATE stream_head SET hash = :h WHERE stream = :s"),
                           {"h": "0" * 64, "s": f"incident:{incident.number}"})
    assert value(scrape(vigil.client), "vigil_event_head_mismatches") == 1


def test_audit_heads_publication_time_is_shown_when_an_audit_channel_is_set(db, fake_slack, settings_for):
    from datetime import timedelta

    from starlette.testclient import TestClient

    from vigil_ir import clock
    from vigil_ir.eventlog import append
    from vigil_ir.reminders.scheduler import run_sweeps
    from vigil_ir.runtime import build_runtime
    from vigil_ir.web.app import create_web_app

    settings = settings_for(DATABASE_URL=db.url, VIGIL_AUDIT_CHANNEL="C0AUDIT")
    runtime = build_runtime(settings, db)
    with TestClient(create_web_app(runtime, background_delivery=False)) as client:
        assert value(scrape(client), "vigil_audit_heads_published_timestamp_seconds") == 0
        with db.session() as session:  # a witness needs something to witness
            append(session, stream="audit", kind="audit.test", actor="cli:test", data={})
        with clock.frozen(clock.now() + timedelta(minutes=10)):  # past the witness's commit margin
            run_sweeps(db, settings)
            runtime.worker.sender.run_once()
        assert value(scrape(client), "vigil_audit_heads_published_timestamp_seconds") > time.time() - 60


def test_an_unreachable_database_still_answers_the_scrape(tmp_path, settings_for):
    broken = Database(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
    found = samples(generate_latest(build_registry(broken, settings_for())).decode())
    assert value(found, "vigil_database_up") == 0
    assert ("vigil_outbox_pending", ()) not in found
    assert any(name.startswith("process_") or name.startswith("python_") for name, _ in found)


def test_vigil_worker_serves_metrics_on_loopback(tmp_path, fake_slack):
    from tests.test_cli import free_port

    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}", "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_SIGNING_SECRET": slack_requests.SECRET, "SLACK_API_URL": fake_slack.base_url,
           "VIGIL_PLAYBOOKS_DIR": str(PLAYBOOK_FIXTURES), "NO_PROXY": "127.0.0.1", "VIGIL_LOG_FORMAT": "json"}
    subprocess.run([sys.executable, "-m", "vigil_ir.cli", "migrate"], env=env, check=True, capture_output=True)
    worker = subprocess.Popen([sys.executable, "-m", "vigil_ir.cli", "worker", "--metrics-port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        found = {}
        for _ in range(100):  # until the worker has run its first sweep
            try:
                found = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
                if value(found, "vigil_sweeps_last_run_timestamp_seconds") > 0:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert value(found, "vigil_database_up") == 1 and value(found, "vigil_outbox_pending") == 0
        assert value(found, "vigil_sweeps_last_run_timestamp_seconds") > 0
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=15)[0].decode()
    assert worker.returncode == 0, output
    assert f"worker metrics on http://127.0.0.1:{port}/metrics" in output
