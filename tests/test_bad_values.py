"""Values too large or too far for a column or a calendar get a clear answer, never a 500 or a
traceback: record numbers typed by hand, page numbers, far dates, and expiry dates past the cap."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from tests.test_dashboard import auditor, dash  # noqa: F401 - fixtures
from vigil_ir.cli import main

HUGE = "9" * 25


def cli(db, *args):
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": db.url})


@pytest.mark.parametrize("args", [
    ["export", "timeline", f"INC-{HUGE}", "--format", "json"],
    ["auditor-token", "revoke", HUGE],
    ["auditor-token", "create", "--name", "Acme", "--expires", "9999-12-31"],
    ["export", "incidents", "--from", "0001-01-01", "--to", "9999-12-31", "--format", "json"],
])
def test_cli_refuses_values_that_cannot_be_counted(db, args):
    result = cli(db, *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Usage:") or "Error:" in result.output
    assert not isinstance(result.exception, (OverflowError, ValueError)), result.exception


@pytest.mark.parametrize("args", [
    ["incidents", "review", "--from", "0001-01-01", "--to", "2025-12-31"],
    ["export", "bundle", "--from", "0001-01-01", "--to", "2025-12-31", "-o", "period.zip"],
    ["export", "bundle", "--from", "9999-12-29", "--to", "9999-12-30", "-o", "period.zip"],
])
def test_a_period_from_year_1_or_to_year_9999_is_still_a_period(db, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    result = cli(db, *args)
    assert result.exit_code == 0, (result.output, result.exception)


def test_an_expiry_date_and_duration_share_one_cap(db):
    as_date = cli(db, "auditor-token", "create", "--name", "Acme", "--expires", "2100-01-01")
    as_duration = cli(db, "auditor-token", "create", "--name", "Acme", "--expires", "99999d")
    assert as_date.exit_code == as_duration.exit_code == 2
    assert "3650 days ahead" in as_date.output and "at most 3650d" in as_duration.output
    assert cli(db, "auditor-token", "create", "--name", "Acme", "--expires", "365d").exit_code == 0


def test_an_impossible_expiry_date_is_named_as_a_date(db):
    result = cli(db, "auditor-token", "create", "--name", "Acme", "--expires", "2025-13-01")
    assert result.exit_code == 2
    assert "2025-13-01 is not a date (month must be in 1..12)" in result.output
    assert "give a date" not in result.output  # it was one: no advice to give what was given


@pytest.mark.parametrize("path", [
    f"/incidents/INC-{HUGE}", f"/incidents/INC-{HUGE}/timeline.json", f"/?page={HUGE}", "/?page=-3",
    "/?to=9999-12-31", "/?from=0001-01-01&to=9999-12-31", "/reviews?from=0001-01-01&to=9999-12-31",
    "/risks?as_of=9999-12-31", "/exports/incidents.csv?from=0001-01-01&to=9999-12-31",
    "/exports/bundle.zip?from=0001-01-01&to=9999-12-31", "/exports/incidents.csv?from=0001-01-01&to=2026-12-31",
    # Periods from year 1: the program review compares with the period before, which cannot start earlier
    "/insights?from=0001-01-01&to=2025-12-31", "/exports/bundle.zip?from=0001-01-01&to=2025-12-31",
    "/insights?from=9999-12-29&to=9999-12-30",
])
def test_dashboard_answers_far_and_huge_values_without_a_server_error(auditor, path):  # noqa: F811
    response = auditor.client.get(path)
    assert response.status_code in (200, 400, 404), (path, response.status_code)
    if response.status_code == 400:
        assert "outside the dates Vigil can count" in response.text or "not a date" in response.text
