"""Follow-up actions as Jira Cloud issues, through the real app: signed Slack requests, the outbox, signed
Jira webhooks to `/integrations/tickets/jira`, and a fake Jira Cloud REST API v3 on 127.0.0.1."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.followup.models import ActionItem
from vigil_ir.people.service import Profile, record_profile
from vigil_ir.tickets.models import ActionTicket
from tests.fakes.trackers import fake_jira  # noqa: F401  (fixture)
from tests.fuzzing import changed, row_counts

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)
OWNER, LEAD, OUTSIDER = "U0OWNER", "U0LEAD", "U0OUTSIDER"


@pytest.fixture
def make_app(db, fake_slack, fake_jira, settings_for):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    made = []

    def build(**more):
        settings = settings_for(DATABASE_URL=db.url, **fake_jira.settings(**more))
        harness = VigilHarness(build_runtime(settings, db), fake_slack)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.client.close()


@pytest.fixture
def app(make_app):
    return make_app()


def at(minutes: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes)


def deliver(app, minutes: float = 0) -> int:
    with clock.frozen(at(minutes)):
        return app.deliver()


def new_action(app, *, user=LEAD, text=f"<@{OWNER}|owner> 2025-06-12 Add an alert on replica lag", **declare):
    with clock.frozen(T0):
        incident = app.declare(user=user, **declare)
        assert app.command(f"lead <@{LEAD}>", channel=incident.channel_id, user=user).status_code == 200
        reply = app.command(f"action {text}", channel=incident.channel_id, user=user)
        app.deliver()
    return incident, reply.text


def sweep(app, minutes: float) -> dict:
    with clock.frozen(at(minutes)):
        return app.sweep(at(minutes))


def ticket_command(app, rest: str, user=OWNER, minutes: float = 0) -> str:
    with clock.frozen(at(minutes)):
        return app.command(f"ticket {rest}", channel="C0ELSEWHERE", user=user).text


def kinds(app, number: int = 1) -> list[str]:
    with app.db.session() as s:
        return [e.kind for e in events_for_stream(s, f"action:{number}")]


def last_event(app, number: int = 1) -> Event:
    with app.db.session() as s:
        return events_for_stream(s, f"action:{number}")[-1]


def action(app, number: int = 1) -> ActionItem:
    with app.db.session() as s:
        return s.exec(select(ActionItem).where(ActionItem.number == number)).one()


def ticket(app, number: int = 1) -> ActionTicket:
    with app.db.session() as s:
        found = s.exec(select(ActionItem).where(ActionItem.number == number)).one()
        return s.exec(select(ActionTicket).where(ActionTicket.action_id == found.id)).one()


def hook(app, fake, body: bytes, **signing):
    with clock.frozen(signing.pop("now", at(30))):
        return app.client.post("/integrations/tickets/jira", content=body, headers=fake.signed(body, **signing))


def created(app, fake) -> str:
    """ACT-1 with its Jira issue created; returns the issue key."""
    new_action(app)
    assert "Creating a Jira ticket for *ACT-1* in OPS" in ticket_command(app, "ACT-1")
    deliver(app)
    return ticket(app).key


def test_the_ticket_is_created_once_with_the_marker_label_and_the_action_links_it(app, fake_jira):
    key = created(app, fake_jira)
    (call,) = fake_jira.calls_to("create")
    fields = call.body["fields"]
    assert key == "OPS-1" and fields["project"] == {"key": "OPS"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "Add an alert on replica lag" and fields["labels"] == ["vigil", "vigil-act-1"]
    assert fields["duedate"] == "2025-06-12"
    row, item = ticket(app), action(app)
    assert (row.state, row.url, row.create_started_at) == ("open", f"{fake_jira.url}/browse/OPS-1", None)
    assert item.ticket_url == row.url
    # The create answer names no status: the issue is read once right after, and its status recorded.
    assert kinds(app) == ["action.created", "ticket.requested", "ticket.created", "ticket.synced"]
    assert row.state_name == "To Do" and last_event(app).data["source"] == "created"
    requested = [e for e in events_for_stream_of(app) if e.kind == "ticket.requested"][0]
    assert requested.actor == OWNER and requested.data["ticket"]["state"] == "pending"
    assert deliver(app, 1) == 0 and len(fake_jira.calls_to("create")) == 1  # nothing left to do


def events_for_stream_of(app, number: int = 1) -> list[Event]:
    with app.db.session() as s:
        return events_for_stream(s, f"action:{number}")


def test_done_in_jira_closes_the_action_with_one_event_and_a_redelivery_changes_nothing(app, fake_jira):
    key = created(app, fake_jira)
    body = fake_jira.change(key, status="Done")
    answer = hook(app, fake_jira, body, delivery="delivery-1")
    assert answer.status_code == 200 and answer.json()["result"] == "applied", answer.text
    item, row = action(app), ticket(app)
    assert (item.status, item.completed_by, row.state, row.state_name) == ("done", "system:jira", "done", "Done (Done)")
    event = last_event(app)
    assert kinds(app)[-1] == "action.completed" and len(kinds(app)) == 5
    assert event.data["delivery"] == "delivery-1" and event.data["ticket"]["state"] == "done"
    assert event.data["changes"]["status"] == {"from": "open", "to": "done"} and event.data["source"] == "webhook"
    deliver(app, 31)
    told = [c.params["text"] for c in app.fake.calls_to("chat.postMessage") if "changed in Jira" in c.params["text"]]
    assert len(told) == 1 and "status: open → done" in told[0], told
    before = row_counts(app.db)
    again = hook(app, fake_jira, body, delivery="delivery-1")
    assert again.json()["result"] == "duplicate" and changed(before, row_counts(app.db)) == {}
    # The same change again under a new delivery id: nothing new to apply, no event.
    assert hook(app, fake_jira, body, delivery="delivery-2").json()["result"] == "unchanged"
    assert len(kinds(app)) == 5


def test_webhooks_out_of_order_apply_the_newer_state_only(app, fake_jira):
    key = created(app, fake_jira)
    older = fake_jira.change(key, status="In Progress")
    newer = fake_jira.change(key, status="Done")
    assert hook(app, fake_jira, newer).json()["result"] == "applied"
    assert hook(app, fake_jira, older).json()["result"] == "stale"
    assert (action(app).status, ticket(app).state) == ("done", "done")


def test_a_reopened_and_a_cancelled_issue_reopen_and_cancel_the_action(app, fake_jira):
    key = created(app, fake_jira)
    hook(app, fake_jira, fake_jira.change(key, status="Done"))
    hook(app, fake_jira, fake_jira.change(key, status="To Do"))
    assert (action(app).status, kinds(app)[-1]) == ("open", "action.reopened")
    hook(app, fake_jira, fake_jira.change(key, status="Cancelled"))
    item = action(app)
    assert (item.status, kinds(app)[-1]) == ("cancelled", "action.cancelled")
    assert item.status_reason == "OPS-1 was closed in Jira as Cancelled (Won't Do)."


def test_title_due_date_and_assignee_follow_the_issue(app, fake_jira):
    key = created(app, fake_jira)
    with app.db.session() as s:
        record_profile(s, user_id="U0DANA", profile=Profile(name="dana", real_name="Dana", email="dana@example.com"))
    body = fake_jira.change(key, summary="Alert on replica lag above 30 s", duedate="2025-06-20",
                            assignee="dana@example.com")
    assert hook(app, fake_jira, body).json()["result"] == "applied"
    item = action(app)
    assert (item.description, str(item.due_on), item.owner) == ("Alert on replica lag above 30 s", "2025-06-20",
                                                               "U0DANA")
    event = last_event(app)
    assert event.kind == "action.updated" and set(event.data["changes"]) == {"description", "due_on", "owner"}
    # An assignee the directory does not know changes the ticket, not the owner.
    hook(app, fake_jira, fake_jira.change(key, assignee="stranger@example.com"))
    assert (action(app).owner, ticket(app).assignee, kinds(app)[-1]) == ("U0DANA", "stranger@example.com",
                                                                        "ticket.synced")


@pytest.mark.parametrize("headers", [
    {"X-Hub-Signature": "sha256=" + "0" * 64},
    {"X-Hub-Signature": None},
    {"signed_with": "another-secret"},
])
def test_a_bad_signature_is_refused_and_writes_nothing(app, fake_jira, headers):
    key = created(app, fake_jira)
    body, headers = fake_jira.change(key, status="Done"), dict(headers)
    signed = fake_jira.signed(body, secret=headers.pop("signed_with", None))
    for name, value in headers.items():
        signed.pop(name) if value is None else signed.__setitem__(name, value)
    before = row_counts(app.db)
    answer = app.client.post("/integrations/tickets/jira", content=body, headers=signed)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_signature"
    assert changed(before, row_counts(app.db)) == {} and action(app).status == "open"


def test_webhooks_for_unknown_trackers_unlinked_issues_and_bad_bodies(app, fake_jira):
    created(app, fake_jira)
    other = fake_jira.new_issue("OPS", "Not ours")
    assert hook(app, fake_jira, fake_jira.webhook_body(other["key"])).json()["result"] == "not_linked"
    assert app.client.post("/integrations/tickets/github", content=b"{}").status_code == 404
    bad = b"{not json"
    assert app.client.post("/integrations/tickets/jira", content=bad, headers=fake_jira.signed(bad)).status_code == 400
    comment = b'{"webhookEvent": "comment_created", "comment": {}}'
    assert hook(app, fake_jira, comment).json()["result"] == "ignored"


@pytest.mark.parametrize("fault", ["fail_after", "drop_after"])
def test_an_answer_lost_after_jira_created_the_issue_is_found_by_its_marker_not_created_twice(app, fake_jira, fault):
    new_action(app)
    getattr(fake_jira, fault)("create")
    ticket_command(app, "ACT-1")
    deliver(app)
    assert len(fake_jira.issues) == 1 and ticket(app).key is None and ticket(app).create_started_at is not None
    deliver(app, 20)  # the retry looks for vigil-act-1 first, and adopts the issue
    assert len(fake_jira.issues) == 1 and len(fake_jira.calls_to("create")) == 1
    assert fake_jira.ok_calls("search") and ticket(app).key == "OPS-1"
    assert kinds(app) == ["action.created", "ticket.requested", "ticket.created"]  # found with its status
    assert last_event(app).data["adopted"] is True and ticket(app).state_name == "To Do"


@pytest.mark.parametrize("status", [429, 503])
def test_refusals_and_outages_before_creating_are_retried_and_create_once(app, fake_jira, status):
    new_action(app)
    fake_jira.fail_next("create", status, times=3, retry_after=30 if status == 429 else None)
    ticket_command(app, "ACT-1")
    for minute in (0, 1, 3, 20):
        deliver(app, minute)
    assert len(fake_jira.issues) == 1 and ticket(app).key == "OPS-1"
    assert len(fake_jira.ok_calls("create")) == 1
    # A 429 is a refusal with an answer: no look-up was needed. A 503 may hide a write: looked up first.
    assert bool(fake_jira.calls_to("search")) is (status == 503)


def test_reconcile_catches_a_missed_webhook(app, fake_jira):
    key = created(app, fake_jira)
    fake_jira.change(key, status="Done")  # the webhook never arrives
    sweep(app, 5)
    deliver(app, 5)
    assert len(fake_jira.calls_to("get")) == 1 and action(app).status == "open"  # read at creation: not due yet
    sweep(app, 16)
    deliver(app, 16)
    item = action(app)
    assert item.status == "done" and last_event(app).data["source"] == "reconcile"
    sweep(app, 17)  # read back once per interval: nothing queued a minute later
    deliver(app, 17)
    assert len(fake_jira.calls_to("get")) == 2


def test_closing_the_action_in_slack_closes_the_issue(app, fake_jira, fake_slack):
    from tests.test_actions_slack import click, dms

    key = created(app, fake_jira)
    message = [m for m in dms(fake_slack, OWNER) if "blocks" in m][-1]
    with clock.frozen(at(2)):
        click(app, fake_slack, "action_item_done", message, OWNER, "done")
    deliver(app, 2)
    assert fake_jira.issues[key]["fields"]["status"]["name"] == "Done"
    assert ticket(app).state == "done" and kinds(app)[-2:] == ["action.completed", "ticket.closed"]
    sweep(app, 3)
    deliver(app, 3)
    assert len(fake_jira.calls_to("transition")) == 1


def test_comment_mode_comments_once_and_divergence_is_flagged_once_after_the_grace(make_app, fake_jira, fake_slack):
    from tests.test_actions_slack import click, dms

    app = make_app(VIGIL_TICKETS_ON_DONE="comment", VIGIL_TICKETS_DIVERGENCE_GRACE="1h")
    key = created(app, fake_jira)
    message = [m for m in dms(fake_slack, OWNER) if "blocks" in m][-1]
    with clock.frozen(at(2)):
        click(app, fake_slack, "action_item_done", message, OWNER, "done")
    deliver(app, 2)
    assert len(fake_jira.comments[key]) == 1 and kinds(app)[-1] == "ticket.commented"
    assert fake_jira.issues[key]["fields"]["status"]["name"] == "To Do"
    sweep(app, 3)   # they disagree: the grace clock starts
    sweep(app, 30)  # within the grace: nothing said
    assert "ticket.divergence_flagged" not in kinds(app)
    sweep(app, 64)
    sweep(app, 65)
    assert kinds(app).count("ticket.divergence_flagged") == 1 and ticket(app).divergence == "action_done"
    deliver(app, 65)
    warned = [m for m in dms(fake_slack, OWNER) if "disagree" in m["text"]]
    assert len(warned) == 1 and "still *To Do*" in warned[0]["text"]
    # Closing the issue in Jira makes them agree: the flag is cleared, once.
    hook(app, fake_jira, fake_jira.change(key, status="Done"), now=at(70))
    sweep(app, 71)
    sweep(app, 72)
    assert ticket(app).divergence == "" and kinds(app).count("ticket.divergence_cleared") == 1
    assert len(fake_jira.comments[key]) == 1


def test_linking_an_existing_issue_by_url_reads_its_state(app, fake_jira):
    new_action(app)
    existing = fake_jira.new_issue("OPS", "Replica lag alerting", status="In Progress")
    reply = ticket_command(app, f"<{fake_jira.url}/browse/{existing['key']}>")
    assert "Usage" in reply
    reply = ticket_command(app, f"ACT-1 <{fake_jira.url}/browse/{existing['key']}>")
    assert f"Linked <{fake_jira.url}/browse/OPS-1|OPS-1> to *ACT-1*" in reply
    assert (ticket(app).state, action(app).ticket_url) == ("unknown", f"{fake_jira.url}/browse/OPS-1")
    deliver(app)
    row = ticket(app)
    assert (row.state, row.state_name, row.title) == ("open", "In Progress", "Replica lag alerting")
    assert action(app).description == "Add an alert on replica lag"  # the first read is the baseline
    assert kinds(app) == ["action.created", "ticket.linked", "ticket.synced"]
    assert "already has a ticket" in ticket_command(app, "ACT-1 OPS-7")


def test_who_may_create_or_link_a_ticket(app, fake_jira):
    new_action(app)
    before = row_counts(app.db)
    reply = ticket_command(app, "ACT-1", user=OUTSIDER)
    assert "Only the action's owner (<@U0OWNER>), the incident lead (<@U0LEAD>)" in reply
    assert set(changed(before, row_counts(app.db))) <= {"processed_key"}
    assert "Creating a Jira ticket" in ticket_command(app, "ACT-1", user=LEAD)
    assert "There is no ACT-9" in ticket_command(app, "ACT-9")
    assert "is not a ticket of Jira" in ticket_command(app, "ACT-1 not-a-ticket", user=LEAD) or \
        "already has a ticket" in ticket_command(app, "ACT-1 not-a-ticket", user=LEAD)


def test_always_for_configured_severities(make_app, fake_jira):
    app = make_app(VIGIL_TICKETS_ALWAYS="sev1", VIGIL_JIRA_PROJECTS="default=OPS,sev1=INC/Bug")
    _, reply = new_action(app, severity="sev1")
    assert "A Jira ticket is being created in INC." in reply
    deliver(app)
    assert ticket(app).key == "INC-1" and fake_jira.calls_to("create")[0].body["fields"]["issuetype"] == {"name": "Bug"}
    assert kinds(app)[-2:] == ["ticket.created", "ticket.synced"]
    _, reply = new_action(app, severity="sev3", text=f"<@{OWNER}|owner> 3d Second")
    assert "ticket" not in reply


def test_verify_rebuilds_the_ticket_rows_from_the_events(app, fake_jira):
    from vigil_ir.state_check import check_state

    key = created(app, fake_jira)
    hook(app, fake_jira, fake_jira.change(key, status="Done"))
    with app.db.session() as s:
        assert [m for m in check_state(s).found if m.record.startswith("ticket")] == []
        row = s.exec(select(ActionTicket)).one()
        row.state = "open"
        s.add(row)
    with app.db.session() as s:
        found = [m for m in check_state(s).found if m.record.startswith("ticket")]
    assert [(m.record, m.field, m.expected, m.found) for m in found] == [("ticket of ACT-1", "state", "done", "open")]


def test_a_ticket_deleted_in_jira_is_recorded_missing_once_and_can_be_replaced(app, fake_jira):
    key = created(app, fake_jira)
    del fake_jira.issues[key]
    for minute in (16, 32):
        sweep(app, minute)
        deliver(app, minute)
    assert ticket(app).state == "missing" and kinds(app).count("ticket.missing") == 1
    assert last_event(app).data["error"].startswith("Jira issue OPS-1: not found")
    sweep(app, 48)
    deliver(app, 48)
    assert len(fake_jira.calls_to("get")) == 2  # the read after creation, then the one that found it gone
    assert "Creating a Jira ticket" in ticket_command(app, "ACT-1", minutes=50)
    deliver(app, 50)
    assert ticket(app).key == "OPS-2" and ticket(app).state == "open"


def test_github_secondary_rate_limit_is_retried_not_dead_lettered(app):
    from vigil_ir.outbox.sender import can_succeed_later
    import httpx

    from vigil_ir.tickets.trackers import TrackerError
    from vigil_ir.tickets.transport import call

    def answer(request):
        return httpx.Response(403, headers={"retry-after": "60"}, json={"message": "secondary rate limit"})

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="https://api.github.test") as client:
        with pytest.raises(TrackerError) as raised:
            call(client, "GET", "/repos/acme/ops/issues/1", label="GitHub")
    assert raised.value.retry_later and raised.value.retry_after == 60 and can_succeed_later(raised.value)


def test_the_update_form_links_a_jira_link_and_the_listing_shows_the_ticket(app, fake_jira, fake_slack):
    from tests.slack_requests import input_value
    from tests.test_actions_slack import click, dms

    new_action(app)
    existing = fake_jira.new_issue("OPS", "Replica lag alerting", status="In Progress")
    message = [m for m in dms(fake_slack, OWNER) if "blocks" in m][-1]
    with clock.frozen(at(1)):
        click(app, fake_slack, "action_item_update", message, OWNER, "update")
        view = app.last_view("action_item_update")
        url = f"{fake_jira.url}/browse/{existing['key']}"
        answer = app.submit(view, {"status": input_value("static_select", "open"),
                                   "owner": {"type": "users_select", "selected_user": OWNER},
                                   "ticket_url": {"type": "url_text_input", "value": url}}, user=OWNER)
    assert answer.status_code == 200 and "errors" not in answer.text, answer.text
    deliver(app, 1)
    assert (ticket(app).key, ticket(app).state_name) == ("OPS-1", "In Progress")
    assert kinds(app)[-2:] == ["ticket.linked", "ticket.synced"] and action(app).ticket_url == url
    with clock.frozen(at(2)):
        listing = app.command("actions open", channel="C0ELSEWHERE", user=OWNER).text
    assert f"<{url}|OPS-1> (In Progress)" in listing


def test_an_open_ticket_linked_to_a_done_action_is_flagged_not_closed(make_app, fake_jira, fake_slack):
    from tests.test_actions_slack import click, dms

    app = make_app(VIGIL_TICKETS_DIVERGENCE_GRACE="1h")
    new_action(app)
    message = [m for m in dms(fake_slack, OWNER) if "blocks" in m][-1]
    with clock.frozen(at(1)):
        click(app, fake_slack, "action_item_done", message, OWNER, "done")
    existing = fake_jira.new_issue("OPS", "Tracked elsewhere")
    ticket_command(app, f"ACT-1 {existing['key']}", minutes=2)
    deliver(app, 2)
    for minute in (3, 70, 71):
        sweep(app, minute)
        deliver(app, minute)
    assert fake_jira.calls_to("transition") == [] and fake_jira.issues[existing["key"]]["fields"]["status"]["name"] == "To Do"
    assert ticket(app).divergence == "action_done" and kinds(app).count("ticket.divergence_flagged") == 1


def test_a_ticket_title_longer_than_an_action_may_be_is_cut_on_the_action_only(app, fake_jira):
    key = created(app, fake_jira)
    body = fake_jira.change(key, summary="x" * 3100)  # longer than an action's description may be
    assert hook(app, fake_jira, body).json()["result"] == "applied"
    assert last_event(app).kind == "action.updated" and action(app).description == "x" * 3000
    assert ticket(app).title == "x" * 3100
