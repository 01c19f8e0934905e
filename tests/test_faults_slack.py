"""Slack's Web API down (5xx), rate-limiting (429 + Retry-After) and slow (timeouts) during a burst.

Requirement: no incident lost, each channel created exactly once after recovery, each announcement
posted exactly once. The burst goes through the real app (signed /incident, then the modal's
submission, as VigilHarness.declare does); the fault starts once the forms are open, so every
submission lands while Slack is failing. Then Slack recovers and the outbox is drained with
several senders at once (as several workers would), the clock advanced past each backoff.

"Slow" is the realistic kind: the fake carries the call out and answers late, so our client times
out on calls that did happen; the retry must adopt the channel and find the posts instead of
making a second channel (`-2`) or a second announcement.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import or_
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog.models import Event
from vigil_ir.incidents.models import Incident
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.outbox.sender import OutboxSender
from vigil_ir.runtime import build_runtime
from vigil_ir.slack.delivery import NotReady, channel_slug, is_marked
from tests import slack_requests
from tests.conftest import VigilHarness

BURST = 25
# Which calls time out must not depend on how busy the machine is: an ordinary answer of the fake
# comes well within TIMEOUT (VIGIL_SLACK_TIMEOUT_SECONDS) even on a loaded machine, and a "slow" one
# comes later than any timeout in play (ours, and the inline client's 2 s), however fast the machine.
TIMEOUT = 5.0
SLOW = TIMEOUT + 1.0  # how late the slow fake answers (it has already done the work)
# The slow burst makes ~75 slow calls: shorter figures keep it quick, with the same ordering.
BURST_TIMEOUT, BURST_SLOW = 1.0, 1.5
SENDERS = 8
ROUND = timedelta(minutes=16)  # past the longest backoff (15 min + jitter is not reached in 4 tries)
FEED = "C0FEED"


@pytest.fixture
def make_harness(db, fake_slack, settings_for):
    made = []

    def build(timeout: float = TIMEOUT) -> VigilHarness:
        runtime = build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_SLACK_TIMEOUT_SECONDS=timeout), db)
        made.append(VigilHarness(runtime, fake_slack))
        return made[-1]

    yield build
    for vigil in made:
        vigil.client.close()


@pytest.fixture
def harness(make_harness):
    return make_harness()


def title(n: int) -> str:
    return f"Checkout burst {n} returns 500s"


def open_forms(vigil: VigilHarness, count: int) -> list[dict]:
    """Responders run /incident declare; Slack opens each form (views.open, inline)."""
    forms = []
    for n in range(count):
        assert vigil.command(f"declare {title(n)}", user=f"U0R{n:03d}").status_code == 200
        forms.append(vigil.fake.calls_to("views.open")[-1].params["view"])
    return forms


def submit_forms(vigil: VigilHarness, forms: list[dict]) -> None:
    for n, form in enumerate(forms):
        response = vigil.submit(form, {"title": slack_requests.input_value("plain_text_input", title(n)),
                                       "severity": slack_requests.input_value("static_select", "sev2"),
                                       "type": slack_requests.input_value("static_select", "availability")},
                                user=f"U0R{n:03d}")
        assert response.status_code == 200 and response.text == "", response.text  # acked, no errors


def due(vigil: VigilHarness, now) -> int:
    with vigil.db.session() as session:
        return len(list(session.exec(select(OutboxItem.id).where(
            OutboxItem.status == "pending", OutboxItem.available_at <= now,
            or_(OutboxItem.claimed_until.is_(None), OutboxItem.claimed_until < now)))))


def pending(vigil: VigilHarness) -> list[OutboxItem]:
    with vigil.db.session() as session:
        return list(session.exec(select(OutboxItem).where(OutboxItem.status == "pending")))


def deliver_round(vigil: VigilHarness, at) -> None:
    """Every item due at `at` gets one attempt, by SENDERS workers at once."""
    worker = vigil.runtime.worker.sender
    senders = [OutboxSender(vigil.db, worker.handle, worker=f"fault-sender-{n}", hold_seconds=worker.hold_seconds,
                            not_ready=NotReady) for n in range(SENDERS)]
    failures = []

    def work(sender):
        try:
            while due(vigil, at):
                sender.run_once(limit=3)
        except Exception as failure:  # noqa: BLE001 - reported below, in the test's thread
            failures.append(failure)

    with clock.frozen(at):
        threads = [threading.Thread(target=work, args=(s,)) for s in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not failures, failures


def drain(vigil: VigilHarness, start, rounds: int = 12):
    """Deliver round after round, the clock moved past every backoff, until nothing is pending."""
    at = start
    for _ in range(rounds):
        at += ROUND
        deliver_round(vigil, at)
        if not pending(vigil):
            return at
    raise AssertionError(f"still pending after {rounds} rounds: {[(i.kind, i.last_error) for i in pending(vigil)]}")


def incidents(vigil: VigilHarness) -> list[Incident]:
    with vigil.db.session() as session:
        return list(session.exec(select(Incident).order_by(Incident.number)))


def outbox_attempts(vigil: VigilHarness) -> Counter:
    with vigil.db.session() as session:
        return Counter({kind: sum(i.attempts for i in session.exec(select(OutboxItem).where(OutboxItem.kind == kind)))
                        for kind in ("incident.setup", "playbook.suggest")})


def assert_recorded_while_down(vigil: VigilHarness) -> None:
    """Every submission is on record although Slack did none of the set-up."""
    found = incidents(vigil)
    assert [i.number for i in found] == list(range(1, BURST + 1))
    assert sorted(i.title for i in found) == sorted(title(n) for n in range(BURST))
    assert all(i.channel_id is None and i.summary_ts is None and i.feed_ts is None for i in found)
    with vigil.db.session() as session:
        declared = session.exec(select(Event).where(Event.kind == "incident.declared")).all()
    assert len(declared) == BURST
    setups = [i for i in pending(vigil) if i.kind == "incident.setup"]
    assert len(setups) == BURST


def assert_each_side_effect_once(vigil: VigilHarness) -> None:
    fake = vigil.fake
    found = incidents(vigil)
    assert len(found) == BURST and not pending(vigil)
    # Channels: one conversations.create carried out per incident, under its first name (no -2).
    created = [c.response["channel"] for c in fake.ok_calls("conversations.create")]
    assert sorted(c["id"] for c in created) == sorted(i.channel_id for i in found)
    assert len(fake.channels) == BURST
    for incident in found:
        assert incident.channel_name == f"inc-{incident.number}-{channel_slug(incident.title, 60)}"
        assert fake.channels[incident.channel_id]["name"] == incident.channel_name
        # The summary: posted once, pinned once; the suggestion: posted once.
        posted = fake.messages[incident.channel_id].values()
        assert [m["ts"] for m in posted if is_marked(m, f"{incident.stream}:summary")] == [incident.summary_ts]
        assert fake.pins[incident.channel_id] == [incident.summary_ts]
        assert len([m for m in posted if is_marked(m, f"{incident.stream}:suggest")]) <= 1
        assert incident.feed_channel == FEED
    # The feed: exactly one announcement per incident, the one we recorded.
    feed = fake.messages[FEED]
    assert sorted(m["metadata"]["event_payload"]["key"] for m in feed.values()) == \
        sorted(f"{i.stream}:announcement" for i in found)
    assert set(feed) == {i.feed_ts for i in found}
    with vigil.db.session() as session:
        kinds = Counter(e.kind for e in session.exec(select(Event)))
    assert kinds["incident.channel_created"] == kinds["incident.summary_posted"] == BURST
    assert kinds["incident.announcement_posted"] == BURST


def slack_figures(vigil: VigilHarness) -> str:
    calls = vigil.fake.calls
    methods = Counter(c.method for c in calls)
    failed = Counter(c.method for c in calls if c.failed)
    return (f"slack calls {len(calls)} (answered with an error {sum(failed.values())}); "
            + ", ".join(f"{m} {n}/{failed[m]} failed" for m, n in sorted(methods.items()))
            + f"; outbox attempts {dict(outbox_attempts(vigil))}")


def test_slack_down_500_for_everything(harness):
    fake = harness.fake
    forms = open_forms(harness, BURST)
    fake.fail_always("*", status=500, error="internal_error")
    outage_starts = len(fake.calls)
    submit_forms(harness, forms)
    assert_recorded_while_down(harness)
    start = clock.now()
    at = start
    for _ in range(3):  # three rounds of retries during the outage
        at += ROUND
        deliver_round(harness, at)
    assert_recorded_while_down(harness)
    assert fake.calls[outage_starts:] and all(c.failed for c in fake.calls[outage_starts:])
    setups = [i for i in pending(harness) if i.kind == "incident.setup"]
    assert all(i.attempts == 3 and i.last_error == "slack 500: internal_error" for i in setups)
    fake.heal()
    drain(harness, at)
    assert_each_side_effect_once(harness)
    print(f"\n[500 burst] {slack_figures(harness)}")


def test_slack_rate_limiting_429_with_retry_after(harness):
    fake = harness.fake
    forms = open_forms(harness, BURST)
    fake.fail_always("*", status=429, error="ratelimited", retry_after=30)
    submit_forms(harness, forms)
    start = clock.now()
    deliver_round(harness, start)
    setups = [i for i in pending(harness) if i.kind == "incident.setup"]
    assert all(i.attempts == 1 and i.last_error == "slack 429: ratelimited" for i in setups)
    assert all(clock.to_utc(i.available_at) == start + timedelta(seconds=30) for i in setups)
    calls = len(fake.calls)
    deliver_round(harness, start + timedelta(seconds=29))  # Retry-After not yet over: nothing is tried
    assert len(fake.calls) == calls
    deliver_round(harness, start + timedelta(seconds=31))  # tried again, still limited
    assert all(i.attempts == 2 for i in pending(harness) if i.kind == "incident.setup")
    assert_recorded_while_down(harness)
    fake.heal()
    drain(harness, start + timedelta(seconds=31))
    assert_each_side_effect_once(harness)
    print(f"\n[429 burst] {slack_figures(harness)}")


def test_slack_slow_calls_that_happened_are_not_repeated(make_harness):
    """Every answer later than our timeout, although Slack did the work: no -2 channel, no second post."""
    harness = make_harness(BURST_TIMEOUT)
    fake = harness.fake
    forms = open_forms(harness, BURST)
    fake.delay_always("*", BURST_SLOW)
    submit_forms(harness, forms)
    at = clock.now()
    deliver_round(harness, at)  # every conversations.create times out, and every channel exists
    assert len(fake.channels) == BURST and not any(i.channel_id for i in incidents(harness))
    assert_recorded_while_down(harness)
    fake.heal()
    fake.delay_always("chat.postMessage", BURST_SLOW)  # channels answer again; posts are still slow
    for _ in range(3):  # name_taken → adopted; summary posted (lost) → found; feed posted (lost) → found
        at += ROUND
        deliver_round(harness, at)
    lookups = len(fake.calls_to("conversations.list"))
    assert len(fake.channels) == BURST and all(i.channel_id for i in incidents(harness)) and lookups >= BURST
    fake.heal()
    drain(harness, at)
    assert not any(c.params["name"].endswith("-2") for c in fake.calls_to("conversations.create"))
    assert_each_side_effect_once(harness)
    print(f"\n[slow burst] {slack_figures(harness)}")


@pytest.mark.parametrize("fault", ["500", "429", "timeout", "dropped"])
def test_form_not_opened_says_so_and_writes_nothing(harness, fault):
    """views.open is the one inline call: when it fails the user is told, and nothing is recorded."""
    fake = harness.fake
    if fault == "500":
        fake.fail_always("views.open", status=500, error="internal_error")
    elif fault == "429":  # not slept on: Retry-After is longer than Slack waits for the ack
        fake.fail_always("views.open", status=429, error="ratelimited", retry_after=30)
    elif fault == "timeout":
        fake.delay_always("views.open", SLOW)
    else:  # the connection is dropped twice: the inline client retries a dropped connection once
        fake.drop_next("views.open", times=2)
    response = harness.command("declare Search is down")
    assert response.status_code == 200
    reply = response.text  # bolt sends the ack body as is
    assert reply.startswith(":warning: Slack") and "Nothing was recorded; please try again." in reply
    if fault == "429":
        assert len(fake.calls_to("views.open")) == 1
    with harness.db.session() as session:
        assert session.exec(select(Incident)).first() is None
        assert session.exec(select(OutboxItem)).first() is None
        assert session.exec(select(Event)).first() is None


def deliver_alone(vigil: VigilHarness, at) -> None:
    """One sender, in order (for tests that script Slack's answers call by call)."""
    with clock.frozen(at):
        while due(vigil, at):
            vigil.runtime.worker.sender.run_once()


def test_channel_the_bot_made_before_the_declaration_is_not_adopted(harness):
    """A name_taken channel is adopted only if it can be this incident's: an older one (e.g. from
    a previous database whose numbers started again) is left alone, and the incident gets `-2`."""
    fake = harness.fake
    fake.channels["C0OLD"] = {"id": "C0OLD", "name": "inc-1-database-down", "is_channel": True, "is_private": False,
                              "is_archived": False, "creator": "U0BOT", "created": int(time.time()) - 86400}
    incident = harness.declare("Database down")
    assert incident.channel_name == "inc-1-database-down-2" and incident.channel_id != "C0OLD"
    assert len(fake.calls_to("conversations.list")) == 1


def test_lost_announcement_is_posted_again_when_the_feed_cannot_be_read(harness):
    """The documented residual: the bot is not in the feed channel, so a retry cannot check it."""
    fake = harness.fake
    fake.delay_next("chat.postMessage", 0)  # the summary answers at once
    fake.delay_next("chat.postMessage", SLOW)  # the announcement is posted, its answer lost
    fake.fail_next("conversations.history", status=200, error="not_in_channel")
    harness.declare("Feed unreadable", deliver=False)
    at = clock.now()
    deliver_alone(harness, at)
    deliver_alone(harness, at + ROUND)
    (incident,) = incidents(harness)
    announcements = [m for m in fake.messages[FEED].values() if is_marked(m, "incident:1:announcement")]
    assert len(announcements) == 2 and incident.feed_ts == announcements[-1]["ts"]
    assert not pending(harness)


def test_manifest_scopes_name_the_lookups():
    lines = (Path(__file__).parent.parent / "manifest.yaml").read_text().splitlines()
    scope = {line.split("#")[0].strip(" -"): line for line in lines if line.strip().startswith("- ")}
    assert "conversations.list" in scope["channels:read"]
    assert "conversations.history" in scope["channels:history"]
