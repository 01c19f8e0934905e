"""The Slack app manifest matches what the app handles."""

from pathlib import Path

import yaml

from tests.slack_requests import message_shortcut

MANIFEST = yaml.safe_load((Path(__file__).parent.parent / "manifest.yaml").read_text())


def test_slash_commands_escape_mentions_and_point_at_one_url():
    commands = {c["command"]: c for c in MANIFEST["features"]["slash_commands"]}
    assert set(commands) == {"/incident", "/risk"}
    assert all(c["should_escape"] is True and c["url"].endswith("/slack/events") for c in commands.values())
    assert MANIFEST["settings"]["interactivity"]["request_url"].endswith("/slack/events")


def test_every_subscribed_event_and_shortcut_is_handled(vigil):
    """An event or shortcut without a listener is answered 404, and Slack keeps retrying it."""
    for event in MANIFEST["settings"]["event_subscriptions"]["bot_events"]:
        body = {"type": event, "user": "U0X", "channel": "C0X", "tab": "home", "reaction": "eyes",
                "item": {"type": "message", "channel": "C0X", "ts": "1.000001"}, "event_ts": "1.000002"}
        assert vigil.event(body).status_code == 200, f"no listener for subscribed event {event}"
    for shortcut in MANIFEST["features"]["shortcuts"]:
        body = message_shortcut(shortcut["callback_id"], channel="C0X", message={"ts": "1.000001", "text": "x"})
        assert vigil.post(body).status_code == 200, f"no listener for shortcut {shortcut['callback_id']}"


def test_scopes_cover_the_api_methods_used():
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    needed = {"commands", "chat:write", "channels:manage", "channels:history", "pins:write", "reactions:read",
              "users:read", "files:write", "usergroups:read"}
    assert needed <= scopes
