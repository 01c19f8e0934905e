"""The documented rule that maps a source's severity words to Vigil's sev1–sev4 (docs/integrations.md).

Labels are looked at in the order `severity`, `priority`, `urgency` (case ignored); the first one with
a known word decides. Anything else is sev3: worth a look, not an emergency.
"""

from __future__ import annotations

from collections.abc import Mapping

WORDS = {
    "sev1": ("critical", "crit", "disaster", "emergency", "fatal", "page", "p1", "sev1", "sev-1", "sev0", "p0"),
    "sev2": ("high", "error", "major", "p2", "sev2", "sev-2"),
    "sev3": ("warning", "warn", "medium", "moderate", "average", "p3", "sev3", "sev-3"),
    "sev4": ("low", "info", "information", "informational", "minor", "none", "ok", "p4", "p5", "sev4", "sev-4"),
}
LABELS = ("severity", "priority", "urgency")
DEFAULT = "sev3"
_BY_WORD = {word: severity for severity, words in WORDS.items() for word in words}


def from_word(word: object) -> str | None:
    return _BY_WORD.get(str(word).strip().lower()) if word is not None else None


def from_labels(labels: Mapping[str, object], *extra: object) -> str:
    """The severity the labels (then any `extra` words, e.g. a PagerDuty priority) say; DEFAULT if none."""
    lowered = {str(key).lower(): value for key, value in labels.items()}
    for word in [lowered.get(name) for name in LABELS] + list(extra):
        found = from_word(word)
        if found:
            return found
    return DEFAULT
