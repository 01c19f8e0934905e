"""Event-log rows for a bundle (E2 incident event log, E11 object audit trail) and their chain segments.

Each row carries every hashed field exactly as stored (`data` as JSON, times in the exported ISO
form), so `vigil_ir.eventlog.canonical.event_hash` recomputes the chain from the JSON file alone. A
*segment* is a contiguous run of one stream's events (seq first..last); the manifest records, per
stream, the prev_hash of the first event and the hash of the last, which is what lets an auditor
check a slice of a chain without the events before it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog import Event, StreamHead
from vigil_ir.exports.describe import describe, one_line
from vigil_ir.people import Directory

COLUMNS = ("stream", "seq", "id", "object_type", "object_ref", "occurred_at", "recorded_at", "actor",
           "actor_name", "actor_type", "kind", "summary", "data", "corrects", "prev_hash", "hash")
HEAD_COLUMNS = ("stream", "seq", "hash", "updated_at")
HASH_METHOD = ("hash = sha256(prev_hash + canonical_json(e)); e = {stream, stream_seq (the seq column), kind, "
               "actor, occurred_at, recorded_at, data, corrects, prev_hash}; canonical_json: sorted keys, "
               "separators (',', ':'), UTF-8, no ASCII escaping; a stream's first prev_hash is 64 zeros")
# Streams per query: each adds three bound parameters, well under SQLite's limit.
STREAMS_PER_QUERY = 200
ROWS_PER_FETCH = 1000
_PREFIXES = {"incident": "INC-", "exercise": "EX-", "risk": "RISK-", "action": "ACT-"}
_STREAM = re.compile(r"^([a-z_]+):(\d+)$")


@functools.lru_cache(maxsize=4096)  # asked for every event row; a stream's events come together
def object_of(stream: str) -> tuple[str, str]:
    """(object_type, object_ref) for a stream: `incident:4` → (incident, INC-4); `audit` → (audit, audit)."""
    match = _STREAM.match(stream)
    if not match:
        return stream.split(":", 1)[0], stream
    kind, number = match.groups()
    return kind, f"{_PREFIXES[kind]}{number}" if kind in _PREFIXES else stream


def actor_type(actor: str) -> str:
    if actor.startswith("system:"):
        return "system"
    if actor.startswith("cli:"):
        return "cli"
    return "user"


def event_row(event: Any, people: Directory) -> dict[str, Any]:
    """A row of COLUMNS from an Event or a Core row with the same attribute names; `actor_name` is
    the actor's name when the event happened (not hashed: the chain holds the id)."""
    object_type, object_ref = object_of(event.stream)
    return {"stream": event.stream, "seq": event.stream_seq, "id": event.id, "object_type": object_type,
            "object_ref": object_ref, "occurred_at": clock.iso(event.occurred_at),
            "recorded_at": clock.iso(event.recorded_at), "actor": event.actor,
            "actor_name": people.name_column(event.actor, event.occurred_at), "actor_type": actor_type(event.actor),
            "kind": event.kind, "summary": one_line(people.name_ids(describe(event), event.occurred_at)),
            "data": event.data,
            "corrects": event.corrects, "prev_hash": event.prev_hash, "hash": event.hash}


def hashed_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields `event_hash` takes, from an exported row."""
    return {"stream": row["stream"], "stream_seq": row["seq"], "kind": row["kind"], "actor": row["actor"],
            "occurred_at": row["occurred_at"], "recorded_at": row["recorded_at"], "data": row["data"],
            "corrects": row["corrects"], "prev_hash": row["prev_hash"]}


@dataclass
class Segment:
    stream: str
    first_seq: int
    last_seq: int
    prev_hash: str
    head_hash: str
    events: int

    def to_json(self) -> dict[str, Any]:
        return {"stream": self.stream, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "prev_hash": self.prev_hash, "head_hash": self.head_hash, "events": self.events}


class Segments:
    """Collects the segments of rows written in (stream, seq) order."""

    def __init__(self) -> None:
        self.items: list[Segment] = []

    def add(self, row: dict[str, Any]) -> None:
        last = self.items[-1] if self.items else None
        if last is not None and last.stream == row["stream"]:
            last.last_seq, last.head_hash, last.events = row["seq"], row["hash"], last.events + 1
        else:
            self.items.append(Segment(row["stream"], row["seq"], row["seq"], row["prev_hash"], row["hash"], 1))

    def add_run(self, events: Sequence[Any]) -> None:
        """Events of one stream in seq order, as `add` of each would (a packet's whole stream at once)."""
        if not events:
            return
        first, last = events[0], events[-1]
        current = self.items[-1] if self.items else None
        if current is not None and current.stream == first.stream:
            current.events += len(events)
        else:
            current = Segment(first.stream, first.stream_seq, first.stream_seq, first.prev_hash, first.hash,
                              len(events))
            self.items.append(current)
        current.last_seq, current.head_hash = last.stream_seq, last.hash

    @property
    def events(self) -> int:
        return sum(segment.events for segment in self.items)


def _byte_order(session: Session, column):
    # Byte order on both databases (the order Python sorts names in), not PostgreSQL's locale collation.
    return column.collate("C") if session.get_bind().dialect.name == "postgresql" else column


def period_ranges(session: Session, start: datetime, end: datetime) -> list[tuple[str, int, int]]:
    """(stream, first seq, last seq) of every stream with events recorded in [start, end).

    A range runs from the first to the last such event, so it is contiguous even if a clock
    skew between processes put one event of the run just outside the period.
    """
    query = (select(Event.stream, func.min(Event.stream_seq), func.max(Event.stream_seq))
             .where(Event.recorded_at >= clock.to_utc(start), Event.recorded_at < clock.to_utc(end))
             .group_by(Event.stream))
    return sorted((stream, lo, hi) for stream, lo, hi in session.execute(query))


def events_in(session: Session, ranges: list[tuple[str, int, int]]) -> Iterator[Any]:
    """The events of each range (ranges sorted by stream name), streamed in (stream, seq) order.

    Core rows rather than ORM objects: lighter, and nothing is kept in the session.
    """
    table = Event.__table__
    for offset in range(0, len(ranges), STREAMS_PER_QUERY):
        chunk = ranges[offset:offset + STREAMS_PER_QUERY]
        condition = or_(*(and_(table.c.stream == stream, table.c.stream_seq.between(lo, hi))
                          for stream, lo, hi in chunk))
        query = (select(table).where(condition).order_by(_byte_order(session, table.c.stream), table.c.stream_seq)
                 .execution_options(yield_per=ROWS_PER_FETCH))
        yield from session.execute(query)


def stream_heads(session: Session) -> Iterator[Any]:
    """Every stream head, in byte order of the stream name (the order the heads digest uses)."""
    yield from session.execute(select(StreamHead.stream, StreamHead.seq, StreamHead.hash, StreamHead.updated_at)
                               .order_by(_byte_order(session, StreamHead.stream)).execution_options(yield_per=ROWS_PER_FETCH))


def head_row(head: Any) -> dict[str, Any]:
    return {"stream": head.stream, "seq": head.seq, "hash": head.hash, "updated_at": clock.iso(head.updated_at)}
