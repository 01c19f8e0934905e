"""Safe mrkdwn: user text is escaped so it cannot ping (`<!channel>`) or break formatting."""

from __future__ import annotations

import re

from vigil_ir.bidi import neutralise

_ID = re.compile(r"^[UWCGSB][A-Z0-9]{2,}$")
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def esc(text: object) -> str:
    """Slack decodes only `&`, `<` and `>`; escape exactly those (and show bidi controls, vigil_ir.bidi)."""
    return neutralise(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user_id: str | None) -> str:
    if not user_id:
        return "_unassigned_"
    if not _ID.match(user_id):
        return esc(user_id)
    return f"<@{user_id}>"


def channel_link(channel_id: str | None) -> str:
    if not channel_id or not _ID.match(channel_id):
        return "_no channel yet_"
    return f"<#{channel_id}>"


def link(url: str, label: str) -> str:
    return f"<{esc(url)}|{esc(label)}>"


def first_mention(text: str) -> str | None:
    """The user id of the first escaped mention in command text (`should_escape: true`)."""
    match = MENTION.search(text or "")
    return match.group(1) if match else None
