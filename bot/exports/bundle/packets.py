"""An incident's evidence packet in a bundle: `INC-<n>.html` to read and `INC-<n>.json` to process.

Both are rendered from the incident's events as read once for the bundle (vigil_ir.exports.bundle.events):
the HTML timeline shows each event's summary and the actor's name as computed for the event log, and
the JSON names the event-log rows that hold the events (file, stream, seqs, head) rather than
repeating them. The integrity block reports the chain check made while the events were read.
(`vigil export timeline INC-<n> --format md|json` still writes a single packet with every event.)
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from vigil_ir import clock
from vigil_ir.eventlog import StreamHead
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.events import BundleEvent, Names, chain_problem, shown_time
from vigil_ir.exports.timeline import HASH_METHOD, Timeline, html_timeline_rows
from vigil_ir.incidents.models import Incident

FORMATS = ("html", "json")


class Packet(Timeline):
    """A timeline over events already read and described; `event_log` is the file holding them."""

    def __init__(self, *, event_log: str, names: Names, **fields: Any):
        super().__init__(**fields)
        self.event_log, self.names = event_log, names
        self._integrity: dict[str, Any] | None = None

    def integrity(self) -> dict[str, Any]:
        if self._integrity is None:
            events: list[BundleEvent] = self.events
            problem = chain_problem(events)
            last = events[-1] if events else None
            # The stream head row catches a deleted tail, which the chain alone cannot show.
            if problem is None and self.head is not None and (
                    last is None or (self.head.seq, self.head.hash) != (last.stream_seq, last.hash)):
                problem = (f"stream {self.incident.stream}: stream head (seq {self.head.seq}, {self.head.hash}) "
                           f"does not match the last event")
            self._integrity = {"stream": self.incident.stream, "events": len(events),
                               "head_seq": last.stream_seq if last else None, "head_hash": last.hash if last else None,
                               "verified": problem is None, "problem": problem, "hash_method": HASH_METHOD,
                               "generated_at": clock.iso(self.generated_at)}
        return self._integrity

    def shown_events(self) -> list[tuple]:
        label = self.names.label
        return [(e.stream_seq, shown_time(e.occurred_text), shown_time(e.recorded_text), label(e.actor, e.occurred_at),
                 e.described) for e in self.events]

    def html_rows(self, shown: list[tuple]) -> Markup:
        return html_timeline_rows(shown, plain_times=True)  # shown_time of the stored ISO text: digits only

    def events_section(self) -> dict[str, Any]:
        events: list[BundleEvent] = self.events
        return {"event_log": {"file": self.event_log, "stream": self.incident.stream, "events": len(events),
                              "first_seq": events[0].stream_seq if events else None,
                              "last_seq": events[-1].stream_seq if events else None,
                              "head_hash": events[-1].hash if events else None}}


def write(ctx: Context, folder: str, incident: Incident, events: list[BundleEvent], head: StreamHead | None, *,
          event_log: str, description: str, checklists: list, review: dict | None, actions: list,
          risks: list) -> None:
    """`<folder>/INC-<n>/INC-<n>.html` and `.json`; `event_log` is the JSON event-log file with the events."""
    packet = Packet(incident=incident, events=events, head=head, generated_at=ctx.generated_at,
                    checklists=checklists, review=review, actions=actions, people=ctx.people, risks=risks,
                    event_log=event_log, names=ctx.names)
    key = incident.key
    for fmt in FORMATS:
        ctx.sink.add(f"{folder}/{key}/{key}.{fmt}", packet.render(fmt), section="E3", description=description,
                     query=f"incident {key} and every event of stream {incident.stream}"
                           + (f" (the events themselves: rows of {event_log})" if fmt == "json" else ""))
