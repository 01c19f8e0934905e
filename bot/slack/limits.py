"""Slack's Block Kit limits, in one place, and the helpers every block builder uses to stay within them.

Slack refuses a message or view that breaks a limit (`invalid_blocks`), so over-long text is cut here,
visibly: the cut text ends with `MORE`, pointing at the timeline and exports, which keep the full text.
User text is cut *before* mrkdwn escaping (`mrkdwn`), so an escape such as `&amp;` is never split;
text that is already mrkdwn (built from escaped parts) is cut by `fit` just before any entity or
`<…>` token the limit would split. Cuts fall on character boundaries (Python strings are code points).
"""

from __future__ import annotations

import re

from vigil_ir.slack.escape import esc

# https://api.slack.com/reference/block-kit/blocks and /composition-objects (limits in characters)
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
HOME_BLOCKS = 100
OPTION_TEXT = 75
OPTION_DESCRIPTION = 75
OPTIONS = 100
OVERFLOW_OPTIONS = 5
BUTTON_TEXT = 75
ACTIONS_ELEMENTS = 25
INPUT_LABEL = 2000
INPUT_HINT = 2000
MODAL_TITLE = 24
MODAL_BUTTON = 24
MESSAGE_TEXT = 40000  # the top-level `text` (notification fallback)
BLOCK_ID = 255
ACTION_VALUE = 2000

MORE = "… (full text on the timeline)"
_SHORT_MORE = "…"
# An escape (`&amp;`) or a token (`<@U1>`, `<!date^…|…>`, `<#C1>`) that a cut must not split.
_OPEN_TOKEN = re.compile(r"(&[a-z]*|<[^>]*)$")


def _marker(limit: int) -> str:
    """The long notice where it fits comfortably, else a bare ellipsis (option text, buttons)."""
    return MORE if limit >= 4 * len(MORE) else _SHORT_MORE


def plain(text: object, limit: int) -> str:
    """`plain_text` within `limit`, cut with a visible marker."""
    text = str(text if text is not None else "")
    if len(text) <= limit:
        return text
    marker = _marker(limit)
    return text[:limit - len(marker)] + marker


def mrkdwn(text: object, limit: int = SECTION_TEXT) -> str:
    """User text escaped for mrkdwn, in at most `limit` characters *after* escaping.

    Cut before escaping, on a character boundary, so no escape is split; the marker says the full
    text is on the timeline.
    """
    escaped = esc(text if text is not None else "")
    if len(escaped) <= limit:
        return escaped
    marker = _marker(limit)
    budget, kept, size = limit - len(marker), [], 0
    for char in str(text):
        piece = esc(char)
        if size + len(piece) > budget:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + marker


def fit(text: str, limit: int = SECTION_TEXT) -> str:
    """Already-built mrkdwn within `limit`: cut before any escape or `<…>` token the limit would split."""
    if len(text) <= limit:
        return text
    marker = _marker(limit)
    head = text[:limit - len(marker)]
    open_token = _OPEN_TOKEN.search(head)
    if open_token:
        head = head[:open_token.start()]
    return head + marker


def section(text: str, **extra) -> dict:
    """A mrkdwn section block from already-built mrkdwn, fitted to the section limit."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text)}, **extra}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(text)}]}


def header(text: object) -> dict:
    return {"type": "header", "text": {"type": "plain_text", "text": plain(text, HEADER_TEXT)}}


def option(text: object, value: str, description: object | None = None) -> dict:
    built = {"text": {"type": "plain_text", "text": plain(text, OPTION_TEXT)}, "value": value}
    if description is not None:
        built["description"] = {"type": "plain_text", "text": plain(description, OPTION_DESCRIPTION)}
    return built


def button(text: object, *, action_id: str, value: str, style: str | None = None) -> dict:
    built = {"type": "button", "action_id": action_id, "value": value[:ACTION_VALUE],
             "text": {"type": "plain_text", "text": plain(text, BUTTON_TEXT)}}
    if style:
        built["style"] = style
    return built


def message_text(text: str) -> str:
    """The top-level notification text of a message."""
    return fit(text, MESSAGE_TEXT)
