"""Property-based tests of `vigil risks import FILE`: spreadsheets with wrong, missing and hostile cells.

Invariants: the command never ends in a Python traceback; it either imports every row (exit 0,
"Imported N risk(s)", N more risks) or none (exit ≠ 0, no table changed), and each problem it reports
names its row and column (or is about the whole file).

SQLite only (see tests/fuzzing.py); tests/test_fuzz_text_storage.py imports awkward text on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import re

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from vigil_ir.cli import main
from vigil_ir.risks.importer import OPTIONAL, REQUIRED
from tests.fuzzing import SLACK_SYNTAX, changed, fuzz, hostile_text, row_counts
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)

PROBLEM = re.compile(r"^row \d+(, column .*?)?: \S")
FILE_LEVEL = ("the file has no risk rows", "the file is empty", "is not UTF-8 text", "Nothing was imported", "Error: ")
VALID = {"title": "Laptop theft", "statement": "Because laptops travel one may be stolen", "category": "security",
         "type": "internal", "owner": "U0OWNER", "likelihood": "4", "impact": "4", "residual_likelihood": "2",
         "residual_impact": "3", "treatment": "untreated", "treatment_plan": "Disk encryption",
         "treatment_due": "", "review_cadence": "quarterly", "next_review_due": "2099-06-01",
         "tsc_refs": "CC6.1;CC6.7", "incidents": "", "description": "", "key": "RISK-9"}
_titles = iter(range(10**9))


def cell(column: str):
    """Mostly valid values (so whole files import), else anything a spreadsheet could hold."""
    odd = st.one_of(hostile_text, st.sampled_from(["", "0", "6", "-1", "1e3", "Likely", "2025-02-30", "31/12/2030",
                                                   "weekly-ish", "ops@example.com", "=cmd|' /C calc'!A0", "INC-999",
                                                   "CC99", "accept", "U0", "W0ENTERPRISE"] + SLACK_SYNTAX))
    return st.one_of(st.just(VALID.get(column, "")), odd)


@st.composite
def spreadsheets(draw) -> str:
    """Half are good files with at most one odd cell (so the import path runs to the end with hostile
    text); the rest drop or add columns, leave cells out, add cells, and put anything anywhere."""
    good = draw(st.booleans())
    optional = [c for c in [*OPTIONAL, "key"] if draw(st.booleans())]
    columns = [*REQUIRED, *optional] if good else [c for c in [*REQUIRED, *optional] if draw(st.integers(0, 6))]
    if not good and draw(st.booleans()):
        columns.append(draw(st.sampled_from(["Title ", "unknown", "", "risk owner", "\ufefftitle", "title"])))
    columns = draw(st.permutations(columns))
    odd_row = draw(st.integers(0, 3)) if good else None
    odd_column = draw(st.sampled_from(columns)) if good and columns else None
    rows = []
    for index in range(draw(st.integers(1 if good else 0, 4))):
        row = {}
        for c in columns:
            valid = VALID.get(c.strip().lower(), "")
            if c == "title" and (not good or (index, c) != (odd_row, odd_column)):
                valid = f"Risk {next(_titles)}"  # unique, so a good file imports
            wild = not good or (index, c) == (odd_row, odd_column)
            row[c] = draw(cell(c.strip().lower())) if wild else valid
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])))
    writer.writerow(columns)
    for row in rows:
        cells = [row[c] for c in columns]
        if not good and draw(st.integers(0, 3)) == 0:  # a ragged row: cells missing or extra
            cells = cells[:draw(st.integers(0, len(cells)))] + draw(st.lists(hostile_text, max_size=2))
        writer.writerow(cells)
    return draw(st.sampled_from(["", "\ufeff"])) + out.getvalue()


def run_import(db, tmp_path, content: bytes):
    path = tmp_path / "register.csv"
    path.write_bytes(content)
    before = row_counts(db)
    result = CliRunner().invoke(main, ["risks", "import", str(path)], obj={"database": db},
                                env={"SLACK_BOT_TOKEN": "", "DATABASE_URL": db.url})
    after = row_counts(db)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        imported = int(re.search(r"Imported (\d+) risk", result.output).group(1))
        assert after["risk"] - before["risk"] == imported > 0, result.output
    else:
        assert not changed(before, after), (changed(before, after), result.output)
        lines = [line for line in result.output.split("\n") if line.strip()]
        assert lines, "a refusal says why"
        for line in lines:
            assert PROBLEM.match(line) or any(marker in line for marker in FILE_LEVEL), line
    return result


@fuzz(80)
@given(sheet=spreadsheets(), encoding=st.sampled_from(["utf-8"] * 4 + ["utf-16", "latin-1"]))
def test_spreadsheets_import_fully_or_not_at_all_with_row_and_column_named(db, tmp_path, sheet, encoding):
    try:
        content = sheet.encode(encoding)
    except UnicodeEncodeError:
        content = sheet.encode("utf-8")
    run_import(db, tmp_path, content)


@fuzz(40)
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                         st.sampled_from([b"", b"\n\n", b"title\n", b'"unclosed,quote\n', b"\x00\x00",
                                          b"title,statement\n" + b"a" * 200_000 + b",b\n",
                                          ",".join(REQUIRED).encode() + b"\n" + b'"' + b"x" * 140_000 + b'"\n'])))
def test_arbitrary_files_are_refused_with_a_message(db, tmp_path, content):
    run_import(db, tmp_path, content)
