"""Buttons on the pinned summary: a double click records once."""

from sqlmodel import select

from vigil_ir.eventlog import Event
from vigil_ir.incidents.models import Incident
from tests.slack_requests import block_action


def lead_events(vigil):
    with vigil.db.session() as s:
        return list(s.exec(select(Event).where(Event.kind == "incident.role_assigned")))


def test_summary_has_buttons_while_open(vigil, fake_slack):
    vigil.declare()
    summary = fake_slack.calls_to("chat.postMessage")[0].params["blocks"]
    actions = next(b for b in summary if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == ["incident_take_lead", "incident_post_update"]


def test_take_lead_double_click_records_once(vigil, fake_slack):
    incident = vigil.declare()
    body = block_action("incident_take_lead", str(incident.id), channel=incident.channel_id,
                        message_ts=incident.summary_ts, user="U0HERO")
    for _ in range(2):
        assert vigil.post(body).status_code == 200
    second_click = block_action("incident_take_lead", str(incident.id), channel=incident.channel_id,
                                message_ts=incident.summary_ts, user="U0HERO")
    assert vigil.post(second_click).status_code == 200
    (event,) = lead_events(vigil)
    assert event.actor == "U0HERO" and event.data["to"] == "U0HERO"
    with vigil.db.session() as s:
        assert s.exec(select(Incident)).one().lead == "U0HERO"
    vigil.deliver()
    assert sum("took the lead" in c.params["text"] for c in fake_slack.calls_to("chat.postMessage")) == 1


def test_take_lead_when_already_lead_tells_the_clicker(vigil, fake_slack):
    incident = vigil.declare()
    vigil.command("lead <@U0HERO>", channel=incident.channel_id)
    body = block_action("incident_take_lead", str(incident.id), channel=incident.channel_id,
                        message_ts=incident.summary_ts, user="U0HERO", response_url=fake_slack.response_url("r"))
    vigil.post(body)
    vigil.deliver()
    assert "already holds the lead role" in fake_slack.responses("r")[0]["text"]
    assert len(lead_events(vigil)) == 1


def test_post_update_button_opens_the_update_modal(vigil):
    incident = vigil.declare()
    body = block_action("incident_post_update", str(incident.id), channel=incident.channel_id,
                        message_ts=incident.summary_ts)
    assert vigil.post(body).status_code == 200
    assert vigil.last_view("incident_update")["private_metadata"] == str(incident.id)
