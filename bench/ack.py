"""Ack latency: `vigil serve` vs a bare bolt app with a no-op `/incident` listener, same load, same run.

    .venv/bin/python bench/ack.py [--requests N] [--concurrency C] [--rate R] [--database sqlite|postgresql://...]
    .venv/bin/python bench/ack.py --baseline REV    # also serve the code of git revision REV: before/after, same run

Both servers are Starlette + `run_in_threadpool(app.dispatch, BoltRequest(...))` under uvicorn, each in
its own process, talking to a fake Slack Web API. Scenarios: `/incident help` (no database: framework
overhead) and `/incident note <text>` in a seeded incident channel (Vigil's write path: verify the
signature, append a hash-chained event, enqueue the outbox, ack). Goal (issue 2): Vigil's p99 within
1.25x of the bare app's. Not part of the test suite; exits 1 only if the correctness checks fail.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.slack_requests import signed_headers  # noqa: E402 - needs ROOT on sys.path

SECRET = "bench-signing-secret"
CHANNEL, USER = "C0BENCH", "U0BENCH"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
GOAL = 1.25
VIGIL = Path(sys.executable).with_name("vigil")


def serve_baseline(port: int) -> None:
    """The bare app: Vigil's bolt settings and serving, a listener that only acks."""
    import uvicorn
    from slack_bolt import App, BoltRequest
    from slack_bolt.authorization import AuthorizeResult
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    bolt = App(signing_secret=SECRET, process_before_response=True,
               authorize=lambda enterprise_id, team_id: AuthorizeResult(
                   enterprise_id=enterprise_id, team_id=team_id, bot_token="xoxb-bench"))
    # No-op listeners for every kind of request Vigil takes (bench/load.py sends them all), so each gets a 200.
    noop = lambda ack: ack()  # noqa: E731
    bolt.command("/incident")(noop)
    bolt.action(re.compile(".*"))(noop)
    bolt.view(re.compile(".*"))(noop)
    bolt.event("reaction_added")(lambda: None)  # events need no ack() call; bolt answers 200

    async def slack_events(request):
        body = (await request.body()).decode("utf-8", errors="replace")
        answer = await run_in_threadpool(bolt.dispatch, BoltRequest(body=body, query=request.url.query,
                                                                    headers=dict(request.headers)))
        return Response(status_code=answer.status, content=answer.body,
                        headers=answer.first_headers_without_set_cookie())

    web = Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"]),
                            Route("/healthz", lambda _: PlainTextResponse("ok"))])
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_database(url: str) -> str:
    """Wipe (PostgreSQL) and migrate the database. Returns the SQLAlchemy URL."""
    from sqlalchemy import create_engine, text

    from vigil_ir.config import sqlalchemy_url
    from vigil_ir.db import migrate

    url = sqlalchemy_url(url)
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrate(url)
    return url


def prepare_database(url: str) -> str:
    """A fresh, migrated database with one incident that has a channel. Returns the SQLAlchemy URL."""
    from vigil_ir.db import Database
    from vigil_ir.incidents import service

    url = fresh_database(url)
    database = Database(url)
    with database.session() as session:
        incident = service.declare(session, actor=USER, title="Benchmark incident", severity="sev3",
                                   type="availability")
        service.attach_channel(session, incident=incident, channel_id=CHANNEL, channel_name="inc-1-benchmark")
    database.dispose()
    return url


def spawn(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    """Start a process writing its output to `log` (run in the log's folder)."""
    with log.open("wb") as output:  # the child keeps its own copy of the file descriptor
        return subprocess.Popen(cmd, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=log.parent)


def start(cmd: list[str], env: dict, log: Path, port: int) -> subprocess.Popen:
    """Start a server and wait for its /healthz."""
    process = spawn(cmd, env, log)
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if no_proxy.open(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
                return process
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit(f"{' '.join(cmd)} did not become healthy (exit {process.returncode}):\n"
                     f"{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def no_proxies() -> None:
    """slack_sdk (in the servers) and urllib would send even 127.0.0.1 through a proxy."""
    for var in PROXY_VARS:
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def server_env(url: str, slack_api_url: str, **extra: str) -> dict:
    """The environment every bench server runs with: the database, fake Slack, the bench secret."""
    return {**os.environ, "DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack_api_url, "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), **extra}


def baseline_command(port: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(port)]


def vigil_command(*args: str) -> list[str]:
    return [str(VIGIL), *args]


def signed_request(body: str, content_type: str = "application/x-www-form-urlencoded") -> bytes:
    """One raw HTTP/1.1 POST /slack/events, signed now (bolt refuses more than 300 s of skew)."""
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(body, secret=SECRET, content_type=content_type).items())
    data = body.encode()
    return (f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


async def exchange(connection: tuple, request: bytes) -> tuple[bytes, bytes]:
    """Send one request on a keep-alive connection; (status code, body). Raises OSError,
    IncompleteReadError or StopIteration (no Content-Length) when the exchange fails."""
    reader, writer = connection
    writer.write(request)
    status, _, headers = (await reader.readuntil(b"\r\n\r\n")).partition(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in headers.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    return status.split()[1], await reader.readexactly(length)


EXCHANGE_ERRORS = (OSError, asyncio.IncompleteReadError, StopIteration)


async def drive(port: int, texts: list[str], concurrency: int, rate: float) -> dict:
    """POST a freshly signed slash command per text over `concurrency` keep-alive connections.

    Plain HTTP/1.1 over asyncio streams: httpx's AsyncClient costs ~2 ms of client CPU per request at
    20 connections, which on 2 cores throttles the servers and swamps what is being compared. With
    `rate`, request i is due at i/rate s and its latency counts from then (no coordinated omission).
    """
    from tests.slack_requests import slash_command

    todo, latencies, errors = iter(enumerate(texts)), [], []
    begin = time.perf_counter()

    async def worker():
        connection = None
        for i, text in todo:  # a shared iterator: each text is taken once
            request = signed_request(slash_command(text, user=USER, channel=CHANNEL))
            due = begin + i / rate if rate else time.perf_counter()
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", port)
                status, answer = await exchange(connection, request)
            except EXCHANGE_ERRORS as failure:
                errors.append(repr(failure)[:120])
                if connection:
                    connection[1].close()
                connection = None  # reconnect for the next request
                continue
            if status == b"200":
                latencies.append(time.perf_counter() - due)
            else:
                errors.append(f"HTTP {status.decode()} {answer[:100]!r}")
        if connection:
            connection[1].close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"ok": len(latencies), "errors": errors, "wall": time.perf_counter() - begin,
            "latencies": sorted(latencies)}


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000 if values else float("nan")


def unpack_revision(revision: str, work: Path) -> Path:
    """The code of `revision` laid out as the installed package (`vigil_ir` = bot/, with migrations/ and
    playbooks/ beside, as setup.py maps them); returns the folder to put first on PYTHONPATH."""
    import tarfile

    archive = subprocess.run(["git", "archive", revision, "bot", "migrations", "playbooks"], cwd=ROOT, check=True,
                             stdout=subprocess.PIPE).stdout
    source, target = work / "baseline-tree", work / "baseline"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    target.mkdir()
    (source / "bot").rename(target / "vigil_ir")
    (source / "migrations").rename(target / "vigil_ir" / "migrations")
    (source / "playbooks").rename(target / "vigil_ir" / "shipped_playbooks")
    return target


def print_table(rows: list[dict]) -> None:
    print(f"\n{'scenario':<8} {'target':<6} {'ok':>6} {'err':>4} {'req/s':>7} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8} {'srv cpu ms/req':>15}")
    for r in rows:
        print(f"{r['scenario']:<8} {r['target']:<6} {r['ok']:>6} {r['err']:>4} {r['rps']:>7.0f} {r['p50']:>8.2f} "
              f"{r['p90']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.2f} {r['cpu']:>15.2f}")
    print()
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        of = {r["target"]: r for r in rows if r["scenario"] == scenario}
        bare = of["bare"]
        for target in ("before", "vigil"):
            if target not in of:
                continue
            vigil = of[target]
            p99 = vigil["p99"] / bare["p99"]
            print(f"{scenario:<8} {target}/bare: p50 {vigil['p50'] / bare['p50']:.2f}x  p99 {p99:.2f}x  req/s "
                  f"{vigil['rps'] / bare['rps']:.2f}x  cpu/req {vigil['cpu'] / bare['cpu']:.2f}x  -> p99 goal "
                  f"(<= {GOAL}x) {'met' if p99 <= GOAL else 'NOT met'}")
        if "before" in of:
            print(f"{scenario:<8} vigil/before: req/s {of['vigil']['rps'] / of['before']['rps']:.2f}x  cpu/req "
                  f"{of['vigil']['cpu'] / of['before']['cpu']:.2f}x")


def run_verify(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(vigil_command("verify"), env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())


def check(url: str, env: dict, notes_acked: int) -> bool:
    """Every acked note is one event, and the hash chains verify."""
    from sqlmodel import func, select

    from vigil_ir.db import Database
    from vigil_ir.eventlog import Event

    database = Database(url)
    with database.session() as session:
        recorded = session.exec(select(func.count()).select_from(Event)
                                .where(Event.kind == "incident.note_added")).one()
    database.dispose()
    verify = run_verify(env)
    print(f"\ncheck: {recorded} incident.note_added events for {notes_acked} acked notes: "
          f"{'OK' if recorded == notes_acked else 'MISMATCH'}")
    print(f"check: vigil verify exit {verify.returncode}: {(verify.stdout or verify.stderr).strip()}")
    return recorded == notes_acked and verify.returncode == 0


def floor(url: str, transactions: int = 2000) -> None:
    """The note's transaction in process, one thread, CPU per transaction (no HTTP, no bolt): with the
    database driver alone (the statements Vigil sends on PostgreSQL, built by hand, the event hashed
    as Vigil hashes it), and through Vigil's domain functions (`add_note` and its outbox row in a
    `Database.session()`). The first is the least any write through this driver can add to the bare
    app's CPU per request."""
    import json

    from vigil_ir import clock
    from vigil_ir.db import Database
    from vigil_ir.eventlog.canonical import event_hash
    from vigil_ir.incidents import queries, service
    from vigil_ir.jsontext import canonical_json
    from vigil_ir.slack import notify

    database = Database(url)
    figures = {}
    with database.session() as session:
        incident_id = queries.by_channel(session, CHANNEL).id

    def vigil_note(n: int) -> None:
        with database.session() as session:
            incident = queries.by_channel(session, CHANNEL, lock=True)
            event = service.add_note(session, incident=incident, actor=USER, text=f"floor vigil {n}")
            notify.post_in_channel(session, incident, f":memo: Note #{event.id} from <@{USER}>: floor vigil {n}",
                                   block_id=f"note:{event.id}", refresh=False)

    def vigil_backend() -> int | None:  # one thread: the pool hands out the same connection each time
        from sqlalchemy import text

        with database.session() as session:
            return session.execute(text("SELECT pg_backend_pid()")).scalar_one()

    runs = [("vigil domain functions (SQLAlchemy)", vigil_note, None if database.is_sqlite else vigil_backend)]
    if not database.is_sqlite:
        import psycopg

        connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))

        def raw_note(n: int) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT id, number, status, channel_id, private, exercise FROM incident "
                               "WHERE channel_id = %s FOR UPDATE", (CHANNEL,))
                number = cursor.fetchone()[1]
                stream = f"incident:{number}"
                cursor.execute("SELECT seq, hash FROM stream_head WHERE stream = %s FOR UPDATE", (stream,))
                seq, prev_hash = cursor.fetchone()
                now = clock.now()
                fields = {"stream": stream, "stream_seq": seq + 1, "kind": "incident.note_added", "actor": USER,
                          "occurred_at": now, "recorded_at": now, "data": {"text": f"floor raw {n}"},
                          "corrects": None, "prev_hash": prev_hash}
                fields["hash"] = event_hash(fields)
                cursor.execute("WITH moved AS (UPDATE stream_head SET seq = %s, hash = %s, updated_at = %s "
                               "WHERE stream = %s) INSERT INTO event (stream, stream_seq, kind, actor, occurred_at, "
                               "recorded_at, data, corrects, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                               "%s, %s, %s) RETURNING id",
                               (seq + 1, fields["hash"], now, stream, stream, seq + 1, fields["kind"], USER, now, now,
                                canonical_json(fields["data"]), None, prev_hash, fields["hash"]))
                event_id = cursor.fetchone()[0]
                payload = {"incident_id": incident_id, "text": f":memo: Note #{event_id}: floor raw {n}",
                           "block_id": f"note:{event_id}", "also_feed": False, "buttons": []}
                cursor.execute("INSERT INTO outbox_item (kind, subject, payload, status, attempts, available_at, "
                               "result, created_at) VALUES ('channel.post', %s, %s, 'pending', 0, %s, '{}', %s) "
                               "RETURNING id", (stream, json.dumps(payload), now, now))
                cursor.fetchone()
            connection.commit()

        runs.insert(0, ("raw psycopg, the same statements", raw_note, lambda: connection.info.backend_pid))
    for name, note, backend in runs:
        for n in range(100):  # warm-up
            note(-n - 1)
        server = backend() if backend else None  # the PostgreSQL process serving this connection (same machine)
        server_cpu = cpu_seconds(server) if server else float("nan")
        cpu, wall = time.thread_time(), time.perf_counter()
        for n in range(transactions):
            note(n)
        figures[name] = [(time.thread_time() - cpu), (time.perf_counter() - wall),
                         (cpu_seconds(server) - server_cpu) if server else float("nan")]
    database.dispose()
    print(f"\nfloor: the note's transaction in process, one thread, {transactions} transactions, per transaction:")
    for name, (cpu, wall, server_cpu) in figures.items():
        print(f"  {name:<40} client cpu {cpu * 1000 / transactions:.3f} ms, PostgreSQL backend cpu "
              f"{server_cpu * 1000 / transactions:.3f} ms, wall {wall * 1000 / transactions:.3f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per target and scenario")
    parser.add_argument("--concurrency", type=int, default=20, help="connections sending at once")
    parser.add_argument("--rate", type=float, default=0, help="requests/s to offer (default: as fast as answered)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first (per target, scenario)")
    parser.add_argument("--database", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL to WIPE")
    parser.add_argument("--separate-worker", action="store_true",
                        help="deliver the outbox in a `vigil worker` process instead of vigil serve's thread")
    parser.add_argument("--baseline", metavar="REV",
                        help="also serve the code of this git revision (target 'before'), same run, same database")
    parser.add_argument("--floor", action="store_true",
                        help="also time the note's transaction in process: the raw driver (PostgreSQL) and Vigil's domain functions")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0

    from tests.fakes.slack_api import FakeSlack

    no_proxies()
    fake, servers, tmp = FakeSlack(), {}, tempfile.TemporaryDirectory(prefix="vigil-bench-")
    try:
        url = prepare_database(f"sqlite:///{tmp.name}/vigil.db" if args.database == "sqlite" else args.database)
        # The requests' response_url (tests/slack_requests.py) counts as Slack's hook host here: otherwise
        # Vigil logs a warning for each one, a cost the bare app does not pay (neither answers through it).
        env = server_env(url, fake.base_url, SLACK_HOOKS_URL="http://127.0.0.1:9/")
        targets = ("bare", "before", "vigil") if args.baseline else ("bare", "vigil")
        ports = {target: free_port() for target in targets}
        commands = {target: vigil_command("serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(ports[target]),
                                          "--no-access-log") for target in targets}
        commands["bare"] = baseline_command(ports["bare"])  # the bare app logs no access lines either
        code = unpack_revision(args.baseline, Path(tmp.name)) if args.baseline else None
        for target, command in commands.items():
            target_env = {**env, "VIGIL_WEB_RUNS_WORKER": "false"} if target != "bare" and args.separate_worker else env
            if target == "before":  # the revision's package first on the path, ahead of the installed one
                target_env = {**target_env, "PYTHONPATH": os.pathsep.join([str(code), target_env["PYTHONPATH"]])}
            servers[target] = start(command, target_env, Path(tmp.name) / f"{target}.log", ports[target])
        if args.separate_worker:  # its CPU is not counted in the server's: it runs beside it, on the other core
            servers["worker"] = spawn(vigil_command("worker"), env, Path(tmp.name) / "worker.log")
        print(f"{args.requests} requests, concurrency {args.concurrency}, rate {args.rate or 'unpaced'}, "
              f"warm-up {args.warmup}, database {url.split(':')[0]}, {os.cpu_count()} CPUs, outbox delivered by "
              f"{'a separate vigil worker' if args.separate_worker else 'vigil serve'}")
        rows, notes_acked = [], 0
        for scenario in ("help", "note"):
            for target in targets:
                texts = [("help" if scenario == "help" else f"note bench {target} #{i}: api latency up")
                         for i in range(args.warmup + args.requests)]
                warm = asyncio.run(drive(ports[target], texts[:args.warmup], args.concurrency, args.rate))
                cpu = cpu_seconds(servers[target].pid)
                result = asyncio.run(drive(ports[target], texts[args.warmup:], args.concurrency, args.rate))
                cpu = cpu_seconds(servers[target].pid) - cpu
                if scenario == "note" and target != "bare":
                    notes_acked += warm["ok"] + result["ok"]
                for failure in (warm["errors"] + result["errors"])[:3]:
                    print(f"  {scenario}/{target} error: {failure}")
                lat = result["latencies"]
                rows.append({"scenario": scenario, "target": target, "ok": result["ok"], "err": len(result["errors"]),
                             "rps": result["ok"] / result["wall"], "p50": pct(lat, .5), "p90": pct(lat, .9),
                             "p99": pct(lat, .99), "max": pct(lat, 1), "cpu": cpu * 1000 / args.requests})
        print_table(rows)
        ok = check(url, env, notes_acked)
        if args.floor:  # alone: the servers and the worker (delivering into this process's fake Slack) stopped
            for server in servers.values():
                stop(server)
            floor(url)
        return 0 if ok else 1
    finally:
        for server in servers.values():
            stop(server)
        fake.close()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
