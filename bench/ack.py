"""Ack latency: `vigil serve` vs a bare bolt app with a no-op `/incident` listener, same load, same run.

    .venv/bin/python bench/ack.py [--requests N] [--concurrency C] [--database sqlite|postgresql://...]

Both servers are Starlette + `run_in_threadpool(app.dispatch, BoltRequest(...))` under uvicorn, each in
its own process. Scenarios: `/incident help` (no database: framework overhead) and `/incident note
<text>` in a seeded incident channel (Vigil's write path: verify the signature, append a hash-chained
event, enqueue the outbox, ack). Goal (issue 2): Vigil's p99 within 1.25x of the bare app's.
Not part of the test suite's pass/fail; exits 1 only if the correctness checks fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
CHANNEL, USER = "C0BENCH", "U0BENCH"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
GOAL = 1.25


def serve_baseline(port: int) -> None:
    """The bare app: same bolt settings as Vigil's, a listener that only acks."""
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
    bolt.command("/incident")(lambda ack: ack())

    async def slack_events(request):
        body = (await request.body()).decode("utf-8", errors="replace")
        answer = await run_in_threadpool(bolt.dispatch, BoltRequest(body=body, query=request.url.query,
                                                                    headers=dict(request.headers)))
        return Response(status_code=answer.status, content=answer.body,
                        headers=answer.first_headers_without_set_cookie())

    async def healthz(_):
        return PlainTextResponse("ok")

    web = Starlette(routes=[Route("/slack/events", slack_events, methods=["POST"]), Route("/healthz", healthz)])
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(url: str) -> str:
    """A fresh, migrated database with one incident that has a channel. Returns the SQLAlchemy URL."""
    from sqlalchemy import create_engine, text

    from bot.config import sqlalchemy_url
    from bot.db import Database, migrate
    from bot.incidents import service

    url = sqlalchemy_url(url)
    if not url.startswith("sqlite"):
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrate(url)
    database = Database(url)
    with database.session() as session:
        incident = service.declare(session, actor=USER, title="Benchmark incident", severity="sev3",
                                   type="availability")
        service.attach_channel(session, incident=incident, channel_id=CHANNEL, channel_name="inc-1-benchmark")
    database.dispose()
    return url


def start(cmd: list[str], env: dict, log: Path, port: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=log.parent)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{cmd} not healthy after 60 s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def drive(port: int, texts: list[str], concurrency: int, response_url: str) -> dict:
    """POST one freshly signed slash command per text, `concurrency` at a time; time each."""
    import httpx

    from tests.slack_requests import signed_headers, slash_command

    url, todo = f"http://127.0.0.1:{port}/slack/events", iter(texts)
    latencies, errors = [], []

    async def worker(client):
        for text in todo:  # a shared iterator: each text is taken once
            body = slash_command(text, user=USER, channel=CHANNEL, response_url=response_url)
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body.encode(), headers=signed_headers(body, secret=SECRET))
                ok = response.status_code == 200
            except httpx.HTTPError as failure:
                ok, response = False, failure
            elapsed = time.perf_counter() - started
            (latencies if ok else errors).append(elapsed if ok else repr(response)[:120])

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"ok": len(latencies), "errors": errors, "wall": wall, "latencies": sorted(latencies)}


def pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))] * 1000


def row(scenario: str, target: str, r: dict) -> dict:
    lat = r["latencies"]
    return {"scenario": scenario, "target": target, "ok": r["ok"], "err": len(r["errors"]),
            "rps": r["ok"] / r["wall"], "p50": pct(lat, .5), "p90": pct(lat, .9), "p99": pct(lat, .99),
            "max": lat[-1] * 1000 if lat else float("nan")}


def print_table(rows: list[dict]) -> None:
    print(f"\n{'scenario':<8} {'target':<6} {'ok':>6} {'err':>4} {'req/s':>8} "
          f"{'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for r in rows:
        print(f"{r['scenario']:<8} {r['target']:<6} {r['ok']:>6} {r['err']:>4} {r['rps']:>8.0f} "
              f"{r['p50']:>8.2f} {r['p90']:>8.2f} {r['p99']:>8.2f} {r['max']:>8.2f}")
    print()
    for scenario in dict.fromkeys(r["scenario"] for r in rows):
        bare, vigil = (next(r for r in rows if r["scenario"] == scenario and r["target"] == t) for t in ("bare", "vigil"))
        p99 = vigil["p99"] / bare["p99"]
        print(f"{scenario:<8} vigil/bare: p50 {vigil['p50'] / bare['p50']:.2f}x  p99 {p99:.2f}x  "
              f"req/s {vigil['rps'] / bare['rps']:.2f}x  -> p99 goal (<= {GOAL}x): "
              f"{'met' if p99 <= GOAL else 'NOT met'}")


def check(url: str, env: dict, notes_acked: int) -> bool:
    from sqlmodel import func, select

    from bot.db import Database
    from bot.eventlog import Event

    database = Database(url)
    with database.session() as session:
        recorded = session.exec(select(func.count()).select_from(Event)
                                .where(Event.kind == "incident.note_added")).one()
    database.dispose()
    verify = subprocess.run([str(Path(sys.executable).with_name("vigil")), "verify"], env=env,
                            capture_output=True, text=True, cwd=tempfile.gettempdir())
    print(f"\ncheck: {recorded} incident.note_added events for {notes_acked} acked notes: "
          f"{'OK' if recorded == notes_acked else 'MISMATCH'}")
    print(f"check: vigil verify exit {verify.returncode}: {(verify.stdout or verify.stderr).strip()}")
    return recorded == notes_acked and verify.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per target and scenario")
    parser.add_argument("--concurrency", type=int, default=20, help="requests in flight at once")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first (per target, scenario)")
    parser.add_argument("--database", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL to WIPE")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0

    from tests.fakes.slack_api import FakeSlack

    for var in PROXY_VARS:  # slack_sdk and httpx would route 127.0.0.1 through a proxy
        os.environ.pop(var, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    fake, processes = FakeSlack(), []
    try:
        url = prepare_database(f"sqlite:///{tmp / 'vigil.db'}" if args.database == "sqlite" else args.database)
        env = {**os.environ, "DATABASE_URL": url, "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": fake.base_url, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        ports = {"bare": free_port(), "vigil": free_port()}
        vigil_bin = str(Path(sys.executable).with_name("vigil"))
        processes.append(start([sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(ports["bare"])],
                               env, tmp / "bare.log", ports["bare"]))
        processes.append(start([vigil_bin, "serve", "--host", "127.0.0.1", "--port", str(ports["vigil"])],
                               env, tmp / "vigil.log", ports["vigil"]))
        print(f"{args.requests} requests, concurrency {args.concurrency}, warm-up {args.warmup}, "
              f"database {url.split('://')[0]}, {os.cpu_count()} CPUs")
        rows, notes_acked = [], 0
        for scenario in ("help", "note"):
            for target in ("bare", "vigil"):
                texts = (["help"] * (args.warmup + args.requests) if scenario == "help" else
                         [f"note bench {target} #{i}: api latency up" for i in range(args.warmup + args.requests)])
                response_url = fake.response_url("bench")
                warm = asyncio.run(drive(ports[target], texts[:args.warmup], args.concurrency, response_url))
                result = asyncio.run(drive(ports[target], texts[args.warmup:], args.concurrency, response_url))
                if scenario == "note" and target == "vigil":
                    notes_acked = warm["ok"] + result["ok"]
                for failure in (warm["errors"] + result["errors"])[:3]:
                    print(f"  {scenario}/{target} error: {failure}")
                rows.append(row(scenario, target, result))
        print_table(rows)
        return 0 if check(url, env, notes_acked) else 1
    finally:
        for process in processes:
            stop(process)
        fake.close()


if __name__ == "__main__":
    sys.exit(main())
