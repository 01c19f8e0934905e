"""Exports: timeline (json/csv/md/html), the incident population and `vigil export`, on a real database."""

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from vigil_ir import clock
from vigil_ir.eventlog import append, events_for_stream
from vigil_ir.eventlog.verify import verify_events
from vigil_ir.exports import csvsafe
from vigil_ir.exports.cli import export
from vigil_ir.exports.describe import describe
from vigil_ir.exports.population import COLUMNS, incident_population, render_population
from vigil_ir.exports.timeline import CSV_COLUMNS, render_timeline, timeline_rows
from vigil_ir.incidents import queries, service

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=timezone.utc)
INJECTIONS = ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1:A2)", "\tx", "\rx"]


def at(minutes: float):
    return clock.frozen(T0 + timedelta(minutes=minutes))


def run_incident(db, *, title="API down", note="checking the load balancer"):
    """A full lifecycle through the service functions, each step at a known minute after T0."""
    with at(0), db.session() as s:
        incident = service.declare(s, actor="U1", title=title, severity="sev3", type="availability",
                                   description="Checkout fails", detected_at=T0 - timedelta(minutes=10))
    steps = [
        (2, lambda s, i: service.attach_channel(s, incident=i, channel_id="C100", channel_name="inc-1-api-down")),
        (5, lambda s, i: service.assign_role(s, incident=i, actor="U1", role="lead", user="U2")),
        (7, lambda s, i: service.add_note(s, incident=i, actor="U2", text=note)),
        (10, lambda s, i: service.set_status(s, incident=i, actor="U2", status="identified")),
        (12, lambda s, i: service.set_severity(s, incident=i, actor="U2", severity="sev1")),
        (20, lambda s, i: service.record_message(
            s, incident=i, actor="U3", channel="C100", ts="1741597500.000100", text="LB pool drained",
            author="U4", permalink="https://example.slack.com/archives/C100/p1741597500000100", via="reaction")),
        (30, lambda s, i: service.post_update(s, incident=i, actor="U2", status="monitoring",
                                              summary="Traffic restored")),
        (50, lambda s, i: service.resolve(s, incident=i, actor="U2")),
        (60, lambda s, i: service.close(s, incident=i, actor="U2", admins=frozenset(),
                                        customer_impact="Checkout down 40 min", root_cause="Bad LB config",
                                        lessons_learned="Canary LB changes", follow_ups=["Add LB alarm", "Runbook"])),
    ]
    for minute, step in steps:
        with at(minute), db.session() as s:
            step(s, queries.by_key(s, incident.key))
            if minute == 7:
                note_id = events_for_stream(s, incident.stream)[-1].id
        if minute == 7:
            with at(8), db.session() as s:
                service.correct_note(s, incident=queries.by_key(s, incident.key), actor="U2",
                                     note_event_id=note_id, text="checking the LB pool")
    return incident.key


def export_timeline(db, key, fmt):
    with at(90), db.session() as s:
        return render_timeline(s, queries.by_key(s, key), fmt)


def parse_csv(text):
    return list(csv.reader(io.StringIO(text)))


# --- timeline ------------------------------------------------------------------------------

def test_json_timeline_matches_the_database_and_verifies(db):
    key = run_incident(db)
    document = json.loads(export_timeline(db, key, "json"))
    with db.session() as s:
        stored = events_for_stream(s, queries.by_key(s, key).stream)
    assert list(document) == ["export", "incident", "milestones", "playbooks", "post_incident_review",
                              "actions", "linked_risks", "events", "integrity"]
    assert [e["hash"] for e in document["events"]] == [e.hash for e in stored]
    for exported, event in zip(document["events"], stored, strict=True):
        assert list(exported) == ["id", "stream", "seq", "occurred_at", "recorded_at", "actor", "actor_name", "kind",
                                  "data", "corrects", "prev_hash", "hash"]
        assert (exported["seq"], exported["actor"], exported["kind"], exported["data"], exported["corrects"],
                exported["prev_hash"]) == (event.stream_seq, event.actor, event.kind, event.data,
                                           event.corrects, event.prev_hash)
        assert exported["occurred_at"] == clock.iso(event.occurred_at)
        assert exported["recorded_at"] == clock.iso(event.recorded_at)
    message = next(e for e in document["events"] if e["kind"] == "incident.message_added")
    assert message["occurred_at"] == "2025-03-10T09:05:00.000100Z"  # the Slack ts, not the record time
    assert message["recorded_at"] == "2025-03-10T09:20:00.000000Z"
    incident = document["incident"]
    assert (incident["key"], incident["severity_initial"], incident["severity_current"], incident["status"],
            incident["lead"], incident["channel_id"]) == (key, "sev3", "sev1", "closed", "U2", "C100")
    assert incident["declared_at"] == "2025-03-10T09:00:00.000000Z"
    assert incident["detected_at"] == "2025-03-10T08:50:00.000000Z"
    milestones = document["milestones"]
    assert (milestones["minutes_to_acknowledge"], milestones["minutes_to_mitigate"],
            milestones["minutes_to_resolve"]) == (5.0, 40.0, 60.0)
    assert milestones["closed_at"] == "2025-03-10T10:00:00.000000Z"
    integrity = document["integrity"]
    assert integrity["verified"] is True and integrity["problem"] is None
    assert (integrity["events"], integrity["head_hash"], integrity["head_seq"]) == (
        len(stored), stored[-1].hash, stored[-1].stream_seq)
    assert integrity["generated_at"] == "2025-03-10T10:30:00.000000Z"
    # The export alone is enough to recompute the chain.
    offline = verify_events([{**e, "stream_seq": e["seq"]} for e in document["events"]])
    assert offline.ok and offline.heads == {stored[0].stream: stored[-1].hash}


def test_integrity_block_reports_tampering_and_a_deleted_tail(db):
    key = run_incident(db)
    with db.engine.begin() as c:
        c.execute(text("UPDATE event SET data = :d WHERE stream = 'incident:1' AND stream_seq = 4"),
                  {"d": '{"text": "nothing to see"}'})
    integrity = json.loads(export_timeline(db, key, "json"))["integrity"]
    assert integrity["verified"] is False and "seq 4: hash mismatch" in integrity["problem"]
    assert "Chain verifies: NO" in export_timeline(db, key, "md")

    with db.engine.begin() as c:
        c.execute(text("UPDATE event SET data = :d WHERE stream = 'incident:1' AND stream_seq = 4"),
                  {"d": '{"text": "checking the load balancer"}'})
        c.execute(text("DELETE FROM event WHERE stream = 'incident:1' AND stream_seq = "
                       "(SELECT MAX(stream_seq) FROM event WHERE stream = 'incident:1')"))
    integrity = json.loads(export_timeline(db, key, "json"))["integrity"]
    assert integrity["verified"] is False and "stream head" in integrity["problem"]


def test_csv_timeline_one_row_per_event(db):
    key = run_incident(db)
    rows = parse_csv(export_timeline(db, key, "csv"))
    assert rows[0] == list(CSV_COLUMNS)
    with db.session() as s:
        stored = events_for_stream(s, queries.by_key(s, key).stream)
        dict_rows = timeline_rows(s, queries.by_key(s, key))
    assert [r[0] for r in rows[1:]] == [str(e.stream_seq) for e in stored]
    assert [r[-1] for r in rows[1:]] == [e.hash for e in stored]
    assert [r["hash"] for r in dict_rows] == [e.hash for e in stored]
    by_kind = {}
    for row in rows[1:]:
        by_kind.setdefault(row[6], row)  # the first event of each kind
    correction = by_kind["incident.note_corrected"]
    note = by_kind["incident.note_added"]
    assert correction[9] == note[1]  # `corrects` holds the corrected event's id
    assert json.loads(correction[8]) == {"text": "checking the LB pool",
                                         "original_text": "checking the load balancer", "corrects_seq": 4}
    assert correction[8] == ('{"corrects_seq":4,"original_text":"checking the load balancer",'
                             '"text":"checking the LB pool"}')
    assert by_kind["incident.status_changed"][7] == "changed status from investigating to identified"


def test_csv_timeline_neutralises_formula_text(db):
    key = run_incident(db)
    with db.session() as s:
        incident = queries.by_key(s, key)
    with db.session() as s:  # a stream event whose actor is hostile text (actors come from payloads)
        append(s, stream=incident.stream, kind="=HYPERLINK(\"x\")", actor="@evil", data={"a": 1})
    rows = parse_csv(export_timeline(db, key, "csv"))
    assert rows[-1][4:7] == ["'@evil", "", "'=HYPERLINK(\"x\")"]  # no name for an actor that is no user id


def test_markdown_and_html_escape_user_text(db):
    title = "<script>alert(1)</script> | pipes"
    key = run_incident(db, title=title, note="a|b\nsecond <b>line</b> *bold*")
    md = export_timeline(db, key, "md")
    html = export_timeline(db, key, "html")
    assert "<script>" not in md and "<b>" not in md
    assert "# INC-1: &lt;script&gt;alert(1)&lt;/script&gt; \\| pipes" in md
    assert "a\\|b<br>second &lt;b&gt;line&lt;/b&gt; \\*bold\\*" in md
    timeline = md.split("## Timeline")[1].split("## Integrity")[0]
    table = [line for line in timeline.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 12  # header, rule, one line per event: no cell broke its row
    assert all(line.endswith(" |") for line in table if not line.startswith("|---"))
    assert "<script>" not in html and "<b>line" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | pipes" in html
    assert "Content-Security-Policy" in html
    for report in (md, html):
        assert "5.0 min to acknowledge (from declaration)" in report
        assert "40.0 min to mitigate (from detection)" in report
        assert "60.0 min to resolve (from detection)" in report
        assert "2025-03-10 09:05:00 UTC" in report  # the message's own time
        with db.session() as s:
            assert events_for_stream(s, "incident:1")[-1].hash in report


def test_describe_each_kind(db):
    key = run_incident(db)
    with db.session() as s:
        events = {e.kind: e for e in events_for_stream(s, queries.by_key(s, key).stream)}
    said = {kind: describe(event) for kind, event in events.items()}
    note_id = events["incident.note_added"].id
    assert said["incident.declared"].startswith('declared INC-1 "API down" (sev3, Availability)')
    assert said["incident.role_assigned"] == "assigned the lead role to U2 (previously unassigned)"
    assert said["incident.severity_changed"] == "changed severity from sev3 to sev1"
    assert said["incident.note_added"] == f'added note #{note_id}: "checking the load balancer"'
    assert said["incident.note_corrected"] == (f'corrected note #{note_id} to "checking the LB pool" '
                                               '(original, still in the log: "checking the load balancer")')
    assert said["incident.message_added"].startswith('added a message by U4 to the timeline: "LB pool drained" (https://')
    assert said["incident.update_posted"] == 'posted an update (status monitoring): "Traffic restored"'
    assert said["incident.channel_created"] == "created channel #inc-1-api-down (C100)"
    assert 'Root cause: "Bad LB config"' in said["incident.closed"]
    assert 'Follow-ups: "Add LB alarm"; "Runbook".' in said["incident.closed"]
    odd = events["incident.closed"].model_copy(update={"kind": "incident.paged", "data": {"to": "U9"}})
    assert describe(odd) == 'incident.paged {"to":"U9"}'


def test_unknown_formats_are_refused(db):
    key = run_incident(db)
    with pytest.raises(ValueError, match="pdf"):
        export_timeline(db, key, "pdf")
    with pytest.raises(ValueError, match="xml"):
        render_population([], "xml")


# --- csv safety ----------------------------------------------------------------------------

def test_csvsafe_neutralises_formulas_and_formats_values():
    rows = [{"text": value, "n": None} for value in INJECTIONS + ["plain", "a=b", "", "'quoted"]]
    parsed = parse_csv(csvsafe.to_csv(["text", "n"], rows))
    assert parsed[0] == ["text", "n"]
    assert [row[0] for row in parsed[1:]] == ["'" + v for v in INJECTIONS] + ["plain", "a=b", "", "'quoted"]
    assert [row[1] for row in parsed[1:]] == [""] * len(rows)
    when = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    assert [csvsafe.cell(v) for v in (True, False, -1.5, 3, when, {"b": 1, "a": "é"})] == [
        "true", "false", "-1.5", "3", "2025-01-02T03:04:05.000006Z", '{"a":"é","b":1}']
    text_csv = csvsafe.to_csv(["a"], [{"a": "x"}])
    assert not text_csv.startswith(csvsafe.BOM) and text_csv.endswith("\r\n")
    assert csvsafe.for_file(csvsafe.for_file(text_csv)) == csvsafe.BOM + text_csv
    with pytest.raises(KeyError):
        csvsafe.to_csv(["missing"], [{"a": 1}])


# --- population ----------------------------------------------------------------------------

def declare_at(db, when, title, **kw):
    with clock.frozen(when), db.session() as s:
        return service.declare(s, actor="U1", title=title, severity="sev2", type="security", **kw).key


def test_population_period_is_half_open_at_utc_day_granularity(db):
    march, april = datetime(2025, 3, 1, tzinfo=timezone.utc), datetime(2025, 4, 1, tzinfo=timezone.utc)
    declare_at(db, march - timedelta(microseconds=1), "before")
    declare_at(db, march, "first instant")
    declare_at(db, april - timedelta(microseconds=1), "last instant")
    declare_at(db, april, "after")
    with db.session() as s:
        rows = incident_population(s, march, april)
    assert [r["title"] for r in rows] == ["first instant", "last instant"]
    assert [r["key"] for r in rows] == ["INC-2", "INC-3"]
    assert all(list(r) == list(COLUMNS) for r in rows)
    # Bounds in another zone mean the same instants.
    plus2 = timezone(timedelta(hours=2))
    with db.session() as s:
        assert len(incident_population(s, march.astimezone(plus2), april.astimezone(plus2))) == 2


def test_population_row_values_and_minutes(db):
    key = run_incident(db, title="=cmd|' /C calc'!A0")
    declare_at(db, T0 + timedelta(days=1), "still open", detected_at=T0 + timedelta(days=1, minutes=-3))
    from vigil_ir.people import Profile, record_profile

    # U1 is renamed after declaring: the population shows the name they had when they declared.
    with clock.frozen(T0 - timedelta(days=1)), db.session() as s:
        record_profile(s, user_id="U1", profile=Profile(real_name="Ann Lee"))
    with clock.frozen(T0 + timedelta(hours=3)), db.session() as s:
        record_profile(s, user_id="U1", profile=Profile(real_name="Ann Lee-Smith"))
    with db.session() as s:
        first, second = incident_population(s, T0 - timedelta(days=1), T0 + timedelta(days=2))
    assert first == {
        "key": key, "title": "=cmd|' /C calc'!A0", "type": "availability", "security": False, "private": False,
        "severity_initial": "sev3", "severity_final": "sev1", "status": "closed",
        "declared_at": "2025-03-10T09:00:00.000000Z", "detected_at": "2025-03-10T08:50:00.000000Z",
        "acknowledged_at": "2025-03-10T09:05:00.000000Z", "mitigated_at": "2025-03-10T09:30:00.000000Z",
        "resolved_at": "2025-03-10T09:50:00.000000Z", "closed_at": "2025-03-10T10:00:00.000000Z",
        "lead": "U2", "lead_name": "name unknown", "declared_by": "U1", "declared_by_name": "Ann Lee",
        "closed_by": "U2", "closed_by_name": "name unknown", "channel_id": "C100",
        "channel_name": "inc-1-api-down", "customer_impact": "Checkout down 40 min", "root_cause": "Bad LB config",
        "cause_category": None,
        "minutes_to_declare": 10.0, "minutes_to_acknowledge": 5.0, "minutes_to_mitigate": 40.0, "minutes_to_resolve": 60.0,
        "closed_with_open_items": None, "close_override_reason": None,
        "alerts": 0, "first_alert_at": None, "pages": 0, "paged_at": None, "page_acknowledged_at": None,
        "minutes_to_page_acknowledge": None}
    assert (second["status"], second["security"], second["acknowledged_at"], second["minutes_to_resolve"]) == (
        "investigating", True, None, None)
    assert (second["declared_by_name"], second["lead_name"]) == ("Ann Lee-Smith", None)  # declared after the rename
    parsed = parse_csv(render_population([first, second], "csv"))
    assert parsed[0] == list(COLUMNS)
    assert parsed[1][1] == "'=cmd|' /C calc'!A0" and parsed[1][3] == "false"
    assert parsed[2][COLUMNS.index("acknowledged_at")] == ""
    as_json = json.loads(render_population([first, second], "json"))
    assert [list(r) for r in as_json] == [list(COLUMNS)] * 2 and as_json[0] == first


# --- CLI -----------------------------------------------------------------------------------

def invoke(db, *args):
    return CliRunner().invoke(export, list(args), obj={"database": db})


@pytest.mark.parametrize("fmt", ["json", "csv", "md", "html"])
def test_cli_timeline_to_stdout(db, fmt):
    run_incident(db)
    result = invoke(db, "timeline", "INC-1", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert not result.stdout.startswith(csvsafe.BOM)
    with db.session() as s:
        head = events_for_stream(s, "incident:1")[-1].hash
    assert head in result.stdout
    if fmt == "json":
        assert json.loads(result.stdout)["integrity"]["verified"] is True


def test_cli_writes_files_with_bom_for_csv(db, tmp_path):
    run_incident(db)
    out = tmp_path / "timeline.csv"
    result = invoke(db, "timeline", "inc-1", "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == f"Wrote INC-1 timeline (12 events) to {out}"
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    assert parse_csv(raw.decode("utf-8-sig"))[0] == list(CSV_COLUMNS)
    out_json = tmp_path / "incidents.json"
    result = invoke(db, "incidents", "--from", "2025-03-10", "--to", "2025-03-10", "--format", "json",
                    "-o", str(out_json))
    assert result.exit_code == 0 and "Wrote 1 incidents" in result.stderr
    assert not out_json.read_bytes().startswith(b"\xef\xbb\xbf")
    assert json.loads(out_json.read_text("utf-8"))[0]["key"] == "INC-1"


def test_cli_incidents_period_includes_the_whole_to_day(db):
    declare_at(db, datetime(2025, 3, 31, 23, 59, 59, tzinfo=timezone.utc), "last evening")
    declare_at(db, datetime(2025, 4, 1, tzinfo=timezone.utc), "next day")
    result = invoke(db, "incidents", "--from", "2025-03-01", "--to", "2025-03-31", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = parse_csv(result.stdout)
    assert rows[0] == list(COLUMNS) and [r[1] for r in rows[1:]] == ["last evening"]
    # A date-time --to is an exclusive end.
    result = invoke(db, "incidents", "--from", "2025-03-01", "--to", "2025-03-31T23:59:59Z")
    assert [r[1] for r in parse_csv(result.stdout)[1:]] == []
    result = invoke(db, "incidents", "--from", "2025-03-31T12:00:00+02:00", "--to", "2025-04-01",
                    "--format", "json")
    assert [r["title"] for r in json.loads(result.stdout)] == ["last evening", "next day"]


@pytest.mark.parametrize("args, message", [
    (["timeline", "INC-99"], "No incident INC-99"),
    (["timeline", "ticket-7"], "'ticket-7' is not an incident key"),
    (["timeline", "INC-1", "--format", "pdf"], "'pdf' is not one of"),
    (["incidents", "--from", "2025-13-01", "--to", "2025-03-31"], "'2025-13-01' is not a date"),
    (["incidents", "--from", "yesterday", "--to", "2025-03-31"], "'yesterday' is not a date"),
    (["incidents", "--from", "2025-04-02", "--to", "2025-04-01"], "--from (2025-04-02T00:00:00.000000Z) must be before"),
    (["incidents", "--from", "2025-04-01", "--to", "2025-04-01", "--format", "md"], "'md' is not one of"),
    (["incidents", "--to", "2025-04-01"], "Missing option '--from'"),
])
def test_cli_errors_name_the_problem(db, args, message):
    run_incident(db)
    result = invoke(db, *args)
    assert result.exit_code != 0
    assert message in result.stderr
    assert result.stdout == ""


def test_cli_opens_the_database_from_settings(db, monkeypatch, tmp_path):
    run_incident(db)
    monkeypatch.setenv("DATABASE_URL", db.url)
    result = CliRunner().invoke(export, ["timeline", "INC-1", "--format", "md"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# INC-1: API down")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = CliRunner().invoke(export, ["incidents", "--from", "2025-01-01", "--to", "2025-01-31"])
    assert result.exit_code == 1 and "has `vigil migrate` been run?" in result.stderr
