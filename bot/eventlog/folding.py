"""Checking state rows against their event streams, in one pass over the log.

Each record type has a fold (vigil_ir.state_check lists them): it turns a stream's events into the
state its rows should have, and compares that with the rows. `StateCheck` feeds it events in
(stream, stream_seq) order, one at a time, and compares finished streams with their rows a batch at
a time, so memory holds a batch of folded states, never the log. `vigil verify` feeds it the same
events it hashes; the export reads only the events the folds apply, with `walk_read`.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from sqlalchemy import (JSON, DateTime, String, Text, and_, bindparam, cast, exists, func, literal, or_, select,
                        type_coerce, union)
from sqlalchemy.types import TypeDecorator, UserDefinedType
from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.eventlog.models import Event
from vigil_ir.eventlog.stored import FoldedEvent, StoredEvent, folded_columns, stored_columns, time_text
from vigil_ir.jsontext import parse_json

# Finished streams compared with their rows per round of queries. A risk's folded state carries its
# reviews' before/after snapshots, so 500 risks held ~33 MiB where 50 hold ~6.5 MiB, at the same speed.
BATCH = 50
ROWS_PER_FETCH = 1000
KEPT = 1000          # differences kept in full; the count covers them all
# A row's own timestamp (completed_at, approved_at…) is read from the clock in the same transaction
# as its event, a moment before the event's recorded_at; lock waits can stretch that moment.
CLOCK_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class Mismatch:
    record: str
    field: str
    expected: Any
    found: Any

    def describe(self) -> str:
        if self.field == "row":
            return f"{self.record}: its events have no state row (expected {self.expected}, found {self.found})"
        if self.field == "events":
            return f"{self.record}: the state row has no events (expected {self.expected}, found {self.found})"
        if self.field == "created":
            return f"{self.record}: its events never create it (expected {self.expected}, found {self.found})"
        return (f"{self.record}: the state row's {self.field} differs from its events "
                f"(events say {self.expected!r}, the row has {self.found!r})")


class Fold(Protocol):
    """One record type's fold. `new`/`apply` build a stream's expected state; `compare` checks a
    batch of finished streams against their rows; `rows_without_events` finds rows no stream has."""

    prefix: str
    kinds: frozenset[str] | None  # the event kinds `apply` reads (others are not passed); None or absent: every kind

    def new(self, stream: str) -> Any: ...

    def apply(self, state: Any, event: Any) -> None: ...

    def compare(self, session: Session, finished: dict[str, Any]) -> Iterable[Mismatch]: ...

    def rows_without_events(self, session: Session) -> Iterable[Mismatch]: ...


def iso(value: Any) -> Any:
    return clock.iso(value) if isinstance(value, datetime) else value


def as_time(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return clock.to_utc(value)


def near(expected: datetime | str | None, found: datetime | str | None) -> bool:
    """A row's clock reading agrees with its event's time (within CLOCK_SKEW); both None agrees."""
    if expected is None or found is None:
        return expected is None and found is None
    if type(expected) is type(found) is datetime and expected.tzinfo is not None:
        # Both as read (the event's time aware, the row's naive UTC on SQLite): aware times subtract
        # across zones, so only a naive one needs its zone (as_time costs three calls per time).
        found = found if found.tzinfo is not None else found.replace(tzinfo=timezone.utc)
        return abs(found - expected) <= CLOCK_SKEW
    return abs(as_time(found) - as_time(expected)) <= CLOCK_SKEW


def agrees(expected: dict[str, Any], found: dict[str, Any], fields: Iterable[str],
           times: dict[str, Any] | None = None) -> bool:
    """Whether `differences` finds nothing in `fields` (and `times`): the common answer, given at the
    cost of two C loops, so that a compare builds the field-by-field dicts only for a row that
    differs."""
    return list(map(expected.get, fields)) == list(map(found.get, fields)) and times_agree(times or {}, found)


def times_agree(times: dict[str, Any], found: dict[str, Any]) -> bool:
    """Every clock reading in `found` near its event's time in `times` (what `differences` checks of `times`)."""
    for name, value in times.items():
        if not near(value, found.get(name)):
            return False
    return True


def differences(record: str, expected: dict[str, Any], found: dict[str, Any],
                times: dict[str, Any] | None = None) -> list[Mismatch]:
    """Field by field: `expected` exactly, `times` (the event's time for a clock column) within CLOCK_SKEW."""
    out = [Mismatch(record, name, value, found.get(name)) for name, value in expected.items()
           if value != found.get(name)]
    for name, value in (times or {}).items():
        if not near(value, found.get(name)):
            out.append(Mismatch(record, name, f"{iso(value)} (±{CLOCK_SKEW.seconds} s)" if value else None,
                                iso(found.get(name))))
    return out


def streams_without(column, prefix: str):
    """`column` values (a record number) whose `<prefix><number>` stream has no first event."""
    stream = literal(prefix) + cast(column, String)
    return ~exists(select(Event.id).where(Event.stream == stream, Event.stream_seq == 1))


class ParsedJSON(UserDefinedType):
    """A JSON column read as its text (cast in the query) and parsed by `parse_json`: the same values
    as the column's own type gives, at a third of the cost of the json.loads behind it."""

    cache_ok = True

    def get_col_spec(self) -> str:
        return "TEXT"

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        return _parsed


def _parsed(value: str | None) -> Any:
    return None if value is None else parse_json(value)


def rows_where_in(session: Session, model: Any, column: str, values: Iterable[Any],
                  columns: tuple[str, ...] | None = None) -> list[Any]:
    """`model`'s rows whose `column` is in `values`, as plain rows (attributes by column name, the
    columns' own types): a batch compare reads thousands, and ORM objects cost ten times as much.
    `columns`: only those, in that order (a compare that takes a row as the tuple of its fields)."""
    return _where_in(session, model, column, values, columns).all()


def dicts_where_in(session: Session, model: Any, column: str, values: Iterable[Any]) -> list[dict[str, Any]]:
    """`rows_where_in`'s rows as dicts by column name, for a compare that reads most of the columns
    (a row's attributes are looked up by name one at a time)."""
    result = _where_in(session, model, column, values)
    keys = tuple(result.keys())
    return [dict(zip(keys, row)) for row in result.all()]


def _where_in(session: Session, model: Any, column: str, values: Iterable[Any],
              columns: tuple[str, ...] | None = None) -> Any:
    return session.execute(_select_where_in(model.__table__, column, columns), {"values": list(values)})


@functools.cache
def _select_where_in(table: Any, column: str, columns: tuple[str, ...] | None) -> Any:
    """The statement built once, its values bound when run: building it for each batch (an IN of 50
    values) cost twice what SQLite takes to run it."""
    read = read_columns(table) if columns is None else tuple(read_column(table.c[name]) for name in columns)
    return select(*read).where(table.c[column].in_(bindparam("values", expanding=True)))


@functools.cache
def read_columns(table: Any) -> tuple:
    """The columns of `table` as `rows_where_in` reads them (built once: a batch reads four tables)."""
    return tuple(read_column(column) for column in table.c)


def is_time(column: Any) -> bool:
    """A datetime column (SQLModel's aware-UTC decorator of one)."""
    return isinstance(column.type, DateTime) or (isinstance(column.type, TypeDecorator)
                                                 and isinstance(column.type.impl_instance, DateTime))


def json_text(column: Any, dialect: str) -> Any:
    """A date or time column as the text of its JSON form (`2025-04-01`, `2025-04-01T09:00:00.000000Z`),
    written out by the database."""
    if is_time(column):
        return time_text(column, dialect)
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM-DD", type_=String)
    return cast(column, String)  # SQLite keeps a date as that text


def read_column(column: Any) -> Any:
    """A column as `rows_where_in` reads it."""
    if isinstance(column.type, JSON):
        return type_coerce(cast(column, Text), ParsedJSON).label(column.name)
    if is_time(column):
        # The driver's datetime, naive UTC on SQLite, without the decorator's conversion to aware UTC
        # (a fifth of reading a risk review): the compares read times through clock.to_utc (`iso`,
        # `near`), which gives the same value.
        return type_coerce(column, DateTime(timezone=True)).label(column.name)
    return column


def walk(session: Session, prefixes: Iterable[str]) -> Iterator[StoredEvent]:
    """The events of the streams starting with `prefixes`, in stream order, fetched a page at a time.

    As stored text, the form `vigil verify` feeds the folds: no typed row is built, and an event's
    data is parsed only by a fold that reads its kind."""
    table = Event.__table__
    query = (select(*stored_columns(session.get_bind().dialect.name))
             .where(or_(*(table.c.stream.startswith(p) for p in prefixes)))
             .order_by(table.c.stream, table.c.stream_seq).execution_options(yield_per=ROWS_PER_FETCH))
    make = StoredEvent._make
    for page in session.execute(query).partitions():
        yield from map(make, page)


def begins_with(column: Any, prefix: str, dialect: str) -> Any:
    """`column` (a stream) begins with `prefix`: on SQLite, the range of texts from `prefix` to the
    next prefix, which the stream indexes serve; its LIKE (case-insensitive) is evaluated row by row,
    and a scan in stream order tested every event of the log with it (a fifth of walk_read)."""
    if dialect == "sqlite":  # texts compare byte by byte there, and UTF-8 keeps the order of characters
        return and_(column >= prefix, column < prefix[:-1] + chr(ord(prefix[-1]) + 1))
    return column.startswith(prefix)


def walk_read(session: Session, folds: list[Fold]) -> Iterator[FoldedEvent]:
    """What `walk` gives for the folds' prefixes, less the events no fold reads: of each stream, the
    events of the kinds a fold of its prefix reads (every event where one reads every kind), and its
    first event, whose time decides whether StateCheck checks the stream at all. The folds are fed
    exactly what they apply; most of an incident's events (its notes) are never fetched.

    One query per prefix, in the prefixes' order: as no prefix begins another, one after the other
    they give the log's (stream, stream_seq) order, and each reads one range of the stream index
    (a single query for all of them tested every event of the log in one scan)."""
    read: dict[str, set[str] | None] = {}
    for fold in folds:
        kinds = getattr(fold, "kinds", None)
        known = read.get(fold.prefix, set())
        read[fold.prefix] = None if kinds is None or known is None else known | kinds
    prefixes = sorted(read)
    if any(later.startswith(earlier) for earlier, later in zip(prefixes, prefixes[1:])):
        raise ValueError(f"stream prefixes must not begin one another: {prefixes}")
    table, dialect = Event.__table__, session.get_bind().dialect.name
    make = FoldedEvent._make
    for prefix in prefixes:
        if read[prefix] is None:
            which = begins_with(table.c.stream, prefix, dialect)
        else:
            which = table.c.id.in_(_picked(prefix, read[prefix], dialect))
        query = (select(*folded_columns(dialect)).where(which).order_by(table.c.stream, table.c.stream_seq)
                 .execution_options(yield_per=ROWS_PER_FETCH))
        for page in session.execute(query).partitions():
            yield from map(make, page)


def _picked(prefix: str, kinds: set[str], dialect: str) -> Any:
    """The ids of the events of `kinds` in the streams of `prefix`, and of each stream's first event,
    from the kind index and the stream index: a scan in stream order then reads the row of an event
    only to return it (a condition on its kind in that scan read all 400,000 rows of the year's
    incident streams)."""
    of_kind = Event.__table__.alias("of_kind")
    return union(select(of_kind.c.id).where(begins_with(of_kind.c.stream, prefix, dialect),
                                            of_kind.c.kind.in_(sorted(kinds))),
                 _first_events(prefix, dialect))


def _first_events(prefix: str, dialect: str) -> Any:
    """The id of the first event (the lowest stream_seq) of each stream of `prefix`. The streams are
    listed one seek of the stream index each, from one to the next (a recursive query), and each
    one's first event is one more: grouping the events by stream read all 400,000 index entries of
    the year's incident streams, five times as long."""
    table = Event.__table__
    current, following, first = table.alias("current_stream"), table.alias("following"), table.alias("first_event")
    streams = (select(func.min(current.c.stream).label("stream"))
               .where(begins_with(current.c.stream, prefix, dialect)).cte("streams", recursive=True))
    after = (select(func.min(following.c.stream)).where(following.c.stream > streams.c.stream,
                                                        begins_with(following.c.stream, prefix, dialect))
             .scalar_subquery())
    streams = streams.union_all(select(after).where(streams.c.stream.is_not(None)))
    first_id = (select(first.c.id).where(first.c.stream == streams.c.stream).order_by(first.c.stream_seq).limit(1)
                .scalar_subquery())
    return select(first_id).where(streams.c.stream.is_not(None))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a check runs: the folds make and drop a few
    million small objects (rows, parsed data, folded states), all freed by reference counting, and
    the collector's passes over them cost about an eighth of the check's CPU. Restored as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class StateCheck:
    """Feed events in stream order, then `finish()`: every difference between rows and events.

    `before`: only streams begun before this time (the records an export of a period can hold)."""

    def __init__(self, session: Session, folds: list[Fold], *, before: datetime | None = None, batch: int = BATCH):
        self.session, self.folds, self.before, self.batch = session, folds, before, batch
        self.prefixes = tuple(fold.prefix for fold in folds)
        self.current: str | None = None
        self.states: list[tuple[int, Fold, Any]] = []
        self.reads: frozenset[str] | None = frozenset()  # the kinds the current stream's folds read (None: all)
        # The kinds each fold reads (None: every kind; a fold that does not say sees every event).
        self.kinds = [getattr(fold, "kinds", None) for fold in folds]
        self.pending: dict[int, dict[str, Any]] = {index: {} for index in range(len(folds))}
        self.found: list[Mismatch] = []
        self.count = 0

    def feed(self, event: Any) -> None:
        if event.stream != self.current:
            self._close()
            self.current = event.stream
            wanted = event.stream.startswith(self.prefixes) and (
                self.before is None or clock.to_utc(event.recorded_at) < self.before)
            self.states = [(index, fold, fold.new(event.stream)) for index, fold in enumerate(self.folds)
                           if wanted and event.stream.startswith(fold.prefix)]
            # `vigil verify` feeds every event: most of an incident's (its notes) pass at one look-up.
            kinds = [self.kinds[index] for index, _, _ in self.states]
            self.reads = None if None in kinds else frozenset().union(*kinds)
        kind = event.kind
        if self.reads is not None and kind not in self.reads:
            return
        for index, fold, state in self.states:
            kinds = self.kinds[index]
            if kinds is None or kind in kinds:
                fold.apply(state, event)

    def _close(self) -> None:
        for index, fold, state in self.states:
            batch = self.pending[index]
            batch[self.current] = state
            if len(batch) >= self.batch:
                self._report(fold.compare(self.session, batch))
                batch.clear()
        self.states = []

    def add(self, mismatches: Iterable[Mismatch]) -> None:
        """Differences found by a check outside the folds, counted and kept the same way."""
        self._report(mismatches)

    def _report(self, mismatches: Iterable[Mismatch]) -> None:
        for mismatch in mismatches:
            self.count += 1
            if len(self.found) < KEPT:
                self.found.append(mismatch)

    def finish(self) -> list[Mismatch]:
        self._close()
        for index, fold in enumerate(self.folds):
            if self.pending[index]:
                self._report(fold.compare(self.session, self.pending[index]))
                self.pending[index] = {}
            self._report(fold.rows_without_events(self.session))
        return self.found
