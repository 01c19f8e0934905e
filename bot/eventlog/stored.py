"""Events read as their stored text, to walk the whole log fast (`vigil verify`).

An event's hash covers prev_hash + the canonical JSON of its hashed fields (vigil_ir.eventlog.canonical).
Events are written with `data` already in canonical JSON (the engine's JSON serializer, vigil_ir.db)
and times in one fixed form, so the hashed bytes are put together from the stored text, with no JSON
round trip per row. A row whose stored text is not canonical (written before that serializer, or by
hand) is hashed again the slow way before anyone calls it a break: its data parsed and re-serialised,
and failing that, the row read through the ORM types exactly as the app reads it.

Why the fast path cannot pass what the slow path would fail: a match with the stored hash means the
assembled bytes are the very bytes that were hashed (SHA-256 is collision resistant), and the app
parses those same texts to the same values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Integer, String, Text, cast, func, literal, select
from sqlmodel import Session

from vigil_ir.eventlog.canonical import canonical_json, event_hash
from vigil_ir.eventlog.models import Event
from vigil_ir.jsontext import parse_json

# How json.dumps(ensure_ascii=False) writes a string (the C function): canonical_json's own escaping.
_quoted = json.encoder.encode_basestring


class StoredEvent(NamedTuple):
    """One event row as stored: times in the exported ISO form, `data` as its JSON text.

    `data`, `occurred_at` and `recorded_at` are parsed when asked for, so a fold that skips an
    event never pays for parsing it."""

    id: int
    stream: str
    stream_seq: int
    kind: str
    actor: str
    occurred_text: str
    recorded_text: str
    data_text: str
    corrects: int | None
    prev_hash: str
    hash: str

    @property
    def data(self) -> dict[str, Any]:
        return parse_json(self.data_text)

    @property
    def occurred_at(self) -> datetime:
        return datetime.fromisoformat(self.occurred_text)

    @property
    def recorded_at(self) -> datetime:
        return datetime.fromisoformat(self.recorded_text)

    def payload(self, data_text: str) -> bytes:
        """prev_hash + canonical JSON of the hashed fields (keys in sorted order), with `data_text` spliced in.

        Every other string is escaped as JSON, so only one split of the bytes into fields exists: bytes
        that match the stored hash have `data_text` equal to the canonical data that was hashed."""
        corrects = "null" if self.corrects is None else str(self.corrects)
        return (f'{self.prev_hash}{{"actor":{_quoted(self.actor)},"corrects":{corrects},"data":{data_text},'
                f'"kind":{_quoted(self.kind)},"occurred_at":{_quoted(self.occurred_text)},'
                f'"prev_hash":{_quoted(self.prev_hash)},"recorded_at":{_quoted(self.recorded_text)},'
                f'"stream":{_quoted(self.stream)},"stream_seq":{self.stream_seq}}}').encode("utf-8")

    def recomputed_hash(self, session: Session | None = None) -> str:
        fast = hashlib.sha256(self.payload(self.data_text)).hexdigest()
        if fast == self.hash:
            return fast
        return self._slow_hash(session)

    def _slow_hash(self, session: Session | None) -> str:
        try:
            data = json.loads(self.data_text)
        except ValueError:
            return "none: the stored data is not JSON"
        reserialised = hashlib.sha256(self.payload(canonical_json(data))).hexdigest()
        if reserialised == self.hash or session is None:
            return reserialised
        table = Event.__table__
        row = session.execute(select(table).where(table.c.id == self.id)).one()
        return event_hash(row._mapping)


class FoldedEvent(NamedTuple):
    """An event as the state folds read it (vigil_ir.eventlog.folding.walk_read): a StoredEvent without
    the chain's fields (id, hashes, occurred_at, corrects), which no fold looks at and which cost a
    fifth of the read."""

    stream: str
    stream_seq: int
    kind: str
    actor: str
    recorded_text: str
    data_text: str

    data = StoredEvent.data
    recorded_at = StoredEvent.recorded_at


def time_text(column, dialect: str):
    """The column as the exported text form (`YYYY-MM-DDTHH:MM:SS.ffffffZ`), computed by the database."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"', type_=String)
    # SQLite keeps `YYYY-MM-DD HH:MM:SS.ffffff` (SQLAlchemy's storage format: always six digits).
    return func.replace(cast(column, Text), " ", "T", type_=String).concat(literal("Z", String))


def stored_events(session: Session, *, batch: int = 1000) -> Iterator[StoredEvent]:
    """Every event in (stream, stream_seq) order, a page at a time through one cursor."""
    table = Event.__table__
    dialect = session.get_bind().dialect.name
    columns = (cast(table.c.id, Integer), table.c.stream, table.c.stream_seq, table.c.kind, table.c.actor,
               time_text(table.c.occurred_at, dialect).label("occurred_text"),
               time_text(table.c.recorded_at, dialect).label("recorded_text"),
               cast(table.c.data, Text).label("data_text"), table.c.corrects, table.c.prev_hash, table.c.hash)
    query = select(*columns).order_by(table.c.stream, table.c.stream_seq).execution_options(yield_per=batch)
    make = StoredEvent._make
    for page in session.execute(query).partitions():
        yield from map(make, page)


def stored_columns(dialect: str) -> tuple:
    """The columns of a StoredEvent, in its order, for a query on the event table."""
    table = Event.__table__
    return (cast(table.c.id, Integer), table.c.stream, table.c.stream_seq, table.c.kind, table.c.actor,
            time_text(table.c.occurred_at, dialect).label("occurred_text"),
            time_text(table.c.recorded_at, dialect).label("recorded_text"),
            cast(table.c.data, Text).label("data_text"), table.c.corrects, table.c.prev_hash, table.c.hash)


def folded_columns(dialect: str) -> tuple:
    """The columns of a FoldedEvent, in its order, for a query on the event table."""
    table = Event.__table__
    return (table.c.stream, table.c.stream_seq, table.c.kind, table.c.actor,
            time_text(table.c.recorded_at, dialect).label("recorded_text"),
            cast(table.c.data, Text).label("data_text"))


def stored_streams(session: Session, streams: list[str], *, per_query: int = 200) -> dict[str, list[StoredEvent]]:
    """Every event of each of `streams`, as stored, by stream, in seq order (a few queries, no ORM object)."""
    return rows_by_stream(session, streams, stored_columns(session.get_bind().dialect.name), StoredEvent._make,
                          per_query=per_query)


def rows_by_stream(session: Session, streams: list[str], columns: tuple, make, *, per_query: int) -> dict[str, list]:
    """`columns` of every event of each of `streams`, each row made into `make(row)` (which has a
    `stream`), by stream, in seq order: `per_query` streams per query, a page of rows at a time.
    `columns` are text and integers, which SQLAlchemy hands over as the driver gives them."""
    table = Event.__table__
    grouped: dict[str, list] = {}
    for offset in range(0, len(streams), per_query):
        query = (select(*columns).where(table.c.stream.in_(streams[offset:offset + per_query]))
                 .order_by(table.c.stream, table.c.stream_seq))
        for page in pages_of(session, query):
            for row in map(make, page):
                grouped.setdefault(row.stream, []).append(row)
    return grouped


def pages_of(session: Session, query, size: int = 1000, params: dict | None = None) -> Iterator[list]:
    """The rows of `query` (columns SQLAlchemy converts none of; `params` bound), `size` at a time.

    On SQLite straight from the driver's cursor, which steps through the rows as they are fetched: its
    tuples are the values, and a Row object for each costs as much as the fetch itself (1.6-2 µs a
    row of the year's 400,000 incident events). Elsewhere through SQLAlchemy, which streams from a
    server-side cursor."""
    if session.get_bind().dialect.name != "sqlite":
        yield from session.execute(query.execution_options(yield_per=size), params).partitions()
        return
    result = session.execute(query, params)
    try:
        while page := result.cursor.fetchmany(size):
            yield page
    finally:
        result.close()
