"""Recognising Slack user ids in recorded values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Slack user ids start with U (W on Enterprise Grid) and carry at least one digit; the digit keeps
# words such as "UTC" out.
_USER_ID = re.compile(r"^[UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{1,}$")
_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,})(?:\|[^>]*)?>")


_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9@(])([UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{1,31})(?![A-Za-z0-9)|])")


def replace_ids_in_text(text: str, label) -> str:
    """`text` with each standalone user id replaced by `label(id)` (ids already followed by a
    parenthesis, or inside one, are left: they are labelled already)."""
    if "U" not in text and "W" not in text:  # most texts hold no id: skip the regex's lookarounds
        return text
    return _ID_IN_TEXT.sub(lambda match: label(match.group(1)), text)


def is_user_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 32 and bool(_USER_ID.match(value))


def user_ids_in(value: Any) -> Iterator[str]:
    """Every user id held in a JSON-like value: whole strings that are ids, and `<@U…>` mentions."""
    if isinstance(value, str):
        if is_user_id(value):
            yield value
        elif "<@" in value:
            yield from (found for found in _MENTION.findall(value) if is_user_id(found))
    elif isinstance(value, dict):
        for item in value.values():
            yield from user_ids_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from user_ids_in(item)
