"""Outbox claims: each item delivered once across concurrent workers; failures rescheduled."""

import threading
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from vigil_ir import clock
from vigil_ir.outbox import service
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.sender import OutboxSender, retry_delay


def test_dedupe_key_and_coalesce(db):
    with db.session() as s:
        assert service.enqueue(s, kind="k", subject="x", dedupe_key="once") is not None
        assert service.enqueue(s, kind="k", subject="x", dedupe_key="once") is None
        assert service.enqueue(s, kind="refresh", subject="x", coalesce=True) is not None
        assert service.enqueue(s, kind="refresh", subject="x", coalesce=True) is None
        assert service.enqueue(s, kind="refresh", subject="y", coalesce=True) is not None


def test_coalesce_with_merge_writes_the_latest_wish_into_the_waiting_item_until_it_is_claimed(db):
    with db.session() as s:
        first = service.enqueue(s, kind="page", subject="run:1", payload={"run_id": 1}, coalesce=True)
        assert service.enqueue(s, kind="page", subject="run:1", payload={"page": 2}, coalesce=True, merge=True) is None
        assert service.enqueue(s, kind="page", subject="run:1", payload={"page": 3}, coalesce=True) is None
    with db.session() as s:
        assert s.get(OutboxItem, first.id).payload == {"run_id": 1, "page": 2}
        (claimed,) = service.claim_due(s, worker="w1")
    with db.session() as s:  # once claimed, a new wish is queued, not lost
        later = service.enqueue(s, kind="page", subject="run:1", payload={"page": 4}, coalesce=True, merge=True)
        assert later is not None and later.id != claimed.id and later.payload == {"page": 4}
        service.complete(s, item_id=claimed.id, worker="w1", result={"page": 2})
    with db.session() as s:
        assert service.last_result(s, kind="page", subject="run:1") == {"page": 2}
        assert service.last_result(s, kind="page", subject="run:2") == {}


def test_concurrent_workers_deliver_each_item_exactly_once(db):
    with db.session() as s:
        for n in range(60):
            service.enqueue(s, kind="send", subject=f"s{n}", payload={"n": n})
    sent, lock = [], threading.Lock()

    def handle(kind, payload):
        with lock:
            sent.append(payload["n"])
        return {"ts": str(payload["n"])}

    def work(name):
        sender = OutboxSender(db, handle, worker=name)
        while sender.run_once(limit=5):
            pass

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(sent) == list(range(60))
    with db.session() as s:
        items = list(s.exec(service.select(OutboxItem)))
    assert all(i.status == "done" and i.result == {"ts": str(i.payload["n"])} for i in items)


def _slack_error(status, headers=None):
    response = SlackResponse(client=None, http_verb="POST", api_url="u", req_args={},
                             data={"ok": False, "error": "x"}, headers=headers or {}, status_code=status)
    return SlackApiError("failed", response)


def test_retry_delay_honours_retry_after_and_backs_off():
    item = OutboxItem(kind="k", subject="s", available_at=clock.now(), created_at=clock.now(), attempts=1)
    assert retry_delay(item, _slack_error(429, {"Retry-After": "7"})) == 7
    assert 1 <= retry_delay(item, _slack_error(500)) <= 1.25
    item.attempts = 20
    assert retry_delay(item, ConnectionError()) <= 900 * 1.25


def test_failed_delivery_is_rescheduled_not_lost(db):
    with db.session() as s:
        service.enqueue(s, kind="send", subject="a")
    calls = []

    def flaky(kind, payload):
        calls.append(1)
        if len(calls) == 1:
            raise _slack_error(503)
        return {}

    sender = OutboxSender(db, flaky, worker="w")
    assert sender.run_once() == 0
    assert sender.run_once() == 0  # not due yet
    with clock.frozen(clock.now() + timedelta(seconds=5)):
        assert sender.run_once() == 1
    with db.session() as s:
        item = s.exec(service.select(OutboxItem)).one()
    assert item.status == "done" and item.attempts == 2 and item.last_error is None


def test_late_completion_after_claim_takeover_is_not_recorded_twice(db):
    with db.session() as s:
        service.enqueue(s, kind="send", subject="a")
    with db.session() as s:
        (item,) = service.claim_due(s, worker="slow", hold_seconds=1)
    with clock.frozen(clock.now() + timedelta(seconds=2)):
        with db.session() as s:
            (again,) = service.claim_due(s, worker="fast", hold_seconds=60)
    with db.session() as s:
        assert service.complete(s, item_id=again.id, worker="fast", result={"by": "fast"})
    with db.session() as s:
        assert not service.complete(s, item_id=item.id, worker="slow", result={"by": "slow"})
    with db.session() as s:
        assert s.get(OutboxItem, item.id).result == {"by": "fast"}


def test_item_whose_claim_expired_while_waiting_in_the_batch_is_not_sent(db):
    with db.session() as s:
        for n in range(2):
            service.enqueue(s, kind="send", subject=f"s{n}", payload={"n": n})
    sent = []
    start = clock.now()

    def slow(kind, payload):
        sent.append(payload["n"])
        return {}

    sender = OutboxSender(db, slow, worker="slow", hold_seconds=10)
    with db.session() as s:
        first, second = service.claim_due(s, worker="slow", hold_seconds=10)
    # The first send takes longer than the claim: the second item's claim has run out by then.
    with clock.frozen(start + timedelta(seconds=1)):
        assert sender._deliver(first) == 1
    with clock.frozen(start + timedelta(seconds=11)):
        assert sender._deliver(second) == 0
        with db.session() as s:
            (taken,) = service.claim_due(s, worker="other", hold_seconds=10)
    assert taken.id == second.id and sent == [0]


def _statements_during(db, action) -> list[str]:
    from sqlalchemy import event

    seen = []

    def record(_conn, _cursor, statement, *_):
        if not statement.startswith("BEGIN"):
            seen.append(" ".join(statement.split()[:3]))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_a_batch_is_claimed_by_one_statement_and_each_item_completed_by_one(db):
    """No re-select of claimed items, no renewal per item: a new statement per item shows here."""
    with db.session() as s:
        for n in range(10):
            service.enqueue(s, kind="send", subject=f"s{n}", payload={"n": n})
    sent = []
    sender = OutboxSender(db, lambda kind, payload: sent.append(payload["n"]) or {"n": payload["n"]}, worker="w")
    statements = _statements_during(db, lambda: sender.run_once(limit=10))
    assert sent == list(range(10))
    # The claim (its candidates chosen once, in a WITH), then one completion each.
    assert statements == ["WITH candidates AS"] + ["UPDATE outbox_item SET"] * 10, statements
    with db.session() as s:
        assert [i.result for i in s.exec(service.select(OutboxItem).order_by(OutboxItem.id))] == [
            {"n": n} for n in range(10)]


def test_a_slow_batch_extends_the_claims_of_its_rest_in_one_statement(db):
    with db.session() as s:
        for n in range(4):
            service.enqueue(s, kind="send", subject=f"s{n}", payload={"n": n})
    start, sent = clock.now(), []

    def slow(kind, payload):  # each send takes 4 s of a 10 s claim
        sent.append(payload["n"])
        moments.append(moments[-1] + timedelta(seconds=4))
        return {}

    moments = [start]
    sender = OutboxSender(db, slow, worker="w", hold_seconds=10)
    with clock.frozen(lambda: moments[-1]):
        statements = _statements_during(db, lambda: sender.run_once(limit=4))
    assert sent == [0, 1, 2, 3]
    # Item 2 is due at +8 s with 2 s of its claim left: items 2 and 3 are extended together, once.
    assert statements.count("WITH candidates AS") == 1, statements  # the claim
    assert statements.count("UPDATE outbox_item SET") == 4 + 1, statements
    with db.session() as s:
        assert all(i.status == "done" for i in s.exec(service.select(OutboxItem)))


def test_a_claim_takes_at_most_its_limit_of_due_items(db):
    """The candidates are chosen once: PostgreSQL re-running an `IN (… LIMIT n SKIP LOCKED)` subquery
    per scanned row once claimed every due item for a limit of one."""
    with db.session() as s:
        for n in range(5):
            service.enqueue(s, kind="test", subject=f"s{n}")
    claimed = []
    for limit in (1, 2, 5):
        with db.session() as s:
            batch = service.claim_due(s, worker=f"w{limit}", limit=limit)
        assert len(batch) == min(limit, 5 - len(claimed))
        claimed += [item.id for item in batch]
    assert sorted(claimed) == claimed and len(set(claimed)) == 5
