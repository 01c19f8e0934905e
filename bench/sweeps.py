"""The worker's sweeps over a large risk register: the review-reminder sweep with every review due,
then a pass of all sweeps with nothing left to do, against reading the same rows with `sqlite3`.

    .venv/bin/python bench/sweeps.py [--risks N] [--keep DIR]

Not part of the test suite; exits 1 only if a check fails (each due review reminded exactly once,
the second pass sends nothing, `vigil verify` passes).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T0 = datetime(2025, 5, 20, 9, 0, tzinfo=timezone.utc)  # risks made then are first due 2025-07-01
DUE_DAY = datetime(2025, 7, 1, 8, 0, tzinfo=timezone.utc)
GOALS = {"reminder sweep over 100,000 risks": 2.0, "a pass with nothing due": 0.1}


def make_register(url: str, count: int) -> None:
    from vigil_ir import clock
    from vigil_ir.db import Database
    from vigil_ir.risks import service

    database = Database(url)
    with clock.frozen(T0):
        for start in range(0, count, 1000):
            with database.session() as session:
                for n in range(start, min(count, start + 1000)):
                    service.create(session, actor="U0OWNER", raw={
                        "title": f"Risk {n}: laptop theft exposes customer data",
                        "statement": "Because laptops travel, one may be stolen, exposing customer data.",
                        "category": "security", "risk_type": "internal", "owner": f"U0OWNER{n % 50}",
                        "inherent_likelihood": "4", "inherent_impact": "4", "residual_likelihood": "3",
                        "residual_impact": "3", "treatment": "mitigate", "treatment_plan": "Disk encryption"})
    database.dispose()


class Counted:
    """Statements sent on the database's write engine while inside the block, and the longest write
    transaction (BEGIN IMMEDIATE to COMMIT: how long SQLite's write lock was held at a time)."""

    def __init__(self, database):
        self.database, self.count, self.longest, self._began = database, 0, 0.0, None

    def _count(self, *_):
        self.count += 1

    def _begin(self, *_):
        self._began = time.perf_counter()

    def _end(self, *_):
        if self._began is not None:
            self.longest = max(self.longest, time.perf_counter() - self._began)
            self._began = None

    def _listeners(self):
        return (("before_cursor_execute", self._count), ("begin", self._begin), ("commit", self._end),
                ("rollback", self._end))

    def __enter__(self):
        from sqlalchemy import event

        for name, listener in self._listeners():
            event.listen(self.database.engine, name, listener)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_):
        from sqlalchemy import event

        self.seconds = time.perf_counter() - self.started
        for name, listener in self._listeners():
            event.remove(self.database.engine, name, listener)


def raw_read_seconds(path: str) -> float:
    """The floor: read every open review and its risk's title with plain sqlite3."""
    connection = sqlite3.connect(path)
    started = time.perf_counter()
    connection.execute("SELECT r.id, r.due_on, r.reminder_rank, k.title FROM risk_review r JOIN risk k "
                       "ON k.id = r.risk_id WHERE r.status = 'open'").fetchall()
    seconds = time.perf_counter() - started
    connection.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--risks", type=int, default=10_000, help="risks in the register (the issue's goal: 100,000)")
    parser.add_argument("--keep", metavar="DIR", help="keep (or reuse) the generated database in DIR")
    args = parser.parse_args()

    from vigil_ir import clock
    from vigil_ir.config import Settings
    from vigil_ir.db import Database, migrate
    from vigil_ir.reminders.scheduler import _run, registered, run_sweeps

    folder = Path(args.keep or tempfile.mkdtemp(prefix="vigil-sweeps-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sweeps-{args.risks}.db"
    url = f"sqlite:///{path}"
    kept = path.exists() and args.keep
    if not kept:
        path.unlink(missing_ok=True)
        migrate(url)
        started = time.perf_counter()
        make_register(url, args.risks)
        print(f"made {args.risks} risks in {time.perf_counter() - started:.0f}s")
    else:  # a kept database is swept again from scratch: reminders and the outbox forgotten
        connection = sqlite3.connect(path)
        connection.execute("UPDATE risk_review SET reminder_rank = 0, reminders_sent = 0")
        connection.execute("DELETE FROM outbox_item")
        connection.commit()
        connection.close()
    settings = Settings(_env_file=None, DATABASE_URL=url, VIGIL_RISK_CHANNEL="C0RISKS", VIGIL_AUDIT_CHANNEL="C0AUDIT")
    database = Database(url)
    sweeps = registered()
    with clock.frozen(DUE_DAY), Counted(database) as reminding:
        sent = _run(database, "risks.review_reminders", sweeps["risks.review_reminders"], DUE_DAY, settings)
    with clock.frozen(DUE_DAY):
        run_sweeps(database, settings, DUE_DAY)  # everything else due today (digest, heads…) once
    with clock.frozen(DUE_DAY), Counted(database) as idle:
        again = run_sweeps(database, settings, DUE_DAY)
    per_sweep = {}
    with clock.frozen(DUE_DAY):
        for name, fn in sweeps.items():
            with Counted(database) as one:
                _run(database, name, fn, DUE_DAY, settings)
            per_sweep[name] = (one.seconds, one.count)
    database.dispose()
    raw = raw_read_seconds(str(path))

    print(f"\n{args.risks} risks, {os.cpu_count()} CPUs, SQLite")
    print(f"{'':<38} {'seconds':>8} {'statements':>11} {'longest tx':>11} {'x raw read':>11}")
    print(f"{'review reminders (' + str(sent) + ' sent)':<38} {reminding.seconds:>8.2f} {reminding.count:>11} "
          f"{reminding.longest * 1000:>9.0f}ms {reminding.seconds / raw:>10.0f}x")
    print(f"{'all sweeps, nothing due':<38} {idle.seconds:>8.3f} {idle.count:>11} {idle.longest * 1000:>9.0f}ms "
          f"{idle.seconds / raw:>10.1f}x")
    print(f"{'raw sqlite3 read of the open reviews':<38} {raw:>8.3f}")
    per = reminding.seconds / max(sent, 1)
    print(f"\nper reminder {per * 1000:.2f} ms; at that rate the issue's case (100,000 risks, 6,668 reminders due) "
          f"takes {per * 6668:.1f}s -> goal (<= 2 s) {'met' if per * 6668 <= 2 else 'NOT met'} (not counting the "
          f"scan past reviews not due); nothing due: {idle.seconds:.3f}s -> goal (<= 0.1 s) "
          f"{'met' if idle.seconds <= 0.1 else 'NOT met'}")
    print("\nnothing due, per sweep (seconds, statements):")
    for name, (seconds, count) in sorted(per_sweep.items(), key=lambda item: -item[1][0]):
        print(f"  {name:<32} {seconds:>7.3f} {count:>5}")

    ok = sent == args.risks and not any(again.values())
    verify = subprocess.run([str(Path(sys.executable).with_name("vigil")), "verify"], capture_output=True, text=True,
                            env={**os.environ, "DATABASE_URL": url})
    print(f"\ncheck: {sent} reminders for {args.risks} due reviews, {sum(again.values())} on the second pass: "
          f"{'OK' if ok else 'FAIL'}")
    print(f"check: vigil verify exit {verify.returncode}: {(verify.stdout or verify.stderr).strip()[:160]}")
    return 0 if ok and verify.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
