"""Follow-up actions through signed Slack requests: create (command, close form, shortcut), DMs,
Done / Update, double clicks and stale buttons, and `/incident actions`."""

from datetime import date, datetime, timedelta, timezone

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event, events_for_stream
from vigil_ir.followup import actions
from vigil_ir.followup.models import ActionItem
from vigil_ir.runtime import build_runtime
from tests.conftest import VigilHarness
from tests.slack_requests import block_action, input_value, message_shortcut

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)  # a Monday
OWNER, LEAD = "U0OWNER", "U0LEAD"


def rows(vigil) -> list[ActionItem]:
    with vigil.db.session() as s:
        return list(s.exec(select(ActionItem).order_by(ActionItem.number)))


def stream(vigil, number=1) -> list[Event]:
    with vigil.db.session() as s:
        return events_for_stream(s, f"action:{number}")


def dms(fake_slack, user) -> list[dict]:
    return [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == user]


def buttons(message: dict) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.get("blocks") or [] if b["type"] == "actions"
            for e in b["elements"]}


def click(vigil, fake_slack, action_id: str, message: dict, user: str, name: str):
    body = block_action(action_id, buttons(message)[action_id], channel=message["channel"],
                        message_ts=message.get("ts", "1.000001"), user=user, response_url=fake_slack.response_url(name))
    assert vigil.post(body).status_code == 200
    vigil.deliver()
    return [r["text"] for r in fake_slack.responses(name)]


def create_by_command(vigil, text=f"<@{OWNER}|owner> 2025-06-12 Add an alert on replica lag", **kwargs):
    incident = vigil.declare()
    reply = vigil.command(f"action {text}", channel=incident.channel_id, user=LEAD, **kwargs)
    vigil.deliver()
    return incident, reply


def test_command_creates_an_action_dms_the_owner_and_posts_in_the_channel(vigil, fake_slack):
    with clock.frozen(T0):
        incident, reply = create_by_command(vigil)
    assert "Created *ACT-1* for <@U0OWNER>" in reply.text
    (action,) = rows(vigil)
    assert (action.owner, action.due_on, action.incident_id, action.type, action.status, action.created_by) == (
        OWNER, date(2025, 6, 12), incident.id, "corrective", "open", LEAD)
    (created,) = stream(vigil)
    assert created.kind == "action.created" and created.actor == LEAD and created.data["incident"] == "INC-1"
    assert created.data["state"]["description"] == "Add an alert on replica lag"
    (dm,) = dms(fake_slack, OWNER)
    assert "<@U0LEAD> assigned you *ACT-1* (INC-1)" in dm["text"] and "<!date^" in dm["text"]
    assert set(buttons(dm)) == {"action_item_done", "action_item_update"}
    posted = [c.params["text"] for c in fake_slack.calls_to("chat.postMessage")
              if c.params["channel"] == incident.channel_id]
    assert any("added follow-up *ACT-1*" in t for t in posted)


def test_relative_due_dates_count_from_the_persons_own_day(vigil, fake_slack):
    fake_slack.set_user("U0KIWI", tz="Pacific/Auckland")  # UTC+12: already 3 June there at T0 + 11 h
    with clock.frozen(T0 + timedelta(hours=11)):
        incident = vigil.declare()
        for due in ("3d", "2w", "tomorrow"):
            vigil.command(f"action <@{OWNER}> {due} Task {due}", channel=incident.channel_id, user="U0KIWI")
    assert [a.due_on for a in rows(vigil)] == [date(2025, 6, 6), date(2025, 6, 17), date(2025, 6, 4)]


def test_bad_command_input_answers_with_usage_and_writes_nothing(vigil, fake_slack):
    incident = vigil.declare()
    for text in ("action", "action @owner 3d Fix it", f"action <@{OWNER}> soon Fix it", f"action <@{OWNER}> 3d",
                 f"action <@{OWNER}> 2025-02-30 Fix it", f"action Fix it <@{OWNER}> 3d"):
        reply = vigil.command(text, channel=incident.channel_id).text
        assert reply.startswith("Usage: `/incident action @owner"), (text, reply)
    past = vigil.command(f"action <@{OWNER}> 2020-01-01 Fix it", channel=incident.channel_id).text
    assert past.startswith(":warning:") and "has passed" in past
    outside = vigil.command(f"action <@{OWNER}> 3d Fix it", channel="C0RANDOM").text
    assert "works inside an incident channel" in outside
    with vigil.db.session() as s:
        assert rows(vigil) == [] and not s.exec(select(Event).where(Event.stream.like("action:%"))).first()


def test_user_text_is_escaped_in_dms_and_posts(vigil, fake_slack):
    create_by_command(vigil, f"<@{OWNER}> 3d Stop <!channel> & <b>pings</b>")
    texts = [c.params["text"] for c in fake_slack.calls_to("chat.postMessage") if "ACT-1" in c.params["text"]]
    assert texts and all("&lt;!channel&gt; &amp; &lt;b&gt;" in t and "<!channel>" not in t for t in texts)


def close_incident(vigil, follow_ups: str, user=LEAD):
    incident = vigil.declare()
    vigil.command(f"lead <@{user}>", channel=incident.channel_id)
    vigil.command("resolve", channel=incident.channel_id, user=user)
    vigil.command("close", channel=incident.channel_id, user=user)
    view = vigil.last_view("incident_close")
    values = {k: input_value("plain_text_input", v) for k, v in {
        "customer_impact": "Checkout failed for 20 min", "root_cause": "Bad deploy", "follow_ups": follow_ups}.items()}
    return incident, vigil.submit(view, values, user=user)


def test_close_form_lines_become_actions_owned_by_the_closer(vigil, fake_slack):
    due = (date.today() + timedelta(days=20)).isoformat()
    incident, response = close_incident(vigil, f"{due} Add canary checks\n\n- Write the rollback runbook\n")
    assert response.status_code == 200 and "errors" not in response.text
    assert [(a.description, a.due_on, a.owner, a.incident_id) for a in rows(vigil)] == [
        ("Add canary checks", date.fromisoformat(due), LEAD, incident.id),
        ("Write the rollback runbook", None, LEAD, incident.id)]
    assert stream(vigil, 2)[0].data["source"] == "close"
    vigil.deliver()
    owned = [m for m in dms(fake_slack, LEAD) if m["text"].startswith(":clipboard: You own")]
    assert [("*ACT-1* (INC-1)" in m["text"], "*ACT-2* (INC-1)" in m["text"]) for m in owned] == [
        (True, False), (False, True)]
    assert all(set(buttons(m)) == {"action_item_done", "action_item_update"} for m in owned)
    assert "\nNo due date." in owned[1]["text"]


def test_a_bad_date_in_a_close_line_is_refused_inline_and_nothing_closes(vigil):
    incident, response = close_incident(vigil, "Add canary checks\n2025-13-01 Rotate keys")
    assert response.json()["errors"] == {"follow_ups": "Follow-up line 2: 2025-13-01 is not a date (YYYY-MM-DD)."}
    assert rows(vigil) == []
    with vigil.db.session() as s:
        assert not s.exec(select(Event).where(Event.kind == "incident.closed")).first()


def shortcut(vigil, channel: str, text: str, user=LEAD):
    body = message_shortcut("create_action", channel=channel, user=user,
                            message={"ts": "1717320000.000100", "text": text, "user": "U0AUTHOR"})
    assert vigil.post(body).status_code == 200
    return vigil.last_view("action_item_create")


def create_values(description="Rotate the leaked key", owner=OWNER, due=None, url="", type_="preventive"):
    due = due or (date.today() + timedelta(days=7)).isoformat()
    return {"description": input_value("plain_text_input", description),
            "owner": {"type": "users_select", "selected_user": owner},
            "due_on": {"type": "datepicker", "selected_date": due},
            "type": input_value("static_select", type_), "ticket_url": {"type": "url_text_input", "value": url}}


def test_shortcut_in_an_incident_channel_links_the_action_with_the_message_link(vigil, fake_slack):
    incident = vigil.declare()
    view = shortcut(vigil, incident.channel_id, "We should rotate &lt;all&gt; keys")
    description = view["blocks"][1]["element"]["initial_value"]
    link = f"https://fake.slack.com/archives/{incident.channel_id}/p1717320000000100"
    assert description == f"We should rotate <all> keys\n\n{link}"
    assert view["blocks"][2]["element"]["initial_user"] == LEAD and "INC-1" in str(view["blocks"][0])
    # Bad input is refused next to the field, and nothing is written.
    bad = vigil.submit(view, create_values(description=" ", due="2020-01-01", url="not a link"), user=LEAD).json()
    assert set(bad["errors"]) == {"description", "due_on", "ticket_url"}
    assert rows(vigil) == []
    # The same submission delivered twice creates one action.
    good = create_values(url="https://tickets.example/SEC-12")
    for _ in range(2):
        assert vigil.submit(view, good, user=LEAD, view_id="VCREATE1").status_code == 200
    (action,) = rows(vigil)
    assert (action.incident_id, action.owner, action.type, action.ticket_url) == (
        incident.id, OWNER, "preventive", "https://tickets.example/SEC-12")
    assert stream(vigil)[0].data["source_ref"]["permalink"] == link
    vigil.deliver()
    assert len(dms(fake_slack, OWNER)) == 1


def test_shortcut_outside_an_incident_channel_creates_an_unlinked_action(vigil, fake_slack):
    view = shortcut(vigil, "C0RANDOM", "Renew the TLS certificate")
    assert "Not linked" in str(view["blocks"][0])
    vigil.submit(view, create_values(description="Renew the TLS certificate"), user=LEAD)
    (action,) = rows(vigil)
    assert action.incident_id is None and action.owner == OWNER
    vigil.deliver()
    assert any("Created *ACT-1*" in m["text"] for m in dms(fake_slack, LEAD))


def test_done_records_completion_once_and_double_clicks_say_who_did_it(vigil, fake_slack):
    create_by_command(vigil, f"<@{OWNER}> 3d Add an alert")
    (dm,) = dms(fake_slack, OWNER)
    assert click(vigil, fake_slack, "action_item_done", dm, OWNER, "first") == []
    again = click(vigil, fake_slack, "action_item_done", dm, OWNER, "second")
    assert len(again) == 1 and "ACT-1 is already done (by <@U0OWNER> <!date^" in again[0]
    (action,) = rows(vigil)
    assert (action.status, action.completed_by) == ("done", OWNER) and action.completed_at
    assert [e.kind for e in stream(vigil)] == ["action.created", "action.completed"]
    assert stream(vigil)[1].data["changes"]["status"] == {"from": "open", "to": "done"}
    # The clicker is offered a place for evidence.
    offer = [m for m in dms(fake_slack, OWNER) if "is done" in m["text"]]
    assert len(offer) == 1 and set(buttons(offer[0])) == {"action_item_update"}


def update_values(status="open", reason="", owner=OWNER, due=None, url="", evidence=""):
    return {"status": input_value("static_select", status), "reason": input_value("plain_text_input", reason),
            "owner": {"type": "users_select", "selected_user": owner},
            "due_on": {"type": "datepicker", "selected_date": due},
            "ticket_url": {"type": "url_text_input", "value": url},
            "evidence": input_value("plain_text_input", evidence)}


def open_update(vigil, fake_slack, dm, user=OWNER):
    click(vigil, fake_slack, "action_item_update", dm, user, f"upd-{len(fake_slack.calls)}")
    return vigil.last_view("action_item_update")


def test_update_cancel_needs_a_reason_and_a_stale_done_button_says_so(vigil, fake_slack):
    with clock.frozen(T0):
        create_by_command(vigil)
    (dm,) = dms(fake_slack, OWNER)
    view = open_update(vigil, fake_slack, dm)
    assert view["blocks"][1]["element"]["initial_option"]["value"] == "open"
    refused = vigil.submit(view, update_values(status="cancelled", due="2025-06-12"), user=OWNER).json()
    assert refused["errors"] == {"reason": "Say why ACT-1 is cancelled: the reason stays on its record."}
    assert rows(vigil)[0].status == "open"
    with clock.frozen(T0 + timedelta(days=1)):
        vigil.submit(view, update_values(status="cancelled", reason="Replaced by ACT-2", due="2025-06-12"), user=OWNER)
    (action,) = rows(vigil)
    assert (action.status, action.status_reason) == ("cancelled", "Replaced by ACT-2")
    cancelled = stream(vigil)[-1]
    assert cancelled.kind == "action.cancelled" and cancelled.data["changes"]["status_reason"] == {
        "from": "", "to": "Replaced by ACT-2"}
    # The Done button on the original DM is now stale: nothing changes, and it says who and when.
    stale = click(vigil, fake_slack, "action_item_done", dm, "U0OTHER", "stale")
    assert "ACT-1 was cancelled (Replaced by ACT-2) (by <@U0OWNER>" in stale[0]
    assert f"<!date^{int((T0 + timedelta(days=1)).timestamp())}^" in stale[0]
    assert rows(vigil)[0].status == "cancelled" and len(stream(vigil)) == 2


def test_update_reassigns_sets_ticket_and_evidence_in_one_event(vigil, fake_slack):
    create_by_command(vigil, f"<@{OWNER}> 3d Add an alert")
    (dm,) = dms(fake_slack, OWNER)
    view = open_update(vigil, fake_slack, dm)
    due = rows(vigil)[0].due_on.isoformat()
    bad = vigil.submit(view, update_values(status="in_progress", due=due, url="ftp://x"), user=OWNER).json()
    assert set(bad["errors"]) == {"ticket_url"}
    vigil.submit(view, update_values(status="in_progress", owner="U0NEW", due=due,
                                     url="https://tickets.example/OPS-7", evidence="Draft alert in staging"),
                 user=OWNER)
    (action,) = rows(vigil)
    assert (action.status, action.owner, action.ticket_url, action.evidence) == (
        "in_progress", "U0NEW", "https://tickets.example/OPS-7", "Draft alert in staging")
    event = stream(vigil)[-1]
    assert event.kind == "action.status_changed" and set(event.data["changes"]) == {
        "status", "owner", "ticket_url", "evidence"}
    assert event.data["changes"]["owner"] == {"from": OWNER, "to": "U0NEW"}
    vigil.deliver()
    (assigned,) = dms(fake_slack, "U0NEW")
    assert "<@U0OWNER> assigned you *ACT-1* (INC-1)" in assigned["text"] and "action_item_done" in buttons(assigned)
    assert any("reassigned *ACT-1* (INC-1) to <@U0NEW>" in m["text"] for m in dms(fake_slack, OWNER))
    # The form opened before that change is stale now: refused, nothing written.
    again = vigil.submit(view, update_values(status="done", owner="U0NEW", due=due), user=OWNER).json()
    assert "changed after you opened the form" in again["errors"]["status"] and rows(vigil)[0].status == "in_progress"


def test_someone_else_completing_tells_the_owner(vigil, fake_slack):
    create_by_command(vigil, f"<@{OWNER}> 3d Add an alert")
    (dm,) = dms(fake_slack, OWNER)
    click(vigil, fake_slack, "action_item_done", dm, "U0HELPER", "helper")
    told = [m for m in dms(fake_slack, OWNER) if "<@U0HELPER> updated *ACT-1*" in m["text"]]
    assert len(told) == 1 and "status: open → done" in told[0]["text"]


def test_list_variants(vigil, fake_slack):
    with clock.frozen(T0):
        incident = vigil.declare()
        other = vigil.declare("Second incident")
        for channel, text in ((incident.channel_id, f"<@{OWNER}> 2025-06-03 Overdue one"),
                              (incident.channel_id, f"<@{LEAD}> 2025-06-20 Lead's"),
                              (other.channel_id, f"<@{OWNER}> 2025-06-30 Elsewhere")):
            vigil.command(f"action {text}", channel=channel, user=LEAD)
        vigil.command(f"action <@{OWNER}> 3d Done already", channel=incident.channel_id, user=LEAD)
        with vigil.db.session() as s:
            actions.complete(s, action=actions.by_key(s, "ACT-4"), actor=OWNER)
    with clock.frozen(T0 + timedelta(days=3)):
        lists = {name: vigil.command(text, channel=channel, user=user).text for name, text, channel, user in (
            ("mine", "actions", "C0RANDOM", OWNER), ("here", "actions", incident.channel_id, OWNER),
            ("open", "actions open", "C0RANDOM", OWNER), ("inc2", "actions INC-2", "C0RANDOM", OWNER))}
    mine, here = lists["mine"], lists["here"]
    assert mine.startswith("*Your open follow-up actions* (2)") and "ACT-1" in mine and "ACT-3" in mine
    assert "ACT-2" not in mine and "ACT-4" not in mine
    assert mine.count(":warning: *overdue*") == 1 and "(INC-1)" in mine and "<!date^" in mine
    assert here.startswith("*Follow-up actions of INC-1* (3)") and "Done" in here and "ACT-3" not in here
    assert lists["open"].startswith("*Open follow-up actions* (3)")
    assert lists["inc2"].startswith("*Follow-up actions of INC-2* (1)")
    assert "There is no INC-9" in vigil.command("actions inc-9").text
    assert vigil.command("actions everything").text == "Usage: `/incident actions [mine|open|INC-<n>]`"
    assert vigil.command("actions mine", user="U0NOBODY").text == "*Your open follow-up actions*: none."


def test_a_stricter_policy_refuses_someone_elses_done_and_update_and_writes_nothing(db, fake_slack, settings_for):
    vigil = VigilHarness(build_runtime(settings_for(DATABASE_URL=db.url,
                                                    VIGIL_PERMISSIONS="change_action=action_owner,admins"), db), fake_slack)
    try:
        create_by_command(vigil, f"<@{OWNER}> 3d Add an alert")
        (dm,) = dms(fake_slack, OWNER)
        events = len(stream(vigil))
        refused = click(vigil, fake_slack, "action_item_done", dm, "U0HELPER", "helper")
        assert any("change this follow-up action" in t and "Nothing was recorded" in t for t in refused), refused
        view = open_update(vigil, fake_slack, dm, user="U0HELPER")
        answer = vigil.submit(view, update_values(status="done"), user="U0HELPER").json()
        assert "change this follow-up action" in answer["errors"]["status"]
        assert rows(vigil)[0].status == "open" and len(stream(vigil)) == events
        click(vigil, fake_slack, "action_item_done", dm, OWNER, "owner")
        assert rows(vigil)[0].status == "done" and stream(vigil)[-1].actor == OWNER
    finally:
        vigil.client.close()

