"""Asking for tickets in Slack's forms: the "Create a Jira ticket" box on the message shortcut's form and
on the close form (also when the close waits for a second person), a tracker link in the form's ticket
field, and the permissions policy on each (a refusal is shown on the field and writes nothing)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.followup.models import ActionItem
from vigil_ir.tickets.models import ActionTicket
from tests.fakes.trackers import fake_jira  # noqa: F401  (fixture)
from tests.fuzzing import changed, row_counts
from tests.slack_requests import block_action, input_value
from tests.test_actions_slack import create_values, shortcut
from tests.test_tickets_jira import LEAD, OWNER, T0, deliver, kinds, make_app  # noqa: F401  (fixture)

TICKED = {"type": "checkboxes", "selected_options": [{"value": "yes", "text": {"type": "plain_text", "text": "x"}}]}


@pytest.fixture
def app(make_app):
    return make_app()


def tickets(app) -> list[tuple[int, str | None, str]]:
    with app.db.session() as s:
        return [(row.action_id, row.key, row.state) for row in s.exec(select(ActionTicket).order_by(ActionTicket.id))]


def actions_(app) -> list[ActionItem]:
    with app.db.session() as s:
        return list(s.exec(select(ActionItem).order_by(ActionItem.number)))


def due() -> str:
    return (T0.date() + timedelta(days=7)).isoformat()


def test_the_shortcut_form_offers_the_box_and_creates_the_ticket(app, fake_jira):
    with clock.frozen(T0):
        incident = app.declare()
        app.command(f"lead <@{LEAD}>", channel=incident.channel_id)
        view = shortcut(app, incident.channel_id, "Rotate the key")
        assert any(b.get("block_id") == "create_ticket" and "Create a Jira ticket" in str(b) for b in view["blocks"])
        answer = app.submit(view, {**create_values(due=due()), "create_ticket": TICKED}, user=LEAD)
        assert answer.status_code == 200 and "errors" not in answer.text, answer.text
    deliver(app)
    assert tickets(app) == [(actions_(app)[0].id, "OPS-1", "open")]
    assert kinds(app)[:2] == ["action.created", "ticket.requested"]


def test_the_box_is_refused_for_someone_the_policy_does_not_allow(app, fake_jira):
    with clock.frozen(T0):
        view = shortcut(app, "C0RANDOM", "Rotate the key", user="U0OUTSIDER")
        before = row_counts(app.db)
        answer = app.submit(view, {**create_values(due=due()), "create_ticket": TICKED}, user="U0OUTSIDER").json()
    assert "Only the action's owner (<@U0OWNER>)" in answer["errors"]["create_ticket"]
    assert changed(before, row_counts(app.db)) == {} and actions_(app) == []


def test_a_jira_link_in_the_form_links_the_issue_and_both_at_once_is_refused(app, fake_jira):
    existing = fake_jira.new_issue("OPS", "Rotate keys", status="In Progress")
    url = f"{fake_jira.url}/browse/{existing['key']}"
    with clock.frozen(T0):
        view = shortcut(app, "C0RANDOM", "Rotate the key", user=OWNER)
        both = app.submit(view, {**create_values(due=due(), url=url), "create_ticket": TICKED}, user=OWNER).json()
        assert "not both" in both["errors"]["create_ticket"] and actions_(app) == []
        assert app.submit(view, create_values(due=due(), url=url), user=OWNER).status_code == 200
    deliver(app)
    assert tickets(app) == [(actions_(app)[0].id, "OPS-1", "open")]
    assert kinds(app) == ["action.created", "ticket.linked", "ticket.synced"]


def close_with(app, user=LEAD, severity="sev3", ticked=True, follow_ups="Add canary checks\nWrite the runbook"):
    with clock.frozen(T0):
        incident = app.declare(severity=severity, user=user)
        app.command(f"lead <@{user}>", channel=incident.channel_id, user=user)
        app.command("resolve", channel=incident.channel_id, user=user)
        app.command("close", channel=incident.channel_id, user=user)
        view = app.last_view("incident_close")
        values = {k: input_value("plain_text_input", v) for k, v in {
            "customer_impact": "None", "root_cause": "Bad deploy", "follow_ups": follow_ups}.items()}
        if ticked:
            values["follow_up_tickets"] = TICKED
        return incident, view, app.submit(view, values, user=user)


def test_the_close_form_box_creates_a_ticket_for_each_follow_up(app, fake_jira):
    _, view, response = close_with(app)
    assert any(b.get("block_id") == "follow_up_tickets" for b in view["blocks"])
    assert response.status_code == 200 and "errors" not in response.text, response.text
    deliver(app)
    assert [key for _, key, _ in tickets(app)] == ["OPS-1", "OPS-2"]
    assert [c.body["fields"]["summary"] for c in fake_jira.calls_to("create")] == ["Add canary checks",
                                                                                     "Write the runbook"]


def test_a_close_without_a_route_for_the_ticket_is_refused_on_the_box(make_app, fake_jira):
    app = make_app(VIGIL_JIRA_PROJECTS="security=SEC")
    incident, _, response = close_with(app)
    assert "No Jira project is set for availability / sev3 incidents" in response.json()["errors"]["follow_up_tickets"]
    assert actions_(app) == [] and tickets(app) == []


def test_a_close_that_needs_approval_creates_the_tickets_once_approved(make_app, fake_jira, fake_slack):
    app = make_app(VIGIL_CLOSE_APPROVAL="sev2")
    incident, _, response = close_with(app, severity="sev2")
    assert response.status_code == 200 and actions_(app) == []
    with clock.frozen(T0):
        app.deliver()
        approve, request = next((e, c.params) for c in fake_slack.calls_to("chat.postMessage")
                                if "asks to close" in c.params["text"] for b in c.params.get("blocks") or []
                                if b["type"] == "actions" for e in b["elements"]
                                if e["action_id"] == "incident_close_accept")
        body = block_action(approve["action_id"], approve["value"], channel=request["channel"], user="U0ADMIN",
                            message_ts="1.000001", response_url=fake_slack.response_url("approve"))
        assert app.post(body).status_code == 200
    deliver(app)
    assert [key for _, key, _ in tickets(app)] == ["OPS-1", "OPS-2"]
    with app.db.session() as s:
        from vigil_ir.eventlog import events_for_stream

        requested = [e for e in events_for_stream(s, "action:1") if e.kind == "ticket.requested"][0]
    assert requested.actor == LEAD and requested.data["reason"] == "asked for with the request to close"
