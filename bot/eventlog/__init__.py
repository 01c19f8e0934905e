"""Append-only, hash-chained event log (DESIGN §4)."""

from bot.eventlog.models import Event, StreamHead
from bot.eventlog.service import append, events_for_stream

__all__ = ["Event", "StreamHead", "append", "events_for_stream"]
