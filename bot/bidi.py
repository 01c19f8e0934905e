"""Bidirectional control characters, neutralised wherever text is shown.

An RLO (U+202E) or isolate in a title or note reorders what a reader sees ("Trojan Source",
CVE-2021-42574): `invoice‮fdp.exe` reads as `invoiceexe.pdf`. The stored text stays exactly as typed
(it is the record); every rendering — Slack, HTML, Markdown, CSV — shows each such character as a
visible marker instead, through `neutralise` here.
"""

from __future__ import annotations

import re
from typing import Any

CONTROLS = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))  # LRE RLE PDF LRO RLO, LRI RLI FSI PDI
_MARKERS = {code: f"[U+{code:04X}]" for code in CONTROLS}
_ANY = re.compile("[\u202a-\u202e\u2066-\u2069]")  # a C scan: almost no text holds one
# The same characters as JSON escapes, in a payload that was serialised before it reached us.
_ESCAPED = re.compile(r"\\u(202[a-e]|206[6-9])", re.IGNORECASE)


_MARKER = re.compile(r"\[U\+(202[A-E]|206[6-9])\]")


def neutralise(text: str) -> str:
    return text.translate(_MARKERS) if _ANY.search(text) else text


def restore(text: str) -> str:
    """The characters back from their markers: what reads an export again (a risk register CSV) gets
    the text as it was stored, not the markers its rendering showed."""
    return _MARKER.sub(lambda m: chr(int(m.group(1), 16)), text) if "[U+" in text else text


def neutralise_all(value: Any) -> Any:
    """Every string inside `value` (dicts, lists, tuples), including JSON-escaped forms, neutralised."""
    if isinstance(value, str):
        return _ESCAPED.sub(lambda m: f"[U+{m.group(1).upper()}]", neutralise(value))
    if isinstance(value, dict):
        return {key: neutralise_all(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(neutralise_all(item) for item in value)
    return value
