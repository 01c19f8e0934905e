"""Person column pairs in exported tables: beside each Slack-id column, the person's name as it was
when the act in that row happened (`owner` → `owner_name`).

A table declares its people once (`PersonColumn`s); `with_name_columns` gives its header and
`add_names` fills a row from a Directory loaded once for the whole export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from vigil_ir.people.directory import Directory


@dataclass(frozen=True)
class PersonColumn:
    column: str               # the column holding a Slack user id (or several, space- or ;-separated)
    at: str | None = None     # the row's column dating the act (ISO time or date); None: as at generation
    name: str | None = None   # the name column; default `<column>_name`

    @property
    def name_column(self) -> str:
        return self.name or f"{self.column.removesuffix('_id')}_name"


def with_name_columns(columns: Sequence[str], people: Sequence[PersonColumn]) -> tuple[str, ...]:
    """`columns` with each person column's name column right after it."""
    after = {p.column: p.name_column for p in people}
    result: list[str] = []
    for column in columns:
        result.append(column)
        if column in after:
            result.append(after[column])
    return tuple(result)


def parse_when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def _ids(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v]
    if isinstance(value, str):
        return [part for part in value.replace(";", " ").replace(",", " ").split() if part]
    return []


def name_cell(people: Directory, value: Any, when: datetime | None) -> str | None:
    ids = _ids(value)
    if not ids:
        return None
    if len(ids) == 1 and not isinstance(value, (list, tuple)):
        return people.name_column(ids[0], when) or None
    names = [people.name_column(user_id, when) or user_id for user_id in ids]
    return "; ".join(names)


def add_names(row: dict[str, Any], people: Directory, columns: Sequence[PersonColumn],
              generated_at: datetime | None = None) -> dict[str, Any]:
    """Fill the name columns of `row` in place, each right after its id column (and return it)."""
    names = {}
    for person in columns:
        value = row.get(person.column)
        # An empty cell names no one whenever the act was: its time is not parsed.
        when = parse_when(row.get(person.at)) if person.at and value else None
        names[person.column] = (person.name_column, name_cell(people, value, when or generated_at))
    ordered: dict[str, Any] = {}
    for key, value in row.items():
        ordered[key] = value
        if key in names:
            ordered[names[key][0]] = names[key][1]
    row.clear()
    row.update(ordered)
    return row


def names_of(row: Mapping[str, Any], people: Directory, columns: Sequence[PersonColumn]) -> dict[str, Any]:
    return add_names(dict(row), people, columns)


def label_in_row(row: Mapping[str, Any], column: str, name_column: str | None = None) -> str | None:
    """"Dana Kim (U02LEAD)" from a row's id cell and its name cell (reports rendering exported rows)."""
    value = row.get(column)
    if not value:
        return None
    name = row.get(name_column or f"{column.removesuffix('_id')}_name")
    if not name or name == value:
        return str(value)
    if ";" in str(name) or " " in str(value).strip():
        return str(name)  # several people: the name cell already lists them
    return f"{name} ({value})" if name != "name unknown" else f"{value} (name unknown)"
