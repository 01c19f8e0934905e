"""The evidence bundle: contents and manifest for a seeded period, CSV/JSON rules, sequence gaps, the export event."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text
from sqlmodel import select

from vigil_ir import __version__, clock
from vigil_ir.config import Settings, load_settings
from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.eventlog.verify import verify_database
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.followup import actions, pir
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents import queries, service
from vigil_ir.outbox.service import enqueue
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.loader import load_file
from vigil_ir.exports import risks as risk_exports
from vigil_ir.risks import register_asof, reviews
from vigil_ir.risks.models import RiskReview
from vigil_ir.signing.service import signer
from tests.conftest import PLAYBOOK_FIXTURES
from tests.risk_fixtures import OWNER, make_risk

START, END = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 4, 1, tzinfo=timezone.utc)
EXPORTED_AT = datetime(2025, 4, 10, 12, 0, tzinfo=timezone.utc)
INJECTION = '=HYPERLINK("http://evil.example","click")'


def at(day: date | datetime, minutes: int = 0):
    moment = day if isinstance(day, datetime) else datetime.combine(day, datetime.min.time(), timezone.utc)
    return clock.frozen(moment + timedelta(hours=9, minutes=minutes))


def declare(db, day, title="Checkout API returns 500s", **kwargs):
    with at(day), db.session() as s:
        values = {"severity": "sev3", "type": "availability", **kwargs}
        return service.declare(s, actor="U0DECL", title=title, **values)


def step(db, day, minutes, key, change):
    with at(day, minutes), db.session() as s:
        return change(s, queries.by_key(s, key))


def seed(db) -> None:
    """A quarter (Q1 2025) with incidents before, in and after it, a key gap, risks, PIR, actions, a notification;
    and the installation's signing key, created (on first use) before the quarter."""
    with at(date(2024, 12, 1)):
        signer(db, load_settings(), actor="cli:setup")
    declare(db, date(2024, 12, 30), title="Old incident")                                   # INC-1, before
    step(db, date(2025, 1, 2), 0, "INC-1", lambda s, i: service.add_note(s, incident=i, actor="U0A", text="late"))
    two = date(2025, 1, 10)
    declare(db, two, title=INJECTION, severity="sev2", type="security")                      # INC-2
    step(db, two, 1, "INC-2", lambda s, i: service.assign_role(s, incident=i, actor="U0DECL", role="lead", user="U0LEAD"))
    run = step(db, two, 2, "INC-2", lambda s, i: runner.attach(
        s, incident=i, actor="U0LEAD", file=load_file(PLAYBOOK_FIXTURES / "generic.yaml")))
    with at(two, 3), db.session() as s:
        first = runner.steps_for(s, run)[0]
        runner.complete_step(s, incident=queries.by_key(s, "INC-2"), run=run, step=first, actor="U0LEAD",
                             evidence="Summary posted")
    step(db, two, 4, "INC-2", lambda s, i: service.add_note(s, incident=i, actor="U0LEAD", text="=1+2 @SUM(A1)"))
    step(db, two, 30, "INC-2", lambda s, i: service.resolve(s, incident=i, actor="U0LEAD"))
    policy = Policy.from_settings(Settings(_env_file=None))
    step(db, two, 31, "INC-2", lambda s, i: pir.schedule(s, incident=i, policy=policy))
    step(db, two + timedelta(days=2), 0, "INC-2", lambda s, i: pir.complete(
        s, incident=i, actor="U0LEAD", policy=policy, held_at=datetime(2025, 1, 12, 9, tzinfo=timezone.utc),
        attendees=["U0LEAD", "U0DECL"], plan_change_needed=False,
        values={"summary": "Bad deploy", "root_cause": "Config drift", "went_well": "Fast page"}))
    step(db, two + timedelta(days=2), 5, "INC-2", lambda s, i: actions.create(
        s, actor="U0LEAD", description="-Add a canary", owner="U0OWNER", due_on=date(2025, 2, 1), incident=i))
    step(db, two + timedelta(days=3), 0, "INC-2", lambda s, i: service.close(
        s, incident=i, actor="U0LEAD", admins=frozenset(), customer_impact="@channel 20 min errors",
        root_cause="Config drift", lessons_learned="Canary"))
    declare(db, date(2025, 2, 1), title="Disk filling up")                                   # INC-3, open
    with db.engine.begin() as c:  # a number issued outside Vigil's domain functions: INC-4 never exists
        c.execute(text("UPDATE key_counter SET last = last + 1 WHERE name = 'incident'"))
    declare(db, date(2025, 3, 1), title="Queue backlog")                                     # INC-5
    declare(db, date(2025, 4, 5), title="After the quarter")                                 # INC-6, after
    with at(date(2025, 1, 5)):
        risk = make_risk(db)                                                                  # RISK-1
    with at(date(2025, 2, 3)), db.session() as s:
        review = s.exec(select(RiskReview).where(RiskReview.risk_id == risk.id)).first()
        reviews.complete(s, risk=s.get(type(risk), risk.id), review=review, actor=OWNER, approvers=frozenset(),
                         given={"outcome": "no_change", "rationale": "Encryption still on every laptop."})
    with at(date(2025, 4, 6)):
        make_risk(db, title="Vendor outage")                                                  # RISK-2, after
    with at(date(2025, 3, 2)), db.session() as s:
        enqueue(s, kind="slack.post", subject="incident:5", payload={"channel": "C0FEED", "text": "+INC-5 declared"})


def export(db, tmp_path: Path, name="evidence.zip", **kwargs) -> Path:
    with clock.frozen(EXPORTED_AT):
        export_bundle(db, start=kwargs.pop("start", START), end=kwargs.pop("end", END), output=tmp_path / name,
                      actor=kwargs.pop("actor", "cli:auditor"), **kwargs)
    return tmp_path / name


def read(bundle: Path, name: str) -> bytes:
    with zipfile.ZipFile(bundle) as archive:
        return archive.read(name)


def manifest_of(bundle: Path) -> dict:
    return json.loads(read(bundle, "manifest.json"))


def table(bundle: Path, name: str) -> tuple[list[dict], list[list[str]]]:
    """(JSON rows, CSV rows including the header) of one table."""
    return json.loads(read(bundle, f"{name}.json")), list(csv.reader(io.StringIO(read(bundle, f"{name}.csv").decode("utf-8-sig"))))


# --- contents and manifest ---------------------------------------------------------------------

def test_bundle_holds_every_section_and_the_manifest_describes_each_file(db, tmp_path):
    seed(db)
    bundle = export(db, tmp_path)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
    packets = {f"incidents/INC-{n}/INC-{n}.{fmt}" for n in (2, 3, 5) for fmt in ("html", "json")}
    tables = {f"{name}.{fmt}" for name in ("incidents", "incident_events", "pirs", "action_items",
                                           "risk_register_2025-03-31", "risk_reviews", "risk_acceptances", "audit_log",
                                           "notifications", "risk_signoffs", "people", "incidents_carried_over",
                                           "incidents_carried_over_events", "pirs_carried_over", "security_incidents",
                                           "update_cadence", "criteria_index", "incident_review_signoffs", "exercises",
                                           "exercise_events",
                                           "chain_heads") for fmt in ("csv", "json")}
    extras = {"incidents/INC-2/INC-2-post-incident-review.md", "policy/config_versions.json",
              "policy/playbook_versions.csv", "policy/playbook_versions.json",
              "policy/playbooks/generic-v1.0.0-b323e8197e20.yaml",
              "risk_assessment/heatmap_2025-03-31.svg", "risk_assessment/report.md", "risk_assessment/report.html",
              "risk_methodology.json", "README.md", "verify.py", "manifest.json", "manifest.sig", "incident_review/report.md",
              "incident_review/report.html"}
    assert names == packets | tables | extras
    manifest = manifest_of(bundle)
    assert manifest["layout"] == 2  # each event once: no Markdown packet, packets name their event-log rows
    assert manifest["period"] == {"start": "2025-01-01T00:00:00.000000Z", "end": "2025-04-01T00:00:00.000000Z",
                                  "end_is_exclusive": True, "time_zone": "UTC"}
    assert manifest["generator"] == {"name": "vigil", "version": __version__}
    assert (manifest["generated_at"], manifest["generated_by"]) == ("2025-04-10T12:00:00.000000Z", "cli:auditor")
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == names - {"manifest.json", "manifest.sig"}  # neither can list itself
    assert [entry["path"] for entry in manifest["files"]] == sorted(listed)
    for path, entry in listed.items():
        data = read(bundle, path)
        assert (entry["sha256"], entry["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data)), path
        assert entry["section"] and entry["description"] and entry["query"], path
    assert listed["incidents.csv"]["rows"] == 3 and "declared_at >= 2025-01-01T00:00:00.000000Z" in \
        listed["incidents.csv"]["query"]
    assert {note["section"] for note in manifest["notes"]} <= {"period", "policy"}  # no configuration recorded here


def test_population_event_log_and_packets_agree(db, tmp_path):
    seed(db)
    bundle = export(db, tmp_path)
    incidents, _ = table(bundle, "incidents")
    assert [row["key"] for row in incidents] == ["INC-2", "INC-3", "INC-5"]
    two = incidents[0]
    assert (two["status"], two["pir_status"], two["action_items_total"], two["action_items_open"]) == \
        ("closed", "completed", 1, 1)
    events, _ = table(bundle, "incident_events")
    with db.session() as s:
        stored = {n: events_for_stream(s, f"incident:{n}") for n in (2, 3, 5)}
    assert [(e["stream"], e["seq"], e["hash"]) for e in events] == \
        [(e.stream, e.stream_seq, e.hash) for n in (2, 3, 5) for e in stored[n]]
    assert two["event_count"] == len(stored[2]) and two["chain_head_hash"] == stored[2][-1].hash
    segments = manifest_of(bundle)["event_log"]["segments"]["incident_events.json"]
    assert segments[0] == {"stream": "incident:2", "first_seq": 1, "last_seq": len(stored[2]),
                           "prev_hash": "0" * 64, "head_hash": stored[2][-1].hash, "events": len(stored[2])}
    packet = json.loads(read(bundle, "incidents/INC-2/INC-2.json"))
    assert packet["integrity"]["head_hash"] == stored[2][-1].hash and packet["integrity"]["verified"]
    # The packet names its events' rows in the event log rather than repeating them.
    assert "events" not in packet and packet["event_log"] == {
        "file": "incident_events.json", "stream": "incident:2", "events": len(stored[2]), "first_seq": 1,
        "last_seq": len(stored[2]), "head_hash": stored[2][-1].hash}
    assert packet["playbooks"][0]["steps"][0]["evidence"] == "Summary posted"
    html = read(bundle, "incidents/INC-2/INC-2.html").decode()
    assert "Generic checklist" in html and INJECTION not in html and "HYPERLINK(&#34;http" in html  # escaped
    assert packet["post_incident_review"]["root_cause"] == "Config drift"
    assert [a["key"] for a in packet["actions"]] == ["ACT-1"]
    assert "Config drift" in read(bundle, "incidents/INC-2/INC-2-post-incident-review.md").decode()
    pirs, _ = table(bundle, "pirs")
    assert [(p["incident_ref"], p["status"]) for p in pirs][0] == ("INC-2", "completed")


def test_audit_trail_has_every_stream_active_in_the_period_as_contiguous_segments(db, tmp_path):
    seed(db)
    bundle = export(db, tmp_path)
    rows, _ = table(bundle, "audit_log")
    streams = sorted({row["stream"] for row in rows})
    # INC-1 was declared before the period but changed in it; INC-6 and RISK-2 come after it. The
    # population's streams are in incident_events whole, so they are not repeated here.
    assert streams == ["action:1", "incident:1", "risk:1"]
    assert all(START <= datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00")) < END for r in rows)
    # Between them the two files hold every event recorded in the period, each once.
    incident_rows, _ = table(bundle, "incident_events")
    in_period = [r for r in incident_rows if START <= datetime.fromisoformat(r["recorded_at"].replace("Z", "+00:00")) < END]
    with db.session() as s:
        recorded = sorted(e.hash for e in s.exec(select(Event).where(Event.recorded_at >= START, Event.recorded_at < END)))
    assert sorted(r["hash"] for r in rows + in_period) == recorded
    one = [r for r in rows if r["stream"] == "incident:1"]
    assert [r["seq"] for r in one] == [2] and one[0]["object_ref"] == "INC-1"
    segment = next(s for s in manifest_of(bundle)["event_log"]["segments"]["audit_log.json"] if s["stream"] == "incident:1")
    assert segment["first_seq"] == 2 and segment["prev_hash"] != "0" * 64


def test_heads_digest_is_the_one_vigil_verify_prints_and_the_export_is_an_event(db, tmp_path):
    seed(db)
    with db.session() as s:
        before = verify_database(s)
    bundle = export(db, tmp_path, actor="U0COMPLIANCE")
    manifest = manifest_of(bundle)
    assert manifest["event_log"]["heads"]["digest"] == before.heads_digest
    assert manifest["event_log"]["heads"]["events"] == before.events
    with db.session() as s:
        (exported,) = s.exec(select(Event).where(Event.kind == "audit.bundle_exported")).all()
        assert verify_database(s).ok
    assert (exported.stream, exported.actor) == ("audit", "U0COMPLIANCE")
    assert exported.data["manifest_sha256"] == hashlib.sha256(read(bundle, "manifest.json")).hexdigest()
    assert exported.data["files"] == len(manifest["files"]) and exported.data["period_end"] == manifest["period"]["end"]


def test_key_ranges_and_gaps_are_reported(db, tmp_path):
    seed(db)
    sequences = {s["prefix"]: s for s in manifest_of(export(db, tmp_path))["sequences"]}
    incidents = sequences["INC-"]
    assert (incidents["first"], incidents["last"], incidents["count"]) == ("INC-2", "INC-5", 3)
    assert (incidents["highest_in_database"], incidents["counter_last"]) == ("INC-6", 6)
    (gap,) = incidents["gaps"]
    assert (gap["from"], gap["to"], gap["count"]) == ("INC-4", "INC-4", 1) and "no record" in gap["reason"]
    risks = sequences["RISK-"]
    assert (risks["first"], risks["last"], risks["gaps"]) == ("RISK-1", "RISK-1", [])
    assert sequences["ACT-"]["first"] == "ACT-1"


def test_a_number_the_counter_issued_after_the_last_record_is_a_gap_at_the_end(db, tmp_path):
    declare(db, date(2025, 1, 3))
    with db.engine.begin() as c:
        c.execute(text("UPDATE key_counter SET last = last + 2 WHERE name = 'incident'"))
    (incidents,) = [s for s in manifest_of(export(db, tmp_path))["sequences"] if s["prefix"] == "INC-"]
    assert [(g["from"], g["to"], g["count"]) for g in incidents["gaps"]] == [("INC-2", "INC-3", 2)]


def test_a_rolled_back_declaration_does_not_use_up_a_number(db, tmp_path):
    declare(db, date(2025, 1, 3))
    try:
        with at(date(2025, 1, 4)), db.session() as s:
            service.declare(s, actor="U0DECL", title="Half done", severity="sev3", type="other")
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    declare(db, date(2025, 1, 5))
    (incidents,) = [s for s in manifest_of(export(db, tmp_path))["sequences"] if s["prefix"] == "INC-"]
    assert (incidents["last"], incidents["gaps"]) == ("INC-2", [])


def test_register_at_period_end_and_review_log(db, tmp_path):
    seed(db)
    bundle = export(db, tmp_path)
    register, _ = table(bundle, "risk_register_2025-03-31")
    with db.session() as s:
        assert register == register_asof.register(s, date(2025, 3, 31))
    assert [row["risk_ref"] for row in register] == ["RISK-1"]
    log, _ = table(bundle, "risk_reviews")
    with db.session() as s:  # the bundle streams these rows; they must be the stand-alone export's
        assert log == risk_exports.review_rows(s, START, END)
    assert [(r["risk_ref"], r["status"], r["outcome"]) for r in log][0] == ("RISK-1", "completed", "no_change")
    assert b"<svg" in read(bundle, "risk_assessment/heatmap_2025-03-31.svg")


# --- CSV and JSON rules ------------------------------------------------------------------------

def test_csv_has_a_bom_one_header_the_json_columns_and_neutralised_formulas(db, tmp_path):
    seed(db)
    bundle = export(db, tmp_path)
    for name in ("incidents", "incident_events", "pirs", "action_items", "audit_log", "notifications", "chain_heads"):
        raw = read(bundle, f"{name}.csv")
        assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1, name
        rows, lines = table(bundle, name)
        assert len(lines) == len(rows) + 1, name
        if rows:
            assert lines[0] == list(rows[0]), name  # same columns, same order
    incidents, lines = table(bundle, "incidents")
    assert incidents[0]["title"] == INJECTION and lines[1][1] == "'" + INJECTION
    assert lines[1][lines[0].index("customer_impact")] == "'@channel 20 min errors"
    actions_rows, action_lines = table(bundle, "action_items")
    assert action_lines[1][action_lines[0].index("description")] == "'-Add a canary"
    notifications, note_lines = table(bundle, "notifications")
    assert notifications[0]["text"] == "+INC-5 declared" and note_lines[1][note_lines[0].index("text")] == "'+INC-5 declared"


def test_times_are_utc_iso_with_z_and_json_is_one_row_per_line(db, tmp_path):
    seed(db)
    bundle = export(db, tmp_path)
    raw = read(bundle, "incident_events.json").decode()
    lines = raw.splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == len(json.loads(raw)) + 2
    for row in json.loads(raw):
        assert row["recorded_at"].endswith("Z") and row["occurred_at"].endswith("Z")
    empty = json.loads(read(bundle, "incidents.json"))[1]
    assert empty["declared_at"] == "2025-02-01T09:00:00.000000Z"


def test_an_empty_period_gives_empty_tables_and_a_valid_bundle(db, tmp_path):
    bundle = export(db, tmp_path)
    assert json.loads(read(bundle, "incidents.json")) == []
    assert read(bundle, "incidents.csv").decode("utf-8-sig").count("\r\n") == 1
    incidents = manifest_of(bundle)["sequences"][0]
    assert (incidents["count"], incidents["first"], incidents["gaps"]) == (0, None, [])


def test_a_period_still_running_is_noted(db, tmp_path):
    with clock.frozen(datetime(2025, 3, 15, tzinfo=timezone.utc)):
        export_bundle(db, start=START, end=END, output=tmp_path / "q1.zip", actor="cli:x")
    notes = {note["section"]: note for note in manifest_of(tmp_path / "q1.zip")["notes"]}
    assert notes["period"]["status"] == "open"


def test_the_bundle_is_one_snapshot_even_if_events_are_appended_while_it_is_written(db, tmp_path, monkeypatch):
    from vigil_ir.exports.bundle import actions as bundle_actions
    from vigil_ir.exports.bundle.verification import verify_bundle

    seed(db)
    with db.session() as s:
        before = verify_database(s).heads_digest
    original = bundle_actions.write

    def write_then_interfere(ctx):
        with at(date(2025, 3, 20)), db.session() as s:  # another process changes INC-3 mid-export
            service.add_note(s, incident=queries.by_key(s, "INC-3"), actor="U0LATE", text="written during export")
        original(ctx)

    monkeypatch.setattr(bundle_actions, "write", write_then_interfere)
    bundle = export(db, tmp_path)
    assert verify_bundle(bundle).ok
    assert manifest_of(bundle)["event_log"]["heads"]["digest"] == before
    rows, _ = table(bundle, "audit_log")
    assert not any(row["actor"] == "U0LATE" for row in rows)


def test_the_register_folded_in_pages_matches_the_live_register(db):
    seed(db)
    with db.session() as s:
        folded = register_asof.states_as_of(s, datetime(2100, 1, 1, tzinfo=timezone.utc))
        assert folded == register_asof.live_states(s)
        assert len(folded) == 2
