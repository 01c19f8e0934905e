"""CSV that is safe to open in a spreadsheet and stable for auditors.

`to_csv` returns text without a byte-order mark (for stdout, tests and bundles); files meant to be
opened in Excel get one via `for_file`, because Excel only reads CSV as UTF-8 when a BOM is there.
Formula injection (OWASP "CSV Injection"): a text cell starting with `= + - @`, tab or carriage
return gets a leading `'`, so a spreadsheet shows it as text instead of evaluating it. Numbers we
produce ourselves (e.g. minutes) are not text and stay numeric.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from vigil_ir import clock
from vigil_ir.bidi import neutralise as shown
from vigil_ir.eventlog.canonical import canonical_json

BOM = "\ufeff"
# The OWASP list, plus the full-width forms some spreadsheet locales also accept as formula starts.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def cell(value: Any) -> str:
    """One value as CSV cell text: None empty, bools true/false, times ISO `Z`, JSON for structures."""
    if value is None:
        return ""
    if type(value) is str:  # most cells: one check rather than five; ASCII holds no bidi control
        text = value if value.isascii() else shown(value)
        return "'" + text if text.startswith(FORMULA_PREFIXES) else text  # neutralise, inlined: every cell
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        return clock.iso(value)
    if isinstance(value, (dict, list, tuple)):
        return neutralise(shown(canonical_json(value)))
    return neutralise(shown(str(value)))


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """Header row then one line per row, columns in the given order (a missing key is a bug: KeyError)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row[name]) for name in columns])
    return out.getvalue()


def for_file(text: str) -> str:
    """CSV text as written to a file: with a UTF-8 BOM (once)."""
    return text if text.startswith(BOM) else BOM + text
