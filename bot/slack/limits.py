"""Slack's Block Kit limits, in one place, and the helpers every block builder uses to stay within them.

Slack refuses a message or view that breaks a limit (`invalid_blocks`), so over-long text is cut here,
visibly: the cut text ends with `MORE`, pointing at the timeline and exports, which keep the full text.
User text is cut *before* mrkdwn escaping (`mrkdwn`), so an escape such as `&amp;` is never split;
text that is already mrkdwn (built from escaped parts) is cut by `fit` just before any entity or
`<…>` token the limit would split. Cuts fall on character boundaries (Python strings are code points).
"""

from __future__ import annotations

import copy
import json
import logging
import re

from vigil_ir.bidi import neutralise
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
OPTION_VALUE = 150
CHOICE_OPTIONS = 10  # checkboxes, radio buttons
PLACEHOLDER = 150
PRIVATE_METADATA = 3000
INPUT_VALUE = 3000
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

log = logging.getLogger(__name__)
MORE = "… (full text on the timeline)"
_SHORT_MORE = "…"
# An escape (`&amp;`) or a token (`<@U1>`, `<!date^…|…>`, `<#C1>`) that a cut must not split.
_OPEN_TOKEN = re.compile(r"(&[a-z]*|<[^>]*)$")


def _marker(limit: int) -> str:
    """The long notice where it fits comfortably, else a bare ellipsis (option text, buttons)."""
    return MORE if limit >= 4 * len(MORE) else _SHORT_MORE


def plain(text: object, limit: int) -> str:
    """`plain_text` within `limit`, cut with a visible marker (bidi controls shown as their markers first,
    as every Slack call shows them, so the markers count towards the limit)."""
    text = neutralise(str(text if text is not None else ""))
    if len(text) <= limit:
        return text
    marker = _marker(limit)
    return text[:limit - len(marker)] + marker


def initial(text: object, limit: int) -> str:
    """A text input's prefilled value within its `max_length`, as Slack will show it (bidi controls as
    markers). No marker is added: whatever is prefilled is what a submit sends back."""
    return neutralise(str(text if text is not None else ""))[:limit]


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
    text = neutralise(text)
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


def modal(callback_id: str, title: object, submit: object, blocks: list[dict], metadata: str = "",
          close: object = "Cancel") -> dict:
    """A modal view: title and buttons cut to Slack's 24 characters (e.g. "Review of INC-10000000000")."""
    return {"type": "modal", "callback_id": callback_id, "private_metadata": metadata,
            "title": {"type": "plain_text", "text": plain(title, MODAL_TITLE)},
            "submit": {"type": "plain_text", "text": plain(submit, MODAL_BUTTON)},
            "close": {"type": "plain_text", "text": plain(close, MODAL_BUTTON)}, "blocks": blocks}


def message_text(text: str) -> str:
    """The top-level notification text of a message."""
    return fit(text, MESSAGE_TEXT)


# --- The last word on every payload that leaves for Slack -------------------------------------------
# Builders stay within the limits with the helpers above (a property test checks every one); `enforce`,
# applied where payloads leave (the Web API client, modals opened inline, response_url replies), cuts
# whatever still does not fit and logs it, so a builder's slip shows as a warning, not `invalid_blocks`.

_MRKDWN_ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)|<[^>]*$")


def _slots(payload):
    """Every limited part of a message's blocks or a view: (holder, key, limit, what) where holder[key]
    is a text object, a string or a list."""
    view = isinstance(payload, dict)
    if view:
        for key, limit in (("title", MODAL_TITLE), ("submit", MODAL_BUTTON), ("close", MODAL_BUTTON)):
            if isinstance(payload.get(key), dict):
                yield payload, key, limit, "text"
        if isinstance(payload.get("private_metadata"), str):
            yield payload, "private_metadata", PRIVATE_METADATA, "str"
        yield payload, "blocks", MODAL_BLOCKS, "list"
        blocks = payload.get("blocks") or []
    else:
        yield {"blocks": payload}, "blocks", MESSAGE_BLOCKS, "list"
        blocks = payload
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if isinstance(block.get("block_id"), str):
            yield block, "block_id", BLOCK_ID, "str"
        if isinstance(block.get("text"), dict):
            yield block, "text", HEADER_TEXT if kind == "header" else SECTION_TEXT, "text"
        if isinstance(block.get("fields"), list):
            yield block, "fields", SECTION_FIELDS, "list"
            for n, _ in enumerate(block["fields"]):
                yield block["fields"], n, FIELD_TEXT, "text"
        for key, limit in (("label", INPUT_LABEL), ("hint", INPUT_HINT)):
            if isinstance(block.get(key), dict):
                yield block, key, limit, "text"
        elements = block.get("elements")
        if isinstance(elements, list):
            yield block, "elements", CONTEXT_ELEMENTS if kind == "context" else ACTIONS_ELEMENTS, "list"
            for n, element in enumerate(elements):
                if kind == "context" and isinstance(element, dict) and "text" in element:
                    yield elements, n, SECTION_TEXT, "text"
                else:
                    yield from _element_slots(element)
        for key in ("accessory", "element"):
            yield from _element_slots(block.get(key))


def _element_slots(element):
    if not isinstance(element, dict):
        return
    kind = element.get("type")
    if isinstance(element.get("text"), dict):
        yield element, "text", BUTTON_TEXT, "text"
    if isinstance(element.get("placeholder"), dict):
        yield element, "placeholder", PLACEHOLDER, "text"
    if isinstance(element.get("value"), str):
        yield element, "value", ACTION_VALUE, "str"
    if isinstance(element.get("initial_value"), str):
        yield element, "initial_value", min(element.get("max_length") or INPUT_VALUE, INPUT_VALUE), "str"
    if isinstance(element.get("options"), list):
        most = (OVERFLOW_OPTIONS if kind == "overflow" else
                CHOICE_OPTIONS if kind in ("checkboxes", "radio_buttons") else OPTIONS)
        yield element, "options", most, "list"
        for option in element["options"]:
            yield from _option_slots(option)
    if isinstance(element.get("initial_option"), dict):
        yield from _option_slots(element["initial_option"])


def _option_slots(option):
    if not isinstance(option, dict):
        return
    if isinstance(option.get("text"), dict):
        yield option, "text", OPTION_TEXT, "text"
    if isinstance(option.get("description"), dict):
        yield option, "description", OPTION_DESCRIPTION, "text"
    if isinstance(option.get("value"), str):
        yield option, "value", OPTION_VALUE, "str"


def violations(payload) -> list[str]:
    """What in a message's blocks (a list) or a view (a dict) breaks a Slack limit, or splits an escape
    or a `<…>` token in mrkdwn; [] when Slack would take it."""
    found = []
    for holder, key, limit, what in _slots(payload):
        value = holder[key]
        if what == "text":
            text = str(value.get("text", ""))
            if len(text) > limit:
                found.append(f"{key}: {len(text)} characters (at most {limit})")
            if value.get("type") == "mrkdwn" and _MRKDWN_ENTITY.search(text.removesuffix(MORE)):
                found.append(f"{key}: a raw `&` or an unclosed `<` in mrkdwn: {text[-40:]!r}")
        elif len(value) > limit:
            found.append(f"{key}: {len(value)} {'items' if what == 'list' else 'characters'} (at most {limit})")
    return found


def enforce(payload):
    """A copy of a message's blocks or a view with every part cut to Slack's limits (logged: a builder
    should have done it)."""
    if not isinstance(payload, (list, dict)):
        return payload
    fixed = copy.deepcopy(payload)
    problems = []
    for holder, key, limit, what in list(_slots(fixed)):
        value = holder[key]
        if what == "text" and len(str(value.get("text", ""))) > limit:
            cut = fit if value.get("type") == "mrkdwn" else plain
            holder[key] = {**value, "text": cut(str(value["text"]), limit)}
        elif what == "str" and len(value) > limit:
            holder[key] = value[:limit]
        elif what == "list" and len(value) > limit:
            del value[limit:]
        else:
            continue
        problems.append(f"{key} (limit {limit})")
    if problems:
        log.warning("cut a Slack payload to Slack's limits: %s", ", ".join(problems))
    return fixed


def enforce_call(params: dict | None) -> dict | None:
    """A Web API call's arguments with `blocks` and `view` enforced (blocks may arrive as a JSON string)."""
    if not isinstance(params, dict):
        return params
    fixed = dict(params)
    for key in ("blocks", "view"):
        value = fixed.get(key)
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
            try:
                fixed[key] = json.dumps(enforce(json.loads(value)))
            except ValueError:
                pass
        elif isinstance(value, (list, dict)):
            fixed[key] = enforce(value)
    if isinstance(fixed.get("text"), str):
        fixed["text"] = message_text(fixed["text"])
    return fixed
