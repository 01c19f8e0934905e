"""Duplicate deliveries: 1,000 events each delivered 2–4 times, some with new event ids and some
with retry headers: exactly one record each.

Each distinct event is a 📌 (reaction_added) on its own message in an incident channel. Its extra
deliveries are Slack's retries (same event_id, X-Slack-Retry-Num / X-Slack-Retry-Reason), the same
reaction redelivered under a new event_id, or someone also using the "Add to incident timeline"
shortcut on that message; all of them shuffled (seeded). The message text is fetched by the
outbox (conversations.history), which runs once at the end.

The ~3,000 signed requests go to the real Starlette app in-process (httpx's ASGI transport, one
event loop), CONCURRENCY at a time, so a retry can arrive while its first delivery is still being
handled, as it can from Slack. (Starlette's TestClient starts a thread and an event loop per
request, which made this test several times slower.)
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter

import httpx
import pytest

from sqlmodel import select

from vigil_ir.eventlog.models import Event
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.sender import OutboxSender
from vigil_ir.outbox.service import pending_count
from vigil_ir.slack.delivery import NotReady
from tests import slack_requests

MESSAGES = 1000
SEED = 20240611
RETRY_REASONS = ("http_timeout", "http_error", "connection_failed")
CONCURRENCY = 8


def pin_event(channel: str, ts: str, user: str) -> dict:
    return {"type": "reaction_added", "user": user, "reaction": "pushpin", "item_user": "U0AUTHOR",
            "item": {"type": "message", "channel": channel, "ts": ts}, "event_ts": f"{time.time():.6f}"}


def plan_deliveries(rng: random.Random, channel: str, stamps: list[str]) -> list[dict]:
    """Every message's deliveries (2–4), shuffled together; a retry comes after its first delivery."""
    deliveries = []
    for n, ts in enumerate(stamps):
        event_id = f"Ev{n:08d}"
        deliveries.append({"kind": "event", "ts": ts, "event_id": event_id})
        for copy in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.5:
                deliveries.append({"kind": "event", "ts": ts, "event_id": event_id})  # Slack's retry
            elif roll < 0.9:
                deliveries.append({"kind": "event", "ts": ts, "event_id": f"Ev{n:08d}x{copy}"})  # new event id
            else:
                deliveries.append({"kind": "shortcut", "ts": ts})
    rng.shuffle(deliveries)
    seen: Counter = Counter()
    for delivery in deliveries:  # number the retries in the order they now arrive
        if delivery["kind"] == "event":
            delivery["retry_num"] = seen[delivery["event_id"]]
            seen[delivery["event_id"]] += 1
    return deliveries


def signed(vigil, rng: random.Random, channel: str, delivery: dict) -> tuple[str, dict]:
    """The body and headers Slack would send for one delivery."""
    if delivery["kind"] == "shortcut":
        body = slack_requests.message_shortcut("add_to_timeline", channel=channel, user="U0CLICKER",
                                               message={"ts": delivery["ts"], "text": f"message {delivery['ts']}",
                                                        "user": "U0AUTHOR"},
                                               response_url=vigil.fake.response_url("shortcut"))
        return body, slack_requests.signed_headers(body)
    body = slack_requests.event_callback(pin_event(channel, delivery["ts"], "U0PINNER"),
                                         event_id=delivery["event_id"])
    headers = slack_requests.signed_headers(body, content_type="application/json")
    if delivery["retry_num"]:
        headers.update({"X-Slack-Retry-Num": str(delivery["retry_num"]),
                        "X-Slack-Retry-Reason": rng.choice(RETRY_REASONS)})
    return body, headers


async def post_all(app, requests: list[tuple[str, dict]]) -> list[int]:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://vigil.test") as client:
        async def post(body: str, headers: dict) -> int:
            async with gate:
                return (await client.post("/slack/events", content=body.encode(), headers=headers)).status_code
        return await asyncio.gather(*(post(body, headers) for body, headers in requests))


def drain(vigil, senders: int = 4) -> None:
    """The outbox, run once at the end by a few workers at once, until nothing is pending."""
    worker = vigil.runtime.worker.sender
    failures = []

    def work(n: int) -> None:
        sender = OutboxSender(vigil.db, worker.handle, worker=f"dup-sender-{n}", not_ready=NotReady)
        try:
            while sender.run_once(limit=25):
                pass
        except Exception as failure:  # noqa: BLE001 - reported in the test's thread
            failures.append(failure)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


@pytest.mark.slow
def test_each_event_recorded_once_however_often_delivered(vigil):
    incident = vigil.declare("Duplicate storm")
    channel = incident.channel_id
    base = int(time.time()) - 2 * MESSAGES
    stamps = [f"{base + n}.{n % 1000:03d}100" for n in range(MESSAGES)]
    for n, ts in enumerate(stamps):
        vigil.fake.add_message(channel, ts, f"message {ts}", user="U0AUTHOR")
    rng = random.Random(SEED)
    deliveries = plan_deliveries(rng, channel, stamps)
    per_message = Counter(d["ts"] for d in deliveries)
    assert min(per_message.values()) == 2 and max(per_message.values()) == 4 and len(per_message) == MESSAGES

    started, cpu = time.perf_counter(), time.process_time()
    requests = [signed(vigil, rng, channel, d) for d in deliveries]
    statuses = Counter(asyncio.run(post_all(vigil.client.app, requests)))
    sending, sending_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert statuses == {200: len(deliveries)}

    started, cpu = time.perf_counter(), time.process_time()
    drain(vigil)
    draining, draining_cpu = time.perf_counter() - started, time.process_time() - cpu
    with vigil.db.session() as session:
        added = list(session.exec(select(Event).where(Event.stream == incident.stream,
                                                      Event.kind == "incident.message_added")))
        captures = list(session.exec(select(OutboxItem).where(OutboxItem.kind == "incident.capture_message")))
        delivered = len(list(session.exec(select(OutboxItem.id).where(OutboxItem.status == "done"))))
        assert pending_count(session) == 0
    assert sorted(e.data["ts"] for e in added) == sorted(stamps)  # exactly one record per message
    assert all(e.data["text"] == f"message {e.data['ts']}" and e.data["author"] == "U0AUTHOR" for e in added)
    assert len(captures) <= MESSAGES
    kinds = Counter(d["kind"] for d in deliveries)
    retried = sum(1 for d in deliveries if d.get("retry_num"))
    new_ids = sum(1 for d in deliveries if "x" in d.get("event_id", ""))
    print(f"\n[duplicates] {len(deliveries)} deliveries of {MESSAGES} messages ({kinds['event']} events: {retried} "
          f"retries with the same id, {new_ids} under a new id; {kinds['shortcut']} shortcuts) in {sending:.1f}s (CPU {sending_cpu:.1f}s); "
          f"outbox: {len(captures)} captures, {delivered} items delivered in {draining:.1f}s (CPU {draining_cpu:.1f}s); "
          f"{len(vigil.fake.calls_to('conversations.history'))} conversations.history calls; "
          f"{len(added)} timeline records")
