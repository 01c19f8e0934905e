"""Canonical JSON text: sorted keys, no insignificant white space, UTF-8 (not \\u-escaped), no NaN.

The one serialisation behind event hashes (vigil_ir.eventlog.canonical) and the text of every JSON
column (vigil_ir.db): the same value always gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_decode = msgspec.json.Decoder().decode


def parse_json(text: str | bytes) -> Any:
    """`json.loads(text)`, about three times faster: msgspec parses what it can (strict RFC 8259 JSON,
    to the same values, integers of any size included), and whatever it refuses (NaN, numbers past a
    float's range, lone surrogates escaped or not, deep nesting, text that is not JSON) is left to
    json.loads, so the value, or the error, is json's."""
    try:
        return _decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError):
        return json.loads(text)
