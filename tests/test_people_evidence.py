"""People in the evidence: a seeded quarter through signed Slack requests and the domain functions,
with a person renamed and one deactivated after they acted, and a sign-off in Slack after the quarter.

Known truth: Dana Kim (U0LEAD) led INC-1 in January and was renamed Dana Park in February; Sam Lee
(U0DECL) declared it and was deactivated in February; Ada Admin (U0ADMIN) signed the quarter off in
April. Every file must show the name each had when they acted, and the directory the history.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timedelta, timezone

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.exports.bundle.verification import verify_bundle
from vigil_ir.incidents import queries, service
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.risks import signoff
from vigil_ir.risks.signed_reports import SignedReport
from tests import slack_requests
from tests.risk_fixtures import make_risk

JAN = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
FEB = datetime(2026, 2, 16, 9, 0, tzinfo=timezone.utc)
APRIL = datetime(2026, 4, 7, 10, 0, tzinfo=timezone.utc)
Q1 = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 4, 1, tzinfo=timezone.utc))


def _date(value: str) -> dict:
    return {"type": "datepicker", "selected_date": value}


def _sign_off_in_slack(vigil, *, user="U0ADMIN", first="2026-01-01", last="2026-03-31", view_id=None):
    assert vigil.command("sign-off", user=user, command="/risk").status_code == 200
    view = vigil.last_view("risk_signoff")
    return vigil.submit(view, {"period_from": _date(first), "period_to": _date(last),
                               "role": slack_requests.input_value("plain_text_input", "CFO for management"),
                               "comment": slack_requests.input_value("plain_text_input", "Reviewed with the board")},
                        user=user, view_id=view_id)


def _seed_quarter(vigil) -> None:
    fake = vigil.fake
    fake.set_user("U0DECL", real_name="Sam Lee", email="sam@example.com", title="SRE")
    fake.set_user("U0LEAD", real_name="Dana Kim", email="dana@example.com", title="Incident commander")
    fake.set_user("U0ADMIN", real_name="Ada Admin", email="ada@example.com", title="CFO")
    with clock.frozen(JAN):
        vigil.declare("Checkout API returns 500s", user="U0DECL")
        with vigil.db.session() as s:
            channel = queries.by_key(s, "INC-1").channel_id
        assert vigil.command("lead <@U0LEAD|dana>", user="U0DECL", channel=channel).status_code == 200
    with clock.frozen(JAN + timedelta(minutes=10)):
        assert vigil.command("note rolled back the deploy", user="U0LEAD", channel=channel).status_code == 200
        with vigil.db.session() as s:
            service.resolve(s, incident=queries.by_key(s, "INC-1"), actor="U0LEAD")
        make_risk(vigil.db, owner="U0LEAD", actor="U0LEAD")
        vigil.sweep(JAN + timedelta(minutes=10))
        vigil.deliver()
    # February: Slack now says Dana is Dana Park and Sam has left; the daily refresh records both.
    fake.set_user("U0LEAD", real_name="Dana Park", email="dana@example.com", title="Head of incident response")
    fake.set_user("U0DECL", real_name="Sam Lee", email="sam@example.com", title="SRE", deleted=True)
    with clock.frozen(FEB):
        vigil.sweep(FEB)
        vigil.deliver()


def _rows(archive: zipfile.ZipFile, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8-sig"))))


def test_a_quarter_names_people_as_they_were_in_every_file_and_the_signed_report_is_there(vigil, tmp_path):
    _seed_quarter(vigil)
    with clock.frozen(APRIL):  # the sign-off comes a week after the quarter ended
        assert _sign_off_in_slack(vigil).status_code == 200
        vigil.deliver()
    with vigil.db.session() as s:
        (done,) = signoff.sign_offs(s, *Q1)
        stored = s.get(SignedReport, done.report_id)
        assert (done.by, done.by_name, done.by_email, done.role, done.via) == (
            "U0ADMIN", "Ada Admin", "ada@example.com", "CFO for management", "slack")
        assert hashlib.sha256(bytes(stored.content)).hexdigest() == done.report_sha256
    (upload,) = vigil.fake.ok_calls("files.completeUploadExternal")
    assert upload.params["channel_id"] == "DU0ADMIN"
    assert [f for f in vigil.fake.uploads.values()] == [bytes(stored.content)]  # the signed file was sent

    with clock.frozen(APRIL + timedelta(days=1)):
        export_bundle(vigil.db, start=Q1[0], end=Q1[1], output=tmp_path / "q1.zip", actor="cli:auditor",
                      settings=vigil.runtime.settings)
    assert verify_bundle(tmp_path / "q1.zip").ok
    with zipfile.ZipFile(tmp_path / "q1.zip") as archive:
        incidents = _rows(archive, "incidents.csv")
        events = _rows(archive, "incident_events.csv")
        people = {row["user_id"]: row for row in _rows(archive, "people.csv")}
        register = _rows(archive, "risk_register_2026-03-31.csv")
        signoffs = _rows(archive, "risk_signoffs.csv")
        packet_html = archive.read("incidents/INC-1/INC-1.html").decode()
        packet = json.loads(archive.read("incidents/INC-1/INC-1.json"))
        report_md = archive.read("risk_assessment/report.md").decode()
        manifest = json.loads(archive.read("manifest.json"))
        signed_path = signoffs[0]["report_file"]
        signed_bytes = archive.read(signed_path)

    # Population: id and name column pairs; the declarer as named when declaring.
    (inc,) = incidents
    assert (inc["declared_by"], inc["declared_by_name"]) == ("U0DECL", "Sam Lee")
    assert (inc["lead"], inc["lead_name"]) == ("U0LEAD", "Dana Park")  # the current lead, named as at generation
    # The event log: Dana's January acts carry the name she had in January.
    note = next(row for row in events if row["kind"] == "incident.note_added")
    assert (note["actor"], note["actor_name"]) == ("U0LEAD", "Dana Kim")
    lead = next(row for row in events if row["kind"] == "incident.role_assigned")
    assert lead["summary"] == "assigned the lead role to Dana Kim (U0LEAD) (previously unassigned)"
    assert (lead["actor"], lead["actor_name"]) == ("U0DECL", "Sam Lee")
    # Packets: "Name (U…)" in HTML (the timeline's actors as they were named then); name fields beside
    # ids in JSON, whose events are the event log's rows (named above).
    assert "Dana Kim (U0LEAD)" in packet_html and "Sam Lee (U0DECL)" in packet_html
    assert '<th scope="row">Lead</th><td>Dana Park (U0LEAD)</td>' in packet_html
    assert packet["incident"]["declared_by_name"] == "Sam Lee"
    assert packet["event_log"]["file"] == "incident_events.json" and packet["event_log"]["events"] == len(events)
    # Register at the quarter's end: the owner under the name of then.
    assert (register[0]["owner"], register[0]["owner_name"]) == ("U0LEAD", "Dana Park")
    # The people directory of the period: the rename and the deactivation, e-mails, titles, roles.
    dana, sam, ada = people["U0LEAD"], people["U0DECL"], people["U0ADMIN"]
    assert (dana["name"], dana["email"], dana["title"], dana["status"]) == (
        "Dana Park", "dana@example.com", "Head of incident response", "active")
    assert dana["names_in_period"] == "Dana Kim; Dana Park"
    assert "real_name: 'Dana Kim' → 'Dana Park'" in dana["changes_in_period"]
    assert dana["incidents_led"] == "INC-1" and int(dana["events_as_actor"]) >= 3
    assert (sam["status"], sam["name"]) == ("deactivated", "Sam Lee")
    assert "deactivated: False → True" in sam["changes_in_period"]
    assert ada["roles"] == "admin" and ada["title"] == "CFO"  # signed after the period: still listed
    # The sign-off recorded after the quarter is in the quarter's bundle, with the file it signed.
    (row,) = signoffs
    assert (row["by_id"], row["by_name"], row["via"], row["file_sha256_matches"]) == (
        "U0ADMIN", "Ada Admin", "slack", "true")
    assert hashlib.sha256(signed_bytes).hexdigest() == row["report_sha256"] == done.report_sha256
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert listed[signed_path]["sha256"] == done.report_sha256
    assert "Ada Admin (U0ADMIN)" in report_md and done.report_sha256 in report_md


def test_the_dashboard_shows_people_by_name(vigil):
    _seed_quarter(vigil)
    with vigil.db.session() as s:
        secret = tokens.create(s, name="Audit", expires_at=clock.now() + timedelta(days=1), actor="cli:test").secret
    login = vigil.client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', login).group(1)
    assert vigil.client.post("/login", data={"csrf": csrf, "token": secret, "next": "/"}).status_code == 200
    page = vigil.client.get("/incidents/INC-1").text
    assert "Dana Kim (U0LEAD)" in page and "Sam Lee (U0DECL)" in page
    assert "Dana Park (U0LEAD)" in vigil.client.get("/").text  # the list shows the lead as named now
    assert "Dana Park (U0LEAD)" in vigil.client.get("/risks").text


def test_slack_sign_off_is_for_approvers_checks_the_period_and_signs_once(vigil):
    vigil.fake.set_user("U0ADMIN", real_name="Ada Admin", email="ada@example.com")
    refused = vigil.command("sign-off", user="U0NOBODY", command="/risk")
    assert "may sign off the risk assessment" in refused.text
    assert not [c for c in vigil.fake.calls_to("views.open") if c.params["view"]["callback_id"] == "risk_signoff"]
    bad = _sign_off_in_slack(vigil, first="2026-03-31", last="2026-01-01")
    assert bad.json() == {"response_action": "errors",
                          "errors": {"period_to": "The last day must not be before the first day."}}
    with vigil.db.session() as s:
        assert not s.exec(select(OutboxItem).where(OutboxItem.kind == "risk.sign_off")).all()
    assert _sign_off_in_slack(vigil, view_id="V0SAME").status_code == 200
    assert _sign_off_in_slack(vigil, view_id="V0SAME").status_code == 200  # submitted twice
    vigil.deliver()
    vigil.deliver()
    with vigil.db.session() as s:
        assert len(signoff.sign_offs(s, *Q1)) == 1
        assert len(s.exec(select(SignedReport)).all()) == 1
        posted = s.exec(select(Event).where(Event.kind == "risk.signed_report_posted")).one()
        assert posted.data["channel"] == "DU0ADMIN"
    assert len(vigil.fake.ok_calls("files.completeUploadExternal")) == 1


def test_slack_sign_off_by_a_deactivated_person_is_refused_and_says_so(vigil):
    vigil.fake.set_user("U0ADMIN", real_name="Ada Admin", deleted=True)
    assert _sign_off_in_slack(vigil).status_code == 200
    vigil.deliver()
    with vigil.db.session() as s:
        assert signoff.sign_offs(s, *Q1) == [] and not s.exec(select(SignedReport)).all()
    (message,) = [c for c in vigil.fake.calls_to("chat.postMessage") if c.params["channel"] == "U0ADMIN"]
    assert "not recorded" in message.params["text"] and "deactivated" in message.params["text"]


def test_cli_sign_off_by_id_or_email_and_unknown_or_deactivated_people_are_refused(db, tmp_path):
    from click.testing import CliRunner

    from vigil_ir.cli import main
    from vigil_ir.people import Profile, record_profile

    with db.session() as s:
        record_profile(s, user_id="U0CFO", profile=Profile(real_name="Cy Fo", email="cy@example.com", title="CFO"))
        record_profile(s, user_id="U0GONE", profile=Profile(real_name="Gone Person", deactivated=True))
    report_file = tmp_path / "q1.md"
    report_file.write_text("# the report they read\n", encoding="utf-8")
    runner, obj = CliRunner(), {"database": db}
    period = ["risks", "sign-off", "--from", "2026-01-01", "--to", "2026-03-31"]
    for who in ("nobody@example.com", "U0UNKNOWN", "Cy Fo", "U0GONE"):
        result = runner.invoke(main, [*period, "--by", who, "--report", str(report_file)], obj=obj)
        assert result.exit_code != 0 and "Nothing was recorded" in result.output, (who, result.output)
    with db.session() as s:
        assert signoff.sign_offs(s, *Q1) == [] and not s.exec(select(SignedReport)).all()
    by_email = runner.invoke(main, [*period, "--by", "CY@example.com", "--report", str(report_file)], obj=obj)
    by_id = runner.invoke(main, [*period, "--by", "U0CFO", "--role", "CFO"], obj=obj)
    assert by_email.exit_code == 0 and "Cy Fo (U0CFO)" in by_email.output, by_email.output
    assert by_id.exit_code == 0, by_id.output
    with db.session() as s:
        first, second = signoff.sign_offs(s, *Q1)
        kept = s.get(SignedReport, first.report_id)
    assert (first.by, first.by_email, first.report_file) == ("U0CFO", "cy@example.com", "q1.md")
    assert bytes(kept.content) == report_file.read_bytes()
    assert first.report_sha256 == hashlib.sha256(report_file.read_bytes()).hexdigest()
    assert (second.by, second.report_sha256, second.report_id) == ("U0CFO", None, None)


def test_every_recorded_kind_reads_as_a_sentence_not_json(vigil):
    """The events of the seeded quarter (incidents, people, risks, reviews, sign-off) each have a
    sentence derived from their data: no summary falls back to the kind and raw JSON."""
    from vigil_ir.exports.describe import describe

    _seed_quarter(vigil)
    with clock.frozen(APRIL):
        _sign_off_in_slack(vigil)
        vigil.deliver()
    with vigil.db.session() as s:
        events = list(s.exec(select(Event)))
    kinds = {event.kind for event in events}
    assert {"person.first_seen", "person.changed", "risk.created", "risk.review_opened",
            "risk.assessment_signed_off", "incident.role_assigned"} <= kinds
    raw = [(event.kind, describe(event)) for event in events if describe(event).startswith(event.kind + " {")]
    assert raw == []


def test_the_people_lists_scan_of_event_data_fetches_every_text_that_can_name_someone(db):
    """people.csv parses only the data the database says may name a person (bundle.people): every text
    the scan accepts (a mention, a JSON escape, a quoted U… or W… id) must come back from the query,
    on both databases (SQLite's LIKE ignores case, so its filter is a GLOB)."""
    from sqlalchemy import Text, cast, select as core_select

    from vigil_ir.eventlog import append
    from vigil_ir.exports.bundle.people import _QUOTED_ID, _may_name_someone

    values = [{"text": "ask <@U0MENTION> to look"}, {"user": "U0QUOTED1"}, {"members": ["W0GRID2", "x"]},
              {"text": "a bell \u0007 rang"}, {"text": "plain words"}, {"user": "u0lower1"}, {"Upper": "no id"},
              {"text": "Update from Wanda"}, {}]
    with db.session() as s:
        for data in values:
            append(s, stream="audit", kind="test.data", actor="cli:test", data=data)
    with db.read_session() as s:
        stored = cast(Event.data, Text)
        every = [text for (text,) in s.execute(core_select(stored).where(Event.kind == "test.data"))]
        fetched = [text for (text,) in s.execute(core_select(stored).where(Event.kind == "test.data",
                                                                          _may_name_someone(s)))]
    accepted = [text for text in every if "<@" in text or "\\u" in text or _QUOTED_ID.search(text)]
    assert len(accepted) == 4  # the mention, the quoted ids, the escaped bell
    assert set(accepted) <= set(fetched)
    assert len(fetched) < len(every)  # and it leaves texts out: plain words, lower-case ids, no data
