"""Load: a realistic mix of Slack requests for a fixed time, `vigil serve` vs a bare bolt app, then checks.

    .venv/bin/python bench/load.py [--duration S] [--concurrency C] [--rate R]
                                   [--database sqlite] [--database postgresql://...]   (PostgreSQL is WIPED)

20 incidents (each with a channel, a pinned summary and the service-outage playbook) receive slash commands
(notes, status and severity changes), button clicks (take the lead, post update, playbook step done/undo),
modal submissions (status update, declare) and Events API pushpin reactions, all signed, in Slack's shapes.
SQLite runs one `vigil serve` (its embedded outbox thread delivers); PostgreSQL runs two `vigil serve`
processes without the thread and two `vigil worker`s. The bare bolt app of bench/ack.py (no-op listeners,
as many processes as Vigil has web processes) gets the same mix in the same run. Afterwards: every acked
request is recorded exactly once, the outbox drains, no Slack message is posted twice, `vigil verify` passes.
Not part of the test suite; exits 1 only if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ack import (EXCHANGE_ERRORS, USER, baseline_command, cpu_seconds, exchange, free_port,  # noqa: E402
                       fresh_database, no_proxies, pct, run_verify, server_env, signed_request, spawn, start,
                       stop, vigil_command)
from tests.slack_requests import block_action, event_callback, input_value, interactive  # noqa: E402
from tests.slack_requests import slash_command, view_submission  # noqa: E402

INCIDENTS = 20
PLAYBOOK = "service-outage"
FEED = "C0LOADFEED"
# Share of each request kind (percent): 40 notes, 15 other commands, 20 clicks, 10 modals, 15 events.
MIX = {"note": 40, "status": 8, "severity": 7, "take_lead": 8, "step": 8, "post_update": 4, "update": 8,
       "declare": 2, "pin": 15}
# These read the incident's state to build a request that changes it (a status it is not in, Undo on a
# done step), so requests of these kinds to one incident are sent one at a time.
LOCKED = {"status", "severity", "step", "update", "take_lead"}
STATUSES = ("investigating", "identified", "monitoring")  # not resolved: notes and pins stay realistic
SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
JSON = "application/json"
# Downgrading severity and replacing a lead are for the lead, commanders and admins (docs/permissions.md),
# so those requests come from commanders: members of a user group the fake Slack holds, named in
# VIGIL_COMMANDERS. Each is a new member (a unique actor, as for the other kinds, and never a double click).
COMMANDERS_GROUP = "S0LOADCMDS"
BY_COMMANDER = {"severity", "take_lead"}
COMMANDERS_PER_SECOND = 150  # room to spare: the group holds this many per second of load, plus 1,000


def commander(k: int) -> str:
    return f"UC{k:07d}"


# ---- the database: seed, wait for the outbox ------------------------------------------------------------
def seed(url: str) -> None:
    """20 incidents through the domain functions, each with a channel and the playbook attached; their
    set-up (summary posted and pinned, feed announcement) and checklist are queued for the workers."""
    from vigil_ir.db import Database
    from vigil_ir.incidents import service
    from vigil_ir.playbooks import runner
    from vigil_ir.playbooks.loader import load_library
    from vigil_ir.slack import notify

    database, playbook = Database(url), load_library()[PLAYBOOK]
    with database.session() as session:
        for number in range(1, INCIDENTS + 1):
            incident = service.declare(session, actor=USER, title=f"Checkout errors in region {number}",
                                       severity="sev3", type="availability")
            service.attach_channel(session, incident=incident, channel_id=f"C0LOAD{number:03d}",
                                   channel_name=f"inc-{incident.number}-checkout-errors")
            notify.setup_incident(session, incident)
            notify.refresh_checklist(session, runner.attach(session, incident=incident, actor=USER, file=playbook))
    database.dispose()


def outbox_pending(url: str) -> int:
    from sqlmodel import func, select

    from vigil_ir.db import Database
    from vigil_ir.outbox.models import OutboxItem

    database = Database(url)
    with database.session() as session:
        pending = session.exec(select(func.count()).select_from(OutboxItem).where(OutboxItem.status == "pending")).one()
    database.dispose()
    return pending


def wait_for_outbox(url: str, timeout: float) -> tuple[float, int]:
    """Seconds until no outbox item is pending (or the timeout), and how many still are."""
    begin = time.monotonic()
    while (pending := outbox_pending(url)) and time.monotonic() - begin < timeout:
        time.sleep(0.25)
    return time.monotonic() - begin, pending


# ---- the load generator's view of the incidents -------------------------------------------------------------
@dataclass
class Room:
    """One seeded incident as the load generator tracks it: what it is now, which steps are done."""

    id: int
    channel: str
    summary_ts: str
    update_view: dict
    steps: dict[int, bool]  # step id -> done (steps that need no evidence: Done applies at once)
    status: str
    severity: str
    lead: str | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def rooms(url: str) -> list[Room]:
    """Fresh trackers for the seeded incidents (a run's asyncio locks must not outlive its loop)."""
    from sqlmodel import select

    from vigil_ir.db import Database
    from vigil_ir.incidents.models import Incident
    from vigil_ir.playbooks import runner
    from vigil_ir.slack import blocks

    database, found = Database(url), []
    with database.session() as session:
        for incident in session.exec(select(Incident).order_by(Incident.number).limit(INCIDENTS)):
            steps = {s.id: s.status == "done" for run in runner.runs_for(session, incident)
                     for s in runner.steps_for(session, run) if s.evidence == "none"}
            found.append(Room(incident.id, incident.channel_id, incident.summary_ts or "1700000000.000100",
                              blocks.update_modal(incident), steps, incident.status, incident.severity, incident.lead))
    database.dispose()
    return found


@dataclass
class Planned:
    """A request and what it must leave in the database (`key`, counted by `check`)."""

    kind: str
    key: tuple | None
    body: str
    content_type: str = "application/x-www-form-urlencoded"
    applied: object = None  # called with the answer body once acked: updates the tracker
    answer: bytes = b""


class Mix:
    """Builds each request of the mix. Every request carries something unique (a responder's user id, a
    commander's for severity and take the lead, a note's text, a message ts), so each acked one can be
    found in the database afterwards."""

    def __init__(self, room_list: list[Room], fake=None, seed: int = 1, commanders: int = 0):
        self.rooms, self.fake, self.rng = room_list, fake, random.Random(seed)
        self.numbers, self.commanders, self.commanders_left = itertools.count(1), itertools.count(1), commanders
        self.acked: list[Planned] = []
        self.declare_view, self.ts_base = self._declare_view(), int(time.time()) - 86_400
        # Ephemeral replies after the ack (e.g. "already done") must reach a server, or they retry forever.
        self.reply = {"response_url": fake.response_url("load") if fake else "http://127.0.0.1:9/none"}

    @staticmethod
    def _declare_view() -> dict:
        from vigil_ir.slack import blocks

        return blocks.declare_modal("", json.dumps({"origin_channel": "C0GENERAL"}))

    def pick(self) -> tuple[str, Room]:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        return kind, self.rng.choice(self.rooms)

    def build(self, kind: str, room: Room) -> Planned:
        n = next(self.numbers)
        return getattr(self, kind)(n, self._commander() if kind in BY_COMMANDER else f"UL{n:07d}", room)

    def _commander(self) -> str:
        """The next commander no request has used yet (past the group's size the policy refuses, and the
        checks say so)."""
        k = next(self.commanders)
        if k == self.commanders_left + 1:
            print(f"  note: all {self.commanders_left} commanders used; later commander requests are refused")
        return commander(k)

    def note(self, n, user, room):
        text = f"load #{n}: checkout p99 at {100 + n % 900} ms, rolling back build {n % 50}"
        return Planned("note", ("note", text),
                       slash_command(f"note {text}", user=user, channel=room.channel, **self.reply))

    def status(self, n, user, room):
        new = self.rng.choice([s for s in STATUSES if s != room.status])
        return Planned("status", ("incident.status_changed", user),
                       slash_command(f"status {new}", user=user, channel=room.channel, **self.reply),
                       applied=_if_changed(room, "status", new))

    def severity(self, n, user, room):
        new = self.rng.choice([s for s in SEVERITIES if s != room.severity])
        return Planned("severity", ("incident.severity_changed", user),
                       slash_command(f"severity {new}", user=user, channel=room.channel,
                                     **self.reply),
                       applied=_if_changed(room, "severity", new))

    def take_lead(self, n, user, room):
        return Planned("take_lead", ("incident.role_assigned", user),
                       block_action("incident_take_lead", str(room.id), channel=room.channel,
                                    message_ts=room.summary_ts, user=user, **self.reply),
                       applied=lambda answer: setattr(room, "lead", user))

    def post_update(self, n, user, room):
        """Opens the update modal (views.open inside the request); nothing is recorded."""
        return Planned("post_update", None, block_action("incident_post_update", str(room.id), channel=room.channel,
                                                         message_ts=room.summary_ts, user=user, **self.reply))

    def step(self, n, user, room):
        """Done on an open checklist step, Undo on a done one (the overflow menu's shape)."""
        step_id = self.rng.choice(list(room.steps))
        verb = "undo" if room.steps[step_id] else "done"
        action = {"action_id": "playbook_step", "block_id": f"step:{step_id}", "type": "overflow",
                  "action_ts": f"{time.time():.6f}",
                  "selected_option": {"text": {"type": "plain_text", "text": verb}, "value": f"{verb}:{step_id}"}}
        payload = json.loads(_payload_of(block_action("playbook_step", "", channel=room.channel,
                                                      message_ts=room.summary_ts, user=user, **self.reply)))
        payload["actions"] = [action]
        kind = "playbook.step_reopened" if verb == "undo" else "playbook.step_completed"
        return Planned("step", (kind, user), interactive(payload),
                       applied=lambda answer: room.steps.__setitem__(step_id, verb == "done"))

    def update(self, n, user, room):
        summary = f"load update #{n}: rolled back, error rate falling"
        values = {"status": input_value("static_select", room.status),  # unchanged: the tracker stays right
                  "summary": input_value("plain_text_input", summary)}
        return Planned("update", ("update", summary),
                       view_submission(room.update_view, values, user=user, view_id=f"VL{n:08d}"))

    def declare(self, n, user, room):
        title = f"Load declared {n} payment timeouts"
        values = {"title": input_value("plain_text_input", title), "severity": input_value("static_select", "sev3"),
                  "type": input_value("static_select", "availability")}
        return Planned("declare", ("declare", title),
                       view_submission(self.declare_view, values, user=user, view_id=f"VD{n:08d}"))

    def pin(self, n, user, room):
        """A 📌 on a message (unique ts) that the fake Slack holds, so the worker can fetch it."""
        ts = f"{self.ts_base + n // 1_000_000}.{n % 1_000_000:06d}"
        if self.fake is not None:
            self.fake.add_message(room.channel, ts, f"load message {n}: cache hit rate 12%", user="U0AUTHOR")
        event = {"type": "reaction_added", "user": user, "reaction": "pushpin", "item_user": "U0AUTHOR",
                 "item": {"type": "message", "channel": room.channel, "ts": ts}, "event_ts": f"{time.time():.6f}"}
        return Planned("pin", ("pin", f"{room.channel}:{ts}"), event_callback(event, event_id=f"EvL{n:08d}"), JSON)


def _if_changed(room: Room, attribute: str, new: str):
    """The tracker follows the incident only when Vigil answered that it changed."""
    return lambda answer: b"is now" in answer and setattr(room, attribute, new)


def _payload_of(form: str) -> str:
    from urllib.parse import unquote

    return unquote(form.removeprefix("payload="))


# ---- driving the servers ---------------------------------------------------------------------------------
async def send(connection, planned: Planned, port: int):
    """One exchange, reconnecting if needed. (connection, status or None, answer or error text)."""
    try:
        connection = connection or await asyncio.open_connection("127.0.0.1", port)
        status, answer = await exchange(connection, signed_request(planned.body, planned.content_type))
        return connection, status, answer
    except EXCHANGE_ERRORS as failure:
        if connection:
            connection[1].close()
        return None, None, repr(failure)[:120]


async def drive(mix: Mix, ports: list[int], seconds: float, concurrency: int, rate: float) -> dict:
    """Send the mix over `concurrency` keep-alive connections (spread over `ports`) for `seconds`.

    With `rate`, request i is due at i/rate s and latency counts from then (no coordinated omission);
    without, latency counts from sending (after waiting for the incident's turn, see LOCKED)."""
    for room in mix.rooms:  # an asyncio lock belongs to the loop that first waited on it
        room.lock = asyncio.Lock()
    begin = time.perf_counter()
    schedule, latencies, errors = itertools.count(), defaultdict(list), []

    async def connection_loop(port: int):
        connection = None
        while True:
            due = begin + next(schedule) / rate if rate else time.perf_counter()
            if due >= begin + seconds:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            kind, room = mix.pick()
            async with room.lock if kind in LOCKED else contextlib.nullcontext():
                planned = mix.build(kind, room)
                sent = time.perf_counter()
                connection, status, answer = await send(connection, planned, port)
                if status == b"200":
                    latencies[kind].append(time.perf_counter() - (due if rate else sent))
                    planned.answer = answer
                    mix.acked.append(planned)
                    if planned.applied:
                        planned.applied(answer)
                else:
                    errors.append(f"{kind}: HTTP {status.decode()} {answer[:100]!r}" if status else f"{kind}: {answer}")
        if connection:
            connection[1].close()

    await asyncio.gather(*(connection_loop(ports[i % len(ports)]) for i in range(concurrency)))
    return {"wall": time.perf_counter() - begin, "errors": errors, "by_kind": latencies,
            "latencies": sorted(itertools.chain.from_iterable(latencies.values()))}


# ---- one database: topology, runs, checks ------------------------------------------------------------------
@dataclass
class Topology:
    web: dict[str, list[tuple[int, object]]]  # target -> [(port, process)]
    workers: list = field(default_factory=list)

    def ports(self, target: str) -> list[int]:
        return [port for port, _ in self.web[target]]

    def cpu(self, target: str) -> float:
        return sum(cpu_seconds(process.pid) for _, process in self.web[target])

    def stop(self) -> None:
        for process in [p for servers in self.web.values() for _, p in servers] + self.workers:
            stop(process)


def start_topology(postgres: bool, env: dict, folder: Path) -> Topology:
    """SQLite: one `vigil serve` with its outbox thread. PostgreSQL: two serves without it, two workers.
    The bare app gets as many web processes as Vigil, so the ratio compares like with like."""
    webs = 2 if postgres else 1
    web_env = {**env, "VIGIL_WEB_RUNS_WORKER": "false"} if postgres else env
    topology = Topology(web={"bare": [], "vigil": []})
    try:
        for i in range(webs):
            port = free_port()
            topology.web["bare"].append((port, start(baseline_command(port), env, folder / f"bare{i}.log", port)))
            port = free_port()
            command = vigil_command("serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate",
                                    "--no-access-log")
            topology.web["vigil"].append((port, start(command, web_env, folder / f"vigil{i}.log", port)))
        for i in range(2 if postgres else 0):
            topology.workers.append(spawn(vigil_command("worker"), env, folder / f"worker{i}.log"))
    except BaseException:
        topology.stop()
        raise
    return topology


def measure(target: str, mix: Mix, topology: Topology, args) -> dict:
    """A warm-up (recorded, not measured), then the measured run."""
    ports = topology.ports(target)
    asyncio.run(drive(mix, ports, args.warmup, args.concurrency, args.rate))
    cpu = topology.cpu(target)
    result = asyncio.run(drive(mix, ports, args.duration, args.concurrency, args.rate))
    result["cpu"] = topology.cpu(target) - cpu
    for failure in result["errors"][:5]:
        print(f"  {target} error: {failure}")
    return result


def run_database(name: str, url: str, args, folder: Path) -> tuple[list[dict], list[tuple[str, bool, str]]]:
    from tests.fakes.slack_api import FakeSlack

    fake, postgres = FakeSlack(), name == "postgresql"
    try:
        url = fresh_database(url)
        seed(url)
        commanders = int((args.warmup + args.duration) * COMMANDERS_PER_SECOND) + 1000
        fake.set_usergroup(COMMANDERS_GROUP, "load-commanders", [commander(k) for k in range(1, commanders + 1)])
        env = server_env(url, fake.base_url, VIGIL_INCIDENT_FEED_CHANNEL=FEED, VIGIL_COMMANDERS=COMMANDERS_GROUP,
                         SLACK_HOOKS_URL=fake.response_url(""))
        topology = start_topology(postgres, env, folder)
        try:
            waited, pending = wait_for_outbox(url, 60)  # summaries posted: the buttons have a message
            print(f"{name}: seeded {INCIDENTS} incidents, set-up delivered in {waited:.1f}s ({pending} pending); "
                  f"{len(topology.web['vigil'])} web + {len(topology.workers) or 'embedded'} worker process(es)")
            results = {"bare": measure("bare", Mix(rooms(url), commanders=commanders), topology, args)}
            vigil_mix = Mix(rooms(url), fake, commanders=commanders)
            results["vigil"] = measure("vigil", vigil_mix, topology, args)
            depth = outbox_pending(url)
            drained, left = wait_for_outbox(url, args.drain_timeout)
        finally:
            topology.stop()
        rows = [row(name, target, result) for target, result in results.items()]
        checks = [("outbox", left == 0, f"{depth} pending when the load stopped; drained in {drained:.1f}s"
                   + (f", {left} STILL PENDING" if left else ""))]
        checks += check(url, env, vigil_mix, fake)
        return rows, checks
    finally:
        fake.close()


def row(database: str, target: str, result: dict) -> dict:
    lat, ok = result["latencies"], len(result["latencies"])
    return {"database": database, "target": target, "ok": ok, "err": len(result["errors"]),
            "rps": ok / result["wall"], "p50": pct(lat, .5), "p99": pct(lat, .99), "max": pct(lat, 1),
            "cpu": result["cpu"] * 1000 / max(ok, 1), "by_kind": result["by_kind"]}


# ---- checks --------------------------------------------------------------------------------------------------
def recorded(url: str) -> tuple[Counter, list[int], dict]:
    """How often each request key occurs in the event log; the note events' ids; outbox retries."""
    from sqlmodel import func, select

    from vigil_ir.db import Database
    from vigil_ir.eventlog import Event
    from vigil_ir.outbox.models import OutboxItem

    by_data = {"incident.note_added": ("note", "text"), "incident.update_posted": ("update", "summary"),
               "incident.message_added": ("pin", "message_key"), "incident.declared": ("declare", "title")}
    counts, notes = Counter(), []
    database = Database(url)
    with database.session() as session:
        for event_id, kind, actor, data in session.exec(select(Event.id, Event.kind, Event.actor, Event.data)):
            if kind in by_data:
                counts[(by_data[kind][0], data.get(by_data[kind][1]))] += 1
            else:
                counts[(kind, actor)] += 1
            if kind == "incident.note_added":
                notes.append(event_id)
        retried = session.exec(select(func.count()).select_from(OutboxItem).where(OutboxItem.attempts > 1)).one()
        failed = session.exec(select(OutboxItem.kind, OutboxItem.last_error)
                              .where(OutboxItem.last_error.is_not(None)).limit(3)).all()
    database.dispose()
    return counts, notes, {"retried": retried, "errors": failed}


def check(url: str, env: dict, mix: Mix, fake) -> list[tuple[str, bool, str]]:
    counts, note_ids, outbox = recorded(url)
    results = []
    by_kind = defaultdict(list)
    for planned in mix.acked:
        by_kind[planned.kind].append(planned)
    for kind, acked in sorted(by_kind.items()):
        if kind == "post_update":
            continue
        wrong = [(p.key, counts[p.key], p.answer[:120]) for p in acked if counts[p.key] != 1]
        results.append((f"{kind} recorded once", not wrong, f"{len(acked) - len(wrong)}/{len(acked)} acked requests"
                        + (f"; e.g. {wrong[:2]}" if wrong else "")))
    opened = [c for c in fake.calls_to("views.open")
              if (c.params.get("view") or {}).get("callback_id") == "incident_update"]
    clicks = len(by_kind["post_update"])
    results.append(("post_update opened the modal once", len(opened) == clicks,
                    f"{len(opened)} views.open for {clicks} acked clicks"))
    results += slack_checks(fake, note_ids, len(by_kind["declare"]))
    results.append(("outbox retries", True, f"{outbox['retried']} item(s) took more than one attempt"
                    + (f"; last errors e.g. {outbox['errors']}" if outbox["errors"] else "")))
    verify = run_verify(env)
    results.append(("vigil verify", verify.returncode == 0, (verify.stdout or verify.stderr).strip()[:200]))
    return results


def slack_checks(fake, note_ids: list[int], declared: int) -> list[tuple[str, bool, str]]:
    """What the workers sent to (fake) Slack: each note posted once, no message posted twice, a channel
    per declared incident."""
    posts = [c.params for c in fake.calls_to("chat.postMessage") if not c.failed]
    block_ids = Counter(((p.get("blocks") or [{}])[0] or {}).get("block_id") for p in posts)
    unposted = [i for i in note_ids if block_ids[f"note:{i}"] != 1]
    twice = [key for key, n in Counter((p.get("channel"), p.get("text")) for p in posts).items() if n > 1]
    created = [c for c in fake.calls_to("conversations.create") if not c.failed]
    return [("each note posted once", not unposted, f"{len(note_ids) - len(unposted)}/{len(note_ids)} notes"
             + (f"; e.g. note ids {unposted[:3]}" if unposted else "")),
            ("no duplicate chat.postMessage", not twice, f"{len(posts)} posts, {len(twice)} duplicated"
             + (f"; e.g. {twice[:1]}" if twice else "")),
            ("a channel per declared incident", len(created) == declared,
             f"{len(created)} conversations.create for {declared} acked declarations")]


# ---- report ---------------------------------------------------------------------------------------------------
def print_table(rows: list[dict]) -> None:
    print(f"\n{'target':<17} {'ok':>6} {'err':>4} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'web cpu ms/req':>15}")
    for r in rows:
        print(f"{r['database'] + ' ' + r['target']:<17} {r['ok']:>6} {r['err']:>4} {r['rps']:>7.0f} "
              f"{r['p50']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.2f} {r['cpu']:>15.2f}")
    print()
    for database in dict.fromkeys(r["database"] for r in rows):
        bare, vigil = (next(r for r in rows if r["database"] == database and r["target"] == target)
                       for target in ("bare", "vigil"))
        print(f"{database:<11} vigil/bare: req/s {vigil['rps'] / bare['rps']:.2f}x  "
              f"p50 {vigil['p50'] / bare['p50']:.2f}x  p99 {vigil['p99'] / bare['p99']:.2f}x")
    print(f"\n{'vigil by kind':<17}" + "".join(f"{kind:>12}" for kind in MIX))
    for r in (r for r in rows if r["target"] == "vigil"):
        print(f"{r['database'] + ' ok':<17}" + "".join(f"{len(r['by_kind'][k]):>12}" for k in MIX))
        for label, q in (("p50 ms", .5), ("p99 ms", .99)):
            cells = (pct(sorted(r["by_kind"][kind]), q) for kind in MIX)
            print(f"{r['database'] + ' ' + label:<17}" + "".join(f"{cell:>12.1f}" for cell in cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per target (default 20)")
    parser.add_argument("--concurrency", type=int, default=20, help="connections sending at once (default 20)")
    parser.add_argument("--rate", type=float, default=0, help="requests/s to offer (default: as fast as answered)")
    parser.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured (but checked) load first")
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds to wait for the outbox to drain")
    parser.add_argument("--database", action="append", metavar="sqlite|URL",
                        help="'sqlite' (a temp file) or a PostgreSQL URL to WIPE; repeat to run several")
    args = parser.parse_args()
    no_proxies()
    rows, failed = [], False
    print(f"duration {args.duration:g}s per target (+{args.warmup:g}s warm-up), concurrency {args.concurrency}, "
          f"rate {args.rate or 'unpaced'}, {os.cpu_count()} CPUs, mix {MIX}")
    for database in args.database or ["sqlite"]:
        with tempfile.TemporaryDirectory(prefix="vigil-load-") as folder:
            name = "sqlite" if database == "sqlite" else "postgresql"
            url = f"sqlite:///{folder}/vigil.db" if database == "sqlite" else database
            database_rows, checks = run_database(name, url, args, Path(folder))
        rows += database_rows
        print(f"\nchecks ({name}):")
        for what, ok, detail in checks:
            print(f"  {'OK  ' if ok else 'FAIL'} {what}: {detail}")
            failed |= not ok
    print_table(rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
