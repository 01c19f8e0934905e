"""Appending to the event log. Callers own the transaction: state change and event commit together."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog.canonical import GENESIS_HASH, canonical_json, event_hash
from vigil_ir.eventlog.models import Event, StreamHead


def append(session: Session, *, stream: str, kind: str, actor: str, data: dict[str, Any] | None = None,
           occurred_at: datetime | None = None, corrects: int | None = None) -> Event:
    """Append one event to `stream` inside the caller's transaction and return it (flushed)."""
    recorded_at = clock.now()
    data = dict(data or {})
    canonical_json(data)  # fail early on values JSON cannot carry exactly
    # Lock the stream head: on PostgreSQL a row lock serialises writers of one stream (the row is
    # created first if absent, so two first writers also queue); SQLite transactions are already
    # serialised (BEGIN IMMEDIATE), where FOR UPDATE compiles to nothing.
    locked_head = (select(StreamHead).where(StreamHead.stream == stream).with_for_update()
                   .execution_options(populate_existing=True))
    head = session.exec(locked_head).first()
    if head is None:
        insert_if_absent(session, StreamHead, {"stream": stream, "seq": 0, "hash": GENESIS_HASH,
                                               "updated_at": recorded_at}, ["stream"])
        head = session.exec(locked_head).one()
    seq, prev_hash = head.seq + 1, head.hash
    fields = {"stream": stream, "stream_seq": seq, "kind": kind, "actor": actor,
              "occurred_at": clock.to_utc(occurred_at) if occurred_at else recorded_at,
              "recorded_at": recorded_at, "data": data, "corrects": corrects, "prev_hash": prev_hash}
    event = Event(**fields, hash=event_hash(fields))
    head.seq, head.hash, head.updated_at = seq, event.hash, recorded_at
    session.add(event)
    session.add(head)
    session.flush()
    return event


def events_for_stream(session: Session, stream: str) -> list[Event]:
    return list(session.exec(select(Event).where(Event.stream == stream).order_by(Event.stream_seq)))
