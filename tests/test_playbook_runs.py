"""Playbooks in Slack: suggest, attach, Done / Skip / Assign / Undo, deadlines, reminders, close."""

from datetime import timedelta

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep
from tests.slack_requests import input_value, interactive, TEAM


def step_action(vigil, verb: str, step: PlaybookStep, *, user="U0RESP", response_url="http://127.0.0.1:9/x"):
    run = get_run(vigil)
    incident = vigil_incident(vigil)
    payload = {
        "type": "block_actions", "team": TEAM, "api_app_id": "A0VIGIL", "token": "legacy",
        "trigger_id": f"trigger.step.{verb}.{step.id}", "response_url": response_url,
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM["id"]},
        "container": {"type": "message", "message_ts": run.checklist_ts, "channel_id": incident.channel_id},
        "channel": {"id": incident.channel_id, "name": "inc"},
        "message": {"type": "message", "ts": run.checklist_ts, "text": ""},
        "actions": [{"action_id": "playbook_step", "block_id": f"step:{step.id}", "type": "overflow",
                     "selected_option": {"text": {"type": "plain_text", "text": verb}, "value": f"{verb}:{step.id}"},
                     "action_ts": "1.1"}]}
    return vigil.post(interactive(payload))


def vigil_incident(vigil):
    from vigil_ir.incidents.models import Incident

    with vigil.db.session() as s:
        return s.exec(select(Incident)).one()


def get_run(vigil) -> PlaybookRun:
    with vigil.db.session() as s:
        return s.exec(select(PlaybookRun)).one()


def steps(vigil) -> dict[str, PlaybookStep]:
    with vigil.db.session() as s:
        return {st.step_id: st for st in s.exec(select(PlaybookStep).order_by(PlaybookStep.position))}


def deadlines(vigil) -> dict[str, PlaybookDeadline]:
    with vigil.db.session() as s:
        return {d.deadline_id: d for d in s.exec(select(PlaybookDeadline))}


def kinds(vigil):
    with vigil.db.session() as s:
        return [e.kind for e in events_for_stream(s, "incident:1")]


def attached(vigil, fake_slack, severity="sev2"):
    incident = vigil.declare("Primary DB unreachable", severity=severity)
    vigil.command("playbook db-failover", channel=incident.channel_id, user="U0LEAD")
    vigil.deliver()
    return incident


def test_matching_playbooks_are_suggested_with_attach_buttons(vigil, fake_slack):
    incident = vigil.declare("Primary DB unreachable", severity="sev1")
    suggestion = [c for c in fake_slack.calls_to("chat.postMessage") if "playbook" in c.params.get("text", "")]
    assert len(suggestion) == 1 and suggestion[0].params["channel"] == incident.channel_id
    buttons = [b["accessory"]["value"] for b in suggestion[0].params["blocks"] if "accessory" in b]
    assert buttons == ["db-failover", "generic"]
    reply = vigil.command("playbook", channel=incident.channel_id)
    assert "db-failover" in reply.text


def test_attach_records_version_hash_and_content_then_posts_checklist(vigil, fake_slack):
    import hashlib
    from tests.conftest import PLAYBOOK_FIXTURES

    incident = vigil.declare("Primary DB unreachable", severity="sev2")
    body = interactive({"type": "block_actions", "team": TEAM, "user": {"id": "U0LEAD", "team_id": TEAM["id"]},
                        "api_app_id": "A0VIGIL", "token": "legacy", "trigger_id": "t.attach",
                        "container": {"type": "message", "message_ts": "1.1", "channel_id": incident.channel_id},
                        "channel": {"id": incident.channel_id}, "response_url": fake_slack.response_url("a"),
                        "actions": [{"action_id": "playbook_attach", "block_id": "b", "type": "button",
                                     "value": "db-failover", "action_ts": "1.2"}]})
    assert vigil.post(body).status_code == 200
    assert vigil.post(body).status_code == 200  # double click
    vigil.deliver()
    run = get_run(vigil)
    text = (PLAYBOOK_FIXTURES / "db-failover.yaml").read_bytes()
    assert run.sha256 == hashlib.sha256(text).hexdigest() and run.content == text.decode() and run.version == "2.1.0"
    with vigil.db.session() as s:
        (event,) = s.exec(select(Event).where(Event.kind == "playbook.attached")).all()
    assert event.data["sha256"] == run.sha256 and event.data["not_applicable"] == ["sev1-exec-brief"]
    assert "already attached" in fake_slack.responses("a")[0]["text"]
    checklist = [c for c in fake_slack.calls_to("chat.postMessage") if c.params.get("text", "").startswith("Playbook")]
    assert len(checklist) == 1 and run.checklist_ts
    rendered = str(checklist[0].params["blocks"])
    assert "Check replica lag" in rendered and "Tell affected customers" in rendered
    assert steps(vigil)["check-replica"].instructions.startswith("Look at replication lag on the replica for INC-1 (sev2)")


def test_done_skip_assign_undo_through_the_checklist(vigil, fake_slack):
    attached(vigil, fake_slack)
    st = steps(vigil)
    # Done without evidence: immediate. A second click (stale) changes nothing and says who did it.
    assert step_action(vigil, "done", st["check-replica"], user="U0DBA").status_code == 200
    step_action(vigil, "done", st["check-replica"], user="U0OTHER", response_url=fake_slack.response_url("stale"))
    vigil.deliver()
    assert steps(vigil)["check-replica"].completed_by == "U0DBA"
    assert "already done by <@U0DBA>" in fake_slack.responses("stale")[0]["text"]
    # Done with a link as evidence: a modal; a bad link is refused inline.
    step_action(vigil, "done", st["capture-graphs"])
    view = vigil.last_view("playbook_done")
    bad = vigil.submit(view, {"value": input_value("plain_text_input", "not a link")}, user="U0RESP")
    assert bad.json()["response_action"] == "errors"
    ok = vigil.submit(view, {"value": input_value("plain_text_input", "https://grafana.example/d/lag")}, user="U0RESP")
    assert ok.status_code == 200 and steps(vigil)["capture-graphs"].evidence_text == "https://grafana.example/d/lag"
    # Skip without a reason is refused inline; with one it is recorded.
    step_action(vigil, "skip", st["decide-reportable"])
    view = vigil.last_view("playbook_skip")
    assert vigil.submit(view, {"value": input_value("plain_text_input", "  ")}).json()["errors"]["value"]
    vigil.submit(view, {"value": input_value("plain_text_input", "Not personal data")})
    assert steps(vigil)["decide-reportable"].skip_reason == "Not personal data"
    # Assign with the user picker.
    step_action(vigil, "assign", st["promote"])
    view = vigil.last_view("playbook_assign")
    vigil.submit(view, {"value": {"type": "users_select", "selected_user": "U0DBA"}})
    assert steps(vigil)["promote"].assignee == "U0DBA"
    # Undo: a correction event pointing at the completion; the original stays.
    step_action(vigil, "undo", st["check-replica"], user="U0LEAD")
    assert steps(vigil)["check-replica"].status == "open"
    with vigil.db.session() as s:
        reopened = s.exec(select(Event).where(Event.kind == "playbook.step_reopened")).one()
        original = s.get(Event, reopened.corrects)
    assert original.kind == "playbook.step_completed" and original.actor == "U0DBA"
    assert kinds(vigil).count("playbook.step_completed") == 2
    vigil.deliver()
    updates = [c for c in fake_slack.calls_to("chat.update") if c.params["ts"] == get_run(vigil).checklist_ts]
    assert updates and "Not personal data" in str(updates[-1].params["blocks"])


def test_completing_the_met_by_step_meets_the_deadline_and_starts_another(vigil, fake_slack):
    attached(vigil, fake_slack)
    st = steps(vigil)
    assert deadlines(vigil)["regulator"].due_at is None
    step_action(vigil, "done", st["notify-customers"])
    step_action(vigil, "done", st["decide-reportable"])
    d = deadlines(vigil)
    assert d["customer-notice"].status == "met"
    assert d["regulator"].starts_at is not None and d["regulator"].due_at > d["regulator"].starts_at
    assert {"playbook.deadline_met", "playbook.deadline_started"} <= set(kinds(vigil))


def test_overdue_step_reminder_is_sent_once_across_sweeps(vigil, fake_slack):
    attached(vigil, fake_slack)
    later = clock.now() + timedelta(minutes=20)
    first = vigil.sweep(later)
    second = vigil.sweep(later + timedelta(minutes=1))
    assert first["playbook.overdue_steps"] == 1 and second["playbook.overdue_steps"] == 0
    vigil.deliver()
    reminders = [c for c in fake_slack.calls_to("chat.postMessage") if "Overdue playbook step" in c.params["text"]]
    assert len(reminders) == 1 and "Check replica lag" in reminders[0].params["text"]
    assert kinds(vigil).count("playbook.step_overdue_reminded") == 1


def test_deadline_reminders_at_50_90_and_expiry_without_backlog(vigil, fake_slack):
    attached(vigil, fake_slack)
    start = deadlines(vigil)["customer-notice"].starts_at
    assert vigil.sweep(start + timedelta(hours=2, minutes=1))["playbook.deadlines"] == 1   # 50 %
    # After downtime past expiry, only the expiry is announced (not 90 % as well).
    assert vigil.sweep(start + timedelta(hours=5))["playbook.deadlines"] == 1
    assert vigil.sweep(start + timedelta(hours=6))["playbook.deadlines"] == 0
    assert deadlines(vigil)["customer-notice"].status == "missed"
    assert kinds(vigil).count("playbook.deadline_reminded") == 1 and "playbook.deadline_missed" in kinds(vigil)


def test_close_with_open_required_steps_needs_an_override_reason(vigil, fake_slack):
    incident = attached(vigil, fake_slack)
    channel = incident.channel_id
    vigil.command("lead <@U0LEAD>", channel=channel)
    vigil.command("resolve", channel=channel, user="U0LEAD")
    vigil.command("close", channel=channel, user="U0LEAD")
    view = vigil.last_view("incident_close")
    assert "Still open" in str(view["blocks"]) and "Promote the replica" in str(view["blocks"])
    values = {k: input_value("plain_text_input", v) for k, v in {
        "customer_impact": "None", "root_cause": "Disk failure", "override_reason": ""}.items()}
    assert vigil.submit(view, values, user="U0LEAD").json()["errors"]["override_reason"]
    values["override_reason"] = input_value("plain_text_input", "Replica promoted by the cloud provider")
    assert vigil.submit(view, values, user="U0LEAD").status_code == 200
    with vigil.db.session() as s:
        closed = s.exec(select(Event).where(Event.kind == "incident.closed")).one()
    assert closed.data["override_reason"] == "Replica promoted by the cloud provider"
    assert any("Promote the replica" in item for item in closed.data["open_items"])


def test_unknown_playbook_id_lists_the_available_ones(vigil):
    incident = vigil.declare()
    reply = vigil.command("playbook nope", channel=incident.channel_id).text
    assert "no playbook `nope`" in reply and "db-failover" in reply


def test_timeline_exports_include_the_checklist(vigil, fake_slack):
    from vigil_ir.exports.timeline import render_timeline
    from vigil_ir.incidents.queries import by_key

    attached(vigil, fake_slack)
    st = steps(vigil)
    step_action(vigil, "done", st["check-replica"], user="U0DBA")
    step_action(vigil, "skip", st["decide-reportable"])
    vigil.submit(vigil.last_view("playbook_skip"), {"value": input_value("plain_text_input", "Not <b>reportable</b>")})
    with vigil.db.session() as s:
        incident = by_key(s, "INC-1")
        md, html = render_timeline(s, incident, "md"), render_timeline(s, incident, "html")
        doc = __import__("json").loads(render_timeline(s, incident, "json"))
    assert "## Playbook: Database failover" in md and "Check replica lag" in md and "U0DBA" in md
    assert "Not &lt;b&gt;reportable&lt;/b&gt;" in html and "<b>reportable" not in html
    (run,) = doc["playbooks"]
    outcome = {step["step_id"]: (step["status"], step["by"]) for step in run["steps"]}
    assert outcome["check-replica"] == ("done", "U0DBA") and outcome["decide-reportable"][0] == "skipped"
    assert "completed playbook step" in md and "Tell affected customers" in md
