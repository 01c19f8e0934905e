"""Witnesses: the chain heads' digest, published to VIGIL_AUDIT_CHANNEL and checked by `vigil verify`.

A witness says "the events recorded up to CUTOFF have heads digest D" (with their stream and event
counts), in a line that anyone can read back from Slack. Once it is there, the database cannot be
rewritten silently: changing, adding or removing any event recorded before CUTOFF — and
recomputing every chain and head to hide it — changes the digest recomputed for CUTOFF, and
`vigil verify --witness` reports the witness it contradicts. The cutoff trails the publication by
COMMIT_MARGIN so that every event up to it is committed (a transaction still open cannot add one
later). Publication is periodic (VIGIL_WITNESS_INTERVAL) and on demand (`vigil witness publish`), and
never over an empty log: vigil_ir.reminders.witnesses queues it; this module only computes and
compares digests, so the event log stays below the outbox and the sweeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, func
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog.models import Event
from vigil_ir.eventlog.verify import heads_digest

COMMIT_MARGIN = timedelta(minutes=5)
LINE = re.compile(r"witness v1 cutoff=(\S+) streams=(\d+) events=(\d+) digest=(sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class Witness:
    cutoff: datetime
    streams: int
    events: int
    digest: str

    def line(self) -> str:
        """The machine-readable form, as posted and as `verify --witness` reads it back."""
        return (f"witness v1 cutoff={clock.iso(self.cutoff)} streams={self.streams} events={self.events} "
                f"digest={self.digest}")

    @classmethod
    def parse(cls, text: str) -> Witness | None:
        """The first witness line in `text` (a Slack message), or None."""
        match = LINE.search(text or "")
        if not match:
            return None
        try:
            return cls.from_payload({"cutoff": match.group(1), "streams": match.group(2),
                                     "events": match.group(3), "digest": match.group(4)})
        except ValueError:
            return None

    @classmethod
    def from_payload(cls, payload: dict) -> Witness:
        cutoff = datetime.fromisoformat(str(payload["cutoff"]).replace("Z", "+00:00")).astimezone(timezone.utc)
        return cls(cutoff, int(payload["streams"]), int(payload["events"]), str(payload["digest"]))

    def payload(self) -> dict:
        return {"cutoff": clock.iso(self.cutoff), "streams": self.streams, "events": self.events,
                "digest": self.digest}


def heads_as_at(session: Session, cutoff: datetime) -> Witness:
    """The heads of every stream counting only events recorded at or before `cutoff` (one query)."""
    last = (select(Event.stream, func.max(Event.stream_seq).label("seq"), func.count().label("n"))
            .where(Event.recorded_at <= cutoff).group_by(Event.stream).subquery())
    rows = session.exec(select(Event.stream, Event.hash, last.c.n)
                        .join(last, and_(Event.stream == last.c.stream, Event.stream_seq == last.c.seq)))
    heads, events = {}, 0
    for stream, hash_, count in rows:
        heads[stream], events = hash_, events + count
    return Witness(clock.to_utc(cutoff), len(heads), events, heads_digest(heads))


def contradiction(session: Session, witness: Witness) -> str | None:
    """Why the log disagrees with `witness`, or None when it still gives the same digest."""
    now = heads_as_at(session, witness.cutoff)
    if now.digest == witness.digest:
        return None
    return (f"the log now gives {now.digest} ({now.streams} streams, {now.events} events) for the events recorded "
            f"up to {clock.iso(witness.cutoff)}, where the witness says {witness.digest} ({witness.streams} streams, "
            f"{witness.events} events): events recorded before then were changed, added or removed")
