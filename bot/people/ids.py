"""Recognising Slack user ids in recorded values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Slack user ids start with U (W on Enterprise Grid) and carry at least one digit; the digit keeps
# words such as "UTC" out.
_USER_ID = re.compile(r"^[UW](?=[A-Z0-9]*[0-9])[A-Z0-9]{1,}$")
_ID_STARTS = ("U", "W")
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
    found: list[str] = []
    _collect_ids(value, found)
    return iter(found)


def _collect_ids(value: Any, found: list[str]) -> None:
    # Appends to one list rather than nesting generators, and looks at a string's first character
    # before the pattern (an id starts with U or W): the bundle's people list walks every value of
    # tens of thousands of events' data.
    if isinstance(value, str):
        if value[:1] in _ID_STARTS and is_user_id(value):
            found.append(value)
        elif "<@" in value:
            found.extend(match for match in _MENTION.findall(value) if is_user_id(match))
    elif isinstance(value, dict):
        for item in value.values():
            _collect_ids(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_ids(item, found)
