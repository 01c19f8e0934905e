"""`vigil export actions`: the E5 action-item columns, CSV and JSON alike, formula-safe, period filter."""

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone

from click.testing import CliRunner

from vigil_ir import clock
from vigil_ir.exports.cli import export
from vigil_ir.followup import actions
from vigil_ir.followup.action_export import COLUMNS
from vigil_ir.incidents import service as incidents

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)
E5 = ["action_ref", "parent_type", "parent_ref", "description", "action_type", "owner", "owner_name", "created_at",
      "due_at", "status", "cancelled_reason", "completed_at", "verification_evidence", "evidence_recorded_by",
      "evidence_recorded_by_name",
      "external_ticket_url",
      "linked_control_refs", "overdue", "ticket_tracker", "ticket_key", "ticket_url", "ticket_state",
      "ticket_state_name", "ticket_synced_at", "ticket_divergence"]


def invoke(db, *args):
    return CliRunner().invoke(export, ["actions", *args], obj={"database": db})


def populate(db):
    with clock.frozen(T0), db.session() as s:
        incident = incidents.declare(s, actor="U0DECL", title="Checkout down", severity="sev2", type="availability")
        actions.create(s, actor="U0LEAD", description="=HYPERLINK(\"http://evil\")", owner="U0OWNER",
                       due_on=date(2025, 6, 12), incident=incident, type="preventive")
        actions.create(s, actor="U0LEAD", description="Write the runbook", owner="U0OWNER", due_on=date(2025, 6, 4))
        actions.create(s, actor="U0LEAD", description="Next quarter", owner="U0OWNER", due_on=date(2025, 9, 1))
    with clock.frozen(T0 + timedelta(days=1)), db.session() as s:
        actions.set_ticket(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", ticket_url="https://t.example/OPS-1")
        actions.complete(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", evidence="@SUM(1+1) dashboards")
    with clock.frozen(T0 + timedelta(days=2)), db.session() as s:
        actions.update(s, action=actions.by_key(s, "ACT-1"), actor="U0AUDITOR", evidence="https://t.example/proof")


def test_csv_and_json_carry_the_e5_columns(db):
    populate(db)
    with clock.frozen(T0 + timedelta(days=10)):
        as_csv = invoke(db, "--from", "2025-06-01", "--to", "2025-06-30")
        as_json = invoke(db, "--from", "2025-06-01", "--to", "2025-06-30", "--format", "json")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert list(COLUMNS) == E5 and rows[0] == E5
    first = dict(zip(E5, rows[1]))
    assert first == {
        "action_ref": "ACT-1", "parent_type": "incident", "parent_ref": "INC-1",
        "description": "'=HYPERLINK(\"http://evil\")", "action_type": "preventive", "owner": "U0OWNER",
        "owner_name": "name unknown", "created_at": "2025-06-02T09:00:00.000000Z", "due_at": "2025-06-12", "status": "done",
        "completed_at": "2025-06-03T09:00:00.000000Z", "verification_evidence": "https://t.example/proof",
        "evidence_recorded_by": "U0AUDITOR", "evidence_recorded_by_name": "name unknown", "cancelled_reason": "", "external_ticket_url": "https://t.example/OPS-1", "linked_control_refs": "",
        "overdue": "false", **{name: "" for name in E5 if name.startswith("ticket_")}}
    second = dict(zip(E5, rows[2]))
    assert (second["parent_type"], second["parent_ref"], second["overdue"], second["status"]) == (
        "", "", "true", "open")
    parsed = json.loads(as_json.stdout)
    assert [list(r) for r in parsed] == [E5] * 3 and len(rows) == 4
    assert parsed[0]["description"] == "=HYPERLINK(\"http://evil\")" and parsed[1]["overdue"] is True
    assert parsed[0]["evidence_recorded_by"] == "U0AUDITOR" and parsed[1]["parent_type"] is None


def test_period_takes_actions_created_due_or_completed_in_it(db, tmp_path):
    populate(db)
    result = invoke(db, "--from", "2025-09-01", "--to", "2025-09-01", "--format", "json")
    assert [r["action_ref"] for r in json.loads(result.stdout)] == ["ACT-3"]  # due then
    result = invoke(db, "--from", "2025-06-03", "--to", "2025-06-03", "--format", "json")
    assert [r["action_ref"] for r in json.loads(result.stdout)] == ["ACT-1"]  # completed then
    out = tmp_path / "actions.csv"
    result = invoke(db, "--from", "2025-01-01", "--to", "2025-12-31", "-o", str(out))
    assert result.exit_code == 0 and "Wrote 3 follow-up actions" in result.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "'@SUM" not in out.read_text("utf-8-sig")  # superseded evidence is not exported


def test_bad_arguments_are_refused(db):
    assert "must be before" in invoke(db, "--from", "2025-07-01", "--to", "2025-06-01").output
    assert "is not a date" in invoke(db, "--from", "July", "--to", "2025-06-01").output
    assert "'xlsx' is not one of" in invoke(db, "--from", "2025-06-01", "--to", "2025-06-30", "--format", "xlsx").output
