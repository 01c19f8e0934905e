"""The exercise register (CC7.5): `vigil export exercises`, and the register in the evidence bundle,
checked by `vigil verify --bundle` and the bundle's own verify.py against the exercises' event log."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import PLAYBOOK_FIXTURES
from tests.test_bundle import at, declare, export, manifest_of, read, seed, step, table
from tests.test_bundle_claims import assert_broken, both, edited_table, forge
from vigil_ir.cli import main
from vigil_ir.followup import actions
from vigil_ir.incidents import queries, service
from vigil_ir.people import Profile, record_profile
from vigil_ir.playbooks import runner
from vigil_ir.playbooks.loader import load_file

SCENARIO = "Ransomware encrypts the file server; the GDPR 72-hour clock starts"
Q1 = ("--from", "2025-01-01", "--to", "2025-03-31")


def drill(db, day: date, title: str, kind: str, *, close: bool = True) -> str:
    """An exercise run through the domain functions: roles, a playbook with a step done and one skipped,
    a close with findings and a follow-up action."""
    key = declare(db, day, title=title, severity="sev2", exercise=kind, scenario=SCENARIO).key
    step(db, day, 1, key, lambda s, i: service.assign_role(s, incident=i, actor="U0FACIL", role="lead", user="U0LEAD"))
    step(db, day, 2, key, lambda s, i: service.assign_role(s, incident=i, actor="U0LEAD", role="scribe", user="U0SCRIBE"))
    run = step(db, day, 3, key, lambda s, i: runner.attach(s, incident=i, actor="U0LEAD",
                                                           file=load_file(PLAYBOOK_FIXTURES / "db-failover.yaml")))
    with at(day, 4), db.session() as s:
        first, second = runner.steps_for(s, run)[:2]
        incident = queries.by_key(s, key)
        runner.complete_step(s, incident=incident, run=run, step=first, actor="U0LEAD", evidence="Summary posted")
        runner.skip_step(s, incident=incident, run=run, step=second, actor="U0LEAD", reason="Not part of the drill")
    if close:
        step(db, day, 30, key, lambda s, i: service.resolve(s, incident=i, actor="U0LEAD"))
        step(db, day, 40, key, lambda s, i: actions.create(
            s, actor="U0LEAD", description="Restore test of the file server", owner="U0OWNER", incident=i))
        step(db, day, 50, key, lambda s, i: service.close(
            s, incident=i, actor="U0LEAD", admins=frozenset(), customer_impact="None: an exercise",
            root_cause="Backups untested", lessons_learned="Nobody knew who calls the regulator"))
    return key


@pytest.fixture
def quarter(db):
    """The bundle tests' quarter, with EX-1 (tabletop) held in it and EX-2 after it."""
    seed(db)
    with db.session() as s:
        record_profile(s, user_id="U0LEAD", profile=Profile(real_name="Dana Kim", email="dk@example.com"))
    assert drill(db, date(2025, 2, 10), "Ransomware tabletop", "tabletop") == "EX-1"
    assert drill(db, date(2025, 4, 7), "Failover game day", "game_day", close=False) == "EX-2"
    return db


def test_export_exercises_lists_the_register_of_the_period(quarter, tmp_path):
    runner = CliRunner()
    out = tmp_path / "exercises.json"
    made = runner.invoke(main, ["export", "exercises", *Q1, "--format", "json", "-o", str(out)], obj={"database": quarter})
    assert made.exit_code == 0, made.output
    (row,) = json.loads(out.read_text())
    assert row["exercise_ref"] == "EX-1" and row["held_at"] == "2025-02-10T09:00:00.000000Z"
    assert (row["kind"], row["scenario"], row["title"]) == ("tabletop", SCENARIO, "Ransomware tabletop")
    assert row["participants"] == "U0DECL U0FACIL U0LEAD U0SCRIBE"
    assert row["participant_names"].split("; ")[2] == "Dana Kim (U0LEAD)"
    assert row["lead"] == "U0LEAD" and row["lead_name"] == "Dana Kim"
    assert row["playbooks"].startswith("db-failover v2.1.0 sha256:") and ";" not in row["playbooks"]
    assert (row["steps_done"], row["steps_skipped"], row["steps_open"]) == (1, 1, 3)  # the sev1 step does not apply
    assert (row["close_summary"], row["root_cause"], row["findings"]) == (
        "None: an exercise", "Backups untested", "Nobody knew who calls the regulator")
    assert row["actions_raised"] == "ACT-2" and row["status"] == "closed"
    csv_text = runner.invoke(main, ["export", "exercises", *Q1], obj={"database": quarter}).output
    header, first = list(csv.reader(io.StringIO(csv_text)))[:2]
    assert header[:3] == ["exercise_ref", "held_at", "kind"] and first[0] == "EX-1"
    timeline = runner.invoke(main, ["export", "timeline", "EX-1", "--format", "md"], obj={"database": quarter})
    assert timeline.exit_code == 0 and "| Exercise | Tabletop exercise, not a real incident" in timeline.output
    # The incident population of the same period has no exercise in it.
    population = runner.invoke(main, ["export", "incidents", *Q1, "--format", "json"], obj={"database": quarter}).output
    assert [r["key"] for r in json.loads(population)] == ["INC-2", "INC-3", "INC-5"]


@pytest.mark.parametrize("args, message", [
    (["--from", "2025-13-01", "--to", "2025-03-31"], "'2025-13-01' is not a date"),
    (["--from", "2025-04-01", "--to", "2025-03-31"], "before"),
    ([*Q1, "--format", "xml"], "'xml' is not one of"),
    (["--to", "2025-03-31"], "--from"),
])
def test_export_exercises_refuses_bad_arguments_and_writes_nothing(quarter, tmp_path, args, message):
    out = tmp_path / "never.csv"
    result = CliRunner().invoke(main, ["export", "exercises", *args, "-o", str(out)], obj={"database": quarter})
    assert result.exit_code != 0 and message in result.output, result.output
    assert not out.exists()


def test_the_bundle_carries_the_register_and_both_checkers_pass_it(quarter, tmp_path):
    bundle = export(quarter, tmp_path)
    rows, csv_rows = table(bundle, "exercises")
    assert [row["exercise_ref"] for row in rows] == ["EX-1"] and csv_rows[1][0] == "EX-1"
    events, _ = table(bundle, "exercise_events")
    assert {event["stream"] for event in events} == {"exercise:1"} and events[0]["seq"] == 1
    assert [row["key"] for row in table(bundle, "incidents")[0]] == ["INC-2", "INC-3", "INC-5"]
    assert "exercise:1" not in {event["stream"] for event in table(bundle, "incident_events")[0]}
    listed = {entry["path"]: entry for entry in manifest_of(bundle)["files"]}
    assert listed["exercises.csv"]["rows"] == 1 and listed["exercises.json"]["section"] == "CC7.5"
    assert [s["stream"] for s in manifest_of(bundle)["event_log"]["segments"]["exercise_events.json"]] == ["exercise:1"]
    index = json.loads(read(bundle, "criteria_index.json"))
    assert {("CC7.5", "exercises.csv"), ("A.5.30", "exercises.csv")} <= {(r["criterion"], r["file"]) for r in index}
    review = read(bundle, "incident_review/report.md").decode()
    assert "1 exercise held in the period (1 tabletop exercise)" in review
    code, output, plain_code, plain_output = both(bundle, tmp_path, bundle)
    assert code == 0 and plain_code == 0, (output, plain_output)


def test_an_edited_register_csv_is_caught_by_both_checkers(quarter, tmp_path):
    bundle = export(quarter, tmp_path)
    text = read(bundle, "exercises.csv").decode("utf-8-sig")
    forged = forge(bundle, tmp_path / "f.zip", files={
        "exercises.csv": ("\ufeff" + text.replace("Nobody knew who calls the regulator", "All went well")).encode()})
    assert_broken(bundle, tmp_path, forged,
                  "exercises.csv: row 1 (EX-1), column findings: 'All went well' differs from its JSON twin "
                  "(which renders as 'Nobody knew who calls the regulator')")


def test_a_register_edited_in_both_twins_is_caught_by_its_events(quarter, tmp_path):
    bundle = export(quarter, tmp_path)
    files = edited_table(bundle, "exercises", {"exercise_ref": "EX-1"},
                         {"steps_skipped": 0, "participants": "U0LEAD", "kind": "game_day"})
    forged = forge(bundle, tmp_path / "f.zip", files=files)
    assert_broken(bundle, tmp_path, forged,
                  "exercises.json: EX-1 (row 1), column kind: 'game_day'; its events in exercise_events.json say 'tabletop'",
                  "exercises.json: EX-1 (row 1), column steps_skipped: 0; its events in exercise_events.json say 1",
                  "exercises.json: EX-1 (row 1), column participants: 'U0LEAD'; its events in exercise_events.json "
                  "say 'U0DECL U0FACIL U0LEAD U0SCRIBE'")


def test_an_action_of_the_exercise_left_out_of_the_register_is_caught(quarter, tmp_path):
    bundle = export(quarter, tmp_path)
    forged = forge(bundle, tmp_path / "f.zip",
                   files=edited_table(bundle, "exercises", {"exercise_ref": "EX-1"}, {"actions_raised": None}))
    assert_broken(bundle, tmp_path, forged,
                  "exercises.json: EX-1: action_items.json lists ACT-2 as raised by it; the register does not")
