"""📌 reactions and the message shortcut put a message on the timeline exactly once."""

from datetime import timedelta

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.service import claim_due
from tests.slack_requests import message_shortcut


def captured(vigil):
    with vigil.db.session() as s:
        return list(s.exec(select(Event).where(Event.kind == "incident.message_added")))


def pin(channel, ts, user="U0PINNER"):
    return {"type": "reaction_added", "user": user, "reaction": "pushpin", "item_user": "U0AUTHOR",
            "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": "1764300000.000900"}


def test_pushpin_records_the_message_once_however_delivered(vigil, fake_slack):
    incident = vigil.declare()
    channel = incident.channel_id
    fake_slack.add_message(channel, "1764300000.000500", "Error rate back under 1%", user="U0AUTHOR")
    assert vigil.event(pin(channel, "1764300000.000500"), event_id="Ev1").status_code == 200
    # Slack's retry of the same event, the same event under a new id, and a second person pinning.
    assert vigil.event(pin(channel, "1764300000.000500"), event_id="Ev1", retry_num=1).status_code == 200
    assert vigil.event(pin(channel, "1764300000.000500"), event_id="Ev2").status_code == 200
    assert vigil.event(pin(channel, "1764300000.000500", user="U0OTHER"), event_id="Ev3").status_code == 200
    vigil.deliver()
    (event,) = captured(vigil)
    assert event.data["text"] == "Error rate back under 1%" and event.data["author"] == "U0AUTHOR"
    assert event.data["permalink"].endswith("p1764300000000500") and event.actor == "U0PINNER"
    assert event.occurred_at == clock.to_utc(__import__("datetime").datetime.fromtimestamp(
        1764300000.0005, __import__("datetime").timezone.utc))
    with vigil.db.session() as s:
        assert len(list(s.exec(select(OutboxItem).where(OutboxItem.kind == "incident.capture_message")))) == 1


def test_threaded_message_is_found_through_replies(vigil, fake_slack):
    incident = vigil.declare()
    fake_slack.add_message(incident.channel_id, "1764300001.000100", "in a thread", thread_ts="1764300000.000100")
    vigil.event(pin(incident.channel_id, "1764300001.000100"))
    vigil.deliver()
    assert [e.data["text"] for e in captured(vigil)] == ["in a thread"]


def test_other_reactions_and_other_channels_are_ignored(vigil, fake_slack):
    incident = vigil.declare()
    other = pin(incident.channel_id, "1764300000.000500")
    other["reaction"] = "eyes"
    assert vigil.event(other).status_code == 200
    assert vigil.event(pin("C0NOTINCIDENT", "1764300000.000500")).status_code == 200
    vigil.deliver()
    assert captured(vigil) == []


def test_subscribed_events_without_work_are_acked(vigil):
    for event in ({"type": "member_joined_channel", "user": "U1", "channel": "C1"},
                  {"type": "reaction_removed", "user": "U1", "reaction": "pushpin",
                   "item": {"type": "message", "channel": "C1", "ts": "1.1"}}):
        assert vigil.event(event).status_code == 200


def test_app_home_lists_my_open_incidents(vigil, fake_slack):
    vigil.declare("Mine", user="U0ME")
    vigil.event({"type": "app_home_opened", "user": "U0ME", "tab": "home", "channel": "D1"})
    vigil.deliver()
    (published,) = fake_slack.calls_to("views.publish")
    assert published.params["user_id"] == "U0ME" and "INC-1" in str(published.params["view"])


def test_message_shortcut_adds_once_even_when_double_clicked(vigil, fake_slack):
    incident = vigil.declare()
    message = {"ts": "1764300002.000200", "user": "U0AUTHOR", "text": "Customer ticket #88 confirms impact"}
    for name in ("first", "second"):
        body = message_shortcut("add_to_timeline", channel=incident.channel_id, message=message,
                                response_url=fake_slack.response_url(name))
        assert vigil.post(body).status_code == 200
    vigil.deliver()
    (event,) = captured(vigil)
    assert event.data["via"] == "shortcut" and event.data["permalink"] == (
        f"https://fake.slack.com/archives/{incident.channel_id}/p1764300002000200")
    assert "Added to the INC-1 timeline" in fake_slack.responses("first")[0]["text"]
    assert "already on the INC-1 timeline" in fake_slack.responses("second")[0]["text"]


def test_message_shortcut_outside_incident_channel_explains(vigil, fake_slack):
    body = message_shortcut("add_to_timeline", channel="C0RANDOM", message={"ts": "1.000001", "text": "x"},
                            response_url=fake_slack.response_url("r"))
    assert vigil.post(body).status_code == 200
    vigil.deliver()
    assert "not an incident channel" in fake_slack.responses("r")[0]["text"]


def test_correct_note_shortcut_opens_modal_and_records_correction(vigil, fake_slack):
    incident = vigil.declare()
    vigil.command("note DB primary failed over at 10:02", channel=incident.channel_id)
    vigil.deliver()
    note_post = [c for c in fake_slack.calls_to("chat.postMessage") if "failed over" in c.params["text"]][0]
    message = {"ts": "1764300003.000300", "text": note_post.params["text"], "blocks": note_post.params["blocks"]}
    vigil.post(message_shortcut("correct_note", channel=incident.channel_id, message=message))
    view = vigil.last_view("incident_correct_note")
    from tests.slack_requests import input_value

    vigil.submit(view, {"text": input_value("plain_text_input", "DB primary failed over at 10:07")})
    with vigil.db.session() as s:
        correction = s.exec(select(Event).where(Event.kind == "incident.note_corrected")).one()
        original = s.get(Event, correction.corrects)
    assert original.data["text"] == "DB primary failed over at 10:02"
    assert correction.data["text"] == "DB primary failed over at 10:07"


def test_correct_note_shortcut_on_a_message_naming_no_event_explains_itself(vigil, fake_slack):
    incident = vigil.declare()
    for n, block_id in enumerate(("note:99999999999999999999", "note:²", "note:0")):
        message = {"ts": "1764300003.000300", "text": "x", "blocks": [{"type": "section", "block_id": block_id,
                                                                      "text": {"type": "mrkdwn", "text": "x"}}]}
        response = vigil.post(message_shortcut("correct_note", channel=incident.channel_id, message=message,
                                               response_url=fake_slack.response_url(f"c{n}")))
        assert response.status_code == 200, (block_id, response.text)
        vigil.deliver()
        replies = fake_slack.responses(f"c{n}")
        assert replies and "Use *Correct this note* on a note Vigil posted" in replies[-1]["text"], (block_id, replies)


def test_crashed_workers_claim_expires_and_item_is_sent_once(vigil, fake_slack):
    vigil.declare(deliver=False)
    with vigil.db.session() as s:
        (claimed,) = claim_due(s, worker="crashed-worker", hold_seconds=120, limit=1)
    assert vigil.deliver() == 0  # still held by the crashed worker
    assert fake_slack.calls_to("conversations.create") == []
    with clock.frozen(clock.now() + timedelta(seconds=121)):
        # The set-up the crashed worker held, then the suggestions that waited for its channel.
        assert vigil.deliver() == 2
    assert len(fake_slack.calls_to("conversations.create")) == 1
    with vigil.db.session() as s:
        item = s.get(OutboxItem, claimed.id)
    assert item.status == "done" and item.attempts == 2
