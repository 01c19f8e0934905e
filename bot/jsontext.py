"""Canonical JSON text: sorted keys, no insignificant white space, UTF-8 (not \\u-escaped), no NaN.

The one serialisation behind event hashes (vigil_ir.eventlog.canonical) and the text of every JSON
column (vigil_ir.db): the same value always gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
