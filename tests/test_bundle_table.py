"""A bundle table's files: rows serialised in batches give exactly the bytes of one row at a time
(csv.writer over csvsafe.cell's cells, json_line per row), whatever the values."""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from datetime import date, datetime, timezone

from vigil_ir.exports import csvsafe
from vigil_ir.exports.bundle.files import Table, ZipSink, json_line

COLUMNS = ("text", "other", "number", "flag", "when", "nested")
AWKWARD = [
    'say "hi"', "a,b", "two\nlines", "cr\r\nlf", "=SUM(A1)", *(prefix + "1" for prefix in csvsafe.FORMULA_PREFIXES),
    "a\u202ebidi", "\u2067isolate\u2069", "'quoted", "", " ", "plain", "naïve", "日本", None, 0, -3, 2.5, 1e100,
    True, False, datetime(2025, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc), date(2025, 12, 31),
    {"b": [1, "=x"], "a": None}, ["x", 'y"', {"z": "\u202e"}], ("t", 1), {"s"}, {},
]


def _rows(count: int) -> list[dict]:
    return [{name: AWKWARD[(n * (column + 1) + column) % len(AWKWARD)] for column, name in enumerate(COLUMNS)}
            for n in range(count)]


def _one_at_a_time(rows: list[dict], *, header: bool = True, brackets: bool = True) -> tuple[bytes, bytes]:
    """The files as the table wrote them before batching: one csv.writer row and one json_line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([csvsafe.cell(row[name]) for name in COLUMNS])
    lines = ",\n".join(json_line({name: row[name] for name in COLUMNS}) for row in rows)
    text = ("[\n" + lines + "\n]\n" if rows else "[]\n") if brackets else lines
    return ((csvsafe.BOM if header else "") + out.getvalue()).encode("utf-8"), text.encode("utf-8")


def _written(tmp_path, rows: list[dict], **table) -> tuple[dict[str, bytes], list]:
    sink = ZipSink(tmp_path / "t.zip", datetime(2026, 1, 2, tzinfo=timezone.utc))
    written = Table("t", COLUMNS, section="S", description="d", query="q", workdir=tmp_path, **table)
    for row in rows:
        written.write(row)
    written.finish(sink)
    sink.close()
    with zipfile.ZipFile(tmp_path / "t.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist()}, sink.files


def test_rows_in_batches_give_the_bytes_of_one_row_at_a_time(tmp_path):
    rows = _rows(3 * Table.BATCH_ROWS + 7)  # several batches and a part batch
    files, entries = _written(tmp_path, rows)
    expected_csv, expected_json = _one_at_a_time(rows)
    assert files["t.csv"] == expected_csv
    assert files["t.json"] == expected_json
    for entry in entries:  # the manifest's hash, size and count are of the same bytes
        data = files[entry.path]
        assert (entry.sha256, entry.bytes, entry.rows) == (hashlib.sha256(data).hexdigest(), len(data), len(rows))
    # and the awkward values were there to be made safe
    assert "'=SUM(A1)" in expected_csv.decode("utf-8") and '"two\nlines"' in expected_csv.decode("utf-8")


def test_an_empty_table_and_one_row(tmp_path):
    for count in (0, 1):
        rows = _rows(count)
        files, _ = _written(tmp_path, rows)
        assert (files["t.csv"], files["t.json"]) == _one_at_a_time(rows)


def test_rows_and_serialised_rows_keep_their_order(tmp_path):
    rows = _rows(Table.BATCH_ROWS + 3)
    sink = ZipSink(tmp_path / "t.zip", datetime(2026, 1, 2, tzinfo=timezone.utc))
    table = Table("t", COLUMNS, section="S", description="d", query="q", workdir=tmp_path)
    first, serialised, last = rows[:5], rows[5:9], rows[9:]
    for row in first:
        table.write(row)
    csv_text, json_text = _one_at_a_time(serialised, header=False, brackets=False)
    table.write_serialised(json_text.decode("utf-8").split(",\n"), csv_text.decode("utf-8").splitlines(keepends=True))
    for row in last:
        table.write(row)
    table.finish(sink)
    sink.close()
    with zipfile.ZipFile(tmp_path / "t.zip") as archive:
        assert (archive.read("t.csv"), archive.read("t.json")) == _one_at_a_time(rows)


def test_a_later_share_has_no_header_and_no_brackets(tmp_path):
    rows = _rows(Table.BATCH_ROWS + 1)
    table = Table("t", COLUMNS, section="S", description="d", query="q", workdir=tmp_path, share=1)
    shares = []

    class Shares:  # what the incident processes' forwarder receives: each share's entry and file
        files: list = []

        def add_share(self, entry, file, *, share):
            file.seek(0)
            shares.append((entry.path, share, file.read()))

    for row in rows:
        table.write(row)
    table.finish(Shares())
    expected_csv, expected_json = _one_at_a_time(rows, header=False, brackets=False)
    assert shares == [("t.csv", 1, expected_csv), ("t.json", 1, expected_json)]
