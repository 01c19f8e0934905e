"""Import a spreadsheet register (CSV): all rows or none, every error naming its row and column.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first risk row 2.
Owners may be Slack user ids or e-mail addresses; addresses are resolved (by the caller, through
Slack's users.lookupByEmail) before the database transaction, so no Slack call holds a lock.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session, select

from vigil_ir import bidi
from vigil_ir.exports import csvsafe
from vigil_ir.risks import service
from vigil_ir.risks.models import Risk

# CSV column -> risk field; the first group is required.
REQUIRED = {"title": "title", "statement": "statement", "category": "category", "type": "risk_type",
            "owner": "owner", "likelihood": "inherent_likelihood", "impact": "inherent_impact"}
OPTIONAL = {"description": "description", "residual_likelihood": "residual_likelihood",
            "residual_impact": "residual_impact", "treatment": "treatment", "treatment_plan": "treatment_plan",
            "treatment_due": "treatment_due", "review_cadence": "cadence", "next_review_due": "next_review_due",
            "tsc_refs": "tsc_refs", "incidents": "incidents"}
# Present in `vigil risks export`, so its output imports again: Vigil assigns keys itself, and a risk
# starts open (its status changes only through reviews, approvals and closing).
IGNORED = {"key", "status"}
DELIMITERS = (",", ";", "\t")  # comma, and what spreadsheets write in locales where the comma is decimal
COLUMN_OF = {field: column for column, field in {**REQUIRED, **OPTIONAL}.items()}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ImportFailed(ValueError):
    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s); nothing was imported.")
        self.problems = problems


@dataclass
class Row:
    number: int
    values: dict[str, str]


def delimiter_of(text: str) -> str:
    """The header row tells: column names never contain a delimiter, so the first one found in it is
    the file's (a one-column header gives no hint: comma). Cell values are not looked at, so a `;`
    inside `tsc_refs` cannot mislead it."""
    header = text.split("\n", 1)[0]
    found = [(header.index(d), d) for d in DELIMITERS if d in header]
    return min(found)[1] if found else ","


def unformula(value: str) -> str:
    """Undo what an export did to a cell: the `'` put before a cell starting like a formula
    (vigil_ir.exports.csvsafe), and the visible markers shown for bidi controls (vigil_ir.bidi)."""
    if value.startswith("'") and value[1:].startswith(csvsafe.FORMULA_PREFIXES):
        value = value[1:]
    return bidi.restore(value)


def parse(text: str) -> list[Row]:
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ImportFailed(["the file is empty: it needs a header row (title,statement,…) and a row per risk"])
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter_of(text), strict=True)
    reading = 1  # the spreadsheet row being read, named if the CSV itself is broken there
    try:
        header = [name.strip().lower() for name in reader.fieldnames or []]
        problems = [f"row 1, column {name}: unknown column (known: {', '.join([*REQUIRED, *OPTIONAL])})"
                    for name in header if name and name not in REQUIRED and name not in OPTIONAL
                    and name not in IGNORED]
        problems += [f"row 1, column {name}: required column is missing" for name in REQUIRED if name not in header]
        if problems:
            raise ImportFailed(problems)
        rows, reading = [], 2
        for number, record in enumerate(reader, start=2):
            reading = number + 1
            if any(cell.strip() for cell in record.get(None) or []):  # cells beyond the header's columns
                problems.append(f"row {number}, column {len(header) + 1}: more cells than the header has columns")
            values = {(k or "").strip().lower(): unformula((v or "").strip()) for k, v in record.items()
                      if k is not None}
            problems += [f"row {number}, column {column}: contains a NUL character (is the file really CSV text?)"
                         for column, value in values.items() if "\x00" in value]
            if any(values.values()):  # blank lines in a spreadsheet export are not risks
                rows.append(Row(number, values))
    except csv.Error as error:  # e.g. a cell over the csv module's 128 KiB field limit
        quoting = "end of data" in str(error) or '"' in str(error)
        hint = ("a quoted cell starting in this row is never closed, or closed before its end (a missing or "
                "stray \")" if quoting else f"{error}; use commas or pick “CSV UTF-8” when saving")
        raise ImportFailed([f"row {reading}: cannot be read as CSV ({hint})"]) from None
    if problems:
        raise ImportFailed(problems)
    if not rows:
        raise ImportFailed(["the file has no risk rows"])
    return rows


def emails(rows: list[Row]) -> set[str]:
    return {row.values["owner"].lower() for row in rows if EMAIL.match(row.values.get("owner", ""))}


def check(session: Session, rows: list[Row], directory: dict[str, str | None]) -> list[tuple[Row, dict]]:
    """Raw field values per row, or ImportFailed listing every problem."""
    problems, checked, titles = [], [], {}
    existing = {title.lower(): number for title, number in
                session.exec(select(Risk.title, Risk.number).where(Risk.status != "closed"))}
    for row in rows:
        raw = {field: row.values.get(column, "") for column, field in {**REQUIRED, **OPTIONAL}.items()}
        owner = raw["owner"]
        if EMAIL.match(owner):
            raw["owner"] = directory.get(owner.lower()) or ""
            if not raw["owner"]:
                problems.append(f"row {row.number}, column owner: no Slack user has the e-mail address {owner}")
        _, errors = service.validate_new(session, raw)
        if not raw["owner"] and EMAIL.match(owner):
            errors.pop("owner", None)
        problems += [f"row {row.number}, column {COLUMN_OF.get(field, field)}: {message}"
                     for field, message in errors.items()]
        title = raw["title"].lower()
        if title in existing:
            problems.append(f"row {row.number}, column title: already in the register as RISK-{existing[title]}")
        elif title and title in titles:
            problems.append(f"row {row.number}, column title: same title as row {titles[title]}")
        titles.setdefault(title, row.number)
        checked.append((row, raw))
    if problems:
        raise ImportFailed(problems)
    return checked


def import_rows(session: Session, rows: list[Row], *, actor: str,
                directory: dict[str, str | None] | None = None) -> list[Risk]:
    """Create every row's risk in the caller's transaction, or raise ImportFailed having written nothing."""
    return [service.create(session, actor=actor, raw=raw, source="import")
            for _, raw in check(session, rows, directory or {})]


def slack_directory(client, addresses: set[str], on_error: Callable[[str, str], None] | None = None
                    ) -> dict[str, str | None]:
    """E-mail -> Slack user id through users.lookupByEmail (None when Slack knows no such user)."""
    from slack_sdk.errors import SlackApiError

    found: dict[str, str | None] = {}
    for address in sorted(addresses):
        try:
            found[address] = (client.users_lookupByEmail(email=address).get("user") or {}).get("id")
        except SlackApiError as failure:
            found[address] = None
            if on_error and failure.response.get("error") != "users_not_found":
                on_error(address, failure.response.get("error", "error"))
    return found
