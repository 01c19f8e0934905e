"""A delivery that cannot succeed by retrying is kept as a dead letter (a missing scope at once, a
refused payload after a few tries): visible in /metrics and `vigil outbox list --dead`, put back in
line with `vigil outbox retry`, never an endless loop. Outages (5xx, 429, timeouts) are retried for
as long as they last."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.sender import DEAD_AFTER_ATTEMPTS


def deliver_rounds(vigil, rounds: int, at=None):
    """Run the sender as time passes (from `at`), so every backoff has ended before the next round;
    returns the time reached."""
    at = at or clock.now()
    for _ in range(rounds):
        at += timedelta(minutes=20)
        with clock.frozen(at):
            vigil.runtime.worker.sender.run_once()
    return at


def setup_item(db) -> OutboxItem:
    with db.session() as s:
        return s.exec(select(OutboxItem).where(OutboxItem.kind == "incident.setup")).one()


def cli(db, *args):
    return CliRunner().invoke(main, list(args), obj={"database": db})


def test_a_missing_scope_is_dead_lettered_at_once_named_and_retried_by_hand(vigil, fake_slack):
    fake_slack.fail_always("conversations.create", status=200, error="missing_scope", needed="channels:manage")
    vigil.declare(deliver=False)
    at = deliver_rounds(vigil, DEAD_AFTER_ATTEMPTS + 3)
    item = setup_item(vigil.db)
    assert item.status == "dead" and item.attempts == 1  # retrying cannot bring a scope: not retried
    assert len(fake_slack.calls_to("conversations.create")) == 1
    listed = cli(vigil.db, "outbox", "list", "--dead")
    assert listed.exit_code == 0 and f"{item.id}\tdead\tincident.setup" in listed.output
    assert "missing_scope (the app needs the channels:manage scope" in listed.output
    metrics = vigil.client.get("/metrics").text
    assert "vigil_outbox_dead 1.0" in metrics

    fake_slack.heal()
    with clock.frozen(at):
        assert cli(vigil.db, "outbox", "retry", str(item.id)).exit_code == 0
    deliver_rounds(vigil, 3, at)
    assert setup_item(vigil.db).status == "done"
    assert cli(vigil.db, "outbox", "retry", str(item.id)).exit_code == 1  # no longer a dead letter
    assert cli(vigil.db, "outbox", "retry").exit_code == 2  # an id or --all-dead


def test_a_refused_payload_is_tried_a_few_times_then_dead_lettered(vigil, fake_slack):
    fake_slack.fail_always("conversations.create", status=200, error="invalid_arguments")
    vigil.declare(deliver=False)
    deliver_rounds(vigil, DEAD_AFTER_ATTEMPTS + 3)
    item = setup_item(vigil.db)
    assert item.status == "dead" and item.attempts == DEAD_AFTER_ATTEMPTS
    assert len(fake_slack.calls_to("conversations.create")) == DEAD_AFTER_ATTEMPTS


def test_an_outage_is_retried_for_as_long_as_it_lasts(vigil, fake_slack):
    fake_slack.fail_always("conversations.create", status=503, error="service_unavailable")
    vigil.declare(deliver=False)
    at = deliver_rounds(vigil, DEAD_AFTER_ATTEMPTS + 3)
    assert setup_item(vigil.db).status == "pending"
    fake_slack.heal()
    deliver_rounds(vigil, 3, at)
    assert setup_item(vigil.db).status == "done"


def test_a_captured_message_with_a_nul_or_lone_surrogate_is_recorded_and_marked(vigil, fake_slack):
    from vigil_ir.eventlog import Event

    incident = vigil.declare()
    fake_slack.add_message(incident.channel_id, "1764300000.000700", "db\x00 dump \ud800 done")
    pin = {"type": "reaction_added", "user": "U0PINNER", "reaction": "pushpin", "item_user": "U0AUTHOR",
           "item": {"type": "message", "channel": incident.channel_id, "ts": "1764300000.000700"},
           "event_ts": "1764300000.000900"}
    assert vigil.event(pin, event_id="EvNul").status_code == 200
    vigil.deliver()
    with vigil.db.session() as s:
        (event,) = s.exec(select(Event).where(Event.kind == "incident.message_added")).all()
        capture = s.exec(select(OutboxItem).where(OutboxItem.kind == "incident.capture_message")).one()
    assert event.data["text"] == "db dump \ufffd done" and event.data["sanitised"] is True
    assert capture.status == "done"
