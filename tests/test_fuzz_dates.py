"""Property-based tests of the date arguments of `vigil export …`, `vigil sample …` and `vigil risks heatmap`.

Invariants: the command succeeds or exits with a usage/error message, never a Python traceback;
exports write nothing to the database; a refused `vigil sample` records no `audit.sample_drawn` event.

SQLite only (see tests/fuzzing.py).
"""

from __future__ import annotations


from datetime import date, timedelta, timezone

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from vigil_ir.cli import main
from tests.dashboard_seed import seed
from tests.fuzzing import changed, fuzz, hostile_text, row_counts
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)

zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12)),
                         timezone(timedelta(hours=5, minutes=30)), None])
realistic = st.dates(min_value=date(2024, 6, 1), max_value=date(2026, 6, 1)).map(str)
date_texts = st.one_of(
    realistic, realistic, realistic, st.dates().map(str), st.datetimes(timezones=zones).map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31", "0001-01-01", "9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+14:00",
                     "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59-12:00", "2025-02-30", "2025-13-01",
                     "2025-01-01T25:00", "2025-01-01Z", "2025-01-01T00:00:00Z", "20250101", "2025-W01-1",
                     "2025-001", "01/02/2025", "today", "", " ", "2025-01-01 ", "-2025-01-01", "+002025-01-01",
                     "2025-01-01T00:00:00.0000000001", "2025-06-01T12:00:00+99:00", "NaN", "\x00"]),
    hostile_text)
EXPORTS = [["export", "incidents"], ["export", "pirs"], ["export", "actions"], ["export", "reviews"]]
SAMPLES = [["sample", "incidents"], ["sample", "reviews"], ["sample", "actions"]]


@pytest.fixture
def database(db):
    seed(db)
    return db


def invoke(db, args):
    before = row_counts(db)
    result = CliRunner().invoke(main, args, obj={"database": db}, env={"DATABASE_URL": db.url})
    after = row_counts(db)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        assert result.output.strip(), "a refusal says why"
        assert "Error" in result.output or "Usage" in result.output, result.output
    return result, changed(before, after)


@fuzz(80)
@given(command=st.sampled_from(EXPORTS), start=date_texts, end=date_texts, fmt=st.sampled_from(["csv", "json"]))
def test_export_periods(database, command, start, end, fmt):
    _, wrote = invoke(database, [*command, "--from", start, "--to", end, "--format", fmt])
    assert not wrote, "exports only read"


@fuzz(60)
@given(command=st.sampled_from(SAMPLES), start=date_texts, end=date_texts,
       n=st.one_of(st.integers(1, 30), st.integers(1, 30), st.integers(-5, 0), st.integers(10**6, 10**30)).map(str),
       seed_value=st.one_of(st.none(), st.none(), st.integers(-1, 2**70).map(str), hostile_text))
def test_sample_periods_and_numbers(database, command, start, end, n, seed_value):
    args = [*command, "--from", start, "--to", end, "--n", n]
    if seed_value is not None:
        args += ["--seed", seed_value]
    result, wrote = invoke(database, args)
    if result.exit_code == 0:
        assert set(wrote) <= {"event", "stream_head"} and wrote["event"][1] == wrote["event"][0] + 1
    else:
        assert not wrote, "a refused draw records nothing"


@fuzz(40)
@given(as_of=date_texts)
def test_as_of_dates(database, tmp_path, as_of):
    _, wrote = invoke(database, ["export", "risks", "--as-of", as_of])
    assert not wrote
    _, wrote = invoke(database, ["risks", "heatmap", "--as-of", as_of, "-o", str(tmp_path / "map.svg")])
    assert not wrote
