"""Snapshots of a risk and the change events that carry them.

Every event that changes a risk carries `changes: {field: {"from": old, "to": new}}` in the
JSON form below, and `risk.created` carries the full `state`. Folding a stream's events therefore
rebuilds the risk exactly as it stood after any event (vigil_ir.risks.register_asof), with no table
needed. `version` and `updated_at` are part of the snapshot, so they fold too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.risks.models import Risk

FIELDS = ("number", "title", "statement", "description", "category", "risk_type", "owner", "methodology",
          "inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact", "treatment",
          "treatment_plan", "treatment_due", "status", "closure_reason", "cadence", "next_review_due",
          "last_reviewed_at", "last_reviewed_by", "acceptance_expires", "tsc_refs", "linked_incidents",
          "source", "created_at", "created_by", "updated_at", "version")
DATE_FIELDS = {"treatment_due", "next_review_due", "acceptance_expires"}
TIME_FIELDS = {"last_reviewed_at", "created_at", "updated_at"}
# The fields whose column type JSON lacks (the JSON columns are read as their lists already).
TYPED_FIELDS = tuple(name for name in FIELDS if name in DATE_FIELDS | TIME_FIELDS)


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return list(value)
    return value


def from_json(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATE_FIELDS:
        return date.fromisoformat(value)
    if name in TIME_FIELDS:
        return clock.to_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return value


def snapshot(risk: Risk) -> dict[str, Any]:
    return {name: to_json(getattr(risk, name)) for name in FIELDS}


def snapshot_of_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """`snapshot` of a risk row read as a dict of its columns (vigil_ir.eventlog.folding.dicts_where_in).

    Only the typed fields are converted: the check reads every risk, and a conversion per field was a
    tenth of it."""
    found = {name: row[name] for name in FIELDS}
    for name in TYPED_FIELDS:
        found[name] = to_json(found[name])
    return found


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"from": before.get(name), "to": after[name]} for name in FIELDS
            if before.get(name) != after[name]}


def fold(state: dict[str, Any], changes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {**state, **{name: change["to"] for name, change in changes.items()}}


def replay(state: dict[str, Any] | None, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The risk's snapshot after one event of its stream, given the snapshot before it (None: not created yet)."""
    if kind == "risk.created":
        return dict(data["state"])
    if state is not None and data.get("changes"):
        return fold(state, data["changes"])
    return state


def record(session: Session, risk: Risk, kind: str, actor: str, before: dict[str, Any] | None,
           data: dict[str, Any] | None = None) -> Event:
    """Append `kind` for `risk`, with the changes made since `before` (None: nothing changed).

    A change bumps `version` and `updated_at` first, so they are part of the recorded change.
    """
    payload = dict(data or {})
    if before is not None and diff(before, snapshot(risk)):
        risk.version += 1
        risk.updated_at = clock.now()
        payload["changes"] = diff(before, snapshot(risk))
    session.add(risk)
    session.flush()
    return append(session, stream=risk.stream, kind=kind, actor=actor, data=payload)


def create_event(session: Session, risk: Risk, actor: str, data: dict[str, Any]) -> Event:
    session.add(risk)
    session.flush()
    return append(session, stream=risk.stream, kind="risk.created", actor=actor,
                  data={"state": snapshot(risk), **data})
