"""Run the registered sweeps.

A sweep is `fn(session, now, settings) -> int` (reminders queued). It must be idempotent: it queues each
reminder through the outbox with a deterministic `dedupe_key` (e.g. `reminder:step:12:<due>`), so
two workers sweeping at once, or one sweeping twice, queue it once. Each sweep runs in its own
transaction, so one failing sweep does not hold back the others.

A sweep registered with `batch=N` handles at most N items per call; while a call queues a full
batch it is called again in a new transaction, so its locks last one batch and a backlog (after
downtime, or a large import) is shared by every worker sweeping at the same time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.metrics import REMINDERS_QUEUED, SWEEP_FAILURES, SWEEPS_LAST_RUN

log = logging.getLogger(__name__)
Sweep = Callable[[Session, datetime, Settings], int]
_SWEEPS: dict[str, Sweep] = {}
_BATCHES: dict[str, int] = {}
MAX_ROUNDS = 1000  # a bound on one run of a batched sweep, should a sweep never stop filling its batch


def sweep(name: str, *, batch: int | None = None) -> Callable[[Sweep], Sweep]:
    """Register a sweep under `name` (modules listed in `vigil_ir.reminders.registry` do this on import)."""
    def register(fn: Sweep) -> Sweep:
        _SWEEPS[name] = fn
        if batch:
            _BATCHES[name] = batch
        return fn
    return register


def registered() -> dict[str, Sweep]:
    from vigil_ir.reminders import registry  # noqa: F401  (imports the modules that register sweeps)

    return dict(_SWEEPS)


def _run(database: Database, name: str, fn: Sweep, now: datetime, settings: Settings) -> int:
    total, batch = 0, _BATCHES.get(name)
    for _ in range(MAX_ROUNDS if batch else 1):
        with database.session() as session:
            queued = fn(session, now, settings)
        total += queued
        if not batch or queued < batch:
            break
    return total


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
