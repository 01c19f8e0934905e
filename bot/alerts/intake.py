"""One webhook delivery, recorded in one transaction."""

from __future__ import annotations

from vigil_ir.alerts import service
from vigil_ir.alerts.signals import Signal
from vigil_ir.config import Settings
from vigil_ir.db import Database


def record(database: Database, settings: Settings, source: str, signals: list[Signal]) -> service.Received:
    with database.session() as session:
        return service.receive(session, source=source, signals=signals)
