"""Outbox delivery: our CPU and statements per delivered item, the Slack HTTP call excluded.

    .venv/bin/python bench/outbox.py [--items N] [--database sqlite|postgresql://...] [--baseline REV]

Queues N `channel.post` items (a note's post) for one incident with a channel, then delivers them
with the sender `vigil worker` runs (`make_worker`: claim a batch, call the handler, record each
outcome) against a fake Slack Web API in the same process, and prints the delivering thread's CPU
per item with the CPU spent inside slack_sdk's HTTP request (`_perform_urllib_http_request`: build,
send, read and parse) taken out, the statements (reads included) and write transactions per item, and the Slack call's own
CPU per item beside it. Each measurement runs in a process of its own on a fresh database; with
`--baseline REV` the code of git revision REV is measured the same way, in the same run, first.
Not part of the test suite; exits 1 if an item was not delivered exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ack import CHANNEL, USER, no_proxies, prepare_database, unpack_revision  # noqa: E402


def measure(url: str, items: int, batch: int) -> dict:
    """In this process: queue `items` posts, deliver them all, return the figures (one JSON line)."""
    from sqlalchemy import event as sa_event

    from tests.fakes.slack_api import FakeSlack
    from vigil_ir.config import load_settings
    from vigil_ir.db import Database
    from vigil_ir.incidents import queries
    from vigil_ir.runtime import make_worker
    from vigil_ir.slack import notify

    fake = FakeSlack()
    database = Database(url)
    try:
        with database.session() as session:
            incident = queries.by_channel(session, CHANNEL)
            for n in range(items + batch):  # the first batch warms up
                notify.post_in_channel(session, incident, f":memo: Note #{n} from <@{USER}>: api latency up",
                                       block_id=f"note:bench-{n}", refresh=False)
        settings = load_settings(database_url=url, slack_bot_token="xoxb-bench", slack_signing_secret="bench",
                                 slack_api_url=fake.base_url)
        sender = make_worker(settings, database, "bench").sender
        client = sender.handle.client
        http_cpu = [0.0]
        perform = client._perform_urllib_http_request

        def timed_http(**kwargs):
            began = time.thread_time()
            try:
                return perform(**kwargs)
            finally:
                http_cpu[0] += time.thread_time() - began

        client._perform_urllib_http_request = timed_http
        counts = {"statements": 0, "transactions": 0}

        def statement(*_args):
            counts["statements"] += 1

        def commit(*_args):
            counts["transactions"] += 1

        engines = {database.engine, database._reading_engine()}  # on a SQLite file, reads have an engine of their own
        for engine in engines:
            sa_event.listen(engine, "before_cursor_execute", statement)
        sa_event.listen(database.engine, "commit", commit)
        sender.run_once(limit=batch)  # warm-up: imports, the first connection, statement caches
        warm = len(fake.calls_to("chat.postMessage"))
        http_cpu[0], counts["statements"], counts["transactions"] = 0.0, 0, 0
        began = time.thread_time()
        delivered = 0
        while done := sender.run_once(limit=batch):
            delivered += done
        cpu = time.thread_time() - began
        posts = [block["block_id"] for call in fake.calls_to("chat.postMessage")
                 for block in call.params.get("blocks") or []]
        return {"items": delivered, "warm": warm, "cpu": cpu, "http_cpu": http_cpu[0], **counts,
                "posted_once": len(posts) == len(set(posts)) == items + batch}
    finally:
        database.dispose()
        fake.close()


def run(url: str, items: int, batch: int, code: Path | None) -> dict:
    """`measure` in a child process (with `code` first on its path), on a fresh database."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(code) if code else None, str(ROOT), os.environ.get("PYTHONPATH")]))}
    url = prepare_database(url)
    child = subprocess.run([sys.executable, __file__, "--measure", url, "--items", str(items), "--batch", str(batch)],
                           env=env, capture_output=True, text=True, cwd=ROOT)
    if child.returncode:
        raise SystemExit(f"measuring failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=400, help="channel.post items to deliver (after a warm-up batch)")
    parser.add_argument("--batch", type=int, default=20, help="items claimed at once (the sender's default)")
    parser.add_argument("--database", default="sqlite", help="'sqlite' (a temp file) or a PostgreSQL URL to WIPE")
    parser.add_argument("--baseline", metavar="REV", help="also measure the code of this git revision, same run")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    no_proxies()
    if args.measure:
        print(json.dumps(measure(args.measure, args.items, args.batch)))
        return 0
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        url = f"sqlite:///{tmp}/vigil.db" if args.database == "sqlite" else args.database
        targets = {"before": unpack_revision(args.baseline, Path(tmp))} if args.baseline else {}
        targets["now"] = None
        results = {}
        for name, code in targets.items():
            if url.startswith("sqlite"):
                Path(f"{tmp}/vigil.db").unlink(missing_ok=True)
            results[name] = run(url, args.items, args.batch, code)
    print(f"{args.items} channel.post items after a warm-up batch, batches of {args.batch}, database "
          f"{url.split(':')[0]}, {os.cpu_count()} CPUs\n")
    print(f"{'code':<8} {'delivered':>9} {'our cpu ms/item':>16} {'slack http cpu ms/item':>23} "
          f"{'statements/item':>16} {'transactions/item':>18}")
    for name, r in results.items():
        n = max(r["items"], 1)
        print(f"{name:<8} {r['items']:>9} {(r['cpu'] - r['http_cpu']) * 1000 / n:>16.3f} "
              f"{r['http_cpu'] * 1000 / n:>23.3f} {r['statements'] / n:>16.2f} {r['transactions'] / n:>18.2f}")
    if "before" in results:
        ours = {name: (r["cpu"] - r["http_cpu"]) / max(r["items"], 1) for name, r in results.items()}
        print(f"\nnow/before: our cpu per item {ours['now'] / ours['before']:.2f}x")
    ok = all(r["items"] == args.items and r["posted_once"] for r in results.values())
    print(f"\ncheck: every item delivered, each posted once: {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
