"""Risk import edges: delimiters, empty files, unclosed quotes, export → import round trip, and cadence
rules that never occur (bounded, refused in the import and the modal alike)."""

import sys
from datetime import date

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.risks import cadence
from vigil_ir.risks.models import Risk
from tests.risk_fixtures import make_risk

HEADER = ["title", "statement", "category", "type", "owner", "likelihood", "impact", "tsc_refs"]
ROW = ["Laptop theft", "Because laptops travel one may be stolen", "security", "internal", "U0OWNER", "4", "4",
       '"CC6.1;CC6.7"']
NEVER = "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30"


def run(db, *args):
    return CliRunner().invoke(main, list(args), obj={"database": db})


def imported(db, tmp_path, text, name="r.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return run(db, "risks", "import", str(path))


def risks(db):
    with db.session() as s:
        return list(s.exec(select(Risk).order_by(Risk.number)))


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_files_are_read_as_such(db, tmp_path, delimiter):
    result = imported(db, tmp_path, delimiter.join(HEADER) + "\n" + delimiter.join(ROW) + "\n")
    assert result.exit_code == 0, result.output
    (risk,) = risks(db)
    assert (risk.title, risk.tsc_refs) == ("Laptop theft", ["CC6.1", "CC6.7"])


@pytest.mark.parametrize("text", ["", "\ufeff", " \n\n"])
def test_an_empty_file_says_it_is_empty(db, tmp_path, text):
    result = imported(db, tmp_path, text)
    assert result.exit_code == 1 and "the file is empty" in result.output and not risks(db)


def test_an_unclosed_quote_names_its_row(db, tmp_path):
    rows = [",".join(HEADER), ",".join(ROW), '"Vendor outage,no closing quote,vendor,vendor,U0OWNER,3,3,', ",".join(ROW)]
    result = imported(db, tmp_path, "\n".join(rows) + "\n")
    assert result.exit_code == 1 and "row 3" in result.output and "never closed" in result.output, result.output
    assert not risks(db)


def test_export_then_import_round_trips(db, tmp_path):
    make_risk(db, title="=HYPERLINK(\"http://x\")", description="-5 degrees in the server room")
    make_risk(db, title="Second risk: invoice\u202efdp.exe")  # shown as [U+202E] in the export
    out = tmp_path / "register.csv"
    assert run(db, "risks", "export", "-o", str(out)).exit_code == 0
    before = [(r.title, r.statement, r.description, r.owner, r.inherent_likelihood, r.inherent_impact,
               r.residual_likelihood, r.residual_impact, r.treatment, r.cadence, r.tsc_refs) for r in risks(db)]
    from tests.conftest import empty_all_tables

    empty_all_tables(db)
    result = run(db, "risks", "import", str(out))
    assert result.exit_code == 0, result.output
    after = [(r.title, r.statement, r.description, r.owner, r.inherent_likelihood, r.inherent_impact,
              r.residual_likelihood, r.residual_impact, r.treatment, r.cadence, r.tsc_refs) for r in risks(db)]
    assert "[U+202E]" in out.read_text(encoding="utf-8")
    assert after == before and after[0][0] == "=HYPERLINK(\"http://x\")"  # the export's `'` is removed
    assert after[1][0] == "Second risk: invoice\u202efdp.exe"  # and its bidi marker read back as the character


def calls_during(function, *args):
    """How many Python and C calls `function` makes: a measure of work that does not depend on load."""
    made = 0

    def profile(frame, event, arg):
        nonlocal made
        made += 1

    sys.setprofile(profile)
    try:
        function(*args)
    except cadence.CadenceError:
        pass
    finally:
        sys.setprofile(None)
    return made


def test_a_rule_that_never_occurs_is_refused_after_bounded_work():
    with pytest.raises(cadence.CadenceError, match="no review date"):
        cadence.validate(NEVER, date(2025, 1, 1))
    # Unbounded, dateutil scans every week up to the year 9999 (about 2 million calls); bounded, the
    # refusal costs no more than a few centuries of weeks would.
    assert calls_during(cadence.validate, NEVER, date(2025, 1, 1)) < 400_000
    assert cadence.validate("FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=29", date(2025, 1, 1))  # rare but real: leap days


def test_a_never_occurring_cadence_is_refused_in_the_import(db, tmp_path):
    result = imported(db, tmp_path, ",".join([*HEADER, "review_cadence"]) + "\n" + ",".join([*ROW, NEVER]) + "\n")
    assert result.exit_code == 1 and "row 2, column review_cadence" in result.output and "no review date" in result.output
    assert not risks(db)
