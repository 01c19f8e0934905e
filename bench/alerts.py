"""Alert webhooks: `vigil serve` vs a bare Starlette endpoint doing the same signature check, same run.

    .venv/bin/python bench/alerts.py [--requests N] [--concurrency C] [--rate R] [--database sqlite|postgresql://...]

Each request is a PagerDuty v3 `incident.triggered` webhook for a new PagerDuty incident, signed with
`X-PagerDuty-Signature` as PagerDuty documents. Vigil verifies the signature, records the alert, its
group and their events, queues the triage message and answers (write, then ack); the bare endpoint
(Starlette under uvicorn, its own process, like Vigil) verifies the same signature with the same code,
parses the JSON and answers 200. Prints webhooks/s accepted and p50/p99 ack for both and the
vigil/bare ratios. Not part of the test suite; exits 1 only if the correctness check fails (one alert
per accepted webhook, `vigil verify` passes).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ack  # noqa: E402 - bench/ack.py: servers, processes, the HTTP driver

SECRET = "bench-pagerduty-secret"
PATH = "/integrations/alerts/pagerduty"


def serve_baseline(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    from vigil_ir.alerts.sources import pagerduty

    async def receive(request: Request):
        body = await request.body()
        if not pagerduty.authentic(SECRET, request.headers, body):
            return JSONResponse({"ok": False}, status_code=401)
        json.loads(body)
        return JSONResponse({"ok": True})

    web = Starlette(routes=[Route(PATH, receive, methods=["POST"]), Route("/healthz", lambda _: PlainTextResponse("ok"))])
    uvicorn.run(web, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def webhook(target: str, i: int) -> bytes:
    """One raw HTTP/1.1 request: a signed PagerDuty `incident.triggered` for incident P<target><i>."""
    incident = f"P{target.upper()}{i:07d}"
    body = json.dumps({"event": {
        "id": f"01{target}{i:010d}", "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": "2026-12-04T06:00:00.000Z", "agent": None, "client": {"name": "PagerDuty"},
        "data": {"id": incident, "type": "incident", "html_url": f"https://acme.pagerduty.com/incidents/{incident}",
                 "number": i, "status": "triggered", "incident_key": f"k{incident}", "created_at": "2026-12-04T06:00:00Z",
                 "title": f"Checkout latency high on host {i % 50}", "urgency": "high",
                 "service": {"id": "PF9KMXH", "summary": "API Service", "type": "service_reference"},
                 "priority": {"id": "PSO75BM", "summary": "P2", "type": "priority_reference"}}}}).encode()
    signature = "v1=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-PagerDuty-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


async def drive(port: int, requests: list[bytes], concurrency: int, rate: float) -> dict:
    todo, latencies, errors = iter(enumerate(requests)), [], []
    begin = time.perf_counter()

    async def worker():
        connection = None
        for i, request in todo:
            due = begin + i / rate if rate else time.perf_counter()
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", port)
                status, answer = await ack.exchange(connection, request)
            except ack.EXCHANGE_ERRORS as failure:
                errors.append(repr(failure)[:120])
                if connection:
                    connection[1].close()
                connection = None
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


def check(url: str, env: dict, accepted: int) -> bool:
    from sqlmodel import func, select

    from vigil_ir.alerts.models import Alert
    from vigil_ir.db import Database

    database = Database(url)
    with database.session() as session:
        recorded = session.exec(select(func.count()).select_from(Alert)).one()
    database.dispose()
    verify = ack.run_verify(env)
    print(f"\ncheck: {recorded} alerts for {accepted} accepted webhooks: {'OK' if recorded == accepted else 'MISMATCH'}")
    print(f"check: vigil verify exit {verify.returncode}: {(verify.stdout or verify.stderr).strip()}")
    return recorded == accepted and verify.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured webhooks per target")
    parser.add_argument("--concurrency", type=int, default=20, help="connections sending at once")
    parser.add_argument("--rate", type=float, default=0, help="webhooks/s to offer (default: as fast as answered)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured webhooks first (per target)")
    parser.add_argument("--database", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL to WIPE")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return 0

    from tests.fakes.slack_api import FakeSlack

    ack.no_proxies()
    fake, servers, tmp = FakeSlack(), {}, tempfile.TemporaryDirectory(prefix="vigil-bench-")
    try:
        url = ack.fresh_database(f"sqlite:///{tmp.name}/vigil.db" if args.database == "sqlite" else args.database)
        env = ack.server_env(url, fake.base_url, VIGIL_PAGERDUTY_WEBHOOK_SECRET=SECRET, VIGIL_TRIAGE_CHANNEL="C0TRIAGE")
        ports = {"bare": ack.free_port(), "vigil": ack.free_port()}
        commands = {"bare": [sys.executable, str(Path(__file__).resolve()), "--serve-baseline", str(ports["bare"])],
                    "vigil": ack.vigil_command("serve", "--host", "127.0.0.1", "--port", str(ports["vigil"]),
                                               "--no-access-log")}
        for target, command in commands.items():
            servers[target] = ack.start(command, env, Path(tmp.name) / f"{target}.log", ports[target])
        print(f"{args.requests} webhooks, concurrency {args.concurrency}, rate {args.rate or 'unpaced'}, "
              f"warm-up {args.warmup}, database {url.split(':')[0]}, {os.cpu_count()} CPUs")
        rows, accepted = [], 0
        for target in ("bare", "vigil"):
            requests = [webhook(target, i) for i in range(args.warmup + args.requests)]
            warm = asyncio.run(drive(ports[target], requests[:args.warmup], args.concurrency, args.rate))
            cpu = ack.cpu_seconds(servers[target].pid)
            result = asyncio.run(drive(ports[target], requests[args.warmup:], args.concurrency, args.rate))
            cpu = ack.cpu_seconds(servers[target].pid) - cpu
            if target == "vigil":
                accepted = warm["ok"] + result["ok"]
            for failure in (warm["errors"] + result["errors"])[:3]:
                print(f"  {target} error: {failure}")
            lat = result["latencies"]
            rows.append({"target": target, "ok": result["ok"], "err": len(result["errors"]),
                         "rps": result["ok"] / result["wall"], "p50": ack.pct(lat, .5), "p99": ack.pct(lat, .99),
                         "max": ack.pct(lat, 1), "cpu": cpu * 1000 / args.requests})
        print(f"\n{'target':<6} {'ok':>6} {'err':>4} {'webhooks/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
              f"{'srv cpu ms/req':>15}")
        for r in rows:
            print(f"{r['target']:<6} {r['ok']:>6} {r['err']:>4} {r['rps']:>10.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                  f"{r['max']:>8.2f} {r['cpu']:>15.2f}")
        bare, vigil = rows
        print(f"\nvigil/bare: webhooks/s {vigil['rps'] / bare['rps']:.2f}x  p50 {vigil['p50'] / bare['p50']:.2f}x  "
              f"p99 {vigil['p99'] / bare['p99']:.2f}x")
        return 0 if check(url, env, accepted) else 1
    finally:
        for server in servers.values():
            ack.stop(server)
        fake.close()
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
