"""Durations in playbook files (`15m`, `4h`, `1h30m`, `3d`) and adding them to a start time.

The grammar is deliberately tiny: groups of `<digits><unit>` with units d, h, m, largest first,
each unit at most once, no spaces, lower case, total > 0. Seconds are not offered: playbook clocks
are about minutes to days, and a smaller unit only invites false precision.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from vigil_ir import clock

EXAMPLES = "use e.g. 15m, 4h, 1h30m, 3d"
# Ten years: long enough for any real clock, short enough that adding it to a date cannot overflow.
MAX_DURATION = timedelta(days=3650)

_GRAMMAR = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_WHOLE_DAYS = re.compile(r"\d+d")


def parse_duration(text: str) -> timedelta:
    """`"1h30m"` → `timedelta(minutes=90)`; ValueError naming the problem otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        raise ValueError(f"invalid duration {text}: a number needs a unit (m, h or d), e.g. {text}m")
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: must be text ({EXAMPLES})")
    match = _GRAMMAR.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"invalid duration {text!r} ({EXAMPLES}){_hint(text)}")
    days, hours, minutes = (int(group or 0) for group in match.groups())
    try:
        value = timedelta(days=days, hours=hours, minutes=minutes)
    except OverflowError:
        value = MAX_DURATION * 2
    if value <= timedelta(0):
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    if value > MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}: at most {MAX_DURATION.days}d")
    return value


def _hint(text: str) -> str:
    if any(ch.isspace() for ch in text):
        return "; no spaces"
    if text != text.lower():
        return "; units are lower case"
    if re.search(r"\d\s*s(ec)?", text):
        return "; seconds are not supported"
    if re.fullmatch(r"\d+", text):
        return "; a number needs a unit (m, h or d)"
    if re.fullmatch(r"(\d+[dhm])+", text):
        return "; write each unit once, largest first (d, h, m)"
    return ""


def is_whole_days(text: str) -> bool:
    """True for a pure day count such as `4d` (what `business_days: true` requires; zero is
    refused by parse_duration)."""
    return isinstance(text, str) and _WHOLE_DAYS.fullmatch(text) is not None


def add_duration(start: datetime, duration: timedelta, business_days: bool) -> datetime:
    """The moment `duration` after `start`, as aware UTC.

    With `business_days`, `duration` must be whole days and only Monday–Friday count: the result
    is the same UTC time of day on the N-th weekday after `start` (Friday 15:00 + 1 → Monday
    15:00; Saturday 10:00 + 1 → Monday 10:00). Weekdays are judged in UTC, not in a local zone,
    and public holidays are not known: a filing calendar with holidays is stricter than this one,
    so treat the result as the latest possible time and act before it.
    """
    start = clock.to_utc(start)
    if not business_days:
        return start + duration
    if duration <= timedelta(0) or duration % timedelta(days=1):
        raise ValueError(f"business-day durations must be whole days, not {duration}")
    remaining, moment = duration.days, start
    while remaining:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            remaining -= 1
    return moment
