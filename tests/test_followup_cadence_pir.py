"""Status-update cadence, unfilled-lead reminder, and post-incident reviews."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.eventlog import Event
from vigil_ir.followup.models import PostIncidentReview
from vigil_ir.followup.policy import Policy
from vigil_ir.incidents.models import Incident
from tests.slack_requests import block_action, input_value


def kinds(vigil):
    with vigil.db.session() as s:
        return [e.kind for e in s.exec(select(Event).where(Event.stream == "incident:1").order_by(Event.stream_seq))]


def reminders(fake_slack, phrase):
    return [c for c in fake_slack.calls_to("chat.postMessage") if phrase in c.params["text"]]


def incident_row(vigil) -> Incident:
    with vigil.db.session() as s:
        return s.exec(select(Incident)).one()


def test_policy_parsing_and_errors():
    policy = Policy.from_settings(Settings(_env_file=None))
    assert policy.update_cadence["sev1"] == timedelta(minutes=30) and policy.update_cadence["sev4"] is None
    assert policy.pir_business_days == {"sev1": 5, "sev2": 5, "sev3": 10, "sev4": None}
    for bad in ("sev1=30m", "sev1=30m,sev2=1h,sev3=4h,sev4=soon", "sev9=1h", "sev1=30m,sev1=1h"):
        with pytest.raises(ValueError, match="VIGIL_UPDATE_CADENCE"):
            Policy.from_settings(Settings(_env_file=None, VIGIL_UPDATE_CADENCE=bad))


def test_business_days_skip_weekends_and_holidays():
    policy = Policy.from_settings(Settings(_env_file=None, VIGIL_HOLIDAYS="2026-12-25, 2026-12-28"))
    thursday = datetime(2026, 12, 24, 15, 0, tzinfo=timezone.utc)
    # Fri 25 holiday, weekend, Mon 28 holiday: 1 business day later is Tue 29.
    assert policy.add_business_days(thursday, 1) == datetime(2026, 12, 29, 15, 0, tzinfo=timezone.utc)
    assert policy.add_business_days(thursday, 5) == datetime(2027, 1, 4, 15, 0, tzinfo=timezone.utc)


def test_update_reminder_once_per_due_time_with_snooze_and_stop_on_resolve(vigil, fake_slack):
    incident = vigil.declare(severity="sev1")
    declared = clock.to_utc(incident.declared_at)
    assert vigil.sweep(declared + timedelta(minutes=29))["incident.update_due"] == 0
    assert vigil.sweep(declared + timedelta(minutes=31))["incident.update_due"] == 1
    assert vigil.sweep(declared + timedelta(minutes=45))["incident.update_due"] == 0  # nothing more until next due
    vigil.deliver()
    (reminder,) = reminders(fake_slack, "status update on INC-1 is due")
    buttons = [e["action_id"] for b in reminder.params["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["incident_post_update", "incident_snooze_update"]
    # Snooze (double click: once), recorded with who.
    for _ in range(2):
        vigil.post(block_action("incident_snooze_update", str(incident.id), channel=incident.channel_id,
                                message_ts=reminder.response["ts"], user="U0COMMS",
                                response_url=fake_slack.response_url("snooze")))
    assert kinds(vigil).count("incident.update_snoozed") == 1
    snoozed_until = clock.to_utc(incident_row(vigil).next_update_due)
    with vigil.db.session() as s:
        snooze = s.exec(select(Event).where(Event.kind == "incident.update_snoozed")).one()
    assert snooze.actor == "U0COMMS"
    assert vigil.sweep(snoozed_until + timedelta(minutes=1))["incident.update_due"] == 1
    vigil.command("resolve", channel=incident.channel_id)
    assert vigil.sweep(snoozed_until + timedelta(hours=5))["incident.update_due"] == 0
    assert kinds(vigil).count("incident.update_reminded") == 2


def test_posting_an_update_sets_the_next_due_time_from_the_cadence(vigil):
    incident = vigil.declare(severity="sev2")
    vigil.command("update", channel=incident.channel_id)
    vigil.submit(vigil.last_view("incident_update"), {"status": input_value("static_select", "identified"),
                                                      "summary": input_value("plain_text_input", "Found it")})
    due = clock.to_utc(incident_row(vigil).next_update_due)
    assert timedelta(minutes=59) < due - clock.now() <= timedelta(minutes=60)


def test_sev4_has_no_cadence(vigil):
    incident = vigil.declare(severity="sev4")
    assert vigil.sweep(clock.to_utc(incident.declared_at) + timedelta(days=3))["incident.update_due"] == 0


def test_missing_lead_reminded_once_after_ten_minutes(vigil, fake_slack):
    incident = vigil.declare()
    declared = clock.to_utc(incident.declared_at)
    assert vigil.sweep(declared + timedelta(minutes=9))["incident.lead_missing"] == 0
    assert vigil.sweep(declared + timedelta(minutes=11))["incident.lead_missing"] == 1
    assert vigil.sweep(declared + timedelta(minutes=30))["incident.lead_missing"] == 0
    vigil.deliver()
    assert len(reminders(fake_slack, "has no incident lead yet")) == 1


def _pir_values(**overrides):
    values = {"summary": "Checkout failed for 40 minutes", "root_cause": "Pool exhausted",
              "went_well": "Fast rollback", "detection_gap": "No alert on pool saturation"}
    values.update(overrides)
    state = {k: input_value("plain_text_input", v) for k, v in values.items()}
    state["held_at"] = input_value("datetimepicker", int(clock.now().timestamp()) - 3600)
    state["attendees"] = {"type": "multi_users_select", "selected_users": ["U0LEAD", "U0DBA"]}
    state["plan_change"] = {"type": "radio_buttons", "selected_option": {"value": "yes"}}
    return state


def test_resolve_schedules_pir_and_the_form_records_it_with_a_document(vigil, fake_slack):
    incident = vigil.declare(severity="sev2")
    vigil.command("lead <@U0LEAD>", channel=incident.channel_id)
    assert "Resolve INC-1 first" in vigil.command("pir", channel=incident.channel_id).text
    reply = vigil.command("resolve", channel=incident.channel_id, user="U0LEAD").text
    assert "Post-incident review due" in reply
    with vigil.db.session() as s:
        review = s.exec(select(PostIncidentReview)).one()
    assert review.required and review.facilitator == "U0LEAD" and review.due_at.weekday() < 5
    vigil.command("pir", channel=incident.channel_id, user="U0LEAD")
    view = vigil.last_view("incident_pir")
    bad = vigil.submit(view, {**_pir_values(root_cause=""), "attendees": {"type": "multi_users_select",
                                                                          "selected_users": []}}, user="U0LEAD")
    assert set(bad.json()["errors"]) == {"root_cause", "attendees"}
    assert vigil.submit(view, _pir_values(), user="U0LEAD").status_code == 200
    with vigil.db.session() as s:
        review = s.exec(select(PostIncidentReview)).one()
        completed = s.exec(select(Event).where(Event.kind == "pir.completed")).one()
    assert review.status == "completed" and review.attendees == ["U0LEAD", "U0DBA"] and review.plan_change_needed
    assert completed.data["root_cause"] == "Pool exhausted" and completed.data["on_time"] is True
    vigil.deliver()
    (file_id,) = fake_slack.uploads
    document = fake_slack.uploads[file_id].decode()
    assert "# Post-incident review: INC-1" in document and "Pool exhausted" in document and "Timeline" in document
    assert fake_slack.files[file_id]["channel"] == incident.channel_id
    assert "pir.document_posted" in kinds(vigil)
    assert "already recorded" not in vigil.command("pir", channel=incident.channel_id).text
    assert "was recorded by" in vigil.command("pir", channel=incident.channel_id).text


def test_pir_reminders_follow_the_schedule_without_backlog(vigil, fake_slack):
    incident = vigil.declare(severity="sev1")
    vigil.command("resolve", channel=incident.channel_id)
    with vigil.db.session() as s:
        due = clock.to_utc(s.exec(select(PostIncidentReview)).one().due_at)
    assert vigil.sweep(due - timedelta(days=2))["pir.due"] == 0
    assert vigil.sweep(due - timedelta(hours=20))["pir.due"] == 1       # the day before
    assert vigil.sweep(due - timedelta(hours=19))["pir.due"] == 0
    assert vigil.sweep(due + timedelta(days=4))["pir.due"] == 1         # downtime: only "overdue 3 days"
    assert vigil.sweep(due + timedelta(days=8))["pir.due"] == 1         # overdue 7 days
    assert kinds(vigil).count("pir.reminded") == 3


def test_sev4_pir_is_optional_and_not_reminded(vigil):
    incident = vigil.declare(severity="sev4")
    assert "optional" in vigil.command("resolve", channel=incident.channel_id).text
    assert vigil.sweep(clock.now() + timedelta(days=30))["pir.due"] == 0


def test_export_pirs_lists_every_incident_of_the_period(vigil):
    import csv
    import io

    from click.testing import CliRunner

    from vigil_ir.cli import main

    first = vigil.declare("First", severity="sev2")
    vigil.command("resolve", channel=first.channel_id)
    vigil.command("pir", channel=first.channel_id)
    vigil.submit(vigil.last_view("incident_pir"), _pir_values(root_cause="=HYPERLINK(\"x\")"))
    vigil.declare("Second", severity="sev3")
    today = clock.now().strftime("%Y-%m-%d")
    result = CliRunner().invoke(main, ["export", "pirs", "--from", today, "--to", today, "--format", "csv"],
                                obj={"database": vigil.db})
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["incident_ref"] for r in rows] == ["INC-1", "INC-2"]
    assert rows[0]["status"] == "completed" and rows[0]["root_cause"].startswith("'=")
    assert rows[0]["on_time"] == "true" and len(rows[0]["record_hash"]) == 64
    assert rows[1]["status"].startswith("not scheduled")


def test_timeline_export_includes_the_review_and_actions(vigil):
    import json

    from vigil_ir.exports.timeline import render_timeline
    from vigil_ir.incidents.queries import by_key

    incident = vigil.declare(severity="sev2")
    vigil.command("action <@U0FIXER> 3d Add a pool saturation alert", channel=incident.channel_id)
    vigil.command("resolve", channel=incident.channel_id)
    vigil.command("pir", channel=incident.channel_id)
    vigil.submit(vigil.last_view("incident_pir"), _pir_values(went_poorly="<script>alert(1)</script>"))
    with vigil.db.session() as s:
        found = by_key(s, "INC-1")
        doc = json.loads(render_timeline(s, found, "json"))
        md, html = render_timeline(s, found, "md"), render_timeline(s, found, "html")
    assert doc["post_incident_review"]["root_cause"] == "Pool exhausted"
    assert doc["actions"][0]["key"] == "ACT-1" and doc["actions"][0]["owner"] == "U0FIXER"
    assert "## Post-incident review" in md and "## Follow-up actions" in md and "recorded the post-incident review" in md
    assert "&lt;script&gt;" in html and "<script>alert" not in html
