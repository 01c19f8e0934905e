"""Wiring: settings + database + Slack client → bolt app and background worker (sweeps + outbox)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from slack_bolt import App

from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.followup.policy import Policy
from vigil_ir.permissions import build_permissions, policy_from_settings
from vigil_ir.outbox.sender import OutboxSender, worker_name
from vigil_ir.playbooks.loader import load_library
from vigil_ir.slack.app import create_bolt_app, make_client, make_inline_client
from vigil_ir.slack.delivery import Deliverer, NotReady
from vigil_ir.slack.deps import Deps
from vigil_ir.tickets.config import config_for
from vigil_ir.tickets.delivery import TicketDeliverer
from vigil_ir.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    bolt: App | None
    worker: Worker | None
    wake: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start_background_delivery(self) -> None:
        if self.worker is None or self._thread is not None or not self.settings.web_runs_worker:
            return
        self._thread = threading.Thread(target=self.worker.run_forever, args=(self.stop, self.wake),
                                        name="vigil-outbox", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self.stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def make_worker(settings: Settings, database: Database, role: str, library: dict | None = None) -> Worker:
    # The sender handles 429s itself (reschedules with Retry-After) instead of sleeping in a thread.
    library = load_library(_playbooks_dir(settings)) if library is None else library
    config_for(settings)  # a ticket tracker set up by halves stops `vigil worker` too, naming the setting
    deliverer = Deliverer(database, settings, make_client(settings, retry_rate_limits=False), library)
    deliverer.handlers.update(TicketDeliverer(database, settings).handlers())
    sender = OutboxSender(database, deliverer, worker=worker_name(role), hold_seconds=settings.outbox_claim_seconds,
                          not_ready=NotReady)
    return Worker(database, settings, sender)


def _playbooks_dir(settings: Settings) -> Path | None:
    return Path(settings.playbooks_dir) if settings.playbooks_dir else None


def build_runtime(settings: Settings, database: Database | None = None, *, role: str = "web",
                  socket_mode: bool = False) -> Runtime:
    """Raises PlaybookError (naming each bad file) when a playbook does not pass lint, and
    ValueError for a malformed follow-up policy setting. Without the credentials its mode needs
    (`Settings.missing_credentials_for`), the runtime has no bolt app and no worker."""
    database = database or Database(settings.database_url)
    library = load_library(_playbooks_dir(settings))
    Policy.from_settings(settings)  # fail at start-up, not in the first sweep
    policy_from_settings(settings)  # a bad VIGIL_PERMISSIONS / role list stops start-up, naming it
    config_for(settings)  # so does a ticket tracker set up by halves
    if settings.missing_credentials_for("socket" if socket_mode else "http"):
        return Runtime(settings=settings, database=database, bolt=None, worker=None)
    runtime = Runtime(settings=settings, database=database, bolt=None,
                      worker=make_worker(settings, database, role, library))
    permissions = build_permissions(settings, client=make_inline_client(settings), database=database)
    runtime.bolt = create_bolt_app(Deps(database=database, settings=settings, wake_sender=runtime.wake.set,
                                        library=library, permissions=permissions), socket_mode=socket_mode)
    return runtime
