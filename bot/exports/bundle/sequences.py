"""The key sequences the manifest states (INC-, RISK-, ACT-): the range included, and any gaps."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from vigil_ir.exports.manifest import sequence_report
from vigil_ir.keys import KeyCounter


def sequence(session: Session, prefix: str, model, counter: str, rule: str, included: list[int],
             *where) -> dict[str, Any]:
    """Key range and gaps for `model.number` (Incident, Risk, ActionItem), among the rows `where` selects
    (incidents: not the exercises, whose EX-<n> numbers are a sequence of their own)."""
    existing: list[int] = []
    if included:
        existing = list(session.exec(select(model.number).where(model.number.between(included[0], included[-1]),
                                                                *where).order_by(model.number)))
    highest = session.exec(select(func.max(model.number)).where(*where)).one()
    counter_last = session.exec(select(KeyCounter.last).where(KeyCounter.name == counter)).first()
    return sequence_report(prefix, rule, included, existing, counter_last=counter_last, highest=highest)
