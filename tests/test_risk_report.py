"""The acceptance register (E9), the periodic risk assessment report (E10) and its sign-off."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.exports import risks as risk_exports
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.exports.bundle.verification import verify_bundle
from vigil_ir.followup import actions
from vigil_ir.followup.models import ActionItem
from vigil_ir.risks import approvals, report, reviews, signoff
from vigil_ir.risks.models import Risk, RiskApproval
from tests.risk_fixtures import ADMIN, APPROVER, OWNER, make_risk, open_review

APPROVERS = frozenset({ADMIN, APPROVER})
START, END = datetime(2025, 4, 1, tzinfo=timezone.utc), datetime(2025, 7, 1, tzinfo=timezone.utc)
HOSTILE = '<script>alert(1)</script> | **bold** =HYPERLINK("x")'


def at(day: date, hour: int = 9):
    return clock.frozen(datetime.combine(day, datetime.min.time(), timezone.utc) + timedelta(hours=hour))


def review(db, risk, outcome, *, actor=OWNER, **given):
    with db.session() as s:
        target = open_review(db, risk)
        return reviews.complete(s, risk=s.get(Risk, risk.id), review=target, actor=actor,
                                given={"outcome": outcome, "rationale": f"Because {outcome}.", **given},
                                approvers=APPROVERS, manual_ref=None if target else f"test:{outcome}")


def approve(db, completed):
    with db.session() as s:
        approvals.approve(s, approval=s.get(RiskApproval, completed.approval.id), actor=ADMIN, approvers=APPROVERS)


def seed(db) -> dict[str, Risk]:
    """Q2 2025: RISK-1 accepted then rescored (a stale acceptance), RISK-2 a new fraud risk above
    appetite with an overdue treatment action, RISK-3 a vendor risk closed in the period, RISK-4
    created after the period."""
    with at(date(2025, 3, 1)):
        laptop = make_risk(db)                                                    # 4×4 high, residual 3×3
        vendor = make_risk(db, title="Payment vendor outage", category="vendor", risk_type="vendor")
    with at(date(2025, 4, 10)):
        fraud = make_risk(db, title=f"Invoice fraud {HOSTILE}", category="financial", risk_type="fraud",
                          residual_likelihood="4", residual_impact="4")
        with db.session() as s:
            actions.create(s, actor=OWNER, description="Dual approval of payments", owner=OWNER,
                           due_on=date(2025, 6, 1), risk_id=fraud.id)
            actions.create(s, actor=OWNER, description="Done in time", owner=OWNER, due_on=date(2025, 5, 1),
                           risk_id=fraud.id)
    with at(date(2025, 4, 20)), db.session() as s:
        done = s.exec(select(ActionItem).where(ActionItem.description == "Done in time")).one()
        actions.complete(s, action=done, actor=OWNER, evidence="ticket 12")
    with at(date(2025, 5, 20)):
        approve(db, review(db, laptop, "acceptance_requested"))
    with at(date(2025, 6, 2)):
        review(db, laptop, "rescored", residual_likelihood="4", residual_impact="4")   # up: applies at once
    with at(date(2025, 6, 3)):
        approve(db, review(db, vendor, "closure_requested", closure_reason="system_retired"))
    with at(date(2025, 7, 15)):
        make_risk(db, title="After the quarter")
    return {"laptop": laptop, "vendor": vendor, "fraud": fraud}


def test_acceptance_register_shows_state_at_period_end_and_staleness(db):
    seed(db)
    with db.session() as s:
        (row,) = risk_exports.acceptance_rows(s, START, END)
        assert (row["acceptance_ref"], row["risk_ref"], row["approver"], row["requested_by"]) == (
            "RAC-1", "RISK-1", ADMIN, OWNER)
        assert row["state"] == "active" and row["ended_at"] is None
        assert row["residual_level_at_decision"] == "medium"
        assert row["stale"] is True and row["changed_since_approval"] == "residual_likelihood;residual_impact"
        assert row["days_to_expiry"] == (date.fromisoformat(row["expires_at"]) - date(2025, 6, 30)).days
        assert set(row) == set(risk_exports.ACCEPTANCE_COLUMNS)
        # Before the approval nothing was in force.
        assert risk_exports.acceptance_rows(s, datetime(2025, 1, 1, tzinfo=timezone.utc), START) == []
    expires = date.fromisoformat(row["expires_at"])
    with at(expires, hour=1), db.session() as s:
        approvals.expire_acceptances(s, on=expires)
    with db.session() as s:
        # The quarter's view does not change; a later period sees the expiry.
        assert risk_exports.acceptance_rows(s, START, END)[0]["state"] == "active"
        later = datetime.combine(expires + timedelta(days=1), datetime.min.time(), timezone.utc)
        (after,) = risk_exports.acceptance_rows(s, START, later)
        assert after["state"] == "expired" and after["ended_at"]


def test_report_covers_changes_fraud_vendors_appetite_and_overdue_work(db):
    from vigil_ir.people import Profile, record_profile

    seed(db)
    with db.session() as s:
        record_profile(s, user_id=ADMIN, profile=Profile(real_name="Ada Admin"))
    with db.session() as s:
        r = report.build(s, START, END)
    refs = lambda rows: [row["risk_ref"] for row in rows]  # noqa: E731
    assert refs(r.new) == ["RISK-3"] and refs(r.closed) == ["RISK-2"]
    assert [c["row"]["risk_ref"] for c in r.rescored] == ["RISK-1"]
    assert r.rescored[0]["residual"] == "3×3 medium → 4×4 high"
    assert refs(r.fraud) == ["RISK-3"] and refs(r.vendor) == []           # the vendor risk was closed
    above = {row["risk_ref"]: row["acceptance"] for row in r.above_appetite}
    assert set(above) == {"RISK-1", "RISK-3"}
    assert above["RISK-1"]["acceptance_ref"] == "RAC-1" and above["RISK-3"] is None
    assert [(a["key"], a["days_overdue"]) for a in r.overdue_actions] == [("ACT-1", 30)]
    assert r.participants["Approvers"] == [f"Ada Admin ({ADMIN})"]
    assert f"{OWNER} (name unknown)" in r.participants["Reviewers"]
    assert {row["level"]: (row["inherent"], row["residual"]) for row in r.levels}["high"] == (2, 2)
    assert r.review_counts["completed"] == 3
    assert "RISK-4" not in refs(r.register)


def test_report_renders_escaped_in_both_formats_with_the_heat_map_in_html(db):
    seed(db)
    with db.session() as s:
        html = report.render_report(s, START, END, "html")
        markdown = report.render_report(s, START, END, "md")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<svg" in html and "Content-Security-Policy" in html
    assert "<script>" not in markdown and r"\*\*bold\*\*" in markdown and r"\|" in markdown
    assert "# Periodic risk assessment: 2025-04-01 to 2025-06-30" in markdown
    for title in ("Methodology", "Participants", "New risks", "Fraud risks", "Vendor risks", "Risks above appetite",
                  "Overdue reviews", "Overdue treatment actions", "Management sign-off"):
        assert f"## {title}" in markdown, title
    assert "Not signed off yet." in markdown
    with db.session() as s, pytest.raises(ValueError, match="format"):
        report.render_report(s, START, END, "pdf")


def _jane(db):
    from vigil_ir.people import Profile, record_profile

    with db.session() as s:
        record_profile(s, user_id="U0JANE", profile=Profile(real_name="Jane Doe", email="jane@example.com", title="CFO"))


def test_sign_off_is_an_event_shown_for_its_period_only(db):
    seed(db)
    _jane(db)
    digest = "a" * 64
    with at(date(2025, 7, 5)), db.session() as s:
        signoff.sign_off(s, start=START, end=END, by="U0JANE", role="CFO", comment="Reviewed", report_sha256=digest,
                         actor="cli:jane")
        signoff.sign_off(s, start=START, end=END + timedelta(days=1), by="jane@example.com", comment="Other period",
                         actor="cli:jane")
    with db.session() as s:
        (only,) = signoff.sign_offs(s, START, END)
        assert (only.by, only.by_name, only.role, only.report_sha256, only.signed_at) == (
            "U0JANE", "Jane Doe", "CFO", digest, "2025-07-05T09:00:00.000000Z")
        markdown = report.render_report(s, START, END, "md")
    assert "Jane Doe (U0JANE)" in markdown and digest in markdown and "Other period" not in markdown
    for bad in ({"by": " "}, {"by": "Jane Doe"}, {"report_sha256": "xyz"}, {"end": START}):
        with db.session() as s, pytest.raises(ValueError):
            signoff.sign_off(s, **{"start": START, "end": END, "by": "U0JANE", "actor": "cli:x", **bad})


def test_bundle_carries_acceptances_and_the_report_and_verifies(db, tmp_path):
    seed(db)
    with clock.frozen(datetime(2025, 7, 10, tzinfo=timezone.utc)):
        export_bundle(db, start=START, end=END, output=tmp_path / "q2.zip", actor="cli:auditor")
    with zipfile.ZipFile(tmp_path / "q2.zip") as archive:
        acceptances = json.loads(archive.read("risk_acceptances.json"))
        markdown = archive.read("risk_assessment/report.md").decode()
        manifest = json.loads(archive.read("manifest.json"))
    assert [row["acceptance_ref"] for row in acceptances] == ["RAC-1"]
    assert "RISK-3" in markdown.split("## Risks above appetite")[1]
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert listed["risk_acceptances.csv"]["section"] == "E9" and listed["risk_acceptances.csv"]["rows"] == 1
    assert listed["risk_assessment/report.html"]["section"] == "E10"
    assert not [note for note in manifest["notes"] if note["section"] in ("E9", "E10")]
    assert verify_bundle(tmp_path / "q2.zip").ok


def test_cli_report_sign_off_and_acceptance_export(db, tmp_path):
    seed(db)
    _jane(db)
    runner = CliRunner()
    env, obj = {"DATABASE_URL": db.url}, {"database": db}
    out = tmp_path / "q2.html"
    made = runner.invoke(main, ["risks", "report", "--from", "2025-04-01", "--to", "2025-06-30", "--format", "html",
                                "-o", str(out)], env=env, obj=obj)
    assert made.exit_code == 0, made.output
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in made.output
    signed = runner.invoke(main, ["risks", "sign-off", "--from", "2025-04-01", "--to", "2025-06-30", "--by", "jane@example.com",
                                  "--comment", "Approved", "--report", str(out)], env=env, obj=obj)
    assert signed.exit_code == 0, signed.output
    with db.session() as s:
        assert signoff.sign_offs(s, START, END)[0].report_sha256 == digest
    exported = runner.invoke(main, ["export", "acceptances", "--from", "2025-04-01", "--to", "2025-06-30",
                                    "--format", "json"], env=env, obj=obj)
    assert exported.exit_code == 0 and json.loads(exported.stdout)[0]["acceptance_ref"] == "RAC-1"
    for args, message in ((["risks", "sign-off", "--from", "2025-04-01", "--to", "2025-06-30", "--by", " "],
                           "say who signs off"),
                          (["risks", "sign-off", "--from", "2025-04-01", "--to", "2025-06-30", "--by", "Jane Doe"],
                           "not a person in Vigil's directory"),
                          (["risks", "sign-off", "--from", "2025-04-01", "--to", "2025-06-30", "--by",
                            "nobody@example.com"], "not a person in Vigil's directory"),
                          (["risks", "report", "--from", "2025-06-30", "--to", "2025-04-01"], "must be before"),
                          (["risks", "report", "--from", "2025-04-01", "--to", "2025-06-30", "--format", "pdf"],
                           "pdf")):
        failed = runner.invoke(main, args, env=env, obj=obj)
        assert failed.exit_code != 0 and message in failed.output, failed.output
    with db.session() as s:
        assert len(signoff.sign_offs(s, START, END)) == 1  # the refused sign-off wrote nothing
