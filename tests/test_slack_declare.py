"""Declaring an incident through the real app: modal, record, outbox delivery, Slack side."""

import time

from sqlmodel import select

from vigil_ir.eventlog import events_for_stream
from vigil_ir.idempotency import ProcessedKey
from vigil_ir.incidents.models import Incident
from vigil_ir.outbox.models import OutboxItem
from tests.slack_requests import input_value


def count(db, model):
    with db.session() as s:
        return len(list(s.exec(select(model))))


def test_slash_command_opens_prefilled_modal(vigil):
    response = vigil.command("declare Login page down")
    assert response.status_code == 200
    view = vigil.last_view("incident_declare")
    title_block = next(b for b in view["blocks"] if b["block_id"] == "title")
    assert title_block["element"]["initial_value"] == "Login page down"
    assert {b["block_id"] for b in view["blocks"]} >= {"title", "severity", "type", "description", "detected_at",
                                                        "security"}
    assert count(vigil.db, Incident) == 0


def test_declare_records_then_sets_up_channel_summary_and_feed(vigil, fake_slack):
    incident = vigil.declare("Checkout API returns 500s", severity="sev1")
    assert incident.key == "INC-1" and incident.severity == "sev1" and incident.status == "investigating"
    (create,) = fake_slack.calls_to("conversations.create")
    assert create.params["name"] == "inc-1-checkout-api-returns-500s"
    assert incident.channel_id in fake_slack.channels
    invite = fake_slack.calls_to("conversations.invite")[0]
    assert invite.params["users"] == "U0DECLARER"
    posts = [p for p in fake_slack.calls_to("chat.postMessage") if "playbook" not in p.params["text"]]
    assert [p.params["channel"] for p in posts] == [incident.channel_id, "C0FEED"]
    assert fake_slack.calls_to("pins.add")[0].params["timestamp"] == incident.summary_ts
    assert incident.feed_ts and incident.feed_channel == "C0FEED"
    with vigil.db.session() as s:
        kinds = [e.kind for e in events_for_stream(s, "incident:1")]
    assert kinds == ["incident.declared", "incident.channel_created", "incident.summary_posted",
                     "incident.announcement_posted"]


def test_channel_name_clash_gets_a_suffix(vigil, fake_slack):
    vigil.declare("Database down")
    first = fake_slack.calls_to("conversations.create")[0].params["name"]
    # Same number cannot recur, so force a clash by pre-creating the next incident's name.
    fake_slack.channels["CTAKEN"] = {"id": "CTAKEN", "name": "inc-2-database-down"}
    incident = vigil.declare("Database down")
    assert first == "inc-1-database-down"
    assert incident.channel_name == "inc-2-database-down-2"


def test_invalid_submission_shows_inline_errors_and_writes_nothing(vigil):
    vigil.command("declare")
    view = vigil.last_view("incident_declare")
    response = vigil.submit(view, {"title": input_value("plain_text_input", "   "),
                                   "severity": input_value("static_select", None),
                                   "type": input_value("static_select", "availability"),
                                   "detected_at": input_value("datetimepicker", int(time.time()) + 3600)})
    assert response.status_code == 200
    body = response.json()
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"title", "severity", "detected_at"}
    assert count(vigil.db, Incident) == 0 and count(vigil.db, OutboxItem) == 0


def test_modal_submitted_twice_records_one_incident(vigil):
    vigil.command("declare")
    view = vigil.last_view("incident_declare")
    values = {"title": input_value("plain_text_input", "Queue backlog"),
              "severity": input_value("static_select", "sev3"), "type": input_value("static_select", "other")}
    for _ in range(2):
        assert vigil.submit(view, values, view_id="V0SAME").status_code == 200
    assert count(vigil.db, Incident) == 1
    assert count(vigil.db, OutboxItem) == 2  # channel set-up and playbook suggestions, once each


def test_detected_at_and_security_flag_are_recorded(vigil):
    vigil.command("declare")
    view = vigil.last_view("incident_declare")
    detected = int(time.time()) - 1800
    vigil.submit(view, {"title": input_value("plain_text_input", "Suspicious logins"),
                        "severity": input_value("static_select", "sev2"),
                        "type": input_value("static_select", "availability"),
                        "detected_at": input_value("datetimepicker", detected),
                        "security": input_value("checkboxes", [{"value": "yes"}])})
    with vigil.db.session() as s:
        incident = s.exec(select(Incident)).one()
    assert incident.security is True
    assert int(incident.detected_at.timestamp()) == detected


def test_bad_signature_and_stale_timestamp_are_rejected_and_write_nothing(vigil):
    assert vigil.post("token=x&text=declare", secret="wrong").status_code == 401
    stale = int(time.time()) - 301
    from tests.slack_requests import slash_command

    assert vigil.post(slash_command("note hi"), timestamp=stale).status_code == 401
    assert count(vigil.db, ProcessedKey) == 0 and count(vigil.db, Incident) == 0


def test_slack_down_never_loses_the_incident(vigil, fake_slack):
    fake_slack.fail_always("conversations.create", status=500, error="internal_error")
    incident = vigil.declare("Payments degraded")
    assert incident.key == "INC-1" and incident.channel_id is None
    with vigil.db.session() as s:
        item = s.exec(select(OutboxItem).where(OutboxItem.kind == "incident.setup")).one()
    assert item.status == "pending" and "internal_error" in item.last_error
    fake_slack.heal()
    from vigil_ir import clock
    from datetime import timedelta

    later = clock.now() + timedelta(hours=1)
    with clock.frozen(later):
        vigil.deliver()
    with vigil.db.session() as s:
        incident = s.exec(select(Incident)).one()
        item = s.exec(select(OutboxItem).where(OutboxItem.kind == "incident.setup")).one()
    assert incident.channel_id and incident.summary_ts and incident.feed_ts
    assert item.status == "done" and item.result["channel"] == incident.channel_id
    created = [c for c in fake_slack.calls_to("conversations.create") if not c.failed]
    assert len(created) == 1
    assert len(fake_slack.calls_to("pins.add")) == 1


def test_rate_limited_post_is_rescheduled_after_retry_after(vigil, fake_slack):
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)
    vigil.declare("Search slow")
    with vigil.db.session() as s:
        item = s.exec(select(OutboxItem).where(OutboxItem.kind == "incident.setup")).one()
        incident = s.exec(select(Incident)).one()
    # The channel was created and kept; only the post waits for Retry-After.
    assert incident.channel_id and incident.summary_ts is None
    wait = (item.available_at - item.created_at).total_seconds()
    assert 29 <= wait <= 40
    from vigil_ir import clock
    from datetime import timedelta

    with clock.frozen(clock.now() + timedelta(seconds=31)):
        vigil.deliver()
    assert len(fake_slack.calls_to("conversations.create")) == 1
    ok_posts = [c for c in fake_slack.calls_to("chat.postMessage")
                if not c.failed and "playbook" not in c.params["text"]]
    assert len(ok_posts) == 2  # summary + feed, each once


def test_timeouts_are_retried(vigil, fake_slack):
    fake_slack.delay_next("conversations.create", 3)  # client timeout is 2 s
    vigil.declare("Slow Slack")
    from vigil_ir import clock
    from datetime import timedelta

    with clock.frozen(clock.now() + timedelta(minutes=5)):
        vigil.deliver()
    with vigil.db.session() as s:
        incident = s.exec(select(Incident)).one()
    assert incident.channel_id is not None
    assert incident.summary_ts is not None


def test_escaping_user_text_in_messages(vigil, fake_slack):
    incident = vigil.declare("DB <!channel> & <@U999> meltdown")
    summary = fake_slack.calls_to("chat.postMessage")[0].params
    assert "<!channel>" not in summary["text"] and "&lt;!channel&gt; &amp; &lt;@U999&gt;" in summary["text"]
    mrkdwn = [t["text"] for b in summary["blocks"] for t in ([b.get("text")] + b.get("fields", []) +
              b.get("elements", [])) if t and t.get("type") == "mrkdwn"]
    assert mrkdwn and not any("<!channel>" in t or "<@U999>" in t for t in mrkdwn)
    header = summary["blocks"][0]["text"]
    assert header["type"] == "plain_text"  # Slack does not parse mentions in plain_text
    assert incident.title == "DB <!channel> & <@U999> meltdown"


def test_without_credentials_events_answer_503_and_health_is_ok(db, fake_slack, settings_for):
    from starlette.testclient import TestClient

    from vigil_ir.runtime import build_runtime
    from vigil_ir.web.app import create_web_app

    runtime = build_runtime(settings_for(DATABASE_URL=db.url, SLACK_BOT_TOKEN="", SLACK_SIGNING_SECRET=""), db)
    with TestClient(create_web_app(runtime)) as client:
        response = client.post("/slack/events", content=b"x=1")
        assert response.status_code == 503
        assert "SLACK_BOT_TOKEN" in response.json()["message"] and "manifest.yaml" in response.json()["message"]
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["slack"] == "not configured"
