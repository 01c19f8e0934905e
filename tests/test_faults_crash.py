"""Crash faults: `kill -9` of `vigil serve` mid-burst and of `vigil worker` mid-claim, then restart.

Requirement: no half-written records, no event without its state change or the reverse, chains
verify, claimed outbox/reminder work is picked up again after the claim expires and sent once.

Real processes (`vigil serve --no-migrate`, `vigil worker`), the real database of the `db` fixture
(SQLite file; PostgreSQL too with TEST_DATABASE_URL), the fake Slack Web API in this process.
Each victim is killed while the fake holds its Slack call *before* Slack performs it
(`HoldingFakeSlack`), so the documented narrow window (docs/architecture.md: Slack answered, the
result not committed yet, the retry repeats the call) is never hit and every side effect must
happen exactly once. Set-up steps whose results are already stored must be skipped on retry.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.eventlog.verify import verify_database
from vigil_ir.idempotency import ProcessedKey
from vigil_ir.incidents import service
from vigil_ir.incidents.models import Incident
from vigil_ir.outbox import service as outbox
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.slack import notify
from tests import slack_requests
from tests.conftest import PLAYBOOK_FIXTURES
from tests.fakes.slack_api import PROXY_VARS, HoldingFakeSlack

FEED = "C0FEED"
CLAIM_SECONDS = 2  # short, so a dead process's claims expire quickly
STALL = 120.0  # how long nothing may move (no CPU, no log line, no progress) before a wait gives up


# ---- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far (0 once it is gone): it grows while the process works."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def wait_until(condition, what: str, processes=(), progress=None, every: float = 0.1, stall: float = STALL):
    """Poll `condition` until it is true; return its value.

    Fails at once when a watched process exits, and when nothing has moved for `stall` seconds: no
    CPU used and no log written by the watched processes, and no change in `progress()` (e.g. rows
    drained, Slack calls made). A busy machine slows the work down, but it keeps moving, so this waits
    as long as that takes; only a stuck system fails.
    """
    def moved():
        return (tuple((cpu_seconds(p.pid), p.log_size()) for p in processes), progress() if progress else None)

    seen, since = moved(), time.monotonic()
    while not (value := condition()):
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{what}: {process.args} exited {process.returncode}:\n{process.log()}")
        now = moved()
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"nothing moved for {stall:.0f}s while waiting for {what}")
        time.sleep(every)
    return value


def backends_of(database, app_name: str) -> int:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                                  {"name": app_name}).scalar_one()


class VigilProcess(subprocess.Popen):
    def __init__(self, args, *, env, folder: Path, name: str):
        self.log_path, self.app_name = folder / f"{name}.log", f"vigil-crash-test-{name}"
        with self.log_path.open("wb") as output:  # the child keeps its own descriptor
            # PGAPPNAME (read by libpq) names this process's PostgreSQL sessions, see kill_9.
            super().__init__(args, env={**env, "PGAPPNAME": self.app_name}, stdout=output,
                             stderr=subprocess.STDOUT, cwd=folder)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def kill_9(self, database) -> None:
        """SIGKILL, then wait until PostgreSQL has let go of its sessions: a COMMIT the process sent
        just before dying may still be applied, and the test must look only once it has been."""
        sessions = 0 if database.is_sqlite else backends_of(database, self.app_name)
        self.send_signal(signal.SIGKILL)
        self.wait()  # SIGKILL cannot be ignored: the kernel ends it
        if not database.is_sqlite:  # a dead process writes nothing more to a SQLite file
            assert sessions, f"no PostgreSQL session is named {self.app_name}: the wait below would prove nothing"
            wait_until(lambda: not backends_of(database, self.app_name), f"the sessions of {self.args} to end")

    def claimed_by_me(self, claimed_by: str | None) -> bool:
        return bool(claimed_by) and f":{self.pid}:" in claimed_by  # vigil_ir.outbox.sender.worker_name


class Processes:
    """Starts `vigil` subprocesses; whatever is still running at the end is killed."""

    def __init__(self, folder: Path, env: dict):
        self.folder, self.env, self.started, self.count = folder, env, [], 0

    def _start(self, *args: str, name: str) -> VigilProcess:
        self.count += 1
        process = VigilProcess([sys.executable, "-m", "vigil_ir.cli", *args], env=self.env, folder=self.folder,
                               name=f"{self.count}-{name}")
        self.started.append(process)
        return process

    def serve(self) -> tuple[VigilProcess, str]:
        port = free_port()
        process = self._start("serve", "--no-migrate", "--no-access-log", "--port", str(port), name="serve")
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: healthy(base), "vigil serve /healthz", processes=[process])
        return process, base

    def worker(self) -> VigilProcess:
        return self._start("worker", name="worker")

    def verify(self) -> subprocess.CompletedProcess:
        out, err = self.folder / "verify.out", self.folder / "verify.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen([sys.executable, "-m", "vigil_ir.cli", "verify"], env=self.env,
                                       cwd=self.folder, stdout=stdout, stderr=stderr)
        wait_until(lambda: process.poll() is not None, "vigil verify to finish",
                   progress=lambda: (cpu_seconds(process.pid), out.stat().st_size, err.stat().st_size))
        return subprocess.CompletedProcess(process.args, process.returncode, out.read_text(errors="replace"),
                                           err.read_text(errors="replace"))

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def fake(monkeypatch):
    for var in PROXY_VARS:  # slack_sdk would send even 127.0.0.1 through a proxy
        monkeypatch.delenv(var, raising=False)
    with HoldingFakeSlack() as holding:
        yield holding


@pytest.fixture
def procs(db, fake, tmp_path):
    env = {**os.environ, "DATABASE_URL": db.url, "SLACK_BOT_TOKEN": "xoxb-test",
           "SLACK_SIGNING_SECRET": slack_requests.SECRET, "SLACK_API_URL": fake.base_url,
           "SLACK_HOOKS_URL": fake.response_url(""),
           "VIGIL_INCIDENT_FEED_CHANNEL": FEED, "VIGIL_OUTBOX_CLAIM_SECONDS": str(CLAIM_SECONDS),
           "VIGIL_SLACK_TIMEOUT_SECONDS": "30", "VIGIL_PLAYBOOKS_DIR": str(PLAYBOOK_FIXTURES),
           "VIGIL_LOG_FORMAT": "text", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "PYTHONUNBUFFERED": "1"}
    started = Processes(tmp_path, env)
    yield started
    started.stop_all()


# ---- seeding (the domain functions the listeners call) ----------------------------------------------
def seed_incident(database, title: str, *, channel: str | None = None, lead: str | None = None,
                  set_up: bool = True) -> Incident:
    with database.session() as session:
        incident = service.declare(session, actor="U0SEED", title=title, severity="sev2", type="availability")
        if channel:
            service.attach_channel(session, incident=incident, channel_id=channel, channel_name=channel.lower())
        if lead:
            service.assign_role(session, incident=incident, actor="U0SEED", role="lead", user=lead)
        if set_up:
            notify.setup_incident(session, incident)
            notify.suggest_playbooks(session, incident)
    return incident


# ---- the database, read back ------------------------------------------------------------------------
@dataclass
class Snapshot:
    incidents: list[Incident]
    events: list[Event]
    items: list[OutboxItem]
    keys: set[str]

    @classmethod
    def of(cls, database) -> Snapshot:
        with database.session() as session:
            return cls(list(session.exec(select(Incident).order_by(Incident.number))),
                       list(session.exec(select(Event).order_by(Event.stream, Event.stream_seq))),
                       list(session.exec(select(OutboxItem).order_by(OutboxItem.id))),
                       set(session.exec(select(ProcessedKey.key))))

    def events_of(self, kind: str, stream: str | None = None) -> list[Event]:
        return [e for e in self.events if e.kind == kind and stream in (None, e.stream)]

    def pending(self) -> list[OutboxItem]:
        return [item for item in self.items if item.status == "pending"]


CHANGE_TEXT = re.compile(r"changed the (status|severity) from \*(\w+)\* to \*(\w+)\*")


def assert_consistent(snap: Snapshot, *, every_incident_set_up: bool = True) -> None:
    """What must hold at any moment, crash or not: state <-> events <-> outbox rows, all or nothing."""
    assert_incidents_match_declarations(snap, every_incident_set_up)
    for incident in snap.incidents:
        assert_state_matches_events(incident, [e for e in snap.events if e.stream == incident.stream])
    assert_changes_have_their_posts(snap)
    streams = {i.stream for i in snap.incidents}
    orphans = [(item.id, item.kind, item.subject) for item in snap.items
               if item.subject.startswith("incident:") and item.subject not in streams]
    assert not orphans, f"outbox rows for incidents that do not exist: {orphans}"


def assert_incidents_match_declarations(snap: Snapshot, every_incident_set_up: bool) -> None:
    declared = Counter(e.stream for e in snap.events_of("incident.declared"))
    streams = Counter(i.stream for i in snap.incidents)
    assert declared == streams, f"incident rows {streams} vs incident.declared events {declared}"
    if every_incident_set_up:  # declared and queued for set-up in one transaction
        set_up = Counter(item.subject for item in snap.items if item.kind == "incident.setup")
        assert set_up == streams, f"incident rows {streams} vs incident.setup outbox rows {set_up}"


def assert_state_matches_events(incident: Incident, events: list[Event]) -> None:
    """Replay the stream: each field equals what its latest event says (and is unset without one)."""
    replayed = {"status": None, "severity": None, "channel_id": None, "summary_ts": None, "feed_ts": None}
    for event in events:
        data = event.data
        if event.kind == "incident.declared":
            replayed.update(status=data["status"], severity=data["severity"])
        elif event.kind in ("incident.status_changed", "incident.closed"):
            replayed["status"] = data["to"]
        elif event.kind == "incident.severity_changed":
            replayed["severity"] = data["to"]
        elif event.kind == "incident.channel_created":
            replayed["channel_id"] = data["channel"]
        elif event.kind == "incident.summary_posted":
            replayed["summary_ts"] = data["ts"]
        elif event.kind == "incident.announcement_posted":
            replayed["feed_ts"] = data["ts"]
    actual = {name: getattr(incident, name) for name in replayed}
    assert actual == replayed, f"{incident.key}: state {actual} but its events say {replayed}"


def assert_changes_have_their_posts(snap: Snapshot) -> None:
    """Every note/status/severity event was written with its channel post, and the reverse."""
    posts = [item for item in snap.items if item.kind == "channel.post"]
    note_posts = Counter(item.payload.get("block_id") for item in posts
                         if (item.payload.get("block_id") or "").startswith("note:"))
    notes = Counter(f"note:{e.id}" for e in snap.events_of("incident.note_added"))
    assert note_posts == notes, f"note events {notes} vs their channel posts {note_posts}"
    changes = Counter((e.stream, e.kind.split(".")[1].removesuffix("_changed"), e.data["from"], e.data["to"])
                      for e in snap.events if e.kind in ("incident.status_changed", "incident.severity_changed"))
    change_posts = Counter((item.subject, *m.groups()) for item in posts
                           if (m := CHANGE_TEXT.search(item.payload.get("text", ""))))
    assert change_posts == changes, f"change events {changes} vs their channel posts {change_posts}"


def claims_of(process: VigilProcess, snap: Snapshot) -> list[OutboxItem]:
    return [item for item in snap.pending() if process.claimed_by_me(item.claimed_by)]


def wait_drained(database, processes) -> Snapshot:
    left = []

    def drained() -> bool:  # a cheap query: on SQLite every read takes the write lock the sender needs
        with database.session() as session:
            left.append(outbox.pending_count(session))
        return left[-1] == 0
    wait_until(drained, "the outbox to drain", processes=processes, progress=lambda: left[-1] if left else None)
    return Snapshot.of(database)


def assert_verify_ok(procs: Processes) -> None:
    """`vigil verify` as a subprocess, as an operator would run it after the crash."""
    verified = procs.verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("OK: "), verified.stdout


def assert_chains_verify(database) -> None:
    """What `vigil verify` checks, in this process (saves a Python start-up; the web test runs the command)."""
    with database.session() as session:
        result = verify_database(session)
    assert result.ok, result.broken.describe()



# ---- Slack, as the fake saw it ------------------------------------------------------------------------
def performed(fake, method: str, **params) -> list:
    """Calls Slack performed successfully, optionally with these parameter values."""
    return [c for c in fake.calls_to(method) if not c.failed and all(c.params.get(k) == v for k, v in params.items())]


def assert_set_up_once(fake, snap: Snapshot, created_here: set[str]) -> None:
    """Each incident: one channel (when Vigil created it), one summary (pinned), one feed announcement."""
    created = Counter(c.params["name"] for c in performed(fake, "conversations.create"))
    expected = Counter(i.channel_name for i in snap.incidents if i.stream in created_here)
    assert created == expected, f"channels created {created}, expected one each {expected}"
    for incident in snap.incidents:
        summary = f"{incident.key} ["  # blocks.summary_text: also the announcement's text
        summaries = [c.response["ts"] for c in performed(fake, "chat.postMessage", channel=incident.channel_id)
                     if c.params["text"].startswith(summary)]
        announced = [c.response["ts"] for c in performed(fake, "chat.postMessage", channel=FEED)
                     if c.params["text"].startswith(summary)]
        assert summaries == [incident.summary_ts], f"{incident.key}: summaries posted {summaries}"
        assert announced == [incident.feed_ts], f"{incident.key}: feed announcements {announced}"
        assert performed(fake, "pins.add", channel=incident.channel_id, timestamp=incident.summary_ts), \
            f"{incident.key}: summary {incident.summary_ts} was never pinned"


def assert_channel_posts_sent_once(fake, snap: Snapshot) -> None:
    """Each channel.post outbox row became exactly one Slack message (and its feed copy, if any)."""
    by_channel = {i.stream: i.channel_id for i in snap.incidents}
    wanted = Counter()
    for item in snap.items:
        if item.kind == "channel.post":
            wanted[(by_channel[item.subject], item.payload["text"])] += 1
            if item.payload.get("also_feed"):
                wanted[(FEED, f"*INC-{item.subject.split(':')[1]}* · {item.payload['text']}")] += 1
    sent = Counter((c.params["channel"], c.params["text"]) for c in performed(fake, "chat.postMessage"))
    wrong = {key: (count, sent[key]) for key, count in wanted.items() if sent[key] != count}
    assert not wrong, f"(channel, text): (queued, sent) differ: {wrong}"


# ---- the burst of Slack requests ----------------------------------------------------------------------
@dataclass
class Planned:
    kind: str  # declare | note | status | severity
    body: str
    key: str  # the declaration's title, the note's text, or the incident's channel
    natural_key: str | None = None  # processed_key of a modal submission


@dataclass
class Burst:
    """Sends planned requests from several threads until they are done or the server dies.

    A request refused at connect never reached the server and goes back to `todo`; one sent and
    not answered (the server was killed) is `failed`: it may or may not have been recorded.
    """
    base: str
    todo: deque
    answered: list = field(default_factory=list)  # (Planned, status code, reply text)
    failed: list = field(default_factory=list)
    inflight: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send_all, daemon=True) for _ in range(8)]

    def start(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> Burst:
        wait_until(lambda: not any(thread.is_alive() for thread in self._threads), "the burst's senders to finish",
                   progress=lambda: (len(self.answered), len(self.failed), len(self.todo)))
        return self

    def _take(self) -> Planned | None:
        with self._lock:
            if not self.todo:
                return None
            self.inflight += 1
            return self.todo.popleft()

    def _send_all(self) -> None:
        # No read timeout: on a busy machine an answer may be slow, and a timeout would count it as cut
        # off by the kill; a killed server resets the connection at once, and `join` notices a stall.
        with httpx.Client(base_url=self.base, timeout=httpx.Timeout(None, connect=30)) as client:
            while (planned := self._take()) is not None:
                outcome = self._send(client, planned)
                with self._lock:
                    self.inflight -= 1
                    if outcome == "refused":
                        self.todo.appendleft(planned)
                    elif outcome == "failed":
                        self.failed.append(planned)
                    else:
                        self.answered.append((planned, *outcome))
                if outcome in ("refused", "failed"):
                    return  # the server is gone; the test restarts it

    @staticmethod
    def _send(client: httpx.Client, planned: Planned):
        try:
            response = client.post("/slack/events", content=planned.body.encode(),
                                   headers=slack_requests.signed_headers(planned.body))
        except httpx.ConnectError:
            return "refused"
        except httpx.TransportError:
            return "failed"
        return response.status_code, reply_text(response)

    def acked(self, kind: str | None = None) -> list[tuple[Planned, str]]:
        return [(p, reply) for p, status, reply in self.answered if status == 200 and kind in (None, p.kind)]


def reply_text(response: httpx.Response) -> str:
    """The ephemeral text of an ack (JSON with "text", or plain text); "" for an empty ack."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    return body.get("text", "") if isinstance(body, dict) else response.text


def plan_burst(view: dict, notes_channel: str, change_channels: list[str], response_url: str) -> list[Planned]:
    """12 declarations, 12 notes on one incident, 16 status and 8 severity changes on 4 others, shuffled."""
    planned = []
    for i in range(12):
        title = f"Crash burst incident {i:02d}"
        planned.append(Planned("declare", slack_requests.view_submission(view, {
            "title": slack_requests.input_value("plain_text_input", title),
            "severity": slack_requests.input_value("static_select", "sev2"),
            "type": slack_requests.input_value("static_select", "availability")}, view_id=f"VCRASH{i:04d}"), title,
            f"view:VCRASH{i:04d}"))
        text = f"crash burst note {i:02d}"
        planned.append(Planned("note", slack_requests.slash_command(
            f"note {text}", channel=notes_channel, response_url=response_url), text))
    changes = [("status", "identified"), ("status", "monitoring"), ("status", "investigating"),
               ("status", "identified"), ("severity", "sev1"), ("severity", "sev3")]
    for channel in change_channels:
        for verb, value in changes:
            planned.append(Planned(verb, slack_requests.slash_command(
                f"{verb} {value}", channel=channel, response_url=response_url), channel))
    random.Random(7).shuffle(planned)
    return planned


def capture_declare_view(base: str, fake) -> dict:
    """The declaration modal as `/incident declare` opens it (its view is reused for every submission)."""
    body = slack_requests.slash_command("declare Crash burst")
    answer = httpx.post(f"{base}/slack/events", content=body, headers=slack_requests.signed_headers(body))
    assert answer.status_code == 200, answer.text
    return fake.wait_for("views.open")[-1].params["view"]


def recorded(snap: Snapshot, planned: Planned) -> int:
    """How many times a declaration or note is in the database; fails if it is there in part."""
    if planned.kind == "note":
        return len([e for e in snap.events_of("incident.note_added") if e.data["text"] == planned.key])
    parts = (len([i for i in snap.incidents if i.title == planned.key]),
             len([e for e in snap.events_of("incident.declared") if e.data["title"] == planned.key]),
             int(planned.natural_key in snap.keys))
    assert len(set(parts)) == 1, f"half-written declaration {planned.key!r}: (incident, event, view key) = {parts}"
    return parts[0]


def assert_changes_counted(snap: Snapshot, answered: list, failed: list, incident: Incident) -> None:
    """Each acked change that said "is now" is one event; a request cut off by the kill is one or none."""
    for kind in ("status", "severity"):
        mine = [(p, reply) for p, reply in answered if p.kind == kind and p.key == incident.channel_id]
        made = len([p for p, reply in mine if " is now " in reply])  # not ":warning: … is already …"
        cut_off = len([p for p in failed if p.kind == kind and p.key == incident.channel_id])
        events = len(snap.events_of(f"incident.{kind}_changed", incident.stream))
        assert made <= events <= made + cut_off, \
            f"{incident.key} {kind}: {made} acked as made, {cut_off} cut off, {events} events"


def assert_taken_over(taken: list[OutboxItem], final: Snapshot, dead: list[VigilProcess]) -> None:
    """Items a killed process had claimed were delivered by another, after the claim expired."""
    now = {item.id: item for item in final.items}
    for item in taken:
        assert now[item.id].status == "done", f"outbox item {item.id} ({item.kind}) left undelivered"
        assert not any(process.claimed_by_me(now[item.id].claimed_by) for process in dead), \
            f"outbox item {item.id} is marked delivered by a killed process: {now[item.id].claimed_by}"


# ---- the tests ----------------------------------------------------------------------------------
def test_web_killed_mid_burst_leaves_every_request_whole_or_absent(db, fake, procs):
    notes_target = seed_incident(db, "Notes target", channel="C0NOTES")
    change_targets = [seed_incident(db, f"Change target {n}", channel=f"C0CHANGE{n}") for n in range(4)]
    first_web, base = procs.serve()
    plan = plan_burst(capture_declare_view(base, fake), notes_target.channel_id,
                      [i.channel_id for i in change_targets], fake.response_url())
    # The web's own sender (one thread, one item at a time) parks on its next Slack call, before
    # Slack performs it: the kill cannot land in the narrow window.
    fake.hold("*")

    burst = Burst(base, deque(plan)).start()
    wait_until(lambda: len(burst.acked()) >= len(plan) // 3 and burst.inflight >= 3 and fake.held(),
               "the burst to be under way", processes=[first_web], progress=lambda: len(burst.answered), every=0.005)
    first_web.kill_9(db)
    burst.join()
    at_kill = Snapshot.of(db)
    taken = claims_of(first_web, at_kill)
    fake.abandon_held()
    fake.stop_holding()

    # At the crash: nothing half-written, every ack stands, a cut-off request is whole or absent.
    assert burst.failed, "no request was in flight when the server was killed"
    assert taken, "the killed web process held no outbox claims"
    assert_consistent(at_kill)
    assert all(status == 200 for _, status, _ in burst.answered), burst.answered
    for planned, _ in burst.acked():
        if planned.kind in ("declare", "note"):
            assert recorded(at_kill, planned) == 1, f"acked {planned.kind} {planned.key!r} not recorded once"
    cut_off = {planned.key: recorded(at_kill, planned) for planned in burst.failed
               if planned.kind in ("declare", "note")}

    # Restart and finish; a cut-off modal is submitted again (same view id), as its user would.
    restarted = time.monotonic()
    second_web, base = procs.serve()
    resubmitted = [planned for planned in burst.failed if planned.kind == "declare"]
    rest = Burst(base, deque([*burst.todo, *resubmitted])).start().join()
    assert not rest.failed and not rest.todo and all(status == 200 for _, status, _ in rest.answered)
    final = wait_drained(db, [second_web])
    recovery = time.monotonic() - restarted

    assert_consistent(final)
    for planned in plan:
        if planned.kind == "declare":
            assert recorded(final, planned) == 1, f"declaration {planned.key!r}"
        elif planned.kind == "note":  # a cut-off note is not resent (a slash command has no natural key)
            assert recorded(final, planned) == cut_off.get(planned.key, 1), f"note {planned.key!r}"
    answered = burst.acked() + rest.acked()
    assert any(" is now " in reply for planned, reply in answered if planned.kind == "status"), answered
    for incident in change_targets:
        assert_changes_counted(final, answered, burst.failed, incident)
    declared_here = {i.stream for i in final.incidents if i.title.startswith("Crash burst incident")}
    assert_set_up_once(fake, final, declared_here)
    assert_channel_posts_sent_once(fake, final)
    assert_taken_over(taken, final, [first_web])
    assert_verify_ok(procs)
    print(f"\n[web kill] {len(plan)} requests; acked before the kill {len(burst.acked())}; cut off in flight "
          f"{len(burst.failed)} (of their declarations/notes recorded anyway: {sum(cut_off.values())} of "
          f"{len(cut_off)}); not yet sent {len(burst.todo)}; outbox claims taken over {len(taken)}; "
          f"restart to drained {recovery:.1f}s")


# Where each worker in turn is killed, its Slack call held before Slack performs it: before the first
# set-up step has a result, with the channel stored but not the summary, with the summary stored but
# not pinned.
KILL_POINTS = ("conversations.create", "chat.postMessage", "pins.add")


def test_workers_killed_mid_claim_hand_their_items_over_once(db, fake, procs):
    for n in range(20):
        seed_incident(db, f"Queued incident {n:02d}")
    killed, taken, claimed_per_kill = [], {}, []
    for method in KILL_POINTS:
        fake.hold(method)
        worker = procs.worker()
        wait_until(fake.held, f"a worker to call {method}", processes=[worker])
        worker.kill_9(db)
        at_kill = Snapshot.of(db)
        assert fake.abandon_held() == [method]
        fake.stop_holding()
        claims = claims_of(worker, at_kill)
        assert claims, f"the worker killed at {method} held no claims"
        assert_consistent(at_kill)
        killed.append(worker)
        claimed_per_kill.append(len(claims))
        taken.update((item.id, item) for item in claims)

    started = time.monotonic()
    last = procs.worker()
    final = wait_drained(db, [last])
    recovery = time.monotonic() - started
    assert_consistent(final)
    assert_taken_over(list(taken.values()), final, killed)
    assert_set_up_once(fake, final, {i.stream for i in final.incidents})
    assert fake.abandoned == list(KILL_POINTS)  # the calls cut off never reached Slack
    assert_chains_verify(db)
    print(f"\n[worker kills] claims held at each kill {claimed_per_kill}, {len(taken)} distinct items, all taken "
          f"over; last worker start to drained {recovery:.1f}s")


def test_worker_killed_while_sending_a_due_reminder_sends_it_once(db, fake, procs):
    with clock.frozen(clock.now() - timedelta(hours=2)):  # sev2: an update was due an hour ago
        incident = seed_incident(db, "Reminder target", channel="C0REMIND", lead="U0LEAD", set_up=False)
    fake.hold("chat.postMessage")
    first = procs.worker()  # sweeps at start: queues the reminder (and its event), then sends it
    wait_until(fake.held, "the worker to send the reminder", processes=[first])
    first.kill_9(db)
    at_kill = Snapshot.of(db)
    fake.abandon_held()
    fake.stop_holding()

    (reminder,) = [item for item in at_kill.items if (item.dedupe_key or "").startswith("update-due:")]
    assert reminder.status == "pending" and first.claimed_by_me(reminder.claimed_by)
    assert len(at_kill.events_of("incident.update_reminded", incident.stream)) == 1
    assert_consistent(at_kill, every_incident_set_up=False)

    second = procs.worker()  # sweeps again (the dedupe key stops a second reminder), then takes over
    final = wait_drained(db, [second])
    assert_consistent(final, every_incident_set_up=False)
    (delivered,) = [item for item in final.items if (item.dedupe_key or "").startswith("update-due:")]
    assert delivered.id == reminder.id and second.claimed_by_me(delivered.claimed_by)
    assert len(final.events_of("incident.update_reminded", incident.stream)) == 1
    assert_taken_over([reminder], final, [first])
    sent = performed(fake, "chat.postMessage", channel=incident.channel_id)
    assert [c.params["text"] for c in sent] == [reminder.payload["text"]]
    assert fake.abandoned == ["chat.postMessage"]
    assert_chains_verify(db)
