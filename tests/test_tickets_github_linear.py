"""GitHub Issues and Linear through the real app: create once (also after a lost answer), signed webhooks
close, cancel and reopen the action, bad signatures and replayed Linear deliveries are refused."""

from __future__ import annotations

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.tickets.models import ActionTicket
from tests.fakes.trackers import fake_github, fake_linear  # noqa: F401  (fixtures)
from tests.fuzzing import changed, row_counts
from tests.test_tickets_jira import action, at, deliver, kinds, last_event, new_action, ticket, ticket_command


@pytest.fixture
def make_app(db, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    made = []

    def build(fake, **more):
        harness = VigilHarness(build_runtime(settings_for(DATABASE_URL=db.url, **fake.settings(**more)), db),
                               fake_slack)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.client.close()


def post(app, tracker: str, body: bytes, headers: dict, minutes: float = 30):
    with clock.frozen(at(minutes)):
        return app.client.post(f"/integrations/tickets/{tracker}", content=body, headers=headers)


def test_github_issue_created_once_closed_as_not_planned_cancels_and_reopening_reopens(make_app, fake_github):
    app = make_app(fake_github)
    new_action(app)
    fake_github.fail_after("create")  # GitHub made the issue, the answer was a 502
    assert "Creating a GitHub ticket for *ACT-1* in acme/ops" in ticket_command(app, "ACT-1")
    deliver(app)
    deliver(app, 20)
    assert len(fake_github.issues["acme/ops"]) == 1 and len(fake_github.calls_to("create")) == 1
    row = ticket(app)
    assert (row.key, row.state, row.url) == ("acme/ops#1", "open", "https://github.example/acme/ops/issues/1")
    issue = fake_github.issue("acme/ops#1")
    assert issue["labels"] == [{"name": "vigil"}] and "<!-- vigil-act-1 -->" in issue["body"]
    body = fake_github.change("acme/ops#1", state="closed", state_reason="not_planned")
    answer = post(app, "github", body, fake_github.signed(body, delivery="gh-1"))
    assert answer.json()["result"] == "applied", answer.text
    item = action(app)
    assert (item.status, item.status_reason) == ("cancelled",
                                                 "acme/ops#1 was closed in GitHub as closed (not_planned).")
    assert last_event(app).data["delivery"] == "gh-1"
    body = fake_github.change("acme/ops#1", state="open")
    post(app, "github", body, fake_github.signed(body))
    assert (action(app).status, kinds(app)[-1]) == ("open", "action.reopened")
    body = fake_github.change("acme/ops#1", state="closed", state_reason="completed")
    post(app, "github", body, fake_github.signed(body))
    assert action(app).status == "done"


def test_github_signature_ping_and_other_events(make_app, fake_github):
    app = make_app(fake_github)
    new_action(app)
    ticket_command(app, "ACT-1 https://github.com/acme/ops/issues/3")
    assert ticket(app).key == "acme/ops#3"
    fake_github.new_issue("acme/ops", "one")
    fake_github.new_issue("acme/ops", "two")
    fake_github.new_issue("acme/ops", "Linked one")
    body = fake_github.change("acme/ops#3", state="closed", state_reason="completed")
    before = row_counts(app.db)
    refused = post(app, "github", body, fake_github.signed(body, secret="wrong"))
    assert refused.status_code == 401 and changed(before, row_counts(app.db)) == {}
    ping = b'{"zen": "Keep it logically awesome."}'
    assert post(app, "github", ping, fake_github.signed(ping, event="ping")).json()["result"] == "ignored"
    deliver(app)  # the link's first read: the issue is closed already, so the action is not closed by it
    assert (ticket(app).state, action(app).status) == ("done", "open")


def test_linear_issue_created_and_completed_by_webhook(make_app, fake_linear):
    app = make_app(fake_linear)
    new_action(app)
    assert "Creating a Linear ticket for *ACT-1* in ENG" in ticket_command(app, "ACT-1")
    deliver(app)
    row = ticket(app)
    assert (row.key, row.state, row.state_name) == ("ENG-1", "open", "Todo")
    assert "`vigil-act-1`" in fake_linear.issues["ENG-1"]["description"]
    fake_linear.change("ENG-1", state="st-done")
    stale = fake_linear.webhook_body("ENG-1", sent_at=at(28))
    assert post(app, "linear", stale, fake_linear.signed(stale)).status_code == 401  # two minutes old: a replay?
    fresh = fake_linear.webhook_body("ENG-1", sent_at=at(30))
    before = row_counts(app.db)
    forged = post(app, "linear", fresh, fake_linear.signed(fresh, secret="not-the-secret"))
    assert forged.status_code == 401 and changed(before, row_counts(app.db)) == {} and action(app).status == "open"
    body = fake_linear.webhook_body("ENG-1", sent_at=at(30))
    answer = post(app, "linear", body, fake_linear.signed(body, delivery="lin-1"))
    assert answer.json()["result"] == "applied", answer.text
    assert action(app).status == "done" and last_event(app).data["delivery"] == "lin-1"
    assert post(app, "linear", body, fake_linear.signed(body, delivery="lin-1")).json()["result"] == "duplicate"


def test_closing_the_action_closes_the_linear_issue(make_app, fake_linear, fake_slack):
    from tests.test_actions_slack import click, dms

    app = make_app(fake_linear)
    new_action(app)
    ticket_command(app, "ACT-1")
    deliver(app)
    message = [m for m in dms(fake_slack, "U0OWNER") if "blocks" in m][-1]
    with clock.frozen(at(2)):
        click(app, fake_slack, "action_item_done", message, "U0OWNER", "done")
    deliver(app, 2)
    assert fake_linear.issues["ENG-1"]["stateId"] == "st-done" and ticket(app).state == "done"
    with app.db.session() as s:
        assert s.exec(select(ActionTicket)).one().state_name == "Done"
