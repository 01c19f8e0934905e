"""Background work shared by `vigil worker` and the web process: reminder sweeps + outbox delivery."""

from __future__ import annotations

import logging
import threading
import time

from vigil_ir import logs
from vigil_ir.config import Settings
from vigil_ir.db import Database, is_unreachable, one_line
from vigil_ir.outbox.sender import OutboxSender
from vigil_ir.reminders.scheduler import run_sweeps

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, database: Database, settings: Settings, sender: OutboxSender, *, sweep_every: float = 30.0):
        self.database, self.settings, self.sender, self.sweep_every = database, settings, sender, sweep_every
        self._last_sweep = float("-inf")

    def run_once(self) -> int:
        """Sweep (when the interval has passed) and deliver what is due; returns items delivered."""
        if time.monotonic() - self._last_sweep >= self.sweep_every:
            self._last_sweep = time.monotonic()
            run_sweeps(self.database, self.settings)
        return self.sender.run_once()

    def drain(self) -> int:
        """Sweep now and deliver until nothing more is due (`vigil worker --once`, tests)."""
        run_sweeps(self.database, self.settings)
        total = 0
        while delivered := self.sender.run_once():
            total += delivered
        return total

    def run_forever(self, stop: threading.Event, wake: threading.Event | None = None,
                    idle_seconds: float = 1.0) -> None:
        logs.bind(worker=self.sender.worker)  # on every line this thread logs
        while not stop.is_set():
            try:
                delivered = self.run_once()
            except Exception as failure:  # noqa: BLE001 - e.g. the database restarting; keep the loop alive
                if is_unreachable(failure):  # expected during an outage: one line a second, no traceback
                    log.warning("database unreachable; retrying in %.0fs: %s", idle_seconds, one_line(failure))
                else:
                    log.exception("background work failed")
                delivered = 0
            if delivered:
                continue
            if wake is not None:
                wake.wait(idle_seconds)
                wake.clear()
            else:
                stop.wait(idle_seconds)
