"""manifest.yaml asks for exactly the bot scopes the code needs, and its comments name only methods it calls."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The scope each Web API method Vigil calls needs (None: no bot scope), from api.slack.com/methods.
METHOD_SCOPES = {
    "chat_postMessage": "chat:write", "chat_update": "chat:write", "chat_getPermalink": None,
    "conversations_create": "channels:manage", "conversations_invite": "channels:manage",
    "conversations_kick": "channels:manage",
    "conversations_history": "channels:history", "conversations_replies": "channels:history",
    "conversations_list": "channels:read", "conversations_open": "im:write", "pins_add": "pins:write",
    "files_upload_v2": "files:write", "users_info": "users:read", "users_lookupByEmail": "users:read.email",
    "usergroups_list": "usergroups:read", "usergroups_users_list": "usergroups:read",
    "views_open": None, "views_publish": None, "auth_test": None, "openid_connect_token": None,
}
EVENT_SCOPES = {"reaction_added": "reactions:read", "member_joined_channel": "channels:read",
                "member_left_channel": "channels:read",
                "user_change": "users:read", "app_home_opened": None}
# Scopes for what is not a method call: slash commands and shortcuts, posting to channels not joined.
WITHOUT_METHOD = {"commands", "chat:write.public"}
# Private-channel counterparts of a scope the code needs (the same calls in private incident channels).
PRIVATE = {"groups:read": "channels:read", "groups:write": "channels:manage", "groups:history": "channels:history"}
_CALL = re.compile(r"(?:client|self\.client)\.([a-z]+_[A-Za-z0-9_]+)\(|_call\(\"([A-Za-z0-9_]+)\"")


def called_methods() -> set[str]:
    found = set()
    for path in (ROOT / "bot").rglob("*.py"):
        for match in _CALL.finditer(path.read_text(encoding="utf-8")):
            found.add(match.group(1) or match.group(2))
    return found


def manifest() -> tuple[dict, str]:
    text = (ROOT / "manifest.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text), text


def test_every_called_method_is_known_and_its_scope_requested():
    called = called_methods()
    assert called - METHOD_SCOPES.keys() == set(), "add the new Web API method and its scope to METHOD_SCOPES"
    scopes = set(manifest()[0]["oauth_config"]["scopes"]["bot"])
    needed = {METHOD_SCOPES[m] for m in called} - {None}
    assert needed - scopes == set()


def test_every_requested_scope_is_needed():
    data, _ = manifest()
    called = called_methods()
    events = data["settings"]["event_subscriptions"]["bot_events"]
    needed = ({METHOD_SCOPES[m] for m in called} | {EVENT_SCOPES[e] for e in events} | WITHOUT_METHOD) - {None}
    scopes = set(data["oauth_config"]["scopes"]["bot"])
    unneeded = {s for s in scopes - needed if PRIVATE.get(s) not in needed}
    assert unneeded == set()


def test_scope_comments_name_only_methods_the_code_calls():
    _, text = manifest()
    bot = text[text.index("    bot:"):text.index("settings:")]
    families = "chat|conversations|users|usergroups|pins|files|reactions|views|auth|im|channels|groups"
    named = set(re.findall(rf"(?<![\w:.])((?:{families})(?:\.[a-z][A-Za-z0-9]*)+)", bot))
    called = called_methods()
    as_method = {name: re.sub(r"V(\d)", r"_v\1", name).replace(".", "_") for name in named}
    assert {name for name, method in as_method.items() if method not in called} == set()
