"""`/incident` subcommands inside (and outside) an incident channel."""

from sqlmodel import select

from vigil_ir.eventlog import events_for_stream
from vigil_ir.incidents.models import Incident
from tests.slack_requests import input_value


def events(vigil, number=1):
    with vigil.db.session() as s:
        return events_for_stream(s, f"incident:{number}")


def current(vigil) -> Incident:
    with vigil.db.session() as s:
        return s.exec(select(Incident)).one()


def test_status_severity_roles_and_note_are_recorded_and_posted(vigil, fake_slack):
    incident = vigil.declare()
    channel = incident.channel_id
    replies = [vigil.command(text, channel=channel, user="U0LEAD").text for text in (
        "status identified", "severity sev1", "lead <@U0LEAD|lead>", "role comms <@U0COMMS>",
        "role scribe <@U0SCRIBE|s>", "note Rolled back deploy 4312")]
    assert replies[0] == "INC-1 is now identified."
    assert "note #" in replies[-1]
    state = current(vigil)
    assert (state.status, state.severity, state.lead, state.comms, state.scribe) == (
        "identified", "sev1", "U0LEAD", "U0COMMS", "U0SCRIBE")
    kinds = [e.kind for e in events(vigil)][4:]
    assert kinds == ["incident.status_changed", "incident.severity_changed", "incident.role_assigned",
                     "incident.role_assigned", "incident.role_assigned", "incident.note_added"]
    assert all(e.actor == "U0LEAD" for e in events(vigil)[4:])
    vigil.deliver()
    posted = [c.params["text"] for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == channel]
    assert any("identified" in t for t in posted) and any("Rolled back deploy 4312" in t for t in posted)
    # The pinned summary is refreshed with chat.update (coalesced: fewer updates than changes).
    updates = [c for c in fake_slack.calls_to("chat.update") if c.params["ts"] == state.summary_ts]
    assert 1 <= len(updates) <= 6
    assert "sev1" in str(updates[-1].params["blocks"]) and "U0LEAD" in str(updates[-1].params["blocks"])


def test_bad_arguments_reply_with_usage_and_change_nothing(vigil):
    incident = vigil.declare()
    before = len(events(vigil))
    for text, expected in [("status sleeping", "Usage: `/incident status"), ("severity sev9", "Usage"),
                           ("lead nobody", "Usage: `/incident lead @user`"), ("role chef <@U1>", "Usage"),
                           ("note", "Usage"), ("correct x y", "Usage"), ("correct ² y", "Usage"),
                           ("correct 99999999999999999999 y", "There is no note #99999999999999999999"),
                           ("frobnicate", "Unknown subcommand")]:
        reply = vigil.command(text, channel=incident.channel_id).text
        assert expected in reply, (text, reply)
    assert vigil.command("status investigating", channel=incident.channel_id).text.startswith(":warning:")
    assert len(events(vigil)) == before


def test_commands_outside_an_incident_channel_explain_where_to_use_them(vigil):
    incident = vigil.declare("Cache stampede")
    reply = vigil.command("status resolved", channel="C0RANDOM").text
    assert "works inside an incident channel" in reply and "INC-1" in reply and incident.channel_id in reply
    assert current(vigil).status == "investigating"


def test_help_lists_subcommands(vigil):
    reply = vigil.command("help").text
    for word in ("status", "severity", "lead", "role", "note", "update", "resolve", "close", "timeline"):
        assert word in reply


def test_text_containing_payload_is_handled(vigil):
    incident = vigil.declare()
    response = vigil.command("note payload api down", channel=incident.channel_id)
    assert response.status_code == 200
    assert events(vigil)[-1].data["text"] == "payload api down"


def test_note_correction_keeps_the_original(vigil):
    incident = vigil.declare()
    vigil.command("note Root cause is DNS", channel=incident.channel_id)
    note = events(vigil)[-1]
    reply = vigil.command(f"correct {note.id} Root cause is an expired TLS cert", channel=incident.channel_id).text
    assert "stays on the timeline" in reply
    correction = events(vigil)[-1]
    assert correction.kind == "incident.note_corrected" and correction.corrects == note.id
    assert correction.data["original_text"] == "Root cause is DNS"
    assert events(vigil)[-2].data["text"] == "Root cause is DNS"


def test_timeline_is_ephemeral_in_the_viewers_time_zone(vigil, fake_slack):
    fake_slack.set_user("U0VIEWER", tz="Asia/Tokyo")
    incident = vigil.declare()
    vigil.command("note checking dashboards", channel=incident.channel_id)
    reply = vigil.command("timeline", channel=incident.channel_id, user="U0VIEWER").text
    assert "Asia/Tokyo" in reply and "checking dashboards" in reply and "declared" in reply
    tokyo = incident.declared_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%d %H:%M")
    assert tokyo in reply


def test_update_modal_records_update_and_status(vigil, fake_slack):
    incident = vigil.declare()
    vigil.command("update", channel=incident.channel_id, user="U0COMMS")
    view = vigil.last_view("incident_update")
    response = vigil.submit(view, {"status": input_value("static_select", "monitoring"),
                                   "summary": input_value("plain_text_input", "Fix deployed; watching error rate")},
                            user="U0COMMS")
    assert response.status_code == 200 and response.text == ""
    state = current(vigil)
    assert state.status == "monitoring" and state.current_summary == "Fix deployed; watching error rate"
    assert [e.kind for e in events(vigil)][-2:] == ["incident.status_changed", "incident.update_posted"]
    vigil.deliver()
    feed_posts = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == "C0FEED"]
    assert any("watching error rate" in c.params["text"] for c in feed_posts)


def test_update_modal_rejects_empty_summary_inline(vigil):
    incident = vigil.declare()
    vigil.command("update", channel=incident.channel_id)
    view = vigil.last_view("incident_update")
    response = vigil.submit(view, {"status": input_value("static_select", "identified"),
                                   "summary": input_value("plain_text_input", "")})
    assert response.json() == {"response_action": "errors", "errors": {"summary": "Describe the current situation."}}
    assert current(vigil).status == "investigating"


def _close_values(**overrides):
    values = {"customer_impact": "Checkout failed for 12% of users for 40 minutes",
              "root_cause": "Connection pool exhausted after config change",
              "lessons_learned": "Alert on pool saturation", "follow_ups": "Add pool alert\nLoad test config"}
    values.update(overrides)
    return {k: input_value("plain_text_input", v) for k, v in values.items()}


def test_close_is_refused_to_anyone_but_the_lead_or_an_admin(vigil):
    incident = vigil.declare()
    channel = incident.channel_id
    vigil.command("lead <@U0LEAD>", channel=channel)
    assert "Resolve INC-1 before closing" in vigil.command("close", channel=channel, user="U0LEAD").text
    vigil.command("resolve", channel=channel, user="U0LEAD")
    refused = vigil.command("close", channel=channel, user="U0SOMEONE").text
    assert "Only the incident lead" in refused and "<@U0LEAD>" in refused
    assert current(vigil).status == "resolved"


def test_lead_closes_with_the_close_modal(vigil):
    incident = vigil.declare(severity="sev3")  # sev1, sev2 and security incidents need a second person
    channel = incident.channel_id
    vigil.command("lead <@U0LEAD>", channel=channel)
    vigil.command("resolve", channel=channel, user="U0LEAD")
    vigil.command("close", channel=channel, user="U0LEAD")
    view = vigil.last_view("incident_close")
    assert vigil.submit(view, _close_values(root_cause=""), user="U0LEAD").json()["errors"].keys() == {"root_cause"}
    assert vigil.submit(view, _close_values(), user="U0LEAD").status_code == 200
    state = current(vigil)
    assert state.status == "closed" and state.follow_ups == ["Add pool alert", "Load test config"]
    closed = events(vigil)[-1]
    assert closed.kind == "incident.closed" and closed.actor == "U0LEAD"
    assert vigil.command("note too late", channel=channel).text.startswith(":warning:")


def test_admin_may_close(vigil):
    incident = vigil.declare(severity="sev3")
    vigil.command("resolve", channel=incident.channel_id)
    vigil.command("close", channel=incident.channel_id, user="U0ADMIN")
    view = vigil.last_view("incident_close")
    vigil.submit(view, _close_values(), user="U0ADMIN")
    assert current(vigil).status == "closed"


def test_close_modal_submitted_by_a_non_lead_is_refused_inline(vigil):
    incident = vigil.declare(severity="sev3")
    vigil.command("resolve", channel=incident.channel_id)
    vigil.command("close", channel=incident.channel_id, user="U0ADMIN")
    view = vigil.last_view("incident_close")
    body = vigil.submit(view, _close_values(), user="U0INTRUDER").json()
    assert body["response_action"] == "errors" and "Only the incident lead" in body["errors"]["customer_impact"]
    assert current(vigil).status == "resolved"


def test_milestones_follow_the_events(vigil):
    from vigil_ir.incidents.queries import incident_milestones

    incident = vigil.declare(user="U0DECLARER")
    channel = incident.channel_id
    vigil.command("lead <@U0LEAD>", channel=channel, user="U0DECLARER")
    vigil.command("status monitoring", channel=channel, user="U0LEAD")
    vigil.command("resolve", channel=channel, user="U0LEAD")
    with vigil.db.session() as s:
        m = incident_milestones(s, s.exec(select(Incident)).one())
    assert m.declared <= m.acknowledged <= m.mitigated <= m.resolved
    assert m.closed is None and m.minutes_to_resolve is not None
