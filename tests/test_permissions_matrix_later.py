"""The authorization matrix, continued: the actions added after the first matrix (alerts' attach and
dismiss, paging, a follow-up action's ticket and changes), a private incident's access (see it,
invite, remove) and the dashboard (Slack sign-in), × every kind of person, through signed requests on
both databases.

Alerts and paging are `anyone` by default; here a stricter VIGIL_PERMISSIONS shows both sides of each
rule (the default is shown by the first matrix's style elsewhere: tests/test_alerts_triage.py,
tests/test_paging.py). An allowed request changes the record and writes the events that change is made
of; a refused one writes nothing (a button's refusal is only the reply queued to the clicker) and says
who may instead.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from vigil_ir.alerts.models import AlertGroup
from vigil_ir.eventlog.models import Event
from vigil_ir.followup.models import ActionItem
from vigil_ir.incidents.models import Incident, IncidentAccess
from tests import slack_requests as sr
from tests.fakes import alert_senders as senders
from tests.fakes.paging_api import OPSGENIE_KEY, fake_paging  # noqa: F401  (fixture)
from tests.fakes.trackers import fake_jira  # noqa: F401  (fixture)
from tests.fuzzing import changed, row_counts
from tests.test_permissions_matrix import COMMANDER, DECLARER, LEAD, MEMBER, NEXT, OUTSIDER, PEOPLE, PREVIOUS

STRICT = ("attach_alert=commanders,admins;dismiss_alert=commanders,admins;page=lead,commanders,admins;"
          "change_action=action_owner,lead,commanders,admins")
COMMANDERS = "a commander (@incident-commanders) or an admin (<@U0ADMIN>)"


@pytest.fixture
def app(db, fake_slack, settings_for, fake_paging, fake_jira):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    fake_slack.set_usergroup("S0CMD", "incident-commanders", [COMMANDER])
    settings = settings_for(
        DATABASE_URL=db.url, VIGIL_COMMANDERS="@incident-commanders", VIGIL_PERMISSIONS=STRICT,
        **senders.settings_overrides(), **fake_jira.settings(),
        VIGIL_PAGERDUTY_SERVICES="checkout=R0UTINGKEY0000000000000000000000", VIGIL_PAGERDUTY_EVENTS_URL=fake_paging.url,
        VIGIL_OPSGENIE_API_KEY=OPSGENIE_KEY, VIGIL_OPSGENIE_API_URL=fake_paging.url)
    harness = VigilHarness(build_runtime(settings, db), fake_slack)
    yield harness
    harness.client.close()


def incident_with_history(app, *, private=False) -> Incident:
    """Declared by DECLARER; PREVIOUS led it, then handed the lead to LEAD; MEMBER is in the channel
    (for a private incident: invited by the lead) and owns a follow-up action."""
    if private:
        assert app.command("declare Matrix target", user=DECLARER).status_code == 200
        values = {"title": sr.input_value("plain_text_input", "Matrix target"),
                  "severity": sr.input_value("static_select", "sev2"),
                  "type": sr.input_value("static_select", "availability"),
                  "private": sr.input_value("checkboxes", [{"value": "yes"}])}
        assert app.submit(app.last_view("incident_declare"), values, user=DECLARER).status_code == 200
        app.deliver()
        with app.db.session() as s:
            incident = s.exec(select(Incident)).one()
    else:
        incident = app.declare("Matrix target", user=DECLARER)
    channel = incident.channel_id
    app.command(f"lead <@{PREVIOUS}>", channel=channel, user=DECLARER)
    assert "now" in app.command(f"lead <@{LEAD}>", channel=channel, user=PREVIOUS).text
    if private:
        assert "now has access" in app.command(f"invite <@{MEMBER}>", channel=channel, user=LEAD).text
    assert "ACT-1" in app.command(f"action <@{MEMBER}> 2099-01-01 Add a replica lag alert", channel=channel,
                                  user=LEAD).text
    app.deliver()
    with app.db.session() as s:
        return s.get(Incident, incident.id)


def events_of(app, stream: str) -> list[Event]:
    with app.db.session() as s:
        return list(s.exec(select(Event).where(Event.stream == stream).order_by(Event.stream_seq)))


def reply_to(app, name: str) -> str:
    app.deliver()
    return " ".join(r.get("text", "") for r in app.fake.responses(name))


def refused_wrote_nothing(app, before: dict, *, reply_queued: bool) -> None:
    rows = changed(before, row_counts(app.db))
    assert set(rows) <= ({"outbox_item", "processed_key"} if reply_queued else set()), rows


# ---- alerts: attach and dismiss --------------------------------------------------------------------
def fire(app) -> tuple[str, dict]:
    alert = senders.am_alert("probe-1")
    body = senders.encode(senders.alertmanager([alert]))
    answer = app.client.post("/integrations/alerts/alertmanager", content=body,
                             headers=senders.headers_for("alertmanager", body))
    assert answer.status_code == 200, answer.text
    app.deliver()
    (post,) = [c for c in app.fake.ok_calls("chat.postMessage") if c.params.get("channel") == "C0TRIAGE"]
    return post.response["ts"], post.params


def group(app) -> AlertGroup:
    with app.db.session() as s:
        return s.exec(select(AlertGroup)).one()


def button(message: dict, action_id: str) -> str:
    return next(e["value"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == action_id)


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize("decision", ["attach", "dismiss"])
def test_alert_triage(app, person, decision):
    incident = incident_with_history(app)
    ts, message = fire(app)
    user, name = PEOPLE[person], f"triage-{person.replace(' ', '-')}"
    stream = group(app).stream
    before_rows, before_events = row_counts(app.db), len(events_of(app, stream))
    opened = len(app.fake.calls_to("views.open"))
    assert app.post(sr.block_action(f"alert_{decision}", button(message, f"alert_{decision}"), channel="C0TRIAGE",
                                    message_ts=ts, user=user, response_url=app.fake.response_url(name))).status_code == 200
    allowed = person in {"commander", "admin"}
    if not allowed:
        assert f"Only {COMMANDERS} may {'attach these alerts to an incident' if decision == 'attach' else 'dismiss these alerts'}" \
            in reply_to(app, name)
        assert len(app.fake.calls_to("views.open")) == opened
        refused_wrote_nothing(app, before_rows, reply_queued=True)
        assert events_of(app, stream)[before_events:] == [] and group(app).state == "open"
        return
    view = app.last_view(f"alert_{decision}")
    if decision == "attach":
        values = {"incident": sr.input_value("static_select", view["blocks"][-1]["element"]["options"][0]["value"])}
    else:
        values = {"reason": sr.input_value("plain_text_input", "Planned maintenance window")}
    answer = app.submit(view, values, user=user)
    assert answer.status_code == 200 and answer.text in ("", "{}"), answer.text
    kinds = [e.kind for e in events_of(app, stream)[before_events:]]
    assert kinds == [f"alert_group.{'attached' if decision == 'attach' else 'dismissed'}"], kinds
    assert group(app).state == ("attached" if decision == "attach" else "dismissed")
    if decision == "attach":
        assert group(app).incident_id == incident.id


# ---- paging ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_page(app, person):
    incident = incident_with_history(app)
    user = PEOPLE[person]
    before_rows, before_events = row_counts(app.db), len(events_of(app, incident.stream))
    answer = app.command("page", channel=incident.channel_id, user=user)
    allowed = person in {"lead", "commander", "admin"}
    if not allowed:
        assert f"Only the incident lead (<@{LEAD}>), {COMMANDERS} may page for this incident." in answer.text
        refused_wrote_nothing(app, before_rows, reply_queued=False)
        assert app.fake.calls_to("views.open")[-1].params["view"]["callback_id"] != "incident_page"
        return
    view = app.last_view("incident_page")
    submitted = app.submit(view, {"target": sr.input_value("static_select", "pagerduty:checkout"),
                                  "message": sr.input_value("plain_text_input", "Checkout is down")}, user=user)
    assert submitted.status_code == 200 and submitted.text in ("", "{}"), submitted.text
    kinds = [e.kind for e in events_of(app, incident.stream)[before_events:]]
    assert kinds == ["page.requested"], kinds


# ---- a follow-up action: its ticket, and changing it -------------------------------------------------
def action_row(app) -> ActionItem:
    with app.db.session() as s:
        return s.exec(select(ActionItem)).one()


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_link_ticket(app, person):
    incident_with_history(app)
    user = PEOPLE[person]
    before_rows, before_events = row_counts(app.db), len(events_of(app, "action:1"))
    answer = app.command("ticket ACT-1", channel="C0GENERAL", user=user).text
    allowed = person in {"channel member", "lead", "commander", "admin"}  # MEMBER owns ACT-1
    if not allowed:
        assert (f"Only the action's owner (<@{MEMBER}>), the incident lead (<@{LEAD}>), a commander "
                "(@incident-commanders) or an admin (<@U0ADMIN>) may create or link this action's ticket.") in answer
        refused_wrote_nothing(app, before_rows, reply_queued=False)
        return
    assert "Creating a Jira ticket for *ACT-1*" in answer, answer
    assert [e.kind for e in events_of(app, "action:1")[before_events:]] == ["ticket.requested"]


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_change_action(app, person):
    incident_with_history(app)
    user, name = PEOPLE[person], f"done-{person.replace(' ', '-')}"
    (dm,) = [c.params for c in app.fake.calls_to("chat.postMessage") if c.params["channel"] == MEMBER
             and "ACT-1" in c.params["text"]]
    before_rows, before_events = row_counts(app.db), len(events_of(app, "action:1"))
    assert app.post(sr.block_action("action_item_done", button(dm, "action_item_done"), channel=MEMBER,
                                    message_ts="3.3", user=user, response_url=app.fake.response_url(name))).status_code == 200
    allowed = person in {"channel member", "lead", "commander", "admin"}
    if not allowed:
        assert (f"Only the action's owner (<@{MEMBER}>), the incident lead (<@{LEAD}>), {COMMANDERS} may change this "
                "follow-up action. Nothing was recorded.") in reply_to(app, name)
        refused_wrote_nothing(app, before_rows, reply_queued=True)
        assert action_row(app).status == "open"
        return
    assert [e.kind for e in events_of(app, "action:1")[before_events:]] == ["action.completed"]
    assert action_row(app).status == "done"


# ---- a private incident: see it, invite, remove ---------------------------------------------------------
MEMBERS = {"declarer", "lead", "previous lead", "channel member"}  # granted: declared, role, role, invite


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_view_a_private_incident(app, person):
    incident = incident_with_history(app, private=True)
    before = row_counts(app.db)
    user = PEOPLE[person]
    listed = app.command("list", channel="C0GENERAL", user=user).text
    its_actions = app.command(f"actions {incident.key}", channel="C0GENERAL", user=user).text
    if person in MEMBERS | {"commander", "admin"}:
        assert f"{incident.key} :lock: private Matrix target" in listed
        assert "Add a replica lag alert" in its_actions
    else:
        assert incident.key not in listed and "Matrix target" not in listed
        assert its_actions == (f":no_entry: Only a member of the incident, {COMMANDERS} may see this private "
                               "incident.")
    assert not changed(before, row_counts(app.db)), "reading writes nothing"


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize("verb", ["invite", "remove"])
def test_invite_to_and_remove_from_a_private_incident(app, person, verb):
    incident = incident_with_history(app, private=True)
    if verb == "remove":  # someone to remove: NEXT, invited by the lead
        app.command(f"invite <@{NEXT}>", channel=incident.channel_id, user=LEAD)
    before_rows, before_events = row_counts(app.db), len(events_of(app, incident.stream))
    answer = app.command(f"{verb} <@{NEXT}>", channel=incident.channel_id, user=PEOPLE[person]).text
    allowed = person in {"lead", "commander", "admin"}
    with app.db.session() as s:
        has_access = s.exec(select(IncidentAccess).where(IncidentAccess.incident_id == incident.id,
                                                         IncidentAccess.user_id == NEXT)).first() is not None
    if not allowed:
        doing = "invite people to" if verb == "invite" else "remove people from"
        assert answer == (f":no_entry: Only the incident lead (<@{LEAD}>), {COMMANDERS} may {doing} this private "
                          "incident.")
        refused_wrote_nothing(app, before_rows, reply_queued=False)
        assert has_access is (verb == "remove")
        return
    kinds = [e.kind for e in events_of(app, incident.stream)[before_events:]]
    assert kinds == [f"incident.access_{'granted' if verb == 'invite' else 'revoked'}"], kinds
    assert has_access is (verb == "invite")
    assert events_of(app, incident.stream)[-1].actor == PEOPLE[person]



# ---- the dashboard ---------------------------------------------------------------------------------
@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_use_the_dashboard(db, fake_slack, person):
    """use_dashboard: dashboard viewers (here the channel member), commanders (a user group) and admins
    sign in with Slack; anyone else is told who may and nothing is written. Auditor tokens are outside
    the Slack policy (tests/test_dashboard_sessions.py)."""
    from tests.dashboard_seed import seed
    from tests.test_dashboard import Dash
    from tests.test_dashboard_slack import CLIENT, sign_in

    seed(db)
    fake_slack.set_usergroup("S0CMD", "incident-commanders", [COMMANDER])
    dash = Dash(db, SLACK_API_URL=fake_slack.base_url, SLACK_BOT_TOKEN="xoxb-test",  # groups asked of Slack
                **{**CLIENT, "VIGIL_DASHBOARD_VIEWERS": MEMBER, "VIGIL_COMMANDERS": "@incident-commanders"})
    # Someone else first: the group's first look-up is recorded (permissions.group_members_changed).
    assert sign_in(dash, fake_slack, "U0WARMUP", code="code-0").status_code == 403
    before = row_counts(db)
    answer = sign_in(dash, fake_slack, PEOPLE[person])
    allowed = person in {"channel member", "commander", "admin"}
    if allowed:
        assert answer.status_code == 303 and dash.client.get("/").status_code == 200
        assert [e.actor for e in dash.events("audit.dashboard_signed_in")] == [PEOPLE[person]]
        return
    assert answer.status_code == 403
    assert ("Only a dashboard viewer (U0MEMBER), a commander (@incident-commanders) or an admin (U0ADMIN) may use "
            "the dashboard.") in answer.text, answer.text
    assert changed(before, row_counts(db)) == {}
    assert dash.events("audit.dashboard_signed_in") == [] and dash.client.get("/").status_code == 303


def test_alerts_are_attached_only_to_an_incident_one_may_see(db, fake_slack, settings_for):
    """attach_alert is anyone's by default, but a private incident is offered, and taken, only from
    those who may see it: a forged choice is refused on the form and writes nothing."""
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    app = VigilHarness(build_runtime(settings_for(DATABASE_URL=db.url, **senders.settings_overrides()), db),
                       fake_slack)
    try:
        private = incident_with_history(app, private=True)
        public = app.declare("Checkout slow", user=DECLARER)
        ts, message = fire(app)
        for user, offered in ((MEMBER, True), (OUTSIDER, False)):
            app.post(sr.block_action("alert_attach", button(message, "alert_attach"), channel="C0TRIAGE", message_ts=ts,
                                     user=user))
            view = app.last_view("alert_attach")
            options = {o["value"] for o in view["blocks"][-1]["element"]["options"]}
            assert options == ({str(private.id), str(public.id)} if offered else {str(public.id)})
        before = row_counts(app.db)
        forged = app.submit(view, {"incident": sr.input_value("static_select", str(private.id))}, user=OUTSIDER)
        assert forged.json()["errors"]["incident"] == "Choose one of the open incidents offered."
        assert changed(before, row_counts(app.db)) == {} and group(app).state == "open"
        answer = app.submit(view, {"incident": sr.input_value("static_select", str(private.id))}, user=MEMBER)
        assert answer.text in ("", "{}") and group(app).state == "attached"
    finally:
        app.client.close()
