"""Run the registered sweeps.

A sweep is `fn(session, now, settings) -> int` (reminders queued). It must be idempotent: it queues each
reminder through the outbox with a deterministic `dedupe_key` (e.g. `reminder:step:12:<due>`), so
two workers sweeping at once, or one sweeping twice, queue it once. Each sweep runs in its own
transaction, so one failing sweep does not hold back the others.

A sweep registered with `batch=N` handles at most N items per call; while a call queues a full
batch it is called again in a new transaction, so its locks last one batch and a backlog (after
downtime, or a large import) is shared by every worker sweeping at the same time.

A sweep registered with `prepare=` works in two steps: `prepare(session, now, settings)` finds the
work and builds what it will write (a sized plan, empty when there is nothing to do), then
`fn(session, now, settings, plan)` writes it, guarding each change with a compare-and-set on what
was read. On SQLite, whose one write lock every request's ack waits for, the plan is made in a read
session and only the writes hold the lock; on PostgreSQL both steps share one transaction, so the
plan's `FOR UPDATE SKIP LOCKED` rows stay locked and several workers each take different ones. A
batched two-step sweep goes on while its plan is full.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sized
from datetime import datetime

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.metrics import REMINDERS_QUEUED, SWEEP_FAILURES, SWEEPS_LAST_RUN

log = logging.getLogger(__name__)
Sweep = Callable[..., int]
Prepare = Callable[[Session, datetime, Settings], Sized]
_SWEEPS: dict[str, Sweep] = {}
_BATCHES: dict[str, int] = {}
_PREPARES: dict[str, Prepare] = {}
MAX_ROUNDS = 1000  # a bound on one run of a batched sweep, should a sweep never stop filling its batch


def sweep(name: str, *, batch: int | None = None, prepare: Prepare | None = None) -> Callable[[Sweep], Sweep]:
    """Register a sweep under `name` (modules listed in `vigil_ir.reminders.registry` do this on import)."""
    def register(fn: Sweep) -> Sweep:
        _SWEEPS[name] = fn
        if batch:
            _BATCHES[name] = batch
        if prepare:
            _PREPARES[name] = prepare
        return fn
    return register


def registered() -> dict[str, Sweep]:
    from vigil_ir.reminders import registry  # noqa: F401  (imports the modules that register sweeps)

    return dict(_SWEEPS)


def _run(database: Database, name: str, fn: Sweep, now: datetime, settings: Settings) -> int:
    total, batch, prepare = 0, _BATCHES.get(name), _PREPARES.get(name)
    for _ in range(MAX_ROUNDS if batch else 1):
        if prepare is None:
            with database.session() as session:
                queued = done = fn(session, now, settings)
        else:
            queued, done = _two_steps(database, fn, prepare, now, settings)
        total += queued
        if not batch or done < batch:
            break
    return total


def _two_steps(database: Database, fn: Sweep, prepare: Prepare, now: datetime, settings: Settings) -> tuple[int, int]:
    """(queued, size of the plan) of one round of a two-step sweep."""
    if database.is_sqlite:
        with database.read_session() as reading:
            plan = prepare(reading, now, settings)
        if not plan:
            return 0, 0
        with database.session() as session:
            return fn(session, now, settings, plan), len(plan)
    with database.session() as session:
        plan = prepare(session, now, settings)
        return (fn(session, now, settings, plan) if plan else 0), len(plan)


def run_sweep(database: Database, name: str, settings: Settings, now: datetime | None = None) -> int:
    """Run one registered sweep by name, as `run_sweeps` runs each (its batches, its two steps)."""
    return _run(database, name, registered()[name], now or clock.now(), settings)


def run_sweeps(database: Database, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    counts = {}
    for name, fn in registered().items():
        try:
            counts[name] = _run(database, name, fn, now, settings)
        except Exception:  # noqa: BLE001 - logged; the next sweep tries again
            log.exception("sweep %s failed", name, extra={"sweep": name})
            SWEEP_FAILURES.labels(name).inc()
            counts[name] = -1
        else:
            REMINDERS_QUEUED.labels(name).inc(max(counts[name] or 0, 0))
    SWEEPS_LAST_RUN.set_to_current_time()
    return counts
