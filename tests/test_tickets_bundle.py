"""An action's ticket in the evidence bundle: the action_items columns, checked by `vigil verify --bundle`
and by the bundle's own verify.py, including a careful forger's edits of them."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

from vigil_ir.config import Settings
from vigil_ir.followup import actions
from vigil_ir.tickets import service
from vigil_ir.tickets.config import config_for
from vigil_ir.tickets.trackers import Ticket
from tests.test_bundle import at, export, read, seed
from tests.test_bundle_claims import assert_broken, both, edited_table, forge

JIRA = {"VIGIL_JIRA_URL": "https://acme.atlassian.net", "VIGIL_JIRA_EMAIL": "vigil@example.com",
        "VIGIL_JIRA_API_TOKEN": "token", "VIGIL_JIRA_PROJECTS": "default=OPS"}


def with_ticket(db, tmp_path):
    """The seeded quarter, ACT-1 linked to Jira OPS-12 (read back as done, the action still open: flagged)."""
    seed(db)
    config = config_for(Settings(_env_file=None, **JIRA))
    with at(date(2025, 1, 20)), db.session() as s:
        action = actions.locked(s, actions.by_key(s, "ACT-1").id)
        row = service.link(s, action=action, actor="U0OWNER", config=config, ref="OPS-12")
        service.apply_remote(s, action=action, row=row, label="Jira", source="link", ticket=Ticket(
            key="OPS-12", url="https://acme.atlassian.net/browse/OPS-12", external_id="10012", state="done",
            state_name="Done", title="Add a canary", updated_at=datetime(2025, 1, 20, 8, tzinfo=timezone.utc)))
    with at(date(2025, 1, 22)), db.session() as s:
        action = actions.by_key(s, "ACT-1")
        row = service.of_action(s, action.id)
        service.check_divergence(s, action=action, row=row, now=datetime(2025, 1, 22, tzinfo=timezone.utc),
                                 grace=config.grace)
        service.check_divergence(s, action=action, row=row, now=datetime(2025, 1, 24, tzinfo=timezone.utc),
                                 grace=config.grace)
    return export(db, tmp_path)


def test_the_bundle_shows_the_ticket_and_both_checkers_pass(db, tmp_path):
    bundle = with_ticket(db, tmp_path)
    rows = [json.loads(line.rstrip(",")) for line in read(bundle, "action_items.json").decode().splitlines()
            if line.startswith("{")]
    first = next(r for r in rows if r["action_ref"] == "ACT-1")
    assert {k: v for k, v in first.items() if k.startswith("ticket_")} == {
        "ticket_tracker": "jira", "ticket_key": "OPS-12", "ticket_url": "https://acme.atlassian.net/browse/OPS-12",
        "ticket_state": "done", "ticket_state_name": "Done", "ticket_synced_at": "2025-01-20T09:00:00.000000Z",
        "ticket_divergence": "ticket_done"}
    code, output, plain_code, plain_output = both(bundle, tmp_path, bundle)
    assert (code, plain_code) == (0, 0), (output, plain_output)
    trail = [json.loads(line.rstrip(",")) for line in read(bundle, "audit_log.json").decode().splitlines()
             if line.startswith("{")]
    summaries = [row["summary"] for row in trail if row["stream"] == "action:1" and row["kind"].startswith("ticket.")]
    assert summaries == [
        "linked jira ticket OPS-12 to action ACT-1",
        "read jira ticket OPS-12 of action ACT-1: Done (external id (none) → 10012; state unknown → done; state name "
        "(none) → Done; ticket updated at (none) → 2025-01-20T08:00:00.000000Z; title (none) → Add a canary), as its "
        "jira ticket OPS-12 is done (link)",
        "flagged that action ACT-1 (open) and its ticket OPS-12 (done) disagree (ticket_done) since "
        "2025-01-22T00:00:00.000000Z"], summaries


def test_edited_ticket_columns_are_caught(db, tmp_path):
    bundle = with_ticket(db, tmp_path)
    files = edited_table(bundle, "action_items", {"action_ref": "ACT-1"},
                         {"ticket_state": "open", "ticket_key": "ops 12", "ticket_synced_at": "2026-01-01T00:00:00.000000Z"})
    assert_broken(bundle, tmp_path, forge(bundle, tmp_path / "f.zip", files=files),
                  "action_items.json: ACT-1 (row 1): ticket_key 'ops 12' is not a jira key",
                  "action_items.json: ACT-1 (row 1): ticket_synced_at 2026-01-01T00:00:00.000000Z is after the bundle "
                  "was generated",
                  "action_items.json: ACT-1 (row 1): ticket_divergence 'ticket_done', but the action is open and its "
                  "ticket open (they agree)")
    files = edited_table(bundle, "action_items", {"action_ref": "ACT-1"}, {"ticket_tracker": None})
    assert_broken(bundle, tmp_path, forge(bundle, tmp_path / "g.zip", files=files),
                  "action_items.json: ACT-1 (row 1): ticket_key is 'OPS-12' but ticket_tracker is empty (no ticket)")
