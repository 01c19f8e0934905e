"""Faults on PostgreSQL, with real processes: the database restarted under load, and two workers
sweeping 10,000 due reminders at once.

Each test runs against a private throwaway cluster (initdb into a temporary folder as the
`postgres` user, fsync off, a free loopback port) that it may stop and start; `vigil serve` and
`vigil worker` run as subprocesses against it and the fake Slack Web API. Without PostgreSQL the
tests skip, unless VIGIL_TEST_POSTGRES=1 (CI), where that is a failure.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, text
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.db import CommitUncertain, Database, migrate
from vigil_ir.eventlog import Event
from vigil_ir.idempotency import ProcessedKey
from vigil_ir.incidents import service as incidents
from vigil_ir.outbox.models import OutboxItem
from vigil_ir.slack import blocks, failures, notify
from tests import slack_requests as sr

ROOT = Path(__file__).resolve().parent.parent
VIGIL = Path(sys.executable).with_name("vigil")
CHANNEL, USER = "C0OUTAGE", "U0RESPONDER"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


# ---- a private PostgreSQL cluster ---------------------------------------------------------------
def unavailable(reason: str):
    if os.environ.get("VIGIL_TEST_POSTGRES") == "1":
        pytest.fail(f"VIGIL_TEST_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def postgres_bin() -> Path | None:
    """Like scripts/with-postgres.sh: initdb on PATH (resolved), else the newest /usr/lib/postgresql/*/bin."""
    candidates = []
    if found := shutil.which("initdb"):
        candidates.append(Path(os.path.realpath(found)).parent)
    version = lambda path: [int(part) for part in re.findall(r"\d+", path)]  # noqa: E731
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)]
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throwaway server this module may stop and start again (same port, same data)."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.as_root = os.geteuid() == 0
        # /tmp, not pytest's tmp_path: the postgres user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="vigil-faults-pg.", dir="/tmp"))
        if self.as_root:
            shutil.chown(self.root, "postgres")
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}\n{self.server_log()}")
        return done

    def server_log(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
                 "--no-sync")

    def start(self) -> None:
        # fsync off: an immediate stop kills the server, not the OS, so written WAL survives it. But
        # synchronous_commit stays on: off, COMMIT returns before its WAL is written, and a kill
        # loses transactions already acknowledged (production runs with it on).
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_database(self, name: str) -> str:
        """An empty database, migrated with the real migrations."""
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        migrate(self.url(name))
        return self.url(name)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            if self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False).returncode:
                self.run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    bin_dir = postgres_bin()
    if bin_dir is None:
        unavailable("PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or subprocess.run(
            ["id", "postgres"], capture_output=True).returncode != 0):
        unavailable("running as root, but there is no `postgres` user (and runuser) to run the server as")
    server = Cluster(bin_dir)
    try:
        server.init()
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as failure:
        server.destroy()
        unavailable(f"a private PostgreSQL ({bin_dir}) could not be started: {failure}")
    yield server
    server.destroy()


@pytest.fixture
def running(cluster):
    """The cluster, started again after the test if the test left it stopped."""
    yield cluster
    if not (cluster.data / "postmaster.pid").exists():
        cluster.start()


# ---- Vigil processes --------------------------------------------------------------------------
def vigil_env(url: str, fake, **extra) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in PROXY_VARS}
    env.update({"DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": sr.SECRET,
                "SLACK_API_URL": fake.base_url, "SLACK_HOOKS_URL": fake.response_url(""), "VIGIL_SLACK_TIMEOUT_SECONDS": "5", "VIGIL_LOG_FORMAT": "json",
                "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    env.update(extra)
    return env


class Process:
    """A `vigil` subprocess whose stderr goes to a file the test can read (its JSON log lines)."""

    def __init__(self, args: list[str], env: dict, workdir: Path, name: str):
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as output:  # the child keeps its own descriptor
            # cwd: a folder without a .env, so only `env` configures the process
            self.popen = subprocess.Popen([str(VIGIL), *args], env=env, cwd=workdir, stdout=output,
                                          stderr=subprocess.STDOUT)

    def lines(self) -> list[dict]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                found.append({"message": line})
        return found

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def wait_while_progressing(measure, target, what: str, *, stall: float = 120.0, every: float = 0.5, detail=None):
    """Poll `measure()` until it equals `target`; fail only when it has not moved for `stall` seconds.

    For long work on a busy machine: slow progress is fine, no progress is a hang."""
    last, moved = measure(), time.monotonic()
    while last != target:
        if time.monotonic() - moved > stall:
            raise AssertionError(f"no progress towards {what} for {stall:.0f}s (at {last}, want {target})"
                                 + (f": {detail()}" if detail else ""))
        time.sleep(every)
        now = measure()
        if now != last:
            last, moved = now, time.monotonic()
    return last


def wait_until(condition, what: str, timeout: float = 30.0, every: float = 0.05, detail=None):
    """Poll `condition` until it returns something truthy; fail naming `what` (a hang guard, not a timing check)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(every)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f}s" + (f": {detail()}" if detail else ""))


def seed_incident(url: str) -> None:
    database = Database(url)
    with database.session() as session:
        incident = incidents.declare(session, actor=USER, title="Checkout API returns 500s", severity="sev2",
                                     type="availability")
        incidents.attach_channel(session, incident=incident, channel_id=CHANNEL, channel_name="inc-1-checkout")
    database.dispose()


def verify(url: str, fake, workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(VIGIL), "verify"], env=vigil_env(url, fake), cwd=workdir, capture_output=True,
                          text=True, timeout=120)


# ---- 1. PostgreSQL restarted under load -------------------------------------------------------
@dataclass
class Sent:
    kind: str  # note | event
    key: str  # the note's text, or the event's message ts
    body: str
    content_type: str
    status: int = 0
    text: str = ""
    event_id: str = ""
    headers: dict = field(default_factory=dict)


class Slack:
    """Signs and sends what Slack would, to a running `vigil serve`."""

    def __init__(self, port: int, fake):
        self.base, self.fake = f"http://127.0.0.1:{port}", fake
        self.sent: list[Sent] = []
        self._lock = threading.Lock()
        self._count = 0

    def _next(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def post(self, client: httpx.Client, body: str, content_type: str, headers: dict | None = None) -> httpx.Response:
        signed = sr.signed_headers(body, content_type=content_type)
        return client.post(f"{self.base}/slack/events", content=body.encode(), headers={**signed, **(headers or {})})

    def note(self, client: httpx.Client, phase: str) -> Sent:
        words = f"note {phase} load #{self._next()}"
        sent = Sent("note", words.removeprefix("note "), sr.slash_command(words, user=USER, channel=CHANNEL),
                    "application/x-www-form-urlencoded")
        return self._send(client, sent)

    def pin(self, client: httpx.Client, phase: str) -> Sent:
        n = self._next()
        ts = f"1764300000.{n:06d}"
        self.fake.add_message(CHANNEL, ts, f"{phase} message {n}")
        event = {"type": "reaction_added", "user": USER, "reaction": "pushpin", "event_ts": ts,
                 "item": {"type": "message", "channel": CHANNEL, "ts": ts}}
        event_id = f"EvLOAD{n:06d}"
        sent = Sent("event", ts, sr.event_callback(event, event_id=event_id), "application/json", event_id=event_id)
        return self._send(client, sent)

    def redeliver(self, client: httpx.Client, sent: Sent) -> httpx.Response:
        """What Slack does with an event that did not get a 2xx: the same body and id, a retry header."""
        return self.post(client, sent.body, sent.content_type,
                         {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})

    def _send(self, client: httpx.Client, sent: Sent) -> Sent:
        try:
            response = self.post(client, sent.body, sent.content_type)
            sent.status, sent.text, sent.headers = response.status_code, response.text, dict(response.headers)
        except httpx.HTTPError as failure:  # must not happen: Vigil answers even when its database is gone
            sent.status, sent.text = -1, repr(failure)
        with self._lock:
            self.sent.append(sent)
        return sent

    def of(self, kind: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.kind == kind]


def noted(sent: Sent) -> bool:
    return sent.status == 200 and "Noted on the INC-1 timeline" in sent.text


def outage_answer(sent: Sent) -> str | None:
    """'down' (nothing recorded), 'doubt' (commit cut off), or None if this is not an outage answer."""
    if sent.status != 200:
        return None
    message = json.loads(sent.text).get("text", "") if sent.text.startswith("{") else ""
    if message == f":warning: {failures.DATABASE_DOWN}":
        return "down"
    return "doubt" if "may or may not have been recorded" in message else None


def healthz(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10, trust_env=False).status_code
    except httpx.HTTPError:
        return -1


class Load:
    """Threads sending notes and pins as fast as they are answered, until stopped."""

    def __init__(self, slack: Slack, threads: int = 3):
        self.slack, self.stop, self.phase = slack, threading.Event(), "before"
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=30, trust_env=False) as client:
            while not self.stop.is_set():
                (self.slack.pin if index == 0 else self.slack.note)(client, self.phase)


def notes_recorded(database: Database) -> Counter:
    with database.session() as session:
        texts = session.exec(select(Event.data).where(Event.kind == "incident.note_added"))
        return Counter(data["text"] for data in texts)


def test_postgres_restarted_under_load(running, fake_slack, tmp_path):
    cluster = running
    url = cluster.fresh_database("vigil_outage")
    seed_incident(url)
    port = free_port()
    web = Process(["serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)],
                  vigil_env(url, fake_slack), tmp_path, "serve")
    database = Database(url)
    slack = Slack(port, fake_slack)
    client = httpx.Client(timeout=30, trust_env=False)
    try:
        wait_until(lambda: healthz(port) == 200, "vigil serve to become healthy", timeout=60)
        with Load(slack) as load:
            wait_until(lambda: sum(map(noted, slack.of("note"))) >= 20, "20 notes acked before the outage")

            cluster.stop("immediate")  # mid-load: whatever is in flight is cut off
            load.phase = "outage"
            assert healthz(port) == 503
            # A fixed set during the outage, so the checks below never depend on timing.
            during = [slack.note(client, "outage") for _ in range(5)] + [slack.pin(client, "outage") for _ in range(5)]
            form = outage_form(slack, client)
            button, button_notices = outage_button(slack, client)
            wait_until(lambda: sum(outage_answer(s) == "down" for s in slack.of("note")) >= 10,
                       "the load to meet the outage")
            outage_log_line = last_outage_warning(web)
            assert healthz(port) == 503

            cluster.start()
            load.phase = "after"
            wait_until(lambda: healthz(port) == 200, "/healthz to recover without restarting Vigil")
            acked_before = sum(map(noted, slack.of("note")))
            wait_until(lambda: sum(map(noted, slack.of("note"))) >= acked_before + 20, "notes acked after the outage")
        after = [slack.note(client, "after") for _ in range(5)] + [slack.pin(client, "after") for _ in range(5)]

        # Service resumed by itself: same process, every request after the restart handled.
        assert web.popen.poll() is None, web.tail()
        assert all(s.status == 200 and (s.kind == "event" or noted(s)) for s in after), [
            (s.kind, s.status, s.text[:200]) for s in after if s.status != 200 or (s.kind == "note" and not noted(s))]
        # During the outage: a clear ephemeral answer for commands, a retryable 503 for events.
        assert all(outage_answer(s) == "down" for s in during if s.kind == "note"), [s.text for s in during]
        assert all(s.status == 503 for s in during if s.kind == "event"), [(s.status, s.text) for s in during]
        for sent in slack.sent:
            assert sent.status in (200, 503), (sent.kind, sent.status, sent.text[:300])
            assert "Traceback" not in sent.text and 'File "' not in sent.text, sent.text[:2000]
            if sent.kind == "note":
                assert noted(sent) or outage_answer(sent), sent.text[:300]
            if sent.status == 503:
                assert json.loads(sent.text) == {"ok": False, "error": "database_unavailable"}
        assert outage_log_line.get("request_id"), outage_log_line  # the error is logged with the request id
        assert form.json() == {"response_action": "errors", "errors": {"title": failures.DATABASE_DOWN}}
        assert (button.status_code, button.text) == (200, "")
        assert [n["text"] for n in button_notices] == [f":warning: {failures.DATABASE_DOWN}"]

        # "Slack" redelivers every event that did not get a 2xx, plus one that did (a spurious retry).
        failed_events = [s for s in slack.of("event") if s.status != 200]
        assert failed_events
        spurious = next(s for s in slack.of("event") if s.status == 200)
        for sent in failed_events + [spurious]:
            assert slack.redeliver(client, sent).status_code == 200

        wait_until(lambda: pending(database) == 0, "the outbox to drain after the outage", timeout=90, every=0.2,
                   detail=lambda: (stuck(database), [line for line in web.lines()
                                                     if line.get("logger") not in ("uvicorn.access", "vigil_ir.slack.failures")]))
        check_notes(database, slack, fake_slack)
        check_pins(database, slack)
        check_no_declaration(database)
        verified = verify(url, fake_slack, tmp_path)
        assert verified.returncode == 0, verified.stderr
        assert web.popen.poll() is None
    finally:
        client.close()
        database.dispose()
        web.stop()


def outage_form(slack: Slack, client: httpx.Client) -> httpx.Response:
    view = {**blocks.declare_modal("Payments down", json.dumps({"origin_channel": CHANNEL})), "id": "V0OUTAGEFORM"}
    body = sr.view_submission(view, {"title": sr.input_value("plain_text_input", "Payments down"),
                                     "severity": sr.input_value("static_select", "sev1"),
                                     "type": sr.input_value("static_select", "availability")}, user=USER)
    return slack.post(client, body, "application/x-www-form-urlencoded")


def outage_button(slack: Slack, client: httpx.Client) -> tuple[httpx.Response, list[dict]]:
    body = sr.block_action("incident_take_lead", "1", channel=CHANNEL, message_ts="1764200000.000001",
                           response_url=slack.fake.response_url("outage-button"))
    response = slack.post(client, body, "application/x-www-form-urlencoded")
    notices = wait_until(lambda: slack.fake.responses("outage-button"), "the button's notice on its response_url")
    return response, notices


def last_outage_warning(web: Process) -> dict:
    return wait_until(lambda: next((line for line in reversed(web.lines())
                                    if "database unavailable during a Slack" in line.get("message", "")), None),
                      "the outage warning in the serve log")


def pending(database: Database) -> int:
    try:
        with database.session() as session:
            return session.exec(select(func.count()).select_from(OutboxItem)
                                .where(OutboxItem.status == "pending")).one()
    except Exception:  # noqa: BLE001 - the test's own pool may hold connections from before the restart
        return -1


def stuck(database: Database) -> list[tuple]:
    with database.session() as session:
        return [(i.id, i.kind, i.attempts, i.claimed_by, i.available_at, i.last_error) for i in session.exec(
            select(OutboxItem).where(OutboxItem.status == "pending").order_by(OutboxItem.id).limit(10))]


def check_notes(database: Database, slack: Slack, fake) -> None:
    """Every acked note is recorded exactly once, nothing answered 'nothing was recorded' is, and each
    recorded note was posted in the channel exactly once (its outbox item delivered, not repeated)."""
    recorded = notes_recorded(database)
    notes = slack.of("note")
    assert all(count == 1 for count in recorded.values()), [t for t, c in recorded.items() if c > 1]
    assert set(recorded) <= {s.key for s in notes}
    missing = [s.key for s in notes if noted(s) and s.key not in recorded]
    assert not missing, missing
    wrongly_recorded = [(s.key, s.headers.get("x-request-id")) for s in notes
                        if outage_answer(s) == "down" and s.key in recorded]
    assert not wrongly_recorded, wrongly_recorded
    with database.session() as session:
        note_ids = {e.id: e.data["text"] for e in session.exec(select(Event).where(Event.kind == "incident.note_added"))}
    posts = Counter(block["block_id"] for call in fake.calls_to("chat.postMessage") if call.params["channel"] == CHANNEL
                    for block in call.params.get("blocks") or [] if str(block.get("block_id", "")).startswith("note:"))
    assert {f"note:{event_id}" for event_id in note_ids} == set(posts)
    assert all(count == 1 for count in posts.values()), [b for b, c in posts.items() if c > 1]


def check_pins(database: Database, slack: Slack) -> None:
    """Every pinned message is on the timeline exactly once, however many times its event was delivered."""
    pins = slack.of("event")
    with database.session() as session:
        captured = Counter(e.data.get("ts") for e in session.exec(select(Event).where(
            Event.kind == "incident.message_added")))
        handled = {row.key for row in session.exec(select(ProcessedKey).where(ProcessedKey.key.like("slack-event:%")))}
    assert {s.key for s in pins} == set(captured), ({s.key for s in pins} ^ set(captured))
    assert all(count == 1 for count in captured.values())
    assert {f"slack-event:{s.event_id}" for s in pins} <= handled


def check_no_declaration(database: Database) -> None:
    from vigil_ir.incidents.models import Incident

    with database.session() as session:
        assert [i.title for i in session.exec(select(Incident))] == ["Checkout API returns 500s"]


# ---- 1b. the worker rides out an outage without sending anything twice ------------------------
def test_worker_keeps_a_delivery_it_could_not_record_and_records_it_when_the_database_returns(
        running, fake_slack, tmp_path):
    cluster = running
    url = cluster.fresh_database("vigil_worker_outage")
    seed_incident(url)
    database = Database(url)

    def queue_post(label: str) -> int:
        with database.session() as session:
            incident = incidents_by_channel(session)
            notify.post_in_channel(session, incident, f"probe {label}", block_id=f"probe:{label}", refresh=False)
            return session.exec(select(OutboxItem.id).where(OutboxItem.kind == "channel.post")
                                .order_by(OutboxItem.id.desc())).first()

    def posts(label: str) -> list:
        return [c for c in fake_slack.calls_to("chat.postMessage")
                if any(b.get("block_id") == f"probe:{label}" for b in c.params.get("blocks") or [])]

    def status(item_id: int) -> str | None:
        try:
            with database.session() as session:
                return session.get(OutboxItem, item_id).status
        except Exception:  # noqa: BLE001 - connections from before the restart
            return None

    first = queue_post("during")
    # Slack answers 3 s after it took the message: the database goes away in between, so the worker
    # cannot record that it was sent. A short claim makes a lost outcome show up as a second post.
    fake_slack.delay_next("chat.postMessage", 3.0)
    worker = Process(["worker"], vigil_env(url, fake_slack, VIGIL_OUTBOX_CLAIM_SECONDS="4"), tmp_path, "worker")
    try:
        wait_until(lambda: posts("during"), "the worker to send the message", timeout=60)
        database.dispose()
        cluster.stop("immediate")
        wait_until(lambda: any("database unreachable" in line.get("message", "") for line in worker.lines()),
                   "the worker to find the database gone after Slack answered")
        assert worker.popen.poll() is None, worker.tail()
        cluster.start()

        wait_until(lambda: status(first) == "done", "the delivery to be recorded after the restart", every=0.2)
        assert len(posts("during")) == 1
        with database.session() as session:
            item = session.get(OutboxItem, first)
            assert (item.attempts, item.result["ts"]) == (1, posts("during")[0].response["ts"])

        second = queue_post("after")  # and it carries on with new work by itself
        wait_until(lambda: status(second) == "done", "a delivery after the restart", every=0.2)
        assert len(posts("after")) == 1
        assert worker.popen.poll() is None
        assert not [line for line in worker.lines() if line.get("exc") or "Traceback" in line.get("message", "")]
    finally:
        database.dispose()
        assert worker.stop() == 0, worker.tail()


def incidents_by_channel(session):
    from vigil_ir.incidents import queries

    return queries.by_channel(session, CHANNEL)


def test_a_connection_lost_during_commit_is_reported_as_uncertain(running):
    """The one case where the outcome is unknown to Vigil, kept apart from 'nothing was recorded'."""
    url = running.fresh_database("vigil_commit")
    database = Database(url)
    killer = create_engine(running.url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(CommitUncertain):
            with database.session() as session:
                session.execute(text("INSERT INTO key_counter (name, last) VALUES ('probe', 1)"))
                session.flush()
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
                with killer.connect() as connection:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(Exception) as before_commit:  # cut off before COMMIT: an ordinary failure
            with database.session() as session:
                pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
                with killer.connect() as connection:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                session.execute(text("INSERT INTO key_counter (name, last) VALUES ('probe2', 1)"))
        assert not isinstance(before_commit.value, CommitUncertain)
    finally:
        killer.dispose()
        database.dispose()


# ---- 2. two workers, 10,000 due reminders -----------------------------------------------------
REMINDERS = 10_000
RISKS = 500  # each with REMINDERS // RISKS open reviews, every one due yesterday
SEED_BATCH = 25  # risks per transaction (500 reviews): a small session stays fast


def reviewer(n: int) -> str:
    return f"U{n:07d}"


def seed_due_reviews(url: str) -> None:
    """REMINDERS open reviews, each with its own reviewer, all through the domain (`risks.service.create`
    opens a risk's first review, `open_review` the others): `vigil verify` at the end checks every
    review row against its `risk.review_opened` event, so rows inserted behind the domain's back
    would be reported, as they should be.
    """
    from vigil_ir.risks import service as risks
    from vigil_ir.risks.reviews import open_review

    due = clock.to_utc(clock.now()).date() - timedelta(days=1)  # "due" reached, "overdue_3" not: one reminder
    per_risk = REMINDERS // RISKS
    database = Database(url)
    for first in range(0, RISKS, SEED_BATCH):
        with database.session() as session:
            for r in range(first, min(RISKS, first + SEED_BATCH)):
                risk = risks.create(session, actor="U0SEEDER", raw={
                    "title": f"Risk {r}", "statement": "Because laptops travel, one may be stolen, exposing data.",
                    "category": "security", "risk_type": "internal", "owner": reviewer(r * per_risk),
                    "inherent_likelihood": "3", "inherent_impact": "3", "residual_likelihood": "2",
                    "residual_impact": "2", "treatment": "mitigate", "treatment_plan": "Disk encryption",
                    "next_review_due": due.isoformat()})
                for k in range(1, per_risk):  # through the domain: `vigil verify` checks each row has its event
                    open_review(session, risk, trigger="incident", trigger_ref=f"INC-SEED-{k}", due_on=due,
                                actor="U0SEEDER", reviewer=reviewer(r * per_risk + k))
    database.dispose()


@pytest.mark.slow
def test_two_workers_sweeping_10000_due_reminders_send_each_exactly_once(running, fake_slack, tmp_path):
    from vigil_ir.risks.models import RiskReview

    url = running.fresh_database("vigil_reminders")
    started = time.perf_counter()
    seed_due_reviews(url)
    seeded = time.perf_counter()
    database = Database(url)
    with database.session() as session:
        review_ids = {r.reviewer: r.id for r in session.exec(select(RiskReview))}
    assert len(review_ids) == REMINDERS

    env = vigil_env(url, fake_slack)  # no VIGIL_RISK_CHANNEL: no digest, only the owners' reminders
    workers = [Process(["worker"], env, tmp_path, f"worker-{n}") for n in (1, 2)]
    try:
        def reminded() -> int:
            with database.session() as session:
                return session.exec(select(func.count()).select_from(Event)
                                    .where(Event.kind == "risk.reminder_sent")).one()

        wait_while_progressing(reminded, REMINDERS, "every reminder to be queued",
                               detail=lambda: [w.tail()[-1500:] for w in workers])
        swept = time.perf_counter()
        wait_while_progressing(lambda: pending(database), 0, "every reminder to be delivered",
                               detail=lambda: [w.tail()[-1500:] for w in workers])
        delivered = time.perf_counter()
        assert all(w.popen.poll() is None for w in workers), [w.tail() for w in workers]
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.tail() for w in workers]

    dms = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"].startswith("U")]
    per_reviewer = Counter(c.params["channel"] for c in dms)
    assert set(per_reviewer) == set(review_ids)
    assert [who for who, count in per_reviewer.items() if count != 1] == []
    buttons = {c.params["channel"]: c.params["blocks"][1]["elements"][0]["value"] for c in dms}
    assert buttons == {who: str(review_id) for who, review_id in review_ids.items()}  # each DM is its own review's
    with database.session() as session:
        events = list(session.exec(select(Event.data).where(Event.kind == "risk.reminder_sent")))
        items = Counter(session.exec(select(OutboxItem.status).where(OutboxItem.dedupe_key.like("risk-reminder:%"))))
        sent_by = Counter(session.exec(select(OutboxItem.claimed_by).where(OutboxItem.dedupe_key.like("risk-reminder:%"))))
    assert Counter(e["recipient"] for e in events) == Counter(review_ids.keys())  # one notification-log event each
    assert {e["kind"] for e in events} == {"due"}
    assert items == {"done": REMINDERS}
    assert len(sent_by) == 2, sent_by  # both workers delivered (a test of two workers, not one)
    verified = verify(url, fake_slack, tmp_path)
    assert verified.returncode == 0, verified.stderr
    database.dispose()
    print(f"\n{REMINDERS} reminders: seeding {seeded - started:.1f}s, sweeping {swept - seeded:.1f}s "
          f"(from worker start), delivery {delivered - swept:.1f}s more; per worker {dict(sent_by)}")
