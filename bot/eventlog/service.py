"""Appending to the event log. Callers own the transaction: state change and event commit together.

The append runs on every write request, so it is SQLAlchemy Core with statements built once: the
ORM's unit of work (instance state, flush ordering, identity map) cost more than the SQL itself.
The returned `Event` is a plain copy of the inserted row, not attached to the session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select as sa_select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog.canonical import GENESIS_HASH, canonical_json, event_hash
from vigil_ir.eventlog.models import Event, StreamHead

_EVENT, _HEAD = Event.__table__, StreamHead.__table__
# On PostgreSQL the row lock serialises writers of one stream (the row is created first if absent, so
# two first writers also queue); SQLite transactions are already serialised (BEGIN IMMEDIATE), where
# FOR UPDATE compiles to nothing.
_LOCK_HEAD = (sa_select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.stream == bindparam("stream"))
              .with_for_update())
_INSERT_EVENT = insert(_EVENT).returning(_EVENT.c.id)
_MOVE_HEAD = (update(_HEAD).where(_HEAD.c.stream == bindparam("head_stream"))
              .values(seq=bindparam("seq"), hash=bindparam("hash"), updated_at=bindparam("updated_at")))
# On PostgreSQL the event and the head's move are one statement (the UPDATE as a data-modifying CTE
# of the INSERT): one round trip less while the head is locked, which is what bounds the notes per
# second one incident can take.
# (Its parameters are named apart from the columns': a parameter named after a column would also be
# SET on the head.)
_EVENT_FIELDS = ("stream", "stream_seq", "kind", "actor", "occurred_at", "recorded_at", "data", "corrects",
                 "prev_hash", "hash")
_INSERT_EVENT_MOVING_HEAD = (insert(_EVENT).values({name: bindparam(f"event_{name}", type_=_EVENT.c[name].type)
                                                    for name in _EVENT_FIELDS}).add_cte(
    update(_HEAD).where(_HEAD.c.stream == bindparam("head_stream"))
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"), updated_at=bindparam("head_at"))
    .returning(_HEAD.c.seq).cte("moved_head")).returning(_EVENT.c.id))


def append(session: Session, *, stream: str, kind: str, actor: str, data: dict[str, Any] | None = None,
           occurred_at: datetime | None = None, corrects: int | None = None) -> Event:
    """Append one event to `stream` inside the caller's transaction and return it (inserted)."""
    recorded_at = clock.now()
    data = dict(data or {})
    canonical_json(data)  # fail early on values JSON cannot carry exactly
    head = session.execute(_LOCK_HEAD, {"stream": stream}).first()
    if head is None:
        insert_if_absent(session, StreamHead, {"stream": stream, "seq": 0, "hash": GENESIS_HASH,
                                               "updated_at": recorded_at}, ["stream"])
        head = session.execute(_LOCK_HEAD, {"stream": stream}).one()
    seq, prev_hash = head.seq + 1, head.hash
    fields = {"stream": stream, "stream_seq": seq, "kind": kind, "actor": actor,
              "occurred_at": clock.to_utc(occurred_at) if occurred_at else recorded_at,
              "recorded_at": recorded_at, "data": data, "corrects": corrects, "prev_hash": prev_hash}
    fields["hash"] = event_hash(fields)
    if session.get_bind().dialect.name == "postgresql":
        event_id = session.execute(_INSERT_EVENT_MOVING_HEAD, {
            **{f"event_{name}": value for name, value in fields.items()}, "head_stream": stream, "head_seq": seq, "head_hash": fields["hash"],
            "head_at": recorded_at}).scalar_one()
    else:
        event_id = session.execute(_INSERT_EVENT, fields).scalar_one()
        session.execute(_MOVE_HEAD, {"head_stream": stream, "seq": seq, "hash": fields["hash"],
                                     "updated_at": recorded_at})
    return Event(id=event_id, **fields)


_LOCK_HEADS = (sa_select(_HEAD.c.stream, _HEAD.c.seq, _HEAD.c.hash)
               .where(_HEAD.c.stream.in_(bindparam("streams", expanding=True))).with_for_update())
# Rows are matched to ids by (stream, stream_seq): asking for them in parameter order makes SQLite
# insert one row per statement.
_INSERT_EVENTS = insert(_EVENT).returning(_EVENT.c.stream, _EVENT.c.stream_seq, _EVENT.c.id)


def append_many(session: Session, entries: list[dict[str, Any]]) -> list[int]:
    """Append several events, to one stream or many, with a number of statements that does not grow
    with them: the heads locked in one SELECT (new streams' heads created in one INSERT), the events
    inserted in one executemany, the heads moved in another. Each entry has `append`'s arguments
    (`stream`, `kind`, `actor`, optional `data`, `occurred_at`, `corrects`); events of one stream
    are chained in the order given, and hash exactly as one `append` after another would. Returns the
    events' ids in the order given. For set-based sweeps; a request appends one event with `append`."""
    if not entries:
        return []
    streams = sorted({entry["stream"] for entry in entries})
    heads = {row.stream: (row.seq, row.hash, None) for row in session.execute(_LOCK_HEADS, {"streams": streams})}
    new = [stream for stream in streams if stream not in heads]
    if new:
        insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        now = clock.now()
        session.execute(insert_(_HEAD).on_conflict_do_nothing(index_elements=["stream"]),
                        [{"stream": stream, "seq": 0, "hash": GENESIS_HASH, "updated_at": now} for stream in new])
        heads.update((row.stream, (row.seq, row.hash, None)) for row in session.execute(_LOCK_HEADS, {"streams": new}))
    rows = []
    for entry in entries:
        recorded_at = clock.now()
        data = dict(entry.get("data") or {})
        canonical_json(data)  # fail early on values JSON cannot carry exactly
        seq, prev_hash, _ = heads[entry["stream"]]
        occurred_at = entry.get("occurred_at")
        fields = {"stream": entry["stream"], "stream_seq": seq + 1, "kind": entry["kind"], "actor": entry["actor"],
                  "occurred_at": clock.to_utc(occurred_at) if occurred_at else recorded_at,
                  "recorded_at": recorded_at, "data": data, "corrects": entry.get("corrects"),
                  "prev_hash": prev_hash}
        fields["hash"] = event_hash(fields)
        heads[entry["stream"]] = (seq + 1, fields["hash"], recorded_at)
        rows.append(fields)
    ids = {(row.stream, row.stream_seq): row.id for row in session.execute(_INSERT_EVENTS, rows)}
    session.execute(_MOVE_HEAD, [{"head_stream": stream, "seq": seq, "hash": hash_, "updated_at": at}
                                 for stream, (seq, hash_, at) in heads.items()])
    return [ids[fields["stream"], fields["stream_seq"]] for fields in rows]


def events_for_stream(session: Session, stream: str) -> list[Event]:
    return list(session.exec(select(Event).where(Event.stream == stream).order_by(Event.stream_seq)))
