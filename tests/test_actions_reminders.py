"""Owner reminders for follow-up actions: the day before, overdue days 1, 3 and 7; once each; no backlog."""

import threading
from datetime import date, datetime, timezone

from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.followup import action_reminders, actions
from vigil_ir.incidents.models import Incident
from vigil_ir.outbox.models import OutboxItem
from tests.slack_requests import block_action

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)
OWNER = "U0OWNER"
DUE = "2025-06-12"


def at(day: str, hour: int = 8) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)


def reminded(vigil) -> list[tuple[str, str, str]]:
    with vigil.db.session() as s:
        events = s.exec(select(Event).where(Event.kind == "action.reminded").order_by(Event.id))
        return [(e.data["key"], e.data["label"], e.data["scheduled_for"]) for e in events]


def create(vigil, due=DUE, text="Add an alert on replica lag"):
    """An action on INC-1 (declared on the first call), created at T0 through `/incident action`."""
    with clock.frozen(T0):
        with vigil.db.session() as s:
            incident = s.exec(select(Incident)).first()
        incident = incident or vigil.declare()
        vigil.command(f"action <@{OWNER}> {due} {text}", channel=incident.channel_id, user="U0LEAD")
        vigil.deliver()


def reminder_dms(fake_slack) -> list[dict]:
    return [c.params for c in fake_slack.calls_to("chat.postMessage")
            if c.params["channel"] == OWNER and ("overdue" in c.params["text"] or "is due" in c.params["text"])]


def test_each_reminder_day_sends_once_with_done_and_update(vigil, fake_slack):
    create(vigil)
    expected = []
    for day, label in [("2025-06-10", None), ("2025-06-11", "due_tomorrow"), ("2025-06-12", None),
                       ("2025-06-13", "overdue_1"), ("2025-06-14", None), ("2025-06-15", "overdue_3"),
                       ("2025-06-19", "overdue_7"), ("2025-06-30", None)]:
        first, second = vigil.sweep(at(day)), vigil.sweep(at(day, 20))  # a second sweep the same day: nothing
        assert second["actions.reminders"] == 0
        if label:
            expected.append(("ACT-1", label, day))
        assert first["actions.reminders"] == (1 if label else 0), day
        assert reminded(vigil) == expected
    vigil.deliver()
    dms = reminder_dms(fake_slack)
    assert [d["text"] for d in dms] == [
        ":date: *ACT-1* (INC-1) is due tomorrow (2025-06-12): Add an alert on replica lag",
        ":warning: *ACT-1* (INC-1) is 1 day overdue (due 2025-06-12): Add an alert on replica lag",
        ":warning: *ACT-1* (INC-1) is 3 days overdue (due 2025-06-12): Add an alert on replica lag",
        ":warning: *ACT-1* (INC-1) is 7 days overdue (due 2025-06-12): Add an alert on replica lag"]
    elements = [e["action_id"] for e in dms[0]["blocks"][1]["elements"]]
    assert elements == ["action_item_done", "action_item_update"]
    with vigil.db.session() as s:
        keys = [o.dedupe_key for o in s.exec(select(OutboxItem).where(OutboxItem.dedupe_key.like("action-reminder:%")))]
    assert sorted(keys) == sorted(f"action-reminder:1:{DUE}:{label}" for label in
                                  ("due_tomorrow", "overdue_1", "overdue_3", "overdue_7"))


def test_after_downtime_only_the_latest_reminder_is_sent(vigil, fake_slack):
    create(vigil)
    vigil.sweep(at("2025-06-17"))  # the worker was down from before the due date until overdue day 5
    assert reminded(vigil) == [("ACT-1", "overdue_3", "2025-06-15")]
    vigil.sweep(at("2025-07-30"))
    assert reminded(vigil) == [("ACT-1", "overdue_3", "2025-06-15"), ("ACT-1", "overdue_7", "2025-06-19")]
    vigil.deliver()
    assert len(reminder_dms(fake_slack)) == 2


def test_closed_actions_are_not_reminded_and_a_new_due_date_starts_again(vigil, fake_slack):
    create(vigil)
    create(vigil, due="2025-06-12", text="Second")
    with vigil.db.session() as s:
        actions.complete(s, action=actions.by_key(s, "ACT-2"), actor=OWNER)
    vigil.sweep(at("2025-06-13"))
    assert reminded(vigil) == [("ACT-1", "overdue_1", "2025-06-13")]
    with clock.frozen(at("2025-06-13", 10)):
        with vigil.db.session() as s:
            actions.set_due(s, action=actions.by_key(s, "ACT-1"), actor=OWNER, due_on=date(2025, 6, 20))
    vigil.sweep(at("2025-06-14"))
    vigil.sweep(at("2025-06-19"))
    assert reminded(vigil)[1:] == [("ACT-1", "due_tomorrow", "2025-06-19")]


def test_no_reminder_for_a_day_before_the_action_existed(vigil):
    create(vigil, due="2025-06-03")  # created on 2 June, due the 3rd: the assignment DM said so
    vigil.sweep(at("2025-06-02", 20))
    assert reminded(vigil) == []
    vigil.sweep(at("2025-06-04"))
    assert reminded(vigil) == [("ACT-1", "overdue_1", "2025-06-04")]


def test_a_reminder_button_completes_the_action(vigil, fake_slack):
    create(vigil)
    vigil.sweep(at("2025-06-13"))
    vigil.deliver()
    (dm,) = reminder_dms(fake_slack)
    done = dm["blocks"][1]["elements"][0]
    vigil.post(block_action("action_item_done", done["value"], channel=OWNER, message_ts="1.1", user=OWNER))
    vigil.sweep(at("2025-06-15"))
    with vigil.db.session() as s:
        assert actions.by_key(s, "ACT-1").status == "done"
    assert [r[1] for r in reminded(vigil)] == ["overdue_1"]


def test_concurrent_sweeps_queue_a_reminder_once(vigil):
    create(vigil)
    barrier, results = threading.Barrier(4), []

    def run():
        barrier.wait()
        results.append(vigil.sweep(at("2025-06-13"))["actions.reminders"])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 1 and reminded(vigil) == [("ACT-1", "overdue_1", "2025-06-13")]


def test_latest_due_is_pure():
    from vigil_ir.followup.models import ActionItem

    action = ActionItem(number=1, description="x", owner=OWNER, due_on=date(2025, 6, 12), created_by=OWNER,
                        created_at=T0)
    assert action_reminders.latest_due(action, date(2025, 6, 10)) is None
    assert action_reminders.latest_due(action, date(2025, 6, 12)) == ("due_tomorrow", date(2025, 6, 11))
    assert action_reminders.latest_due(action, date(2025, 9, 1)) == ("overdue_7", date(2025, 6, 19))
