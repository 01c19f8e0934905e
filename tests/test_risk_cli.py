"""`vigil risks import|export|heatmap`, `vigil export risks|reviews`, and the register as of a date."""

import json
from datetime import date, datetime, timezone

from click.testing import CliRunner
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.exports.risks import register_rows
from vigil_ir.risks import approvals, register_asof
from vigil_ir.risks.models import Risk, RiskApproval
from vigil_ir.people import Profile, record_profile
from tests.risk_fixtures import ADMIN, OWNER, make_risk, reload
from tests.test_risk_reviews import complete

HEADER = "title,statement,category,type,owner,likelihood,impact,residual_likelihood,residual_impact,treatment," \
         "treatment_plan,review_cadence,next_review_due,tsc_refs\n"
GOOD = [
    "Laptop theft,Because laptops travel one may be stolen,security,internal,U0OWNER,Likely,4,2,4,mitigate,"
    "Full-disk encryption,quarterly,2030-01-01,CC6.1;CC6.7",
    "Payment provider outage,Because we rely on one provider checkout may stop,vendor,vendor,ops@example.com,3,5,,,"
    "transfer,Insurance and a second provider,,,CC9.2",
]


def run(db, *args, env=None):
    return CliRunner().invoke(main, list(args), obj={"database": db}, env=env)


def slack_env(fake_slack):
    fake_slack._api_users_lookupByEmail = lambda p: (
        {"ok": True, "user": {"id": "U0OPS"}} if p.get("email") == "ops@example.com"
        else {"ok": False, "error": "users_not_found"})
    return {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake_slack.base_url}


def test_import_creates_every_row_resolving_emails(db, fake_slack, tmp_path):
    path = tmp_path / "register.csv"
    path.write_text("\ufeff" + HEADER + "\n".join(GOOD) + "\n\n", encoding="utf-8")
    with db.session() as s:
        record_profile(s, user_id="U0ALICE", profile=Profile(real_name="Alice Ng", email="alice@example.com"))
    result = run(db, "risks", "import", str(path), "--actor", "alice@example.com", env=slack_env(fake_slack))
    assert result.exit_code == 0, result.output
    assert "Imported 2 risk(s): RISK-1, RISK-2" in result.output
    with db.session() as s:
        first, second = s.exec(select(Risk).order_by(Risk.number)).all()
    assert (first.inherent_likelihood, first.next_review_due, first.tsc_refs) == (
        4, date(2030, 1, 1), ["CC6.1", "CC6.7"])
    assert (second.owner, second.residual_likelihood, second.source, second.created_by) == (
        "U0OPS", 3, "import", "U0ALICE")
    again = run(db, "risks", "import", str(path), env=slack_env(fake_slack))
    assert again.exit_code == 1 and "row 2, column title: already in the register as RISK-1" in again.output


def test_import_is_all_or_nothing_and_names_row_and_column(db, fake_slack, tmp_path):
    bad = [GOOD[0],
           "Stolen keys,,security,internal,nobody@example.com,7,4,,,mitigate,,weekly-ish,31/12/2030,CC99",
           "Laptop theft,Duplicate title,security,internal,U0OWNER,2,2,,,untreated,,,,"]
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\n".join(bad) + "\n", encoding="utf-8")
    result = run(db, "risks", "import", str(path), env=slack_env(fake_slack))
    assert result.exit_code == 1
    for expected in ("row 3, column owner: no Slack user has the e-mail address nobody@example.com",
                     "row 3, column statement:", "row 3, column likelihood: Inherent likelihood must be 1–5",
                     "row 3, column treatment_plan:", "row 3, column review_cadence:",
                     "row 3, column next_review_due:", "row 3, column tsc_refs: CC99",
                     "row 4, column title: same title as row 2", "Nothing was imported (8 problem(s))"):
        assert expected in result.output, result.output
    with db.session() as s:
        assert s.exec(select(Risk)).first() is None


def test_import_header_problems_and_emails_without_slack(db, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("title,colour\nx,red\n", encoding="utf-8")
    result = run(db, "risks", "import", str(path))
    assert result.exit_code == 1 and "row 1, column colour: unknown column" in result.output
    assert "row 1, column owner: required column is missing" in result.output
    path.write_text(HEADER + GOOD[1] + "\n", encoding="utf-8")
    result = run(db, "risks", "import", str(path), env={"SLACK_BOT_TOKEN": ""})
    assert result.exit_code == 1 and "row 2, column owner: an e-mail address needs SLACK_BOT_TOKEN" in result.output


def test_risks_export_round_trips_the_import_columns(db, tmp_path):
    make_risk(db)
    result = run(db, "risks", "export", "--format", "json")
    (row,) = json.loads(result.output)
    assert (row["key"], row["likelihood"], row["type"], row["tsc_refs"]) == ("RISK-1", 4, "internal", "CC6.1;CC6.7")
    out = tmp_path / "r.csv"
    assert run(db, "risks", "export", "-o", str(out)).exit_code == 0
    assert out.read_text(encoding="utf-8").startswith("\ufeffkey,title,statement")


def days(n):
    return datetime(2025, 3, n, 12, tzinfo=timezone.utc)


def history(db):
    """Day 1 add; day 2 rescore up; day 3 acceptance approved; day 5 a second risk."""
    with clock.frozen(days(1)):
        risk = make_risk(db)
    with clock.frozen(days(2)):
        complete(db, risk, review=None, outcome="rescored", inherent_impact="5")
    with clock.frozen(days(3)):
        done = complete(db, risk, review=None, outcome="acceptance_requested", rationale="Insurance covers the loss.")
        with db.session() as s:
            approvals.approve(s, approval=s.get(RiskApproval, done.approval.id), actor=ADMIN,
                              approvers=frozenset({ADMIN}))
    with clock.frozen(days(5)):
        make_risk(db, title="Second")
    return risk


def test_register_as_of_is_rebuilt_from_the_events(db):
    risk = history(db)
    with db.session() as s:
        day1 = register_asof.register(s, date(2025, 3, 1))
        day2 = register_asof.register(s, date(2025, 3, 2))
        day4 = register_asof.register(s, date(2025, 3, 4))
        before = register_asof.register(s, date(2025, 2, 28))
    assert before == []
    assert [(r["inherent_impact"], r["treatment"], r["version"]) for r in day1] == [(4, "mitigate", 1)]
    assert [(r["inherent_impact"], r["inherent_level"], r["treatment"]) for r in day2] == [(5, "critical", "mitigate")]
    (row,) = day4
    assert (row["treatment"], row["status"], row["acceptance_expires_at"]) == ("accept", "accepted", "2025-04-01")
    assert row["last_reviewed_by"] == OWNER and row["as_of"] == "2025-03-04"
    assert reload(db, risk).version == row["version"]


def test_as_of_now_equals_the_live_register(db):
    history(db)
    with db.session() as s:
        live = register_rows(s, None)
        rebuilt = register_rows(s, clock.now().date())
    assert len(live) == 2 and live == rebuilt
    verified = run(db, "verify")
    assert verified.exit_code == 0 and verified.output.startswith("OK: 2 streams")


def test_export_risks_and_reviews_commands(db, tmp_path):
    history(db)
    result = run(db, "export", "risks", "--as-of", "2025-03-02", "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["risk_ref"] == "RISK-1" and row["inherent_score"] == 20 and row["record_hash"]
    csv_out = run(db, "export", "risks")
    assert csv_out.output.splitlines()[0].startswith("as_of,risk_ref,title") and len(csv_out.output.splitlines()) == 3
    assert run(db, "export", "risks", "--as-of", "2999-01-01").exit_code != 0
    assert "not a date" in run(db, "export", "risks", "--as-of", "yesterday").output
    reviews = json.loads(run(db, "export", "reviews", "--from", "2025-03-01", "--to", "2025-03-31",
                             "--format", "json").output)
    assert [(r["outcome"], r["approval_decision"]) for r in reviews if r["status"] == "completed"] == [
        ("rescored", None), ("acceptance_requested", "approved")]
    rescored = reviews[0] if reviews[0]["outcome"] == "rescored" else reviews[1]
    assert (rescored["inherent_impact_before"], rescored["inherent_impact_after"],
            rescored["inherent_level_after"]) == (4, 5, "critical")
    out = tmp_path / "reviews.csv"
    assert run(db, "export", "reviews", "--from", "2025-03-01", "--to", "2025-03-31", "-o", str(out)).exit_code == 0
    assert "review_ref,risk_ref,in_log_because,trigger" in out.read_text(encoding="utf-8")
    assert run(db, "export", "reviews", "--from", "2025-04-01", "--to", "2025-03-01").exit_code != 0


def test_heatmap_svg_and_png(db, tmp_path):
    history(db)
    svg = tmp_path / "map.svg"
    assert run(db, "risks", "heatmap", "-o", str(svg)).exit_code == 0
    text = svg.read_text(encoding="utf-8")
    assert text.startswith("<svg") and "2 open risks" in text and text.count("<rect") >= 51
    png = tmp_path / "map.png"
    assert run(db, "risks", "heatmap", "--as-of", "2025-03-01", "-o", str(png)).exit_code == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    bad = run(db, "risks", "heatmap", "-o", str(tmp_path / "map.jpg"))
    assert bad.exit_code != 0 and ".svg or .png" in bad.output
