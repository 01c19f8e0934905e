"""Aware-UTC time for the whole app, replaceable in tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

_source: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # noqa: E731


def now() -> datetime:
    return _source()


def to_utc(value: datetime) -> datetime:
    """Aware UTC; a naive value is taken to be UTC already (as SQLite returns them)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """The exported form: ISO 8601, microseconds, `Z`."""
    if value is None:
        return None
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def frozen(at: datetime | Callable[[], datetime]) -> Iterator[None]:
    """Make `now()` return a fixed time (or call a function) inside the block."""
    global _source
    previous = _source
    _source = at if callable(at) else (lambda: at)
    try:
        yield
    finally:
        _source = previous
