"""The fake Slack Web API, exercised through a real slack_sdk WebClient."""

from __future__ import annotations

import os
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_api import PROXY_VARS, FakeSlack


@pytest.fixture
def client(fake_slack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake_slack.base_url)


def test_urls_and_auth_test(fake_slack, client):
    assert fake_slack.base_url == fake_slack.url + "/api/"
    assert fake_slack.url.startswith("http://127.0.0.1:")
    resp = client.auth_test()
    assert resp["user_id"] == "U0BOT" and resp["bot_id"] == "B0BOT" and resp["team_id"] == "T0FAKE"
    (call,) = fake_slack.calls
    assert call.method == "auth.test" and call.headers["authorization"] == "Bearer xoxb-test"
    assert not call.failed


def test_missing_or_wrong_token_is_not_authed(fake_slack):
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxp-user", base_url=fake_slack.base_url).auth_test()
    assert err.value.response.status_code == 200
    assert err.value.response["error"] == "not_authed"
    assert fake_slack.calls[0].failed


def test_conversations_create_shape_and_name_taken(fake_slack, client):
    channel = client.conversations_create(name="inc-42-db-down", is_private=True)["channel"]
    assert channel["id"].startswith("C") and channel["name"] == "inc-42-db-down"
    assert channel["is_private"] is True and channel["is_channel"] is True
    assert fake_slack.channels[channel["id"]]["name"] == "inc-42-db-down"
    assert fake_slack.calls_to("conversations.create")[0].params["is_private"] == "1"  # form body

    with pytest.raises(SlackApiError) as err:
        client.conversations_create(name="inc-42-db-down")
    assert err.value.response["error"] == "name_taken"
    other = client.conversations_create(name="inc-43")["channel"]
    assert other["id"] != channel["id"]


@pytest.mark.parametrize(
    ("name", "error"),
    [("Inc-1", "invalid_name_specials"), ("inc 1", "invalid_name_specials"),
     ("inc.1", "invalid_name_specials"), ("x" * 81, "invalid_name_maxlength")],
)
def test_conversations_create_rejects_bad_names(client, name, error):
    with pytest.raises(SlackApiError) as err:
        client.conversations_create(name=name)
    assert err.value.response["error"] == error


def test_invite_topic_and_missing_channels(fake_slack, client):
    channel_id = client.conversations_create(name="inc-7")["channel"]["id"]
    assert client.conversations_invite(channel=channel_id, users=["U1", "U2"])["ok"]
    assert fake_slack.calls_to("conversations.invite")[0].params["users"] == "U1,U2"
    client.conversations_setTopic(channel=channel_id, topic="SEV1: db down")
    assert client.conversations_info(channel=channel_id)["channel"]["topic"]["value"] == "SEV1: db down"
    assert client.conversations_join(channel="CELSEWHERE")["channel"]["id"] == "CELSEWHERE"

    fake_slack.missing_channels.add("CGONE")
    with pytest.raises(SlackApiError) as err:
        client.conversations_invite(channel="CGONE", users="U1")
    assert err.value.response["error"] == "channel_not_found"


def test_post_message_ts_unique_increasing_and_stored(fake_slack, client):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = client.chat_postMessage(channel="C1", text="hi", blocks=blocks)
    assert first["message"]["user"] == "U0BOT" and first["message"]["blocks"] == blocks
    tss = [first["ts"]] + [client.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(20)]
    assert len(set(tss)) == len(tss)
    assert [float(t) for t in tss] == sorted(float(t) for t in tss)
    assert all(len(t.split(".")[1]) == 6 for t in tss)
    assert fake_slack.calls_to("chat.postMessage")[0].params["blocks"] == blocks

    client.chat_update(channel="C1", ts=first["ts"], text="edited")
    history = client.conversations_history(channel="C1", latest=first["ts"], inclusive=True, limit=1)
    assert history["messages"][0]["text"] == "edited"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C1", ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"


def test_history_and_replies_return_added_messages(fake_slack, client):
    fake_slack.add_message("C9", "1764300000.000100", "first")
    fake_slack.add_message("C9", "1764300001.000100", "second", user="U2")
    fake_slack.add_message("C9", "1764300002.000100", "reply", thread_ts="1764300000.000100")

    messages = client.conversations_history(channel="C9")["messages"]
    assert [m["text"] for m in messages] == ["second", "first"]  # newest first, no replies
    assert messages[0] == {"type": "message", "user": "U2", "text": "second", "ts": "1764300001.000100"}
    older = client.conversations_history(channel="C9", latest="1764300001.000100")["messages"]
    assert [m["text"] for m in older] == ["first"]

    thread = client.conversations_replies(channel="C9", ts="1764300000.000100")["messages"]
    assert [m["text"] for m in thread] == ["first", "reply"]


def test_other_shapes(fake_slack, client):
    assert client.chat_postEphemeral(channel="C1", user="U1", text="psst")["message_ts"]
    link = client.chat_getPermalink(channel="C1", message_ts="1764300000.000100")
    assert link["permalink"] == "https://fake.slack.com/archives/C1/p1764300000000100"
    assert client.pins_add(channel="C1", timestamp="1.2")["ok"]
    assert client.reactions_add(channel="C1", timestamp="1.2", name="eyes")["ok"]
    assert client.api_call("some.unknownMethod")["ok"]

    fake_slack.set_user("U1", name="ana", tz="Europe/Berlin")
    user = client.users_info(user="U1")["user"]
    assert user["name"] == "ana" and user["tz"] == "Europe/Berlin" and user["tz_offset"] in (3600, 7200)
    stranger = client.users_info(user="U404")["user"]
    assert stranger["tz"] == "UTC" and stranger["tz_offset"] == 0


def test_views_open_update_and_registry(fake_slack, client):
    modal = {"type": "modal", "callback_id": "declare", "title": {"type": "plain_text", "text": "X"},
             "blocks": []}
    view = client.views_open(trigger_id="t1", view=modal)["view"]
    assert view["id"].startswith("V") and view["hash"] and view["callback_id"] == "declare"
    assert fake_slack.views[view["id"]] == view and fake_slack.views_by_trigger["t1"] == view
    updated = client.views_update(view_id=view["id"], view={**modal, "callback_id": "step2"})["view"]
    assert updated["id"] == view["id"] and fake_slack.views[view["id"]]["callback_id"] == "step2"


def test_team_id_param_is_tolerated(fake_slack):
    client = WebClient(token="xoxb-test", base_url=fake_slack.base_url, team_id="T0FAKE")
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    assert fake_slack.calls[0].params["team_id"] == "T0FAKE"


def test_429_without_retry_handler_raises_with_retry_after(fake_slack, client):
    fake_slack.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response.headers["Retry-After"] == "7"
    assert err.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]  # one-shot
    assert [c.failed for c in fake_slack.calls] == [True, False]


def test_429_then_success_with_rate_limit_retry_handler(fake_slack):
    client = WebClient(token="xoxb-test", base_url=fake_slack.base_url,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    fake_slack.fail_next("chat.postMessage", retry_after=0)
    started = time.monotonic()
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    assert time.monotonic() - started < 2.0
    assert [(c.status, c.failed) for c in fake_slack.calls_to("chat.postMessage")] == [
        (429, True), (200, False)]


def test_fail_always_until_heal(fake_slack, client):
    fake_slack.fail_always("conversations.create")
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            client.conversations_create(name="inc-1")
        assert err.value.response.status_code == 500
        assert err.value.response["error"] == "internal_error"
    fake_slack.heal()
    assert client.conversations_create(name="inc-1")["ok"]


def test_delay_next_makes_client_time_out(fake_slack):
    client = WebClient(token="xoxb-test", base_url=fake_slack.base_url, timeout=0.5)
    fake_slack.delay_next("chat.postMessage", 2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C1", text="slow")
    assert time.monotonic() - started < 1.5
    # Slack did the work even though we gave up waiting: the message exists.
    assert len(fake_slack.messages["C1"]) == 1
    assert client.chat_postMessage(channel="C1", text="fast")["ok"]


def test_drop_next_is_retried_by_connection_error_handler(fake_slack):
    fast = ConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0.01))
    client = WebClient(token="xoxb-test", base_url=fake_slack.base_url, retry_handlers=[fast])
    fake_slack.drop_next("chat.postMessage")
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 2


def test_response_url_records_posted_json(fake_slack):
    url = fake_slack.response_url("cmd1")
    resp = WebhookClient(url).send(text="Incident declared", response_type="ephemeral")
    assert resp.status_code == 200 and resp.body == "ok"
    WebhookClient(fake_slack.response_url()).send(text="other")
    assert fake_slack.responses("cmd1") == [{"text": "Incident declared", "response_type": "ephemeral"}]
    assert [r["text"] for r in fake_slack.responses()] == ["Incident declared", "other"]


def test_wait_for_and_reset(fake_slack, client):
    client.auth_test()
    assert len(fake_slack.wait_for("auth.test")) == 1
    with pytest.raises(AssertionError, match="chat.postMessage"):
        fake_slack.wait_for("chat.postMessage", timeout=0.1)
    fake_slack.set_user("U1", name="ana")
    fake_slack.fail_next("auth.test")
    fake_slack.reset()
    assert fake_slack.calls == [] and fake_slack.responses() == []
    assert client.auth_test()["ok"]  # fault was cleared
    assert client.users_info(user="U1")["user"]["name"] == "ana"  # users survive reset


@pytest.fixture
def proxied(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens on the discard port


def test_fixture_removes_proxy_env(proxied, fake_slack, client):
    assert not any(var in os.environ for var in PROXY_VARS)
    assert client.auth_test()["ok"]


def test_fake_works_as_context_manager():
    with FakeSlack() as fake:
        assert fake.url.startswith("http://127.0.0.1:")


def test_lookups_for_lost_answers_list_history_metadata_and_pins(fake_slack, client):
    """What delivery uses to find what a timed-out call did: conversations.list pages, message
    metadata in conversations.history (only when asked for), pins.add answering already_pinned."""
    made = [client.conversations_create(name=f"inc-{n}-x")["channel"] for n in range(5)]
    assert {"created", "creator", "is_archived"} <= set(made[0])
    first = client.conversations_list(types="public_channel", exclude_archived=True, limit=2)
    assert [c["name"] for c in first["channels"]] == ["inc-0-x", "inc-1-x"]
    names, cursor = [], None
    while True:
        page = client.conversations_list(types="public_channel", limit=2, cursor=cursor)
        names += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert names == [f"inc-{n}-x" for n in range(5)]
    marker = {"event_type": "vigil_post", "event_payload": {"key": "incident:1:summary"}}
    ts = client.chat_postMessage(channel="C1", text="hi", metadata=marker)["ts"]
    assert "metadata" not in client.conversations_history(channel="C1")["messages"][0]
    assert client.conversations_history(channel="C1", include_all_metadata=True)["messages"][0]["metadata"] == marker
    assert client.pins_add(channel="C1", timestamp=ts)["ok"]
    with pytest.raises(SlackApiError) as again:
        client.pins_add(channel="C1", timestamp=ts)
    assert again.value.response["error"] == "already_pinned" and fake_slack.pins["C1"] == [ts]


def test_wildcard_faults_and_slow_answers_after_the_work(fake_slack):
    client = WebClient(token="xoxb-test", base_url=fake_slack.base_url, timeout=0.2, retry_handlers=[])
    fake_slack.fail_always("*", status=503, error="service_unavailable")
    with pytest.raises(SlackApiError):
        client.auth_test()
    fake_slack.heal()
    fake_slack.delay_always("*", 0.6)
    with pytest.raises(TimeoutError):
        client.conversations_create(name="inc-9-slow")
    assert [c["name"] for c in fake_slack.channels.values()] == ["inc-9-slow"]  # done, though unanswered
    assert len(fake_slack.ok_calls("conversations.create")) == 1
