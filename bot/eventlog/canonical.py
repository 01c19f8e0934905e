"""The canonical form of an event and its hash.

hash = sha256(prev_hash || canonical_json(event without `hash` and without the storage `id`)).
Canonical JSON: sorted keys, no insignificant white space, UTF-8, timestamps in the exported
ISO 8601 form with microseconds and `Z`. The storage id is left out because the chain position
is (stream, stream_seq); that keeps a chain verifiable from an export alone.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from vigil_ir.clock import iso
from vigil_ir.jsontext import canonical_json

__all__ = ["GENESIS_HASH", "HASHED_FIELDS", "canonical_json", "event_hash", "hashed_view"]

GENESIS_HASH = "0" * 64
HASHED_FIELDS = ("stream", "stream_seq", "kind", "actor", "occurred_at", "recorded_at", "data",
                 "corrects", "prev_hash")


def hashed_view(fields: dict[str, Any]) -> dict[str, Any]:
    """The part of an event that is hashed, with times in their exported form."""
    view = {}
    for name in HASHED_FIELDS:
        value = fields[name]
        view[name] = iso(value) if isinstance(value, datetime) else value
    return view


def event_hash(fields: dict[str, Any]) -> str:
    payload = fields["prev_hash"] + canonical_json(hashed_view(fields))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
