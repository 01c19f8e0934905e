"""The follow-up action domain: parsing, validation, one event per change, state rebuilt from events."""

from datetime import date, datetime, timedelta, timezone

import pytest

from vigil_ir import clock
from vigil_ir.eventlog import events_for_stream
from vigil_ir.eventlog.verify import verify_database
from vigil_ir.followup import actions
from vigil_ir.followup.actions import ActionAlreadyHandled, ActionError

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=timezone.utc)
MONDAY = T0.date()


@pytest.mark.parametrize("token, expected", [
    ("2025-07-01", date(2025, 7, 1)), ("3d", date(2025, 6, 5)), ("2W", date(2025, 6, 16)),
    ("tomorrow", date(2025, 6, 3)), ("today", MONDAY), ("2025-02-30", None), ("soon", None), ("-3d", None),
    ("", None)])
def test_parse_due(token, expected):
    assert actions.parse_due(token, MONDAY) == expected


@pytest.mark.parametrize("line, expected", [
    ("2025-07-01 Add canary checks", ("2025-07-01", "Add canary checks")),
    ("- Write the runbook", (None, "Write the runbook")), ("• 2025-07-01 Rotate keys", ("2025-07-01", "Rotate keys")),
    ("1. Fix alerts", (None, "Fix alerts")), ("2025-13-01 Bad", ("2025-13-01", "Bad")),
    ("-1 is not a bullet", (None, "-1 is not a bullet"))])
def test_split_line(line, expected):
    assert actions.split_line(line) == expected


def make(db, **overrides):
    values = {"actor": "U0LEAD", "description": "Add an alert", "owner": "U0OWNER", "due_on": date(2025, 6, 12)}
    with clock.frozen(T0), db.session() as s:
        return actions.create(s, **{**values, **overrides})


def test_create_validates_before_writing(db):
    for overrides, field in [({"description": "  "}, "description"), ({"owner": "jane"}, "owner"),
                             ({"due_on": date(2025, 5, 1)}, "due_on"), ({"type": "magic"}, "type"),
                             ({"ticket_url": "javascript:alert(1)"}, "ticket_url"),
                             ({"description": "x" * 3001}, "description")]:
        with pytest.raises(ActionError) as raised:
            make(db, **overrides)
        assert raised.value.field == field
    # Numbers are only taken by actions that were written.
    assert make(db).number == 1


def test_every_change_is_one_event_and_the_stream_rebuilds_the_row(db):
    action = make(db)
    steps = [
        lambda s, a: actions.set_status(s, action=a, actor="U0OWNER", status="in_progress"),
        lambda s, a: actions.reassign(s, action=a, actor="U0OWNER", owner="U0NEW"),
        lambda s, a: actions.set_due(s, action=a, actor="U0NEW", due_on=date(2025, 6, 20)),
        lambda s, a: actions.set_ticket(s, action=a, actor="U0NEW", ticket_url="https://t.example/1"),
        lambda s, a: actions.complete(s, action=a, actor="U0NEW", evidence="https://t.example/1#closed"),
        lambda s, a: actions.update(s, action=a, actor="U0LEAD", status="open", reason="Alert still flaps"),
        lambda s, a: actions.set_status(s, action=a, actor="U0LEAD", status="cancelled", reason="Superseded"),
    ]
    for n, step in enumerate(steps, 1):
        with clock.frozen(T0 + timedelta(hours=n)), db.session() as s:
            step(s, actions.by_key(s, "ACT-1"))
    with db.session() as s:
        events, row = events_for_stream(s, "action:1"), actions.by_key(s, "ACT-1")
        assert verify_database(s).ok
    assert [e.kind for e in events] == ["action.created", "action.status_changed", "action.reassigned",
                                        "action.due_changed", "action.ticket_set", "action.completed",
                                        "action.reopened", "action.cancelled"]
    state = events[0].data["state"]
    for event in events[1:]:
        state = {**state, **{name: change["to"] for name, change in event.data["changes"].items()}}
    assert state == actions.snapshot(row)
    assert events[5].data["changes"]["completed_by"] == {"from": None, "to": "U0NEW"}
    assert events[6].data["changes"]["completed_at"]["to"] is None


def test_refusals_change_nothing(db):
    action = make(db)
    with db.session() as s:
        with pytest.raises(ActionError, match="Say why ACT-1 is cancelled"):
            actions.set_status(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", status="cancelled")
        with pytest.raises(ActionError, match="already owns"):
            actions.reassign(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", owner="U0OWNER")
        with pytest.raises(ActionError, match="Status must be one of"):
            actions.update(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", status="paused")
        assert actions.update(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", due_on=action.due_on,
                              ticket_url="") is None
    with clock.frozen(T0 + timedelta(hours=1)), db.session() as s:
        actions.complete(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER")
    with db.session() as s:
        with pytest.raises(ActionAlreadyHandled) as raised:
            actions.complete(s, action=actions.by_key(s, "ACT-1"), actor="U0OTHER")
        assert (raised.value.by, raised.value.at) == ("U0OWNER", T0 + timedelta(hours=1))
        assert len(events_for_stream(s, "action:1")) == 2


def test_a_form_returning_an_old_due_date_is_not_refused_for_it(db):
    make(db, due_on=date(2025, 6, 3))
    with clock.frozen(T0 + timedelta(days=30)), db.session() as s:
        event = actions.update(s, action=actions.by_key(s, "ACT-1"), actor="U0OWNER", status="done",
                               due_on=date(2025, 6, 3))
    assert set(event.data["changes"]) == {"status", "completed_by", "completed_at"}
