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


def test_the_bundle_carries_the_review_the_command_writes(db, tmp_path):
    """The bundle renders the review from the rows its incident pass built (in another process on a
    file database) and the cadence section's counts: the same report, byte for byte, as `vigil
    incidents review`, which folds every incident's events itself."""
    seed(db)
    runner, obj = CliRunner(), {"database": db}
    with clock.frozen(datetime(2025, 4, 11, tzinfo=timezone.utc)):
        exported = runner.invoke(main, ["export", "bundle", "--from", Q1[0], "--to", Q1[1], "-o",
                                        str(tmp_path / "q1.zip")], obj=obj)
        assert exported.exit_code == 0, exported.output
        for fmt in program_review.FORMATS:
            made = runner.invoke(main, ["incidents", "review", "--from", Q1[0], "--to", Q1[1], "--format", fmt,
                                        "-o", str(tmp_path / f"review.{fmt}")], obj=obj)
            assert made.exit_code == 0, made.output
    with zipfile.ZipFile(tmp_path / "q1.zip") as archive:
        for fmt in program_review.FORMATS:
            assert archive.read(f"incident_review/report.{fmt}") == (tmp_path / f"review.{fmt}").read_bytes()
    text = (tmp_path / "review.md").read_text()
    assert "| sev2 | Resolve | 5 | 180 | 300 | 100 | slower by 80 min |" in text  # the rows and the period before
    assert "0 late, 4 missed (resolved without the update)" in text  # the cadence section's counts
    assert "still open at generation: 1." in text


def test_the_close_form_records_a_root_cause_category_that_the_review_counts(vigil):
    from tests.slack_requests import input_value
    from vigil_ir.eventlog import Event
    from vigil_ir.exports.population import incident_population
    from vigil_ir.incidents.fold import check_incidents

    def close(category: str):
        incident = vigil.declare()
        vigil.command(f"lead <@{LEAD}>", channel=incident.channel_id)
        vigil.command("resolve", channel=incident.channel_id, user=LEAD)
        vigil.command("close", channel=incident.channel_id, user=LEAD)
        view = vigil.last_view("incident_close")
        block = next(b for b in view["blocks"] if b.get("block_id") == "cause_category")
        assert block["optional"] and len(block["element"]["options"]) == 9
        values = {"customer_impact": input_value("plain_text_input", "None"),
                  "root_cause": input_value("plain_text_input", "Bad deploy"),
                  "cause_category": input_value("static_select", category)}
        return incident, vigil.submit(view, values, user=LEAD)

    forged, refused = close("sunspots")  # not an option Slack offered
    assert refused.json()["errors"] == {"cause_category": "'sunspots' is not a root-cause category: choose one of "
                                                          "change, capacity, dependency, infrastructure, defect, "
                                                          "attack, access, human, unknown."}
    closed = [close("change"), close("change")]
    assert all(response.status_code == 200 and "errors" not in response.text for _, response in closed)
    with vigil.db.session() as s:
        events = s.exec(select(Event).where(Event.kind == "incident.closed")).all()
        rows = {row["key"]: row for row in incident_population(s, datetime(2000, 1, 1, tzinfo=timezone.utc),
                                                               datetime(2100, 1, 1, tzinfo=timezone.utc))}
        assert check_incidents(s) == []  # the category is folded from the close event
        review = program_review.build(s, datetime(2000, 1, 1, tzinfo=timezone.utc),
                                      datetime(2100, 1, 1, tzinfo=timezone.utc),
                                      settings=Settings(_env_file=None, DATABASE_URL=vigil.db.url))
    assert [e.data["cause_category"] for e in events] == ["change", "change"]
    assert rows[forged.key]["cause_category"] is None and rows[closed[0][0].key]["cause_category"] == "change"
    causes = next(p for p in program_review.sections(review) if p.title.startswith("Root-cause categories"))
    assert causes.rows == [("Change (deploy, configuration, migration)", 2)]


def test_slack_sign_off_of_the_review_is_for_commanders_and_signs_the_review_once(vigil):
    from tests import slack_requests
    from vigil_ir.eventlog import Event
    from vigil_ir.risks import signoff

    vigil.fake.set_user("U0ADMIN", real_name="Ada Admin", email="ada@example.com")
    refused = vigil.command("sign-off", user="U0NOBODY")
    assert "may sign off the incident-response program review" in refused.text
    assert "Nothing was recorded" in refused.text
    assert not [c for c in vigil.fake.calls_to("views.open")
                if c.params["view"]["callback_id"] == "incident_review_signoff"]

    def submit(first="2026-01-01", last="2026-03-31", view_id=None):
        assert vigil.command("sign-off", user="U0ADMIN").status_code == 200
        view = vigil.last_view("incident_review_signoff")
        assert view["title"]["text"] == "Sign off program review"
        return vigil.submit(view, {"period_from": {"type": "datepicker", "selected_date": first},
                                   "period_to": {"type": "datepicker", "selected_date": last},
                                   "role": slack_requests.input_value("plain_text_input", "CISO"),
                                   "comment": slack_requests.input_value("plain_text_input", "Reviewed")},
                           user="U0ADMIN", view_id=view_id)

    assert submit(first="2026-03-31", last="2026-01-01").json()["errors"] == {
        "period_to": "The last day must not be before the first day."}
    assert submit(view_id="V0ONCE").status_code == 200
    assert submit(view_id="V0ONCE").status_code == 200  # submitted twice: signed once
    vigil.deliver()
    vigil.deliver()
    q1 = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc))
    with vigil.db.session() as s:
        (done,) = signoff.sign_offs(s, *q1, subject=signoff.INCIDENT_REVIEW)
        assert signoff.sign_offs(s, *q1) == []  # not a sign-off of the risk assessment
        stored = signoff.stored_report(s, done.report_id)
        kinds = [e.kind for e in s.exec(select(Event).where(Event.stream == "audit"))]
    assert done.via == "slack" and done.role == "CISO" and done.by == "U0ADMIN"
    assert stored.filename == "incident-response-review-2026-01-01-to-2026-03-31.md"
    assert bytes(stored.content).startswith(b"# Incident-response program review: 2026-01-01 to 2026-03-31")
    assert kinds.count("incidents.review_signed_off") == 1 and "risk.signed_report_posted" in kinds
    assert len(vigil.fake.ok_calls("files.completeUploadExternal")) == 1
