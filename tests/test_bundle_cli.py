"""`vigil export bundle` on the command line: the run, its errors, and the progress bar rule."""

from __future__ import annotations

import io
import zipfile

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle import risks as bundle_risks
from vigil_ir.exports.progress import Bar, Quiet, for_stream
from vigil_ir.people import Profile, record_profile
from tests.test_bundle import seed


def run(db, *args):
    return CliRunner().invoke(main, ["export", "bundle", *args], obj={"database": db})


def exported(db) -> list[Event]:
    with db.session() as s:
        return list(s.exec(select(Event).where(Event.kind == "audit.bundle_exported")))


def test_export_bundle_writes_the_zip_says_so_and_records_who(db, tmp_path):
    seed(db)
    with db.session() as s:
        record_profile(s, user_id="U0COMPLIANCE", profile=Profile(real_name="Jane Roe", email="jane@example.com"))
    target = tmp_path / "q1.zip"
    result = run(db, "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(target), "--by", "jane@example.com")
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(target)
    assert f"Wrote {target}: " in result.output and "by Jane Roe (U0COMPLIANCE)" in result.output and "manifest sha256 " in result.output
    (event,) = exported(db)
    assert event.actor == "U0COMPLIANCE" and event.data["period_end"] == "2025-04-01T00:00:00.000000Z"
    # Not a terminal (CliRunner): no progress bar, no control sequences.
    assert "Incidents" not in result.output and "\x1b[" not in result.output
    # Run again: the file is replaced, and that export is recorded too.
    assert run(db, "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(target)).exit_code == 0
    assert [e.actor.startswith("cli:") for e in exported(db)] == [False, True]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q1.zip"]


@pytest.mark.parametrize("args,message", [
    (["--from", "2025-13-01", "--to", "2025-03-31"], "'2025-13-01' is not a date"),
    (["--from", "2025-03-31", "--to", "2025-01-01"], "must be before the end of --to"),
    (["--from", "2025-01-01", "--to", "2024-12-31"], "must be before the end of --to"),
    (["--from", "2025-01-01"], "Missing option '--to'"),
    (["--from", "2025-01-01", "--to", "2025-03-31", "--by", "Jane Roe"], "'Jane Roe' is not a person in Vigil's directory"),
])
def test_bad_periods_and_options_are_usage_errors(db, tmp_path, args, message):
    result = run(db, *args, "-o", str(tmp_path / "e.zip"))
    assert result.exit_code == 2 and message in result.output
    assert not list(tmp_path.iterdir()) and not exported(db)


def test_an_output_in_a_missing_folder_is_refused(db, tmp_path):
    result = run(db, "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "nope" / "e.zip"))
    assert result.exit_code == 1 and "Cannot write" in result.output and "does not exist" in result.output


def test_an_unwritable_output_is_a_clear_error(db, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("vigil_ir.exports.output._temporary_beside", refuse)
    result = run(db, "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "e.zip"))
    assert result.exit_code == 1 and f"Cannot write {tmp_path / 'e.zip'}: Permission denied" in result.output
    assert "Traceback" not in result.output and not exported(db)


def test_a_failure_half_way_leaves_no_file_and_no_export_event(db, tmp_path, monkeypatch):
    seed(db)

    def broken(ctx):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle_risks, "write", broken)
    result = run(db, "--from", "2025-01-01", "--to", "2025-03-31", "-o", str(tmp_path / "e.zip"))
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert not list(tmp_path.iterdir()) and not exported(db)


def test_a_missing_database_schema_is_explained(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = CliRunner().invoke(main, ["export", "bundle", "--from", "2025-01-01", "--to", "2025-03-31",
                                       "-o", str(tmp_path / "e.zip")], env={"DATABASE_URL": url})
    assert result.exit_code == 1 and "has `vigil migrate` been run?" in result.output
    assert not (tmp_path / "e.zip").exists()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_quiet_otherwise():
    assert isinstance(for_stream(io.StringIO()), Quiet)
    terminal = FakeTerminal()
    bar = for_stream(terminal)
    assert isinstance(bar, Bar)
    bar.start("Incidents", 3)
    bar.advance(3)
    bar.start("Audit trail", None)
    bar.close()
    assert "Incidents" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_help_names_the_period_and_the_verify_command():
    result = CliRunner().invoke(main, ["export", "bundle", "--help"])
    assert result.exit_code == 0 and "--from DATE" in result.output and "vigil verify --bundle" in result.output
    assert "--bundle FILE" in CliRunner().invoke(main, ["verify", "--help"]).output
