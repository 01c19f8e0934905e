"""The policy in force, recorded by the worker's sweep (once per distinct policy, on the `audit`
stream), so the record shows which rules applied when: a changed VIGIL_PERMISSIONS or role list is
recorded within one sweep of the first worker that runs with it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from vigil_ir.config import Settings
from vigil_ir.permissions.service import Permissions, policy_from_settings
from vigil_ir.reminders.scheduler import sweep


@sweep("permissions.policy_in_force")
def record_policy_in_force(session: Session, now: datetime, settings: Settings) -> int:
    return 1 if Permissions(policy_from_settings(settings)).record_policy(session) else 0
