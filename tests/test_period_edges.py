"""Period edges: what belongs to a period when things happen on either side of its boundaries.

Known truth (Q3 2025 = 2025-07-01 .. 2025-09-30): two risks whose first reviews are due 2025-07-01.
RISK-1's owner reviews early, on 2025-06-25, after two reminders in June; RISK-2's review is
reminded in June and July, escalated, and only done on 2025-10-03, after the quarter.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from vigil_ir import clock
from vigil_ir.exports.risks import review_rows
from vigil_ir.risks import report, reviews
from vigil_ir.risks.models import Risk
from tests.risk_fixtures import OWNER, harness, make_risk, open_review

T0 = datetime(2025, 5, 20, 9, 0, tzinfo=timezone.utc)  # risks made then are first due 2025-07-01
Q3 = (datetime(2025, 7, 1, tzinfo=timezone.utc), datetime(2025, 10, 1, tzinfo=timezone.utc))
Q2 = (datetime(2025, 4, 1, tzinfo=timezone.utc), datetime(2025, 7, 1, tzinfo=timezone.utc))


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=8, tzinfo=timezone.utc)


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for)
    yield h
    h.client.close()


def _sweep(app, day: str) -> None:
    with clock.frozen(at(day)):  # the reminders are recorded on the day they are sent
        app.sweep(at(day))


def _complete(db, risk: Risk, day: str) -> None:
    review = open_review(db, risk)
    with clock.frozen(at(day)), db.session() as s:
        reviews.complete(s, risk=s.get(Risk, risk.id), review=s.get(type(review), review.id), actor=OWNER,
                         approvers=frozenset(),
                         given={"outcome": "no_change", "rationale": "Controls checked."})


def test_the_review_log_holds_reviews_due_in_the_period_with_their_reminders_and_status_at_its_end(app):
    with clock.frozen(T0):
        early, late = make_risk(app.db, title="Laptop theft"), make_risk(app.db, title="Vendor outage")
    for day in ("2025-06-17", "2025-06-24"):
        _sweep(app, day)
    _complete(app.db, early, "2025-06-25")
    for day in ("2025-06-30", "2025-07-01", "2025-07-04", "2025-07-08"):
        _sweep(app, day)
    _complete(app.db, late, "2025-10-03")
    with app.db.session() as s:
        q3 = {row["risk_ref"]: row for row in review_rows(s, *Q3)}
        q2 = {row["risk_ref"]: row for row in review_rows(s, *Q2)}
        built = report.build(s, *Q3)
        text = report.render_built(built, "md")

    # Completed early, before the quarter it was due in: in that quarter's log, with the June reminders.
    first = q3["RISK-1"]
    assert (first["in_log_because"], first["status"], first["due_at"]) == ("due in the period", "completed",
                                                                           "2025-07-01")
    assert first["reminders_sent"] == 2
    assert first["reminders"] == "due_in_14 2025-06-17T08:00:00.000000Z; due_in_7 2025-06-24T08:00:00.000000Z"
    assert q2["RISK-1"]["in_log_because"] == "completed in the period"  # and in the quarter it was done in
    # Done after the quarter: overdue as at the quarter's end, completed as at generation; reminders
    # counted up to the end, from before the quarter began.
    second = q3["RISK-2"]
    assert (second["status"], second["status_at_generation"]) == ("overdue", "completed")
    assert second["reminders"].split("; ")[0] == "due_in_14 2025-06-17T08:00:00.000000Z"
    assert second["reminders_sent"] == len(second["reminders"].split("; ")) == 6
    # The report's summary line counts the same rows the log lists.
    assert built.review_counts == {"completed": 0, "on time": 0, "late": 0, "completed early": 1,
                                   "due but not completed": 1}
    assert ("0 reviews completed in the period (0 on time, 0 late); 1 due in the period and completed before it "
            "began; 1 due in the period and not completed by its end") in text


# ---- incidents across the period start, and the security selection --------------------------------

def _step(db, when: datetime, key: str, change) -> None:
    from vigil_ir.incidents import queries

    with clock.frozen(when), db.session() as s:
        change(s, queries.by_key(s, key))


def test_an_earlier_incident_closed_and_reviewed_in_the_period_is_in_its_bundle_and_security_is_a_stated_selection(
        vigil, tmp_path):
    import csv
    import io
    import zipfile

    from vigil_ir.config import Settings
    from vigil_ir.exports.bundle.export import export_bundle
    from vigil_ir.exports.bundle.verification import verify_bundle
    from vigil_ir.followup import pir
    from vigil_ir.followup.policy import Policy
    from vigil_ir.incidents import queries, service

    db, policy = vigil.db, Policy.from_settings(Settings(_env_file=None))
    vigil.fake.set_user("U0LEAD", real_name="Dana Kim")
    with clock.frozen(datetime(2025, 6, 28, 9, tzinfo=timezone.utc)), db.session() as s:   # INC-1: Q2
        service.declare(s, actor="U0LEAD", title="Checkout errors", severity="sev2", type="availability")
    _step(db, datetime(2025, 6, 28, 10, tzinfo=timezone.utc), "INC-1", lambda s, i: service.assign_role(
        s, incident=i, actor="U0LEAD", role="lead", user="U0LEAD"))
    _step(db, datetime(2025, 7, 2, 9, tzinfo=timezone.utc), "INC-1", lambda s, i: (
        service.resolve(s, incident=i, actor="U0LEAD"), pir.schedule(s, incident=i, policy=policy)))
    _step(db, datetime(2025, 7, 3, 9, tzinfo=timezone.utc), "INC-1", lambda s, i: pir.complete(
        s, incident=i, actor="U0LEAD", policy=policy, held_at=datetime(2025, 7, 3, 8, tzinfo=timezone.utc),
        attendees=["U0LEAD"], plan_change_needed=False,
        values={"summary": "Bad deploy", "root_cause": "Config drift", "went_well": "Fast page"}))
    _step(db, datetime(2025, 7, 4, 9, tzinfo=timezone.utc), "INC-1", lambda s, i: service.close(
        s, incident=i, actor="U0LEAD", admins=frozenset(), customer_impact="20 min errors", root_cause="Config drift",
        lessons_learned="Canary"))
    with clock.frozen(datetime(2025, 7, 10, 9, tzinfo=timezone.utc)):
        vigil.declare("Export bucket open", user="U0LEAD")                                        # INC-2
        vigil.declare("Phishing mail", type="security", user="U0LEAD")                             # INC-3
        vigil.declare("Slow page", user="U0LEAD")                                                  # INC-4
        with db.session() as s:
            channel = queries.by_key(s, "INC-2").channel_id
        refused = vigil.command("security yes data exposed", user="U0OTHER", channel=channel)
        assert "Only the incident lead" in refused.text
        assert "Usage" in vigil.command("security maybe", user="U0LEAD", channel=channel).text
        assert vigil.command("lead <@U0LEAD|dana>", user="U0LEAD", channel=channel).status_code == 200
        answer = vigil.command("security yes customer files were readable", user="U0LEAD", channel=channel)
        assert "now a security incident" in answer.text
        vigil.sweep()
        vigil.deliver()
    with clock.frozen(datetime(2025, 10, 5, tzinfo=timezone.utc)):
        export_bundle(db, start=Q3[0], end=Q3[1], output=tmp_path / "q3.zip", actor="cli:auditor",
                      settings=vigil.runtime.settings)
    assert verify_bundle(tmp_path / "q3.zip").ok
    with zipfile.ZipFile(tmp_path / "q3.zip") as archive:
        def rows(name):
            return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))
        population = [row["key"] for row in rows("incidents.csv")]
        carried, carried_pirs, security = rows("incidents_carried_over.csv"), rows("pirs_carried_over.csv"), \
            rows("security_incidents.csv")
        carried_events = rows("incidents_carried_over_events.csv")
        packet = archive.read("incidents_carried_over/INC-1/INC-1.html").decode()
        manifest = archive.read("manifest.json").decode()
    assert population == ["INC-2", "INC-3", "INC-4"]
    (one,) = carried
    assert one["key"] == "INC-1" and one["in_period_because"] == (
        "resolved in the period; post-incident review completed in the period; closed in the period")
    assert (one["closed_by"], one["closed_by_name"]) == ("U0LEAD", "Dana Kim")
    assert [(row["incident_ref"], row["status"]) for row in carried_pirs] == [("INC-1", "completed")]
    assert {row["kind"] for row in carried_events} >= {"incident.declared", "incident.closed", "pir.completed"}
    assert "Dana Kim (U0LEAD)" in packet
    assert {row["key"]: row["flag_set_at_declaration"] for row in security} == {
        "INC-2": "no", "INC-3": "yes: type security by Dana Kim (U0LEAD)"}
    two = next(row for row in security if row["key"] == "INC-2")
    assert (two["security_at_period_end"], two["security_now"]) == ("true", "true")
    assert two["flag_changes"].endswith("yes by Dana Kim (U0LEAD): customer files were readable")
    assert "incidents_carried_over_events.json" in manifest


# ---- the configuration in force, as evidence ---------------------------------------------------------

def test_the_configuration_is_recorded_when_it_changes_and_the_bundle_has_each_version_with_roles(
        vigil, tmp_path, settings_for):
    import json
    import zipfile

    from vigil_ir.config_evidence import record_if_changed
    from vigil_ir.exports.bundle.export import export_bundle
    from vigil_ir.exports.bundle.verification import verify_bundle
    from vigil_ir.playbooks import runner
    from vigil_ir.playbooks.loader import load_file
    from tests.conftest import PLAYBOOK_FIXTURES

    db = vigil.db
    first = settings_for(DATABASE_URL=db.url, VIGIL_ADMINS="U0ADMIN", VIGIL_UPDATE_CADENCE="sev1=30m,sev2=1h,sev3=4h,sev4=none")
    second = settings_for(DATABASE_URL=db.url, VIGIL_ADMINS="U0ADMIN,U0NEWADMIN",
                          VIGIL_UPDATE_CADENCE="sev1=15m,sev2=1h,sev3=4h,sev4=none")
    with clock.frozen(datetime(2025, 6, 1, tzinfo=timezone.utc)), db.session() as s:
        assert record_if_changed(s, first) is not None
    with clock.frozen(datetime(2025, 6, 2, tzinfo=timezone.utc)), db.session() as s:
        assert record_if_changed(s, first) is None  # a restart with the same configuration records nothing
    with clock.frozen(datetime(2025, 8, 15, tzinfo=timezone.utc)), db.session() as s:
        changed = record_if_changed(s, second)
    assert changed.data["changed"] == ["roles", "update_cadence"]
    with clock.frozen(datetime(2025, 7, 20, tzinfo=timezone.utc)), db.session() as s:
        from vigil_ir.incidents import service

        incident = service.declare(s, actor="U0ADMIN", title="DB down", severity="sev1", type="availability")
        runner.attach(s, incident=incident, actor="U0ADMIN", file=load_file(PLAYBOOK_FIXTURES / "db-failover.yaml"))
    with clock.frozen(datetime(2025, 8, 20, tzinfo=timezone.utc)), db.session() as s:
        service.declare(s, actor="U0ADMIN", title="API down", severity="sev1", type="availability")
    with clock.frozen(datetime(2025, 10, 2, tzinfo=timezone.utc)):
        export_bundle(db, start=Q3[0], end=Q3[1], output=tmp_path / "q3.zip", actor="cli:auditor", settings=first)
    assert verify_bundle(tmp_path / "q3.zip").ok
    with zipfile.ZipFile(tmp_path / "q3.zip") as archive:
        versions = json.loads(archive.read("policy/config_versions.json"))
        playbooks = json.loads(archive.read("policy/playbook_versions.json"))
        text = archive.read(playbooks[0]["file"]).decode()
        people = {row["user_id"]: row for row in json.loads(archive.read("people.json"))}
        cadence = {row["incident_ref"]: row for row in json.loads(archive.read("update_cadence.json"))}
    # each due time follows the cadence in force when it was set, not the settings at generation (30m)
    assert (cadence["INC-1"]["due_at"], cadence["INC-1"]["cadence"]) == ("2025-07-20T00:30:00.000000Z", "0:30:00")
    assert (cadence["INC-2"]["due_at"], cadence["INC-2"]["cadence"]) == ("2025-08-20T00:15:00.000000Z", "0:15:00")
    assert cadence["INC-2"]["cadence_source"] == f"configuration sha256:{versions[1]['sha256'][:12]} of 2025-08-15T00:00:00.000000Z"
    assert [(v["in_force_from"], v["in_force_until"]) for v in versions] == [
        ("2025-06-01T00:00:00.000000Z", "2025-08-15T00:00:00.000000Z"), ("2025-08-15T00:00:00.000000Z", None)]
    assert versions[0]["document"]["update_cadence"]["sev1"] == "0:30:00"
    assert versions[1]["document"]["update_cadence"]["sev1"] == "0:15:00"
    assert "acknowledged" in versions[0]["document"]["milestone_definitions"]
    assert (playbooks[0]["playbook_id"], playbooks[0]["incidents"]) == ("db-failover", "INC-1")
    assert text == (PLAYBOOK_FIXTURES / "db-failover.yaml").read_text(encoding="utf-8")
    new = people["U0NEWADMIN"]  # named in the configuration, made admin in August
    assert new["roles"] == "admin" and new["role_changes_in_period"] == "2025-08-15T00:00:00.000000Z became admin"
    assert people["U0ADMIN"]["role_changes_in_period"] is None


def test_the_worker_records_the_configuration_at_start_up_once_per_change(db, fake_slack):
    from click.testing import CliRunner
    from sqlmodel import select

    from vigil_ir.cli import main
    from vigil_ir.eventlog import Event
    from tests.conftest import PLAYBOOK_FIXTURES

    env = {"DATABASE_URL": db.url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s",
           "SLACK_API_URL": fake_slack.base_url, "VIGIL_PLAYBOOKS_DIR": str(PLAYBOOK_FIXTURES), "VIGIL_ADMINS": "U0A1"}
    for admins in ("U0A1", "U0A1", "U0A1,U0A2"):
        result = CliRunner().invoke(main, ["worker", "--once"], env={**env, "VIGIL_ADMINS": admins})
        assert result.exit_code == 0, result.output
    with db.session() as s:
        recorded = list(s.exec(select(Event).where(Event.stream == "config").order_by(Event.stream_seq)))
    assert [e.data["changed"] for e in recorded] == [sorted(recorded[0].data["document"]), ["roles"]]
    assert recorded[1].data["document"]["roles"]["admins"] == ["U0A1", "U0A2"]


# ---- whether the status-update control operated ---------------------------------------------------

def test_update_reminders_repeat_while_overdue_and_the_bundle_shows_each_due_time(vigil, tmp_path):
    import csv
    import io
    import zipfile

    from vigil_ir.exports.bundle.export import export_bundle
    from vigil_ir.incidents import service

    vigil.fake.set_user("U0DECLARER", real_name="Sam Lee")
    declared = datetime(2025, 7, 7, 9, 0, tzinfo=timezone.utc)
    with clock.frozen(declared):
        vigil.declare(severity="sev1")  # sev1: an update every 30 min; repeated every 30 min while overdue
    counts = []
    for minutes in (29, 31, 45, 61, 95):
        with clock.frozen(declared + timedelta(minutes=minutes)):
            counts.append(vigil.sweep(declared + timedelta(minutes=minutes))["incident.update_due"])
    assert counts == [0, 1, 0, 1, 1]  # due at 30: reminded at 31, again at 61 and 95 (30 and 60 min overdue)
    _step(vigil.db, declared + timedelta(minutes=100), "INC-1", lambda s, i: service.post_update(
        s, incident=i, actor="U0DECLARER", status="identified", summary="Rolled back"))
    _step(vigil.db, declared + timedelta(minutes=120), "INC-1", lambda s, i: service.post_update(
        s, incident=i, actor="U0DECLARER", status="identified", summary="Stable"))
    _step(vigil.db, declared + timedelta(minutes=200), "INC-1", lambda s, i: service.resolve(
        s, incident=i, actor="U0DECLARER"))
    vigil.deliver()
    texts = [c.params["text"] for c in vigil.fake.calls_to("chat.postMessage") if "status update" in c.params["text"]]
    assert len(texts) == 3 and "is still due" in texts[-1]
    with clock.frozen(datetime(2025, 10, 2, tzinfo=timezone.utc)):
        export_bundle(vigil.db, start=Q3[0], end=Q3[1], output=tmp_path / "q3.zip", actor="cli:auditor",
                      settings=vigil.runtime.settings)
    with zipfile.ZipFile(tmp_path / "q3.zip") as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("update_cadence.csv").decode("utf-8-sig"))))
    assert [(r["due_at"], r["outcome"], r["minutes_late"], r["reminders_sent"]) for r in rows] == [
        ("2025-07-07T09:30:00.000000Z", "late", "70.0", "3"),
        ("2025-07-07T11:10:00.000000Z", "on time", "0.0", "0"),
        ("2025-07-07T11:30:00.000000Z", "missed: resolved without an update after it was due", "", "0")]
    assert rows[0]["update_posted_by_name"] == "Sam Lee" and rows[1]["due_because"].startswith("set by the update")
