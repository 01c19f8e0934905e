"""One seeded quarter with known truth, read back from the evidence bundle, the packets and the
dashboard as an auditor would.

The quarter is Q1 2026 (2026-01-01 .. 2026-03-31), seeded through signed Slack requests and the
domain functions, with the clock frozen at each act:

* Configuration v1 (recorded 2025-11-20): sev2 updates every hour, admin Ada (U0ADMIN). v2, recorded
  2026-02-01 at a restart, mid-quarter: sev2 every 30 minutes, and Nia (U0NEWADMIN) made admin.
* Risks made 2025-11-20 are first due for review 2026-01-01, and reminded 14 and 7 days before.
  RISK-1 is reviewed early (2025-12-28, before the quarter); RISK-2 late (2026-01-20); RISK-3 never
  (overdue at the quarter's end, reminded before and during it).
* INC-1 (sev2, 2026-01-12): declared in Slack by Sam Lee (U0DECL), led by Dana Kim (U0LEAD). Its first
  update was due at 10:00 under v1, reminded at 10:05 and posted at 10:20 (20 min late); the next, due
  11:20, came at 11:10. Dana decides the customer-notice clock "not reportable", resolves, and closes
  in Slack over open required steps with a reason (an override). Of its two follow-ups, ACT-2 is
  cancelled with a reason. RISK-2 is linked to it.
* The commanders are the Slack user group S0CMD: Dana, and from February also Omar.
* In February Slack says Dana is now Dana Park and Sam has left (deactivated).
* INC-2 (sev2, 2026-02-20, under v2): its first update is due 09:30 and never posted before it is
  resolved at 10:00 (missed).
* INC-3 (sev4, 2026-03-03): resolved; its post-incident review is not required.
* Ada signs the quarter's risk assessment off in Slack on 2026-04-07, after the quarter.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.config import Settings
from vigil_ir.config_evidence import record_if_changed
from vigil_ir.db import Database
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.exports.bundle.verification import verify_bundle
from vigil_ir.followup import actions
from vigil_ir.followup.models import ActionItem
from vigil_ir.incidents import queries, service
from vigil_ir.risks import reviews
from vigil_ir.risks.models import Risk, RiskReview
from vigil_ir.runtime import build_runtime
from tests import slack_requests
from tests.conftest import PLAYBOOK_FIXTURES, VigilHarness, empty_all_tables, kinds_without_a_sentence
from tests.fakes.slack_api import PROXY_VARS, FakeSlack
from tests.risk_fixtures import make_risk

pytestmark = pytest.mark.slow

UTC = timezone.utc
Q1 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
V1_AT = datetime(2025, 11, 20, 8, 0, tzinfo=UTC)
V2_AT = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
INC1_AT = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)
RENAMED_AT = datetime(2026, 2, 16, 9, 0, tzinfo=UTC)
INC2_AT = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
INC3_AT = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
SIGNED_AT = datetime(2026, 4, 7, 10, 0, tzinfo=UTC)
EXPORTED_AT = datetime(2026, 4, 8, 9, 0, tzinfo=UTC)
OVERRIDE = "Customer comms handled by legal; the replica checks are tracked in ACT-1"
NOT_REPORTABLE = "No customer data was affected"
CANCELLED = "Covered by the platform load tests"


def _settings(fake: FakeSlack, url: str, **overrides) -> Settings:
    values = {"DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": slack_requests.SECRET,
              "SLACK_API_URL": fake.base_url, "SLACK_HOOKS_URL": fake.response_url(""),
              "VIGIL_INCIDENT_FEED_CHANNEL": "C0FEED", "VIGIL_ADMINS": "U0ADMIN", "VIGIL_SLACK_TIMEOUT_SECONDS": 2,
              "VIGIL_PLAYBOOKS_DIR": str(PLAYBOOK_FIXTURES), "VIGIL_CLOSE_APPROVAL": "none",
              "VIGIL_RISK_CHANNEL": "C0RISKS", "VIGIL_UPDATE_CADENCE": "sev1=30m,sev2=1h,sev3=4h,sev4=none",
              "VIGIL_SESSION_SECRET": "test-secret", "VIGIL_COMMANDERS": "S0CMD"}
    values.update(overrides)
    return Settings(_env_file=None, **values)


def _at(when: datetime):
    return clock.frozen(when)


def _sweep(app: VigilHarness, when: datetime) -> dict:
    with _at(when):
        swept = app.sweep(when)
        app.deliver()
    return swept


def _incident(app: VigilHarness, key: str):
    with app.db.session() as s:
        return queries.by_key(s, key)


def _ok(response) -> str:
    assert response.status_code == 200, response.text
    return response.text


def _complete_review(db, number: int, when: datetime, rationale: str) -> None:
    with _at(when), db.session() as s:
        risk = s.exec(select(Risk).where(Risk.number == number)).one()
        review = s.exec(select(RiskReview).where(RiskReview.risk_id == risk.id, RiskReview.status == "open")
                        .order_by(RiskReview.due_on)).first()
        reviews.complete(s, risk=risk, review=review, actor="U0OWNER", approvers=frozenset(),
                         given={"outcome": "no_change", "rationale": rationale})


def _seed(fake: FakeSlack, db: Database) -> tuple[VigilHarness, VigilHarness]:
    fake.set_user("U0DECL", real_name="Sam Lee", email="sam@example.com", title="SRE")
    fake.set_user("U0LEAD", real_name="Dana Kim", email="dana@example.com", title="Incident commander")
    fake.set_user("U0ADMIN", real_name="Ada Admin", email="ada@example.com", title="CFO")
    fake.set_user("U0OWNER", real_name="Omar Owens", email="omar@example.com", title="Security lead")
    fake.set_user("U0NEWADMIN", real_name="Nia New", email="nia@example.com", title="COO")
    fake.set_usergroup("S0CMD", "ir-commanders", ["U0LEAD"])
    v1 = VigilHarness(build_runtime(_settings(fake, db.url), db), fake)
    with _at(V1_AT):
        with db.session() as s:
            record_if_changed(s, v1.runtime.settings)  # what `vigil worker` records at start-up
        for title in ("Laptop theft", "Vendor outage", "Backup restore untested"):
            make_risk(db, title=title, owner="U0OWNER")
    for day in (18, 25):  # the due-in-14 and due-in-7 reminders, before the quarter begins
        _sweep(v1, datetime(2025, 12, day, 8, 0, tzinfo=UTC))
    _complete_review(db, 1, datetime(2025, 12, 28, 8, 0, tzinfo=UTC), "Encryption checked early.")
    for when in (datetime(2026, 1, 1, 8, 0, tzinfo=UTC), datetime(2026, 1, 8, 8, 0, tzinfo=UTC)):
        _sweep(v1, when)

    # INC-1, through Slack: declared by Sam, led by Dana, a playbook with a customer-notice clock.
    with _at(INC1_AT):
        v1.declare("Checkout API returns 500s", severity="sev2", user="U0DECL")
        channel = _incident(v1, "INC-1").channel_id
        _ok(v1.command("lead <@U0LEAD|dana>", user="U0DECL", channel=channel))
        _ok(v1.command("playbook db-failover", user="U0LEAD", channel=channel))
    with _at(INC1_AT + timedelta(minutes=30)):
        assert "Recorded" in _ok(v1.command(f"deadline customer-notice not-reportable {NOT_REPORTABLE}",
                                           user="U0LEAD", channel=channel))
    assert _sweep(v1, INC1_AT + timedelta(minutes=65))["incident.update_due"] == 1  # due 10:00, reminded
    for minutes, summary in ((80, "Rolled back the deploy"), (130, "Error rate back to normal")):
        with _at(INC1_AT + timedelta(minutes=minutes)), db.session() as s:
            service.post_update(s, incident=queries.by_key(s, "INC-1"), actor="U0LEAD", status="identified",
                                summary=summary)
    with _at(INC1_AT + timedelta(minutes=150)):
        _ok(v1.command("resolve", user="U0LEAD", channel=channel))
        v1.deliver()
    with _at(INC1_AT + timedelta(days=1)):
        _ok(v1.command("close", user="U0LEAD", channel=channel))
        view = v1.last_view("incident_close")
        values = {"customer_impact": "Checkout failed for 12% of users for 40 minutes",
                  "root_cause": "Connection pool exhausted after a config change",
                  "lessons_learned": "Alert on pool saturation",
                  "follow_ups": "Add a pool saturation alert\nLoad test the pool config", "override_reason": OVERRIDE}
        _ok(v1.submit(view, {k: slack_requests.input_value("plain_text_input", v) for k, v in values.items()},
                      user="U0LEAD"))
        v1.deliver()
        assert _incident(v1, "INC-1").status == "closed"
        _ok(v1.command("link RISK-2 INC-1", user="U0OWNER", command="/risk"))
    with _at(INC1_AT + timedelta(days=2)), db.session() as s:
        act2 = s.exec(select(ActionItem).where(ActionItem.number == 2)).one()
        actions.set_status(s, action=act2, actor="U0LEAD", status="cancelled", reason=CANCELLED)
    _complete_review(db, 2, datetime(2026, 1, 20, 8, 0, tzinfo=UTC), "Vendor SLA reviewed, late.")

    # February: a restart with a changed configuration, then Slack's daily answers change.
    v2 = VigilHarness(build_runtime(_settings(fake, db.url, VIGIL_ADMINS="U0ADMIN,U0NEWADMIN",
                                              VIGIL_UPDATE_CADENCE="sev1=15m,sev2=30m,sev3=4h,sev4=none"), db), fake)
    with _at(V2_AT), db.session() as s:
        assert record_if_changed(s, v2.runtime.settings) is not None
    fake.set_user("U0LEAD", real_name="Dana Park", email="dana@example.com", title="Head of incident response")
    fake.set_user("U0DECL", real_name="Sam Lee", email="sam@example.com", title="SRE", deleted=True)
    fake.set_usergroup("S0CMD", "ir-commanders", ["U0LEAD", "U0OWNER"])  # Omar joins the commanders' group
    _sweep(v2, RENAMED_AT)

    # INC-2 under v2: due 09:30, resolved at 10:00 without an update (missed).
    with _at(INC2_AT):
        v2.declare("Search is slow", severity="sev2", user="U0LEAD")
        channel2 = _incident(v2, "INC-2").channel_id
        _ok(v2.command("lead <@U0LEAD|dana>", user="U0LEAD", channel=channel2))
    with _at(INC2_AT + timedelta(minutes=60)):
        _ok(v2.command("resolve", user="U0LEAD", channel=channel2))
        v2.deliver()
    # INC-3, sev4: resolved; a review is optional at this severity and none is held.
    with _at(INC3_AT):
        v2.declare("Typo on the status page", severity="sev4", user="U0LEAD")
        channel3 = _incident(v2, "INC-3").channel_id
        _ok(v2.command("lead <@U0LEAD|dana>", user="U0LEAD", channel=channel3))
        _ok(v2.command("resolve", user="U0LEAD", channel=channel3))
        v2.deliver()
    _sweep(v2, datetime(2026, 3, 20, 8, 0, tzinfo=UTC))

    # April: the sign-off of Q1, in Slack, a week after the quarter ended.
    with _at(SIGNED_AT):
        _ok(v2.command("sign-off", user="U0ADMIN", command="/risk"))
        view = v2.last_view("risk_signoff")
        _ok(v2.submit(view, {"period_from": {"type": "datepicker", "selected_date": "2026-01-01"},
                             "period_to": {"type": "datepicker", "selected_date": "2026-03-31"},
                             "role": slack_requests.input_value("plain_text_input", "CFO for management"),
                             "comment": slack_requests.input_value("plain_text_input", "Reviewed with the board")},
                      user="U0ADMIN"))
        v2.deliver()
    return v1, v2


class Quarter:
    def __init__(self, app: VigilHarness, bundle: zipfile.ZipFile, problems: list[str], unsentenced: list[str]):
        self.app, self.bundle, self.problems, self.unsentenced = app, bundle, problems, unsentenced

    def rows(self, name: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(self.bundle.read(name).decode("utf-8-sig"))))

    def by(self, name: str, column: str) -> dict[str, dict]:
        return {row[column]: row for row in self.rows(name)}

    def json(self, name: str):
        return json.loads(self.bundle.read(name))

    def text(self, name: str) -> str:
        return self.bundle.read(name).decode("utf-8")


@pytest.fixture(scope="module")
def quarter(database_url, tmp_path_factory):
    """Seeded once per database backend; the tests only read."""
    folder = tmp_path_factory.mktemp("quarter")
    with pytest.MonkeyPatch.context() as patch:
        for var in PROXY_VARS:
            patch.delenv(var, raising=False)
        patch.setenv("VIGIL_SIGNING_KEY_FILE", str(folder / "signing-key.pem"))
        db, fake = Database(database_url), FakeSlack()
        empty_all_tables(db)
        try:
            _, app = _seed(fake, db)
            with _at(EXPORTED_AT):
                export_bundle(db, start=Q1[0], end=Q1[1], output=folder / "q1.zip", actor="cli:auditor",
                              settings=app.runtime.settings)
            with zipfile.ZipFile(folder / "q1.zip") as bundle:
                yield Quarter(app, bundle, verify_bundle(folder / "q1.zip").problems, kinds_without_a_sentence(db))
            app.client.close()
        finally:
            fake.close()
            db.dispose()


# ---- the bundle's files ---------------------------------------------------------------------------

def test_the_bundle_of_the_quarter_verifies(quarter):
    assert quarter.problems == []


def test_every_event_recorded_reads_as_a_sentence(quarter):
    """Incidents, playbooks, people, configuration, risks, reviews, actions, sign-off, the signing key:
    each kind recorded has its sentence, so no summary falls back to raw JSON."""
    assert quarter.unsentenced == []
    summaries = [row["summary"] for row in quarter.rows("audit_log.csv")]
    assert summaries and not [s for s in summaries if s.split(" ", 1)[0].count(".") and "{" in s]


def test_the_population_shows_the_override_and_people_as_they_were(quarter):
    incidents = quarter.by("incidents.csv", "key")
    assert list(incidents) == ["INC-1", "INC-2", "INC-3"]
    one = incidents["INC-1"]
    assert (one["declared_by"], one["declared_by_name"]) == ("U0DECL", "Sam Lee")
    assert (one["closed_by"], one["closed_by_name"]) == ("U0LEAD", "Dana Kim")  # closed in January
    assert one["close_override_reason"] == OVERRIDE
    assert 'Database failover: step “Check replica lag” is open' in one["closed_with_open_items"]
    assert "Tell affected customers" not in one["closed_with_open_items"]  # decided, so not open
    assert incidents["INC-3"]["pir_status"] == quarter.by("pirs.csv", "incident_ref")["INC-3"]["status"]
    events = quarter.rows("incident_events.csv")
    closed = next(row for row in events if row["kind"] == "incident.closed")
    assert OVERRIDE in closed["summary"] and closed["actor_name"] == "Dana Kim"
    decided = next(row for row in events if row["kind"] == "playbook.deadline_decided")
    assert "not reportable" in decided["summary"] and NOT_REPORTABLE in decided["summary"]


def test_update_cadence_follows_the_policy_in_force_when_each_update_was_due(quarter):
    versions = quarter.json("policy/config_versions.json")
    assert [(v["in_force_from"], v["in_force_until"]) for v in versions] == [
        ("2025-11-20T08:00:00.000000Z", "2026-02-01T08:00:00.000000Z"), ("2026-02-01T08:00:00.000000Z", None)]
    assert versions[1]["changed"] == ["roles", "update_cadence"]
    assert (versions[0]["document"]["update_cadence"]["sev2"], versions[1]["document"]["update_cadence"]["sev2"]) == (
        "1:00:00", "0:30:00")
    rows = quarter.rows("update_cadence.csv")
    got = [(r["incident_ref"], r["due_at"], r["cadence"], r["outcome"], r["minutes_late"], r["reminders_sent"])
           for r in rows]
    assert got[:2] == [("INC-1", "2026-01-12T10:00:00.000000Z", "1:00:00", "late", "20.0", "1"),
                       ("INC-1", "2026-01-12T11:20:00.000000Z", "1:00:00", "on time", "0.0", "0")]
    assert ("INC-2", "2026-02-20T09:30:00.000000Z", "0:30:00",
            "missed: resolved without an update after it was due", "", "0") in got
    inc2 = next(r for r in rows if r["incident_ref"] == "INC-2")
    assert inc2["cadence_source"] == f"configuration sha256:{versions[1]['sha256'][:12]} of 2026-02-01T08:00:00.000000Z"
    assert rows[0]["update_posted_by_name"] == "Dana Kim"


def test_people_and_roles_show_the_rename_the_deactivation_and_the_new_admin(quarter):
    people = quarter.by("people.csv", "user_id")
    dana, sam, nia, ada = people["U0LEAD"], people["U0DECL"], people["U0NEWADMIN"], people["U0ADMIN"]
    assert (dana["name"], dana["names_in_period"]) == ("Dana Park", "Dana Kim; Dana Park")
    assert "real_name: 'Dana Kim' → 'Dana Park'" in dana["changes_in_period"]
    assert dana["incidents_led"] == "INC-1;INC-2;INC-3"
    assert (sam["status"], sam["name"]) == ("deactivated", "Sam Lee")
    assert "deactivated: False → True" in sam["changes_in_period"]
    assert (nia["roles"], nia["role_changes_in_period"]) == ("admin", "2026-02-01T08:00:00.000000Z became admin")
    assert (ada["roles"], ada["title"]) == ("admin", "CFO")
    # A role held through a Slack user group: the group's members as Vigil recorded them.
    omar = people["U0OWNER"]
    assert dana["roles"] == "commander (through S0CMD)" and dana["role_changes_in_period"] == ""
    assert omar["roles"] == "commander (through S0CMD)"
    assert omar["role_changes_in_period"] == "2026-02-20T09:00:00.000000Z joined S0CMD (commander)"


def test_the_review_log_holds_the_early_the_late_and_the_missed_review(quarter):
    log = quarter.by("risk_reviews.csv", "risk_ref")
    early, late, missed = log["RISK-1"], log["RISK-2"], log["RISK-3"]
    assert (early["in_log_because"], early["status"], early["due_at"]) == ("due in the period", "completed",
                                                                           "2026-01-01")
    assert early["completed_at"].startswith("2025-12-28") and early["completed_by_name"] == "Omar Owens"
    assert early["reminders"] == "due_in_14 2025-12-18T08:00:00.000000Z; due_in_7 2025-12-25T08:00:00.000000Z"
    assert (late["status"], late["on_time"], late["days_late"]) == ("completed", "false", "19")
    assert late["reminders"].startswith("due_in_14 2025-12-18")  # reminded before the quarter began
    assert (missed["status"], missed["completed_at"]) == ("overdue", "")
    sent = missed["reminders"].split("; ")
    assert int(missed["reminders_sent"]) == len(sent) >= 4
    assert any(r.endswith("2025-12-18T08:00:00.000000Z") for r in sent)
    assert any(r.startswith("overdue") and "2026-" in r for r in sent)
    # Each section of the risk assessment agrees with its summary line and with the review log.
    report = quarter.text("risk_assessment/report.md")
    assert ("1 review completed in the period (0 on time, 1 late); 1 due in the period and completed before it "
            "began; 1 due in the period and not completed by its end") in report
    overdue = report.split("## Overdue reviews", 1)[1].split("\n## ", 1)[0]
    assert "1 open risk whose review was overdue at the period end." in overdue
    assert [line.split(" | ")[0] for line in overdue.splitlines() if line.startswith("| RISK-")] == ["| RISK-3"]
    assert "3 risks, 3 of them not closed" in report and "Omar Owens (U0OWNER)" in report


def test_the_sign_off_after_the_quarter_is_in_its_bundle_with_the_file_signed(quarter):
    (signed,) = quarter.rows("risk_signoffs.csv")
    assert (signed["by_id"], signed["by_name"], signed["via"], signed["file_sha256_matches"]) == (
        "U0ADMIN", "Ada Admin", "slack", "true")
    assert signed["signed_at"].startswith("2026-04-07")
    import hashlib

    assert hashlib.sha256(quarter.bundle.read(signed["report_file"])).hexdigest() == signed["report_sha256"]


def test_reviews_actions_and_links_say_what_was_decided(quarter):
    pirs = quarter.by("pirs.csv", "incident_ref")
    assert pirs["INC-3"]["status"] == "not required (optional at this severity)"
    assert pirs["INC-3"]["required_by_policy"] == "false" and pirs["INC-1"]["required_by_policy"] == "true"
    acts = quarter.by("action_items.csv", "action_ref")
    assert (acts["ACT-2"]["status"], acts["ACT-2"]["cancelled_reason"]) == ("cancelled", CANCELLED)
    assert acts["ACT-1"]["cancelled_reason"] == ""
    register = quarter.by("risk_register_2026-03-31.csv", "risk_ref")
    assert register["RISK-2"]["linked_incident_refs"] == "INC-1"
    linked = [row for row in quarter.rows("audit_log.csv") if row["stream"] == "risk:2" and row["kind"] == "risk.incident_linked"]
    assert [row["summary"] for row in linked] == ["linked incident INC-1 (linked incidents (none) → INC-1)"]


# ---- the packets ------------------------------------------------------------------------------------

def _text_of(html: str) -> str:
    """The HTML's text with tags dropped and white space folded, to read it as a person does."""
    import html as entities

    return " ".join(entities.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_packets_show_the_override_the_decision_the_link_and_the_cancelled_action(quarter):
    html = _text_of(quarter.text("incidents/INC-1/INC-1.html"))
    packet = quarter.json("incidents/INC-1/INC-1.json")
    assert "Closed with items open Database failover: step “Check replica lag” is open" in html
    assert f"Override by Dana Kim (U0LEAD) at 2026-01-13 09:00:00 UTC: {OVERRIDE}" in html
    assert f"not reportable (decided: {NOT_REPORTABLE}) by Dana Kim (U0LEAD)" in html
    assert "Linked risks RISK-2 Vendor outage (owner Omar Owens (U0OWNER)" in html
    assert "Declared 2026-01-12 09:00:00 UTC by Sam Lee (U0DECL)" in html
    assert "ACT-2: Load test the pool config" in html and f"cancelled: {CANCELLED}" in html
    assert [a["cancelled_reason"] for a in packet["actions"]] == [None, CANCELLED]
    assert packet["linked_risks"][0]["key"] == "RISK-2"
    assert "Status not required (optional at this severity)" in _text_of(quarter.text("incidents/INC-3/INC-3.html"))
    assert quarter.json("incidents/INC-3/INC-3.json")["post_incident_review"]["status"] == (
        "not required (optional at this severity)")


def test_the_single_file_packet_says_the_same(quarter):
    """`vigil export timeline INC-<n> --format md`, the packet handed out on its own."""
    from vigil_ir.exports.timeline import render_timeline

    with _at(EXPORTED_AT), quarter.app.db.session() as s:
        md = render_timeline(s, queries.by_key(s, "INC-1"), "md")
        three = render_timeline(s, queries.by_key(s, "INC-3"), "md")
    assert f"Override by Dana Kim (U0LEAD) at 2026-01-13 09:00:00 UTC: {OVERRIDE}" in md
    assert f"not reportable (decided: {NOT_REPORTABLE}) by Dana Kim (U0LEAD)" in md
    assert "| Linked risks | RISK-2 Vendor outage (owner Omar Owens (U0OWNER)" in md
    assert f"| cancelled: {CANCELLED} |" in md
    assert "| Status | not required (optional at this severity) |" in three


# ---- the dashboard ----------------------------------------------------------------------------------

def _signed_in(quarter):
    app = quarter.app
    with _at(EXPORTED_AT), app.db.session() as s:
        secret = tokens.create(s, name="Auditor", expires_at=EXPORTED_AT + timedelta(days=1), actor="cli:test").secret
    client = app.client
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    with _at(EXPORTED_AT):
        assert client.post("/login", data={"csrf": csrf, "token": secret, "next": "/"}).status_code == 200
    return client


def test_the_dashboard_shows_the_same_truth(quarter):
    client = _signed_in(quarter)
    with _at(EXPORTED_AT):
        one = client.get("/incidents/INC-1").text
        three = client.get("/incidents/INC-3").text
        log = client.get("/reviews?from=2026-01-01&to=2026-03-31").text
        register = client.get("/risks").text
        insights = _text_of(client.get("/insights?from=2026-01-01&to=2026-03-31").text)
        directory = re.findall(r'<tr class="person-row">(.*?)</tr>', client.get("/people").text, re.S)
    assert "Closed with items open" in one and OVERRIDE in one
    assert f"not reportable (decided: {NOT_REPORTABLE}) by Dana Kim (U0LEAD)" in one
    assert "RISK-2 Vendor outage" in one and "Sam Lee (U0DECL)" in one
    assert f"cancelled: {CANCELLED}" in one
    assert "not required (optional at this severity)" in three
    rows = re.findall(r'<tr class="review-row">(.*?)</tr>', log, re.S)
    assert len(rows) == 3
    assert "due in the period" in rows[0] and "2025-12-28" in rows[0] and "2 reminders" in rows[0]
    assert "19 days late" in rows[1]
    assert "overdue" in rows[2]
    assert '<a href="/incidents/INC-1">INC-1</a>' in register and "Omar Owens (U0OWNER)" in register
    # The program's figures for the quarter: the cadence control, the optional review, the cancelled
    # action and the decided clock, as the bundle's files have them.
    assert "3 updates fell due and were settled: 1 on time, 1 late, 1 missed" in insights
    assert "State Reviews not required 1 pending 2" in insights
    assert "cancelled 1" in insights and "1 decided: not reportable" in insights
    # The directory: the rename and the deactivation with their times, and the roles held now.
    people = {re.search(r"\((U0[A-Z0-9]+)\)", row).group(1): _text_of(row) for row in directory}
    assert people["U0LEAD"].startswith("Dana Park (U0LEAD) dana@example.com Head of incident response active "
                                       "commander (through S0CMD)")
    assert "2026-02-16T09:00:00.000000Z real_name: 'Dana Kim' → 'Dana Park'" in people["U0LEAD"]
    assert "first seen as Dana Kim" in people["U0LEAD"]
    assert "deactivated" in people["U0DECL"] and "deactivated: False → True" in people["U0DECL"]
    assert "admin" in people["U0NEWADMIN"] and "commander (through S0CMD)" in people["U0OWNER"]


USER_ID = re.compile(r"\bU0[A-Z0-9]+\b")
# Columns that hold an identifier, not a person: a stream's name (`person:U…`; the summary beside it
# names the person), the outbox's keys and Slack's answer, and a message's text exactly as sent.
IDENTIFIERS = {"stream", "object_ref", "dedupe_key", "result", "text"}


def test_every_column_naming_a_person_has_the_name_beside_it(quarter):
    """People, not ids: wherever a table of the bundle holds a Slack user id, a name column sits beside
    it (`<column>_name`, or the column's plural `…_names`)."""
    bare = set()
    for path in quarter.bundle.namelist():
        if not path.endswith(".csv"):
            continue
        rows = quarter.rows(path)
        columns = rows[0].keys() if rows else ()
        for column in columns:
            if column in IDENTIFIERS or column.endswith(("_name", "_names", "summary", "data", "_in_period")):
                continue
            named = {f"{column}_name", f"{column.removesuffix('_id')}_name", f"{column.removesuffix('s')}_names",
                     "name", "recipient_name"}
            if any(USER_ID.search(row[column] or "") for row in rows) and not named & set(columns):
                bare.add((path, column))
    assert sorted(bare) == [], "\n".join(map(str, sorted(bare)))
    dms = [row for row in quarter.rows("notifications.csv") if row["channel"] == "U0OWNER"]
    assert dms and {row["recipient_name"] for row in dms} == {"Omar Owens"}

