"""Bidirectional control characters, made visible wherever text is shown.

U+202A–U+202E (embeddings and overrides) and U+2066–U+2069 (isolates) reorder the characters that
follow them, so a title such as "Invoice \u202egnp.exe" reads differently from what was stored
("Trojan Source"). The stored text is kept as entered; every rendering (Slack, HTML, CSV, Markdown)
shows each such character as a visible `[U+202E]` marker instead, through `neutralise_bidi`.
"""

from __future__ import annotations

import re

BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def neutralise_bidi(text: str) -> str:
    """`text` with every bidi embedding, override and isolate shown as `[U+XXXX]`."""
    return BIDI_CONTROLS.sub(lambda match: f"[U+{ord(match.group()):04X}]", text)
