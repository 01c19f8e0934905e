"""Review reminders, escalation, digest, acceptance expiry and incident-triggered reviews (the worker)."""

import threading
from datetime import date, datetime, timezone

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.incidents import service as incidents
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.reminders.scheduler import run_sweeps
from vigil_ir.risks.models import RiskReview
from tests.risk_fixtures import ADMIN, OWNER, RISK_CHANNEL, harness, make_risk, open_review

T0 = datetime(2025, 5, 20, 9, 0, tzinfo=timezone.utc)  # risks made then are first due 2025-07-01


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=8, tzinfo=timezone.utc)


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for)
    yield h
    h.client.close()


def reminders(db) -> list[tuple[str, str]]:
    with db.session() as s:
        events = s.exec(select(Event).where(Event.kind == "risk.reminder_sent").order_by(Event.id))
        return [(e.data["kind"], e.data["recipient"]) for e in events]


def risk_at_t0(db, **overrides):
    with clock.frozen(T0):
        return make_risk(db, **overrides)


def test_each_reminder_day_sends_once_with_a_review_button(app, fake_slack):
    risk = risk_at_t0(app.db)
    expected = []
    for day, kind in [("2025-06-16", None), ("2025-06-17", "due_in_14"), ("2025-06-24", "due_in_7"),
                      ("2025-06-30", "due_in_1"), ("2025-07-01", "due"), ("2025-07-04", "overdue_3"),
                      ("2025-07-08", "escalation_7")]:
        app.sweep(at(day))
        app.sweep(at(day))  # a second sweep the same day sends nothing more
        if kind:
            expected.append((kind, RISK_CHANNEL if kind.startswith("escalation") else OWNER))
        assert reminders(app.db) == expected
    app.deliver()
    dms = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == OWNER]
    assert len(dms) == 5
    assert "is due in 14 days (2025-07-01)" in dms[0]["text"] and "is 3 days overdue" in dms[-1]["text"]
    button = dms[0]["blocks"][1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("risk_review_open", str(open_review(app.db, risk).id))
    (escalation,) = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == RISK_CHANNEL
                     and "Escalation" in c.params["text"]]
    assert risk.key in escalation["text"] and f"<@{OWNER}>" in escalation["text"]
    assert open_review(app.db, risk).reminders_sent == 6


def test_after_downtime_only_the_most_recent_reminder_is_sent(app):
    risk_at_t0(app.db)
    app.sweep(at("2025-07-02"))  # the worker was down from before T-14 until after the due date
    assert reminders(app.db) == [("due", OWNER)]
    app.sweep(at("2025-07-20"))  # past the escalation day: the owner is told directly with it
    assert reminders(app.db) == [("due", OWNER), ("overdue_3", OWNER), ("escalation_7", RISK_CHANNEL)]


def test_a_review_first_seen_long_overdue_reaches_its_owner_with_the_button_and_escalates_once(app, fake_slack):
    """Imported with a past due date: the first sweep is already past the escalation day."""
    risk = risk_at_t0(app.db)
    for day in ("2025-07-25", "2025-07-26", "2025-08-30"):
        app.sweep(at(day))
    assert reminders(app.db) == [("overdue_3", OWNER), ("escalation_7", RISK_CHANNEL)]
    app.deliver()
    (dm,) = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == OWNER]
    assert "is 24 days overdue" in dm["text"]
    button = dm["blocks"][1]["elements"][0]
    assert (button["action_id"], button["value"]) == ("risk_review_open", str(open_review(app.db, risk).id))
    assert len([c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == RISK_CHANNEL
                and "Escalation" in c.params["text"]]) == 1
    assert open_review(app.db, risk).reminders_sent == 2


def test_without_a_risk_channel_there_is_no_escalation(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for, VIGIL_RISK_CHANNEL="")
    risk_at_t0(db)
    h.sweep(at("2025-07-04"))
    h.sweep(at("2025-07-09"))
    assert reminders(db) == [("overdue_3", OWNER)]
    h.client.close()


def test_without_a_risk_channel_a_review_first_swept_after_its_escalation_day_still_reaches_its_owner(
        db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for, VIGIL_RISK_CHANNEL="")
    risk_at_t0(db)
    h.sweep(at("2025-07-20"))  # the worker was down until after the escalation day
    h.sweep(at("2025-07-21"))
    assert reminders(db) == [("overdue_3", OWNER)]
    h.client.close()


def test_a_backlog_larger_than_a_batch_is_swept_in_one_run_a_batch_per_transaction(app, monkeypatch):
    from vigil_ir.reminders import scheduler
    from vigil_ir.risks import reminders as risk_reminders

    # A batch of 2 for 5 due reviews: three rounds (2, 2, 1) in one run of the sweeps.
    monkeypatch.setattr(risk_reminders, "REMINDER_BATCH", 2)
    monkeypatch.setitem(scheduler._BATCHES, "risks.review_reminders", 2)
    for n in range(5):
        risk_at_t0(app.db, title=f"Risk {n}")
    counts = app.sweep(at("2025-07-01"))
    assert counts["risks.review_reminders"] == 5
    assert reminders(app.db) == [("due", OWNER)] * 5


def test_completed_reviews_get_no_reminders(app):
    risk = risk_at_t0(app.db)
    from tests.test_risk_reviews import complete

    with clock.frozen(at("2025-06-20")):
        complete(app.db, risk, outcome="no_change")
    app.sweep(at("2025-07-01"))
    assert reminders(app.db) == []


def sweep_together(db, settings, now, workers=2):
    barrier = threading.Barrier(workers)
    failures = []

    def work():
        try:
            barrier.wait(timeout=10)
            counts = run_sweeps(db, settings, now)
            assert counts["risks.review_reminders"] >= 0, counts
        except Exception as problem:  # noqa: BLE001 - reported below
            failures.append(problem)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_two_concurrent_workers_and_a_restart_send_each_reminder_once(app, fake_slack):
    owners = [f"U0OWNER{n}" for n in range(12)]
    for n, owner in enumerate(owners):
        risk_at_t0(app.db, owner=owner, title=f"Risk {n}")
    settings = app.runtime.settings
    for day in ("2025-06-17", "2025-07-01", "2025-07-08"):
        sweep_together(app.db, settings, at(day))
        sweep_together(app.db, settings, at(day))
    restarted = harness(app.db, fake_slack, lambda **v: settings)  # a new worker process, same database
    restarted.sweep(at("2025-07-08"))
    restarted.client.close()
    with app.db.session() as s:
        events = s.exec(select(Event).where(Event.kind == "risk.reminder_sent"))
        sent = [(e.data["review"], e.data["kind"]) for e in events]
    # 12 reviews × (due_in_14, due, then overdue_3 with escalation_7 on the escalation day), each once
    assert len(sent) == len(set(sent)) == 48
    with app.db.session() as s:
        keys = list(s.exec(select(OutboxItem.dedupe_key).where(OutboxItem.dedupe_key.like("risk-reminder:%"))))
        assert len(keys) == 48
        assert {r.reminder_rank for r in s.exec(select(RiskReview))} == {6}
    app.deliver(rounds=20)
    for owner in owners:  # due_in_14, due, overdue_3 (the escalation goes to the channel)
        assert len([c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == owner]) == 3


def test_weekly_digest_once_per_week_lists_overdue_reviews_and_pending_approvals(app, fake_slack):
    risk = risk_at_t0(app.db)
    from tests.test_risk_reviews import complete

    second = risk_at_t0(app.db, title="Vendor outage")
    with clock.frozen(at("2025-06-20")):
        complete(app.db, second, actor=ADMIN, outcome="no_change")  # needs approval: not the owner
    app.sweep(at("2025-07-07"))  # Monday
    app.sweep(at("2025-07-09"))  # Wednesday, same ISO week
    app.deliver()
    digests = [c.params["text"] for c in fake_slack.calls_to("chat.postMessage")
               if "Risk reviews, week" in c.params["text"]]
    assert len(digests) == 1 and "week 2025-W28" in digests[0]
    assert f"*{risk.key}*" in digests[0] and "Waiting for approval (1)" in digests[0]
    app.sweep(at("2025-07-14"))
    with app.db.session() as s:
        weeks = [e.data["week"] for e in s.exec(select(Event).where(Event.kind == "risk.digest_sent"))]
    assert weeks == ["2025-W28", "2025-W29"]


def test_closing_a_linked_incident_asks_the_owner_for_a_review(app, fake_slack):
    incident = app.declare(type="availability", deliver=False)
    linked = make_risk(app.db, category="vendor", incidents=incident.key)
    mapped = make_risk(app.db, title="Region outage", category="availability", owner="U0SRE")
    unrelated = make_risk(app.db, title="Fraud", category="financial")
    with app.db.session() as s:
        fresh = s.get(type(incident), incident.id)
        incidents.resolve(s, incident=fresh, actor="U0DECLARER")
        incidents.assign_role(s, incident=fresh, actor="U0DECLARER", role="lead", user="U0DECLARER")
        incidents.close(s, incident=fresh, actor="U0DECLARER", admins=frozenset(), customer_impact="none",
                        root_cause="disk full", lessons_learned="")
    app.sweep()
    app.sweep()
    with app.db.session() as s:
        adhoc = list(s.exec(select(RiskReview).where(RiskReview.trigger == "incident").order_by(RiskReview.risk_id)))
    assert [(r.risk_id, r.trigger_ref, r.reviewer) for r in adhoc] == [
        (linked.id, incident.key, linked.owner), (mapped.id, incident.key, "U0SRE")]
    assert unrelated.id not in {r.risk_id for r in adhoc}
    assert ("due_in_14", "U0SRE") in reminders(app.db)  # due in 14 days: the owner hears at once
    app.deliver()
    assert any(c.params["channel"] == "U0SRE" and "incident review" in c.params["text"]
               for c in fake_slack.calls_to("chat.postMessage"))


def test_acceptance_expiry_sweep_reopens_the_review(app):
    from vigil_ir.risks import approvals
    from vigil_ir.risks.models import RiskApproval
    from tests.test_risk_reviews import complete

    risk = risk_at_t0(app.db)
    with clock.frozen(T0):
        done = complete(app.db, risk, outcome="acceptance_requested", rationale="Residual is tolerable.",
                        acceptance_expires="2025-08-15")
        with app.db.session() as s:
            approvals.approve(s, approval=s.get(RiskApproval, done.approval.id), actor=ADMIN,
                              approvers=frozenset({ADMIN}))
    counts = app.sweep(at("2025-08-15"))
    assert counts["risks.acceptance_expiry"] == 1
    with app.db.session() as s:
        review = s.exec(select(RiskReview).where(RiskReview.trigger == "acceptance_expiry")).one()
    assert review.due_on == date(2025, 8, 15) and ("due", OWNER) in reminders(app.db)


def test_the_review_reminder_sweep_costs_the_same_statements_for_2_reminders_as_for_40(app):
    """Set-based: a batch's statements do not grow with the reminders it sends (nor the overdue
    reviews that also escalate: two messages and two events for one review)."""
    from sqlalchemy import event

    from vigil_ir.reminders.scheduler import _run, registered

    def statements_to_remind(n: int, day: str) -> tuple[int, int]:
        for i in range(n):
            risk_at_t0(app.db, title=f"Risk {day} {i}")
        seen = []

        def record(_conn, _cursor, statement, *_):
            seen.append(statement)

        event.listen(app.db.engine, "before_cursor_execute", record)
        try:
            sent = _run(app.db, "risks.review_reminders", registered()["risks.review_reminders"], at(day),
                        app.runtime.settings)
        finally:
            event.remove(app.db.engine, "before_cursor_execute", record)
        if app.db.is_sqlite:  # the reviews are read outside SQLite's write lock: only writes hold it
            assert not [s for s in seen if s.lstrip().upper().startswith("SELECT") and "risk_review" in s], seen
        return sent, len(seen)

    few = statements_to_remind(2, "2025-06-17")  # due_in_14 for 2
    many = statements_to_remind(40, "2025-07-08")  # 40 new ones escalate (2 each); the first 2 too
    assert few[0] == 2 and many[0] == 84
    assert many[1] == few[1], (few, many)
