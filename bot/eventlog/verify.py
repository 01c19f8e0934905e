"""Offline verification of every chain: recompute hashes and check sequences."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from vigil_ir.eventlog.canonical import GENESIS_HASH, event_hash
from vigil_ir.eventlog.models import Event, StreamHead
from vigil_ir.eventlog.stored import stored_events


@dataclass
class Break:
    stream: str
    seq: int
    problem: str
    expected: str
    found: str

    def describe(self) -> str:
        return (f"stream {self.stream} seq {self.seq}: {self.problem} "
                f"(expected {self.expected}, found {self.found})")


@dataclass
class VerifyResult:
    streams: int = 0
    events: int = 0
    heads: dict[str, str] = field(default_factory=dict)
    broken: Break | None = None

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def heads_digest(self) -> str:
        return heads_digest(self.heads)


def heads_digest(heads: dict[str, str]) -> str:
    """One hash over every stream head: a short value to publish or compare later."""
    lines = "".join(f"{stream} {head}\n" for stream, head in sorted(heads.items()))
    return "sha256:" + hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _event_fields(event: Event | Mapping) -> Mapping:
    return event if isinstance(event, Mapping) else event.model_dump()


def verify_events(events: Iterable[Event | dict]) -> VerifyResult:
    """Check events given in (stream, stream_seq) order; stops at the first break."""
    links = ((fields["stream"], fields["stream_seq"], fields["prev_hash"], fields["hash"], fields)
             for fields in map(_event_fields, events))
    return _verify_links(links, event_hash)


def _verify_links(links: Iterable[tuple], recompute: Callable[[Any], str]) -> VerifyResult:
    """The chain walk over (stream, seq, prev_hash, hash, event) in (stream, seq) order."""
    result = VerifyResult()
    current, expected_seq, prev_hash = None, 1, GENESIS_HASH
    heads = result.heads
    for stream, seq, linked_to, stored, event in links:
        if stream != current:
            current, expected_seq, prev_hash = stream, 1, GENESIS_HASH
            result.streams += 1
        if seq != expected_seq:
            result.broken = Break(stream, seq, "sequence gap", str(expected_seq), str(seq))
            return result
        if linked_to != prev_hash:
            result.broken = Break(stream, seq, "prev_hash does not link", prev_hash, linked_to)
            return result
        recomputed = recompute(event)
        if recomputed != stored:
            result.broken = Break(stream, seq, "hash mismatch", recomputed, stored)
            return result
        result.events += 1
        heads[stream] = stored
        prev_hash, expected_seq = stored, seq + 1
    return result


def verify_database(session: Session, batch: int = 1000,
                    observe: Callable[[Any], None] | None = None) -> VerifyResult:
    """Walk every stream in the database; also checks each stream head matches its last event.

    The log is read through one cursor a page at a time (a server-side cursor on PostgreSQL), each
    row as its stored text (vigil_ir.eventlog.stored), so memory stays flat however long the log and
    no row goes through a JSON round trip unless its stored text is not canonical. `observe`, if
    given, sees every event in the same order before it is checked (the state fold rides on this pass)."""

    def links():
        for event in stored_events(session, batch=batch):
            if observe is not None:
                observe(event)
            yield event.stream, event.stream_seq, event.prev_hash, event.hash, event

    result = _verify_links(links(), lambda event: event.recomputed_hash(session))
    if not result.ok:
        return result
    for head in session.exec(select(StreamHead).order_by(StreamHead.stream)):
        found = result.heads.get(head.stream)
        if found != head.hash:
            result.broken = Break(head.stream, head.seq, "stream head does not match the last event",
                                  head.hash, found or "no events")
            return result
    return result
