"""What listeners need from the rest of the app, passed in explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.followup.policy import Policy
from vigil_ir.permissions import Permissions, build_permissions


@dataclass
class Deps:
    database: Database
    settings: Settings
    # Called after a transaction that enqueued outbox items, so the sender starts at once.
    wake_sender: Callable[[], None] = field(default=lambda: None)
    # Playbook files by id, loaded (and linted) once at start-up.
    library: dict = field(default_factory=dict)
    # Follow-up policy (update cadence, PIR due dates), parsed once from settings.
    policy: Policy | None = None
    # Who may do what (bot/permissions); the runtime gives it a Slack client to resolve user groups.
    permissions: Permissions | None = None

    def __post_init__(self):
        if self.policy is None:
            self.policy = Policy.from_settings(self.settings)
        if self.permissions is None:
            self.permissions = build_permissions(self.settings, database=self.database)
