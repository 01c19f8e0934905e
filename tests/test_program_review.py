"""The periodic incident-response program review (CC7.4): figures computed by hand from a seeded
quarter equal the report's; its sign-off is bound to a person and lands in the period's bundle."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner
from sqlmodel import select

from tests.risk_fixtures import make_risk
from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.config import Settings
from vigil_ir.exports import program_review
from vigil_ir.incidents import queries, service
from vigil_ir.people import Profile, record_profile
from vigil_ir.risks import service as risks
from vigil_ir.risks.models import Risk

Q1 = ("2025-01-01", "2025-03-31")
DECLARER, LEAD, CISO = "U0DECLARER", "U0LEAD", "U0CISO"


def _at(db, when: datetime, change):
    with clock.frozen(when), db.session() as s:
        return change(s)


def _incident(db, declared: datetime, severity: str, ack: int, mitigate: int, resolve: int | None) -> str:
    key = _at(db, declared, lambda s: service.declare(s, actor=DECLARER, title="Checkout errors", severity=severity,
                                                      type="availability").key)
    _at(db, declared + timedelta(minutes=ack), lambda s: service.assign_role(
        s, incident=queries.by_key(s, key), actor=LEAD, role="lead", user=LEAD))
    _at(db, declared + timedelta(minutes=mitigate), lambda s: service.set_status(
        s, incident=queries.by_key(s, key), actor=LEAD, status="monitoring"))
    if resolve is not None:
        _at(db, declared + timedelta(minutes=resolve), lambda s: service.resolve(
            s, incident=queries.by_key(s, key), actor=LEAD))
    return key


def seed(db) -> list[str]:
    """Five sev2 incidents in Q1 2025 and one in Q4 2024; two of Q1's linked to the same risk."""
    _incident(db, datetime(2024, 11, 5, 9, tzinfo=timezone.utc), "sev2", ack=20, mitigate=50, resolve=100)
    keys = [_incident(db, datetime(2025, 1 + n // 2, 3 + n, 9, tzinfo=timezone.utc), "sev2",
                      ack=2 * (n + 1), mitigate=10 * (n + 1), resolve=60 * (n + 1)) for n in range(5)]
    _incident(db, datetime(2025, 3, 20, 9, tzinfo=timezone.utc), "sev1", ack=1, mitigate=5, resolve=None)
    risk = make_risk(db)
    for key in keys[:2]:
        _at(db, datetime(2025, 3, 25, tzinfo=timezone.utc), lambda s, key=key: risks.link_incident(
            s, risk=s.get(Risk, risk.id), actor=LEAD, incident_key=key))
    return keys


def test_the_review_reports_hand_computed_figures_and_the_trend(db):
    seed(db)
    settings = Settings(_env_file=None, DATABASE_URL=db.url)
    with clock.frozen(datetime(2025, 4, 2, tzinfo=timezone.utc)), db.read_session() as s:
        review = program_review.build(s, datetime(2025, 1, 1, tzinfo=timezone.utc),
                                      datetime(2025, 4, 1, tzinfo=timezone.utc), settings=settings)
    parts = {part.title: part for part in program_review.sections(review)}
    volume = parts["Incidents in the period"]
    assert volume.text.startswith("6 incidents declared (1 incident in the period before), 0 of them security")
    # months: Jan holds incidents 1–2, Feb 3–4, Mar 5 and the sev1 → (month, sev1, sev2, sev3, sev4, all)
    assert volume.rows == [("2025-01", 0, 2, 0, 0, 2), ("2025-02", 0, 2, 0, 0, 2), ("2025-03", 1, 1, 0, 0, 2)]
    timing = {(row[0], row[1]): row for row in parts["Time to acknowledge, mitigate and resolve (CC7.4)"].rows}
    # sev2 acknowledge 2, 4, 6, 8, 10 min: median 6, nearest-rank p90 = the 5th value; before: 20
    assert timing[("sev2", "Acknowledge")][2:] == (5, "6", "10", "20", "faster by 14 min")
    # resolve 60…300 min: median 180 against 100 before
    assert timing[("sev2", "Resolve")][2:] == (5, "180", "300", "100", "slower by 80 min")
    # the unresolved sev1 counts for acknowledge and mitigate, not for resolve
    assert timing[("sev1", "Resolve")][2:5] == (0, None, None)
    assert timing[("sev1", "Mitigate")][2:4] == (1, "5")
    assert parts["Recurring causes"].rows == [(f"RISK-1 {'Laptop theft exposes customer data'}", "INC-2, INC-3")]
    assert program_review.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert program_review.percentile([], 0.9) is None
    html = program_review.render_built(review, "html")
    assert html.count("<svg") == 2 and "Incidents per month by severity" in html
    assert "<script" not in html


def test_sign_off_is_bound_to_a_person_and_the_bundle_carries_the_review_and_the_signed_file(db, tmp_path):
    seed(db)
    with db.session() as s:
        record_profile(s, user_id=CISO, profile=Profile(real_name="Chris Yu", email="cy@example.com", title="CISO"))
    runner, obj = CliRunner(), {"database": db}
    report = tmp_path / "review.html"
    with clock.frozen(datetime(2025, 4, 3, tzinfo=timezone.utc)):
        made = runner.invoke(main, ["incidents", "review", "--from", *Q1[:1], "--to", Q1[1], "--format", "html",
                                    "-o", str(report)], obj=obj)
    assert made.exit_code == 0, made.output
    refused = runner.invoke(main, ["incidents", "sign-off", "--from", Q1[0], "--to", Q1[1], "--by", "Chris Yu"], obj=obj)
    assert refused.exit_code == 1 and "'Chris Yu' is not a person in Vigil's directory" in refused.output
    with clock.frozen(datetime(2025, 4, 10, tzinfo=timezone.utc)):  # after the period: still the period's
        signed = runner.invoke(main, ["incidents", "sign-off", "--from", Q1[0], "--to", Q1[1], "--by", "cy@example.com",
                                      "--role", "CISO", "--report", str(report)], obj=obj)
    assert signed.exit_code == 0, signed.output
    assert "by Chris Yu (U0CISO)" in signed.output
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    bundle = tmp_path / "q1.zip"
    with clock.frozen(datetime(2025, 4, 11, tzinfo=timezone.utc)):
        exported = runner.invoke(main, ["export", "bundle", "--from", Q1[0], "--to", Q1[1], "-o", str(bundle)], obj=obj)
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        rows = list(csv.DictReader(io.StringIO(archive.read("incident_review_signoffs.csv").decode("utf-8-sig"))))
        in_bundle = archive.read(rows[0]["report_file"])
        text = archive.read("incident_review/report.md").decode()
        index = json.loads(archive.read("criteria_index.json"))
        risk_signoffs = json.loads(archive.read("risk_signoffs.json"))
    assert {"incident_review/report.md", "incident_review/report.html"} <= names
    assert rows[0]["by_name"] == "Chris Yu" and rows[0]["report_sha256"] == digest
    assert rows[0]["file_sha256_matches"] == "true" and hashlib.sha256(in_bundle).hexdigest() == digest
    assert rows[0]["report_file"].startswith("incident_review/signed/")
    assert risk_signoffs == []  # the risk assessment's sign-offs are a different subject
    assert "Chris Yu (U0CISO)" in text and "| sev2 | Resolve | 5 | 180 | 300 | 100 | slower by 80 min |" in text
    assert any(row["file"] == "incident_review/report.html" and row["criterion"] == "CC7.4" for row in index)
    assert runner.invoke(main, ["verify", "--bundle", str(bundle)]).exit_code == 0
    with db.session() as s:
        assert s.exec(select(Risk)).one().linked_incidents == ["INC-2", "INC-3"]
