"""Triage: the alert group's Slack message and its buttons (declare, attach, dismiss), the timeline of
linked alerts, detection time from the alerts, auto-declare rules; through the real app."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlmodel import select

from vigil_ir.alerts.models import AlertGroup
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.verify import verify_database
from vigil_ir.state_check import check_state
from vigil_ir.incidents.fold import check_incidents
from vigil_ir.incidents.models import Incident
from tests import slack_requests as sr
from tests.conftest import VigilHarness
from tests.fakes import alert_senders as senders

START = "2026-12-04T06:00:00.123456789Z"
START_AT = datetime(2026, 12, 4, 6, 0, 0, 123456, tzinfo=timezone.utc)


def harness(db, fake_slack, settings_for, **extra):
    from vigil_ir.runtime import build_runtime

    runtime = build_runtime(settings_for(DATABASE_URL=db.url, **senders.settings_overrides(), **extra), db)
    return VigilHarness(runtime, fake_slack)


@pytest.fixture
def alerting(db, fake_slack, settings_for):
    vigil = harness(db, fake_slack, settings_for)
    yield vigil
    vigil.client.close()


def fire(vigil, fingerprint="probe-1", *, status="firing", starts_at=START, ends_at="0001-01-01T00:00:00Z",
         severity="critical", group_key=None):
    alert = senders.am_alert(fingerprint, status=status, starts_at=starts_at, ends_at=ends_at, severity=severity)
    payload = senders.alertmanager([alert], **({"group_key": group_key} if group_key else {}))
    body = senders.encode(payload)
    answer = vigil.client.post("/integrations/alerts/alertmanager", content=body,
                               headers=senders.headers_for("alertmanager", body))
    assert answer.status_code == 200, answer.text
    vigil.deliver()


def triage_message(vigil):
    posts = [c for c in vigil.fake.ok_calls("chat.postMessage") if c.params.get("channel") == "C0TRIAGE"]
    return posts[-1].response["ts"], posts[-1].params


def latest_triage_blocks(vigil):
    ts, posted = triage_message(vigil)
    updates = [c for c in vigil.fake.ok_calls("chat.update") if c.params.get("ts") == ts]
    return (updates[-1].params if updates else posted)["blocks"]


def buttons(blocks):
    return {element["action_id"]: element["value"] for block in blocks if block["type"] == "actions"
            for element in block["elements"]}


def click(vigil, action_id, *, user="U0CLICKER"):
    ts, posted = triage_message(vigil)
    value = buttons(posted["blocks"])[action_id]
    answer = vigil.post(sr.block_action(action_id, value, channel="C0TRIAGE", message_ts=ts, user=user,
                                        response_url=vigil.fake.response_url("triage")))
    assert answer.status_code == 200, answer.text
    return value


def group_of(vigil) -> AlertGroup:
    with vigil.db.session() as session:
        return session.exec(select(AlertGroup).order_by(AlertGroup.id.desc())).first()


def stream(vigil, name) -> list[Event]:
    with vigil.db.session() as session:
        return list(session.exec(select(Event).where(Event.stream == name).order_by(Event.stream_seq)))


def incident(vigil, number=1) -> Incident:
    with vigil.db.session() as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def replies(vigil) -> list[str]:
    vigil.deliver()
    return [r.get("text", "") for r in vigil.fake.responses("triage")]


def test_declare_from_an_alert_prefills_the_form_and_detection_is_the_alerts_start(alerting):
    fire(alerting)
    assert set(buttons(triage_message(alerting)[1]["blocks"])) == {"alert_declare", "alert_attach", "alert_dismiss"}
    click(alerting, "alert_declare", user="U0ONCALL")
    view = alerting.last_view("incident_declare")
    fields = {block["block_id"]: block["element"] for block in view["blocks"] if block["type"] == "input"}
    assert fields["title"]["initial_value"] == "BlackBox Probe Failure: https://server.example.org"
    assert fields["severity"]["initial_option"]["value"] == "sev1"
    assert fields["detected_at"]["initial_date_time"] == int(START_AT.timestamp())
    answer = alerting.submit(view, {"title": sr.input_value("plain_text_input", fields["title"]["initial_value"]),
                                    "severity": sr.input_value("static_select", "sev1"),
                                    "type": sr.input_value("static_select", "availability"),
                                    "detected_at": sr.input_value("datetimepicker", int(START_AT.timestamp()))},
                             user="U0ONCALL")
    assert answer.status_code == 200 and answer.text in ("", "{}"), answer.text
    alerting.deliver()
    declared = incident(alerting)
    assert declared.detected_at.replace(tzinfo=timezone.utc) == START_AT  # to the microsecond, not the form's minute
    group = group_of(alerting)
    assert (group.state, group.incident_id, group.decided_by) == ("declared", declared.id, "U0ONCALL")
    kinds = [(e.kind, e.actor) for e in stream(alerting, declared.stream)]
    assert ("incident.alerts_linked", "U0ONCALL") in kinds and ("incident.alert_fired", "system:alertmanager") in kinds
    assert "Declared as *INC-1*" in str(latest_triage_blocks(alerting))
    assert buttons(latest_triage_blocks(alerting)) == {}
    # The alert resolves and fires again: both on the incident's timeline at their own times.
    fire(alerting, status="resolved", ends_at="2026-12-04T06:20:00Z")
    fire(alerting, starts_at="2026-12-04T06:40:00Z")
    timeline = [(e.kind, e.occurred_at.strftime("%H:%M")) for e in stream(alerting, declared.stream)
                if e.kind.startswith("incident.alert_")]
    assert timeline == [("incident.alert_fired", "06:00"), ("incident.alert_resolved", "06:20"),
                        ("incident.alert_refired", "06:40")]
    with alerting.db.session() as session:
        assert check_incidents(session) == []


def test_a_detection_time_the_declarer_changed_is_kept(alerting):
    fire(alerting)
    click(alerting, "alert_declare")
    view = alerting.last_view("incident_declare")
    chosen = int(datetime(2026, 12, 4, 5, 30, tzinfo=timezone.utc).timestamp())
    alerting.submit(view, {"title": sr.input_value("plain_text_input", "Probe failures"),
                           "severity": sr.input_value("static_select", "sev2"),
                           "type": sr.input_value("static_select", "availability"),
                           "detected_at": sr.input_value("datetimepicker", chosen)})
    assert incident(alerting).detected_at.replace(tzinfo=timezone.utc).timestamp() == chosen
    assert not [e for e in stream(alerting, "incident:1") if e.kind == "incident.detected_at_changed"]


def test_attach_to_an_open_incident_moves_detection_to_the_earliest_alert(alerting):
    alerting.declare("Checkout is slow", severity="sev2")
    fire(alerting)
    click(alerting, "alert_attach")
    view = alerting.last_view("alert_attach")
    options = view["blocks"][-1]["element"]["options"]
    assert [o["text"]["text"] for o in options] == ["INC-1 · Checkout is slow"]
    missing = alerting.submit(view, {"incident": sr.input_value("static_select", None)}, user="U0CLICKER")
    assert missing.json()["response_action"] == "errors" and group_of(alerting).state == "open"
    answer = alerting.submit(view, {"incident": sr.input_value("static_select", options[0]["value"])}, user="U0CLICKER")
    assert answer.status_code == 200 and answer.text in ("", "{}"), answer.text
    alerting.deliver()
    attached = incident(alerting)
    assert group_of(alerting).state == "attached"
    assert attached.detected_at.replace(tzinfo=timezone.utc) == START_AT
    [moved] = [e for e in stream(alerting, attached.stream) if e.kind == "incident.detected_at_changed"]
    assert moved.data["to"] == "2026-12-04T06:00:00.123456Z"
    assert "Attached to *INC-1*" in str(latest_triage_blocks(alerting))
    assert any("attached 1 alert from alertmanager" in c.params.get("text", "")
               for c in alerting.fake.ok_calls("chat.postMessage") if c.params["channel"] == attached.channel_id)
    with alerting.db.session() as session:
        assert check_incidents(session) == []
    # The same alert group keeps feeding the open incident: no new triage message.
    fire(alerting, "probe-2")
    assert len([c for c in alerting.fake.ok_calls("chat.postMessage") if c.params["channel"] == "C0TRIAGE"]) == 1
    assert [e.data["fingerprint"] for e in stream(alerting, attached.stream) if e.kind == "incident.alert_fired"] == [
        "probe-1", "probe-2"]
    with alerting.db.session() as session:
        assert verify_database(session).ok  # the alert streams chain like every other
        assert check_state(session).found == []


def test_dismiss_needs_a_reason_and_a_later_firing_is_triaged_afresh(alerting):
    fire(alerting)
    click(alerting, "alert_dismiss")
    view = alerting.last_view("alert_dismiss")
    empty = alerting.submit(view, {"reason": sr.input_value("plain_text_input", "  ")}, user="U0CLICKER")
    assert empty.json()["response_action"] == "errors" and group_of(alerting).state == "open"
    alerting.submit(view, {"reason": sr.input_value("plain_text_input", "Planned maintenance")}, user="U0CLICKER")
    alerting.deliver()
    group = group_of(alerting)
    assert (group.state, group.reason, group.decided_by) == ("dismissed", "Planned maintenance", "U0CLICKER")
    assert [e.kind for e in stream(alerting, group.stream)][-1] == "alert_group.dismissed"
    assert "Dismissed by <@U0CLICKER>: Planned maintenance" in str(latest_triage_blocks(alerting))
    # A second click on the old message is told who decided; nothing changes.
    click(alerting, "alert_dismiss", user="U0OTHER")
    assert any("already dismissed by <@U0CLICKER>" in text for text in replies(alerting))
    fire(alerting, "probe-1", starts_at="2026-12-04T07:00:00Z", status="resolved", ends_at="2026-12-04T06:50:00Z")
    fire(alerting, "probe-1", starts_at="2026-12-04T07:00:00Z")
    assert group_of(alerting).id != group.id and group_of(alerting).state == "open"
    assert len([c for c in alerting.fake.ok_calls("chat.postMessage") if c.params["channel"] == "C0TRIAGE"]) == 2


def test_each_choice_asks_the_permissions_policy(db, fake_slack, settings_for):
    vigil = harness(db, fake_slack, settings_for,
                    VIGIL_PERMISSIONS="dismiss_alert=commanders,admins;attach_alert=admins;declare=admins")
    try:
        fire(vigil)
        for action in ("alert_dismiss", "alert_attach", "alert_declare"):
            click(vigil, action, user="U0NOBODY")
        texts = replies(vigil)
        assert any("Only a commander" in t and "dismiss these alerts" in t for t in texts), texts
        assert any("attach these alerts to an incident" in t for t in texts), texts
        assert any("declare an incident" in t for t in texts), texts
        assert vigil.fake.calls_to("views.open") == []
        assert group_of(vigil).state == "open"
        # A form opened by an admin and submitted by someone else is refused too (inline, nothing written).
        vigil.declare("Checkout is slow", user="U0ADMIN")
        click(vigil, "alert_attach", user="U0ADMIN")
        view = vigil.last_view("alert_attach")
        refused = vigil.submit(view, {"incident": sr.input_value("static_select", view["blocks"][-1]["element"]
                                                                 ["options"][0]["value"])}, user="U0NOBODY")
        assert "Only an admin" in refused.json()["errors"]["incident"]
        assert group_of(vigil).state == "open"
    finally:
        vigil.client.close()


def test_auto_declare_rules_declare_for_chosen_severities(db, fake_slack, settings_for):
    vigil = harness(db, fake_slack, settings_for, VIGIL_ALERT_AUTO_DECLARE="sev1")
    try:
        fire(vigil, "warn-1", severity="warning", group_key="warnings")
        fire(vigil, "crit-1", severity="critical")
        with vigil.db.session() as session:
            incidents = list(session.exec(select(Incident)))
        [declared] = incidents
        assert (declared.declared_by, declared.severity, declared.title) == (
            "system:alerts", "sev1", "BlackBox Probe Failure: https://server.example.org")
        assert declared.detected_at.replace(tzinfo=timezone.utc) == START_AT
        assert declared.channel_id  # set up like any incident
        triage = [c.params["text"] for c in vigil.fake.ok_calls("chat.postMessage") if c.params["channel"] == "C0TRIAGE"]
        assert len(triage) == 1 and "sev3" in triage[0]  # only the warning waits for a person
        [linked] = [e for e in stream(vigil, declared.stream) if e.kind == "incident.alerts_linked"]
        assert linked.data["rule"] == "VIGIL_ALERT_AUTO_DECLARE=sev1" and linked.actor == "system:alerts"
    finally:
        vigil.client.close()
