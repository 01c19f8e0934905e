"""Each event of a bundle read once, as stored, and serialised once for every file that shows it.

The rows come as their stored text (vigil_ir.eventlog.stored: times already in the exported ISO
form, `data` as its canonical JSON), so no ORM object is built and no time is formatted in Python.
For each event the values every representation needs are computed once: the actor's name and the
summary sentence (with people named as they were then), the event-log JSON line (the stored data
text spliced in, other strings escaped by the C encoder), the CSV cells, and the packet's timeline
row. The chain is re-checked on the way (each row re-hashed from the same bytes `vigil verify`
hashes, and linked to the one before), which is what a packet's integrity block reports.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, select, text as sql_text
from sqlmodel import Session

from vigil_ir.bidi import neutralise as shown
from vigil_ir.eventlog.canonical import GENESIS_HASH, canonical_json
from vigil_ir.eventlog.models import Event
from vigil_ir.eventlog.stored import StoredEvent, pages_of, stored_columns, stored_streams
from vigil_ir.exports.csvsafe import FORMULA_PREFIXES, neutralise as formula_safe
from vigil_ir.exports.describe import describe, one_line
from vigil_ir.exports.eventlog_export import ROWS_PER_FETCH, STREAMS_PER_QUERY, actor_type, object_of
from vigil_ir.jsontext import parse_json
from vigil_ir.people import Directory
from vigil_ir.people.ids import replace_ids_in_text

_quoted = json.encoder.encode_basestring  # the C escaper json.dumps(ensure_ascii=False) uses
# A bidi control anywhere, or a formula start at the start of a cell (cells joined by and led by NUL):
# the CSV cell then differs from the text (vigil_ir.exports.csvsafe). Two scans, because one pattern
# with an alternation tries both branches at every character (5x slower on these rows).
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = re.compile("\x00[" + re.escape("".join(FORMULA_PREFIXES)) + "]")


def _text_cell(value: str | None) -> str:
    """A text cell as vigil_ir.exports.csvsafe.cell writes it (bidi controls shown, formulas defused)."""
    return "" if value is None else formula_safe(shown(value))


def _needs_quotes(text: str) -> bool:
    """Whether csv.writer (QUOTE_MINIMAL, "\r\n" line ends) quotes the cell: it holds the delimiter,
    the quote character or a line-end character. Four C scans: a regex character class is several
    times slower on these cells."""
    return '"' in text or "," in text or "\n" in text or "\r" in text


def csv_field(text: str) -> str:
    """One cell as csv.writer writes it (RFC 4180: quoted, quotes doubled, when it must be)."""
    return '"' + text.replace('"', '""') + '"' if _needs_quotes(text) else text


def csv_line(cells: Iterable[str]) -> str:
    """A row as csv.writer(lineterminator="\r\n") writes it."""
    return ",".join(map(csv_field, cells)) + "\r\n"


def _json_text(value: str | None) -> str:
    return "null" if value is None else _quoted(value)


def shown_time(iso_text: str) -> str:
    """`2025-03-10T09:00:00.000000Z` as packets show it: `2025-03-10 09:00:00 UTC` (describe.when)."""
    return f"{iso_text[:10]} {iso_text[11:19]} UTC"


# The JSON of the columns every event of a stream (or by an actor) shares, made once per stream/actor.
@functools.lru_cache(maxsize=4096)
def _stream_json(stream: str) -> tuple[str, str, str]:
    """The stream, object_type and object_ref of an event-log row, as JSON strings."""
    object_type, object_ref = object_of(stream)
    return _quoted(stream), _quoted(object_type), _quoted(object_ref)


def _named_cells(stream: str, actor: str, kind: str) -> tuple[str, str, str, str] | None:
    """The CSV cells of an event-log row that its stream, actor and kind give: stream, object_type +
    object_ref, actor, actor_type + kind, as written; None when one is not its text (csv_cells words it).
    Worked out once per stream and once per actor and kind: a year's log has thousands of streams,
    each with a few actors and kinds (one cache for all three missed a third of the audit log's rows)."""
    streamed, acted = _stream_cells(stream), _actor_cells(actor, kind)
    return None if streamed is None or acted is None else (*streamed, *acted)


@functools.lru_cache(maxsize=8192)
def _stream_cells(stream: str) -> tuple[str, str] | None:
    object_type, object_ref = object_of(stream)
    texts = (stream, object_type, object_ref)
    if any(_text_cell(text) != text for text in texts):
        return None
    stream_cell, type_cell, ref_cell = map(csv_field, texts)
    return stream_cell, f"{type_cell},{ref_cell}"


@functools.lru_cache(maxsize=4096)
def _actor_cells(actor: str, kind: str) -> tuple[str, str] | None:
    if _text_cell(actor) != actor or _text_cell(kind) != kind:
        return None
    return csv_field(actor), f"{actor_type(actor)},{csv_field(kind)}"


@functools.lru_cache(maxsize=4096)
def _actor_json(actor: str) -> tuple[str, str]:
    """The actor and actor_type of an event-log row, as JSON strings."""
    return _quoted(actor), _quoted(actor_type(actor))


class Names:
    """The people directory's answers for a bundle's many events (vigil_ir.people.Directory, same
    results): a person whose name cannot differ by time (one recorded state, or none) is looked up once."""

    def __init__(self, people: Directory):
        self.people = people
        self._timeless: dict[str | None, tuple[str | None, str | None] | None] = {}

    def _fixed(self, user_id: str | None) -> tuple[str | None, str | None] | None:
        try:
            return self._timeless[user_id]
        except KeyError:
            history = self.people.histories.get(user_id) if user_id else None
            found = None if history is not None and len(history.states) > 1 else (
                self.people.name_column(user_id), self.people.label(user_id))
            self._timeless[user_id] = found
            return found

    def name_column(self, user_id: str | None, when: datetime | None = None) -> str | None:
        fixed = self._fixed(user_id)
        return fixed[0] if fixed is not None else self.people.name_column(user_id, when)

    def label(self, user_id: str | None, when: datetime | None = None) -> str | None:
        fixed = self._fixed(user_id)
        return fixed[1] if fixed is not None else self.people.label(user_id, when)

    def name_ids(self, text: str | None, when: datetime | None = None) -> str | None:
        if not text:
            return text
        return replace_ids_in_text(text, lambda user_id: self.label(user_id, when))


class BundleEvent:
    """One event with everything the bundle writes about it; attribute names as on `Event`, so the
    milestone and close-override folds read it as they read an ORM event."""

    __slots__ = ("id", "stream", "stream_seq", "kind", "actor", "occurred_text", "recorded_text", "data",
                 "data_text", "corrects", "prev_hash", "hash", "occurred_at", "recorded_at", "actor_name",
                 "described", "summary", "hash_ok")

    def __init__(self, stored: StoredEvent, people: Names):
        (self.id, self.stream, self.stream_seq, self.kind, self.actor, self.occurred_text, self.recorded_text,
         data_text, self.corrects, self.prev_hash, self.hash) = stored
        # Aware UTC, as the ORM returns stored times (so folds may mix them with incident rows).
        self.occurred_at = datetime.fromisoformat(self.occurred_text)
        self.recorded_at = datetime.fromisoformat(self.recorded_text)
        self.data = parse_json(data_text)  # msgspec where it can (vigil_ir.jsontext): same values
        self.hash_ok = hashlib.sha256(stored.payload(data_text)).hexdigest() == self.hash
        if not self.hash_ok:  # stored in another JSON form (an older row), or tampered: show the canonical form
            data_text = canonical_json(self.data)
            self.hash_ok = hashlib.sha256(stored.payload(data_text)).hexdigest() == self.hash
        self.data_text = data_text
        self.actor_name = people.name_column(self.actor, self.occurred_at)
        self.described = people.name_ids(describe(self), self.occurred_at)
        self.summary = one_line(self.described)

    def __getitem__(self, column: str) -> Any:
        """The event-log column (`seq` is the stream_seq), so chain segments read it like a row."""
        return getattr(self, "stream_seq" if column == "seq" else column)

    def json_line(self) -> str:
        """The event-log row (eventlog_export.COLUMNS, in order) as one JSON object."""
        stream, object_type, object_ref = _stream_json(self.stream)
        actor, kind_of_actor = _actor_json(self.actor)
        corrects = "null" if self.corrects is None else str(self.corrects)
        return (f'{{"stream": {stream}, "seq": {self.stream_seq}, "id": {self.id}, '
                f'"object_type": {object_type}, "object_ref": {object_ref}, '
                f'"occurred_at": {_quoted(self.occurred_text)}, "recorded_at": {_quoted(self.recorded_text)}, '
                f'"actor": {actor}, "actor_name": {_json_text(self.actor_name)}, '
                f'"actor_type": {kind_of_actor}, "kind": {_quoted(self.kind)}, '
                f'"summary": {_json_text(self.summary)}, "data": {self.data_text}, "corrects": {corrects}, '
                f'"prev_hash": {_quoted(self.prev_hash)}, "hash": {_quoted(self.hash)}}}')

    def csv_cells(self) -> list[str]:
        """The same row's CSV cells (as vigil_ir.exports.csvsafe.cell writes each value). Almost no row
        has a bidi control or a formula start in any cell: one scan of the row decides, and only a row
        that has one is written cell by cell."""
        object_type, object_ref = object_of(self.stream)
        texts = (self.stream, object_type, object_ref, self.actor, self.actor_name or "", self.kind,
                 self.summary or "", self.data_text, self.prev_hash, self.hash)
        joined = "\x00" + "\x00".join(texts)
        # ASCII text holds no bidi control: one C check spares the scan for almost every row.
        if (not joined.isascii() and _BIDI.search(joined)) or _FORMULA_START.search(joined):
            return self._careful_cells(object_type, object_ref)
        return [self.stream, str(self.stream_seq), str(self.id), object_type, object_ref, self.occurred_text,
                self.recorded_text, self.actor, self.actor_name or "", actor_type(self.actor), self.kind,
                self.summary or "", "" if self.data is None else self.data_text,
                "" if self.corrects is None else str(self.corrects), self.prev_hash, self.hash]

    def csv_line(self) -> str:
        """The same row as one CSV line, as csv.writer writes csv_cells(). Built here rather than by the
        C writer, which scans every character of every cell (2.6 s for a year's 400,000 rows): the
        cells a stream, an actor or a kind give are worked out once for each (`_named_cells`), and the
        rest checked with string methods. A row this does not fit (a bidi control, a formula start, a
        hash or time that needs quoting) takes the general path."""
        summary, name, data = self.summary or "", self.actor_name or "", self.data_text
        named = _named_cells(self.stream, self.actor, self.kind)
        hashes, times = self.prev_hash + self.hash, self.occurred_text + self.recorded_text
        if (named is None or self.data is None or _needs_quotes(hashes) or _needs_quotes(times)
                or not (summary.isascii() and name.isascii() and data.isascii() and hashes.isascii())
                or summary[:1] in FORMULA_PREFIXES or name[:1] in FORMULA_PREFIXES or data[:1] in FORMULA_PREFIXES
                or self.prev_hash[:1] in FORMULA_PREFIXES or self.hash[:1] in FORMULA_PREFIXES):
            return csv_line(self.csv_cells())
        stream, object_cells, actor, kind = named
        corrects = "" if self.corrects is None else self.corrects
        return (f"{stream},{self.stream_seq},{self.id},{object_cells},{self.occurred_text},{self.recorded_text},"
                f"{actor},{csv_field(name)},{kind},{csv_field(summary)},{csv_field(data)},{corrects},"
                f"{self.prev_hash},{self.hash}\r\n")

    def _careful_cells(self, object_type: str, object_ref: str) -> list[str]:
        data = "" if self.data is None else formula_safe(shown(self.data_text))
        return [_text_cell(self.stream), str(self.stream_seq), str(self.id), _text_cell(object_type),
                _text_cell(object_ref), self.occurred_text, self.recorded_text, _text_cell(self.actor),
                _text_cell(self.actor_name), actor_type(self.actor), _text_cell(self.kind), _text_cell(self.summary),
                data, "" if self.corrects is None else str(self.corrects), _text_cell(self.prev_hash),
                _text_cell(self.hash)]


def stored_ranges(session: Session, ranges: list[tuple[str, int, int]]) -> Iterator[StoredEvent]:
    """The events of each (stream, first seq, last seq) range as stored, in (stream, seq) order
    (ranges sorted by stream name, byte order), a page of rows at a time."""
    table = Event.__table__
    dialect = session.get_bind().dialect.name
    columns = stored_columns(dialect)
    stream_order = table.c.stream.collate("C") if dialect == "postgresql" else table.c.stream
    make = StoredEvent._make
    for offset in range(0, len(ranges), STREAMS_PER_QUERY):
        chunk = ranges[offset:offset + STREAMS_PER_QUERY]
        params: dict[str, Any] = {}
        for index, (stream, lo, hi) in enumerate(chunk):
            params.update({f"s{index}": stream, f"lo{index}": lo, f"hi{index}": hi})
        query = select(*columns).where(_in_ranges(len(chunk))).order_by(stream_order, table.c.stream_seq)
        for page in pages_of(session, query, ROWS_PER_FETCH, params):
            yield from map(make, page)


@functools.lru_cache(maxsize=8)
def _in_ranges(count: int) -> TextClause:
    """`(stream = :s0 AND stream_seq BETWEEN :lo0 AND :hi0) OR …` for `count` ranges, the values bound
    when executed. One SQL text: an and_/between expression per range cost more than the query, and
    the same text for every full chunk is compiled once."""
    ranges = (f"(stream = :s{index} AND stream_seq BETWEEN :lo{index} AND :hi{index})" for index in range(count))
    return sql_text("(" + " OR ".join(ranges) + ")")


def whole_streams(session: Session, streams: Iterable[str]) -> Iterator[StoredEvent]:
    """Every event of each stream (from seq 1), in the order the streams are given, then by seq."""
    streams = list(streams)
    for offset in range(0, len(streams), STREAMS_PER_QUERY):
        chunk = streams[offset:offset + STREAMS_PER_QUERY]
        grouped = stored_streams(session, chunk, per_query=STREAMS_PER_QUERY)
        for stream in chunk:
            yield from grouped.pop(stream, [])


def chain_problem(events: list[BundleEvent]) -> str | None:
    """The first break in one stream's events read from seq 1 (as vigil_ir.eventlog.verify words it)."""
    expected_seq, prev_hash = 1, GENESIS_HASH
    for event in events:
        where = f"stream {event.stream} seq {event.stream_seq}"
        if event.stream_seq != expected_seq:
            return f"{where}: sequence gap (expected {expected_seq}, found {event.stream_seq})"
        if event.prev_hash != prev_hash:
            return f"{where}: prev_hash does not link (expected {prev_hash}, found {event.prev_hash})"
        if not event.hash_ok:
            return f"{where}: hash mismatch (the stored hash {event.hash} is not the hash of its fields)"
        expected_seq, prev_hash = expected_seq + 1, event.hash
    return None


def prepared(rows: Iterable[StoredEvent], people: Names) -> Iterator[BundleEvent]:
    for row in rows:
        yield BundleEvent(row, people)

