"""Append-only, hash-chained event log (DESIGN §4)."""

from vigil_ir.eventlog.models import Event, StreamHead
from vigil_ir.eventlog.service import append, events_for_stream

__all__ = ["Event", "StreamHead", "append", "events_for_stream"]
