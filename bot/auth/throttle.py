"""Failed dashboard sign-ins, counted per client address and per token prefix, in fixed windows.

After `limit` failures in a window for an address or a prefix, every sign-in attempt from that
address or with that prefix is refused (429, Retry-After: the end of the window) without looking
at the token, so guessing is slow whoever spreads it across tokens or addresses.

Recorded, but bounded: the first failure of a window for a key writes one
`audit.dashboard_sign_in_failed` event (which also carries the previous window's total for that
key); later failures only count in the `sign_in_throttle` row. Across all keys at most
`MAX_EVENTS_PER_WINDOW` such events are written per window, so an attacker rotating addresses and
prefixes cannot flood the log either; each event carries the count of failures everywhere so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete
from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.auth.models import SignInThrottle
from vigil_ir.auth.tokens import PREFIX
from vigil_ir.db import insert_if_absent
from vigil_ir.eventlog import append

STREAM = "audit"
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)  # windows are aligned to it
PREFIX_CHARS = 8  # of the token after `vigil_at_`: names the token tried, reveals too little to help
MAX_EVENTS_PER_WINDOW = 100
ALL = "all"


def window_start(now: datetime, window: timedelta) -> datetime:
    return EPOCH + ((clock.to_utc(now) - EPOCH) // window) * window


def token_prefix(secret: str) -> str:
    secret = secret.strip()
    head = PREFIX if secret.startswith(PREFIX) else ""
    return (head + secret[len(head):len(head) + PREFIX_CHARS])[:40]


@dataclass(frozen=True)
class Throttle:
    limit: int
    window: timedelta

    def keys(self, *, address: str | None, secret: str) -> list[str]:
        keys = [f"address:{(address or 'unknown')[:64]}"]
        prefix = token_prefix(secret)
        if prefix:
            keys.append(f"prefix:{prefix}")
        return keys

    def retry_after(self, session: Session, keys: list[str], now: datetime | None = None) -> int | None:
        """Seconds until a sign-in may be tried again when any key is at the limit; else None. Reads only."""
        now = clock.to_utc(now or clock.now())
        start = window_start(now, self.window)
        rows = session.exec(select(SignInThrottle).where(SignInThrottle.key.in_(keys))).all()
        if any(clock.to_utc(row.window_start) == start and row.failures >= self.limit for row in rows):
            return max(1, math.ceil((start + self.window - now).total_seconds()))
        return None

    def failed(self, session: Session, keys: list[str], *, reason: str, address: str | None,
               secret: str) -> None:
        """Count one failed (or refused) attempt against each key; the first of a window is an event."""
        now = clock.now()
        start = window_start(now, self.window)
        # Rows older than the previous window are no longer needed for any event: keep the table small.
        session.execute(delete(SignInThrottle).where(SignInThrottle.window_start < start - self.window))
        overall = self._count(session, ALL, start)
        for key in keys:
            row = self._count(session, key, start)
            previous = row.previous
            if row.failures == 1 and overall.failures <= MAX_EVENTS_PER_WINDOW:
                kind, _, value = key.partition(":")
                append(session, stream=STREAM, kind="audit.dashboard_sign_in_failed", actor="system:vigil",
                       data={kind: value, "reason": reason, "address": (address or "unknown")[:64],
                             "token_prefix": token_prefix(secret), "limit": self.limit,
                             "window_start": clock.iso(start), "window_end": clock.iso(start + self.window),
                             "previous_window_failures": previous,
                             "failures_everywhere_this_window": overall.failures})

    def _count(self, session: Session, key: str, start: datetime) -> _Row:
        insert_if_absent(session, SignInThrottle, {"key": key, "window_start": start, "failures": 0}, ["key"])
        row = session.exec(select(SignInThrottle).where(SignInThrottle.key == key).with_for_update()).one()
        previous = None
        if clock.to_utc(row.window_start) != start:
            previous = row.failures if clock.to_utc(row.window_start) == start - self.window else 0
            row.window_start, row.failures = start, 0
        row.failures += 1
        session.add(row)
        session.flush()
        return _Row(failures=row.failures, previous=previous)


@dataclass(frozen=True)
class _Row:
    failures: int
    previous: int | None  # the previous window's failures, when this is the first of a new window
