"""A request's response_url is followed only to Slack's hooks host (SLACK_HOOKS_URL) and never logged."""

from __future__ import annotations

import logging

from vigil_ir.slack.hooks import is_slack_hook
from tests.slack_requests import block_action
from tests.test_actions_slack import OWNER, buttons, create_by_command, dms


def double_click(vigil, fake_slack, response_url: str) -> None:
    (dm,) = dms(fake_slack, OWNER)
    for _ in range(2):  # the second click is answered on the response_url ("already done")
        body = block_action("action_item_done", buttons(dm)["action_item_done"], channel=dm["channel"],
                            message_ts=dm.get("ts", "1.000001"), user=OWNER, response_url=response_url)
        assert vigil.post(body).status_code == 200
        vigil.deliver()


def test_a_reply_goes_to_the_hooks_host(vigil, fake_slack):
    create_by_command(vigil, f"<@{OWNER}> 3d Add an alert")
    double_click(vigil, fake_slack, fake_slack.response_url("hook"))
    assert len(fake_slack.responses("hook")) == 1


def test_a_response_url_on_another_host_is_never_followed_nor_logged(vigil, fake_slack, caplog):
    create_by_command(vigil, f"<@{OWNER}> 3d Add an alert")
    # The same fake server under another host name: it records the POST if Vigil follows the URL.
    foreign = fake_slack.response_url("foreign").replace("127.0.0.1", "localhost")
    with caplog.at_level(logging.DEBUG):
        double_click(vigil, fake_slack, foreign)
    assert fake_slack.responses("foreign") == []
    assert "response_url outside" in caplog.text and foreign not in caplog.text


def test_only_the_hooks_scheme_host_and_path_match():
    hooks = "https://hooks.slack.com/"
    assert is_slack_hook("https://hooks.slack.com/actions/T1/2/abc", hooks)
    for url in ("http://hooks.slack.com/actions/x", "https://hooks.slack.com.evil.test/actions",
                "https://evil.test/https://hooks.slack.com/", "https://user@hooks.slack.com/x", 12, None,
                "https://[::1/x"):
        assert not is_slack_hook(url, hooks), url
