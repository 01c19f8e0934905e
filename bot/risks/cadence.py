"""Review cadences: RFC 5545 recurrence rules (python-dateutil `rrule`), with names for the usual ones.

Dates are calendar dates in UTC. Named cadences are pinned to the calendar (`quarterly` = the first
day of each quarter), so a late review does not drift the schedule; a custom rule such as
`FREQ=MONTHLY;INTERVAL=2` without BYMONTHDAY counts from the risk's creation date (its anchor).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import sys
from datetime import date, datetime, time, timedelta

from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, rrulestr

NAMED = {
    "monthly": "FREQ=MONTHLY;BYMONTHDAY=1",
    "quarterly": "FREQ=YEARLY;BYMONTH=1,4,7,10;BYMONTHDAY=1",
    "semiannual": "FREQ=YEARLY;BYMONTH=1,7;BYMONTHDAY=1",
    "annual": "FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1",
}
ALIASES = {"yearly": "annual", "semi-annual": "semiannual", "biannual": "semiannual", "half-yearly": "semiannual"}
# A review that never comes round again is not a cadence; nor is one more often than weekly.
HORIZON_DAYS = 5 * 366
TOO_FREQUENT = (SECONDLY, MINUTELY, HOURLY, DAILY)


class CadenceError(ValueError):
    pass


def normalise(text: str | None) -> str | None:
    """A name (`quarterly`) or an RRULE (`FREQ=…`, optionally prefixed `RRULE:`); None when blank."""
    text = (text or "").strip()
    if not text:
        return None
    lowered = ALIASES.get(text.lower(), text.lower())
    if lowered in NAMED:
        return lowered
    rule = re.sub(r"^RRULE:", "", text.strip(), flags=re.IGNORECASE).upper().replace(" ", "")
    return rule


def rule_text(cadence: str) -> str:
    return NAMED.get(cadence, cadence)


def _rule(cadence: str, anchor: date):
    try:
        rule = rrulestr(rule_text(cadence), dtstart=datetime.combine(anchor, time.min))
    except (ValueError, TypeError):
        raise CadenceError(f"Not a cadence name ({', '.join(NAMED)}) or an RFC 5545 RRULE such as "
                           "FREQ=MONTHLY;BYMONTHDAY=1.") from None
    if getattr(rule, "_freq", None) in TOO_FREQUENT:
        raise CadenceError("Reviews more often than weekly are not a cadence; use FREQ=WEEKLY or longer.")
    return rule


def validate(cadence: str | None, anchor: date) -> str | None:
    """The normalised cadence, or CadenceError naming what is wrong."""
    cadence = normalise(cadence)
    if cadence is None:
        return None
    if next_after(cadence, anchor, anchor) is None:
        raise CadenceError("That rule gives no review date in the next five years.")
    return cadence


def next_after(cadence: str, anchor: date, after: date) -> date | None:
    """The first review date strictly after `after` (None if there is none within the horizon)."""
    rule = _rule(cadence, anchor)
    start, limit = datetime.combine(after, time.min), after + timedelta(days=HORIZON_DAYS)
    with _step_budget():
        found = rule.after(start, inc=False)
    if found is None or found.date() > limit:
        return None
    return found.date()


# dateutil stops looking for the next occurrence only at the year 9999, and only checks UNTIL when it
# finds one: a rule that never occurs (`FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30`) costs seconds of CPU,
# inside a Slack request. Evaluation is bounded by a count of steps (calls, and lines of rrule's
# generator), not by time, so the answer is the same on a busy machine: a year scanned costs about
# 2,000 steps whatever the frequency, so the budget covers some 500 years from the anchor (the
# risk's creation), and a rule that never occurs is refused in a fraction of a second.
STEP_BUDGET = 1_000_000


@contextlib.contextmanager
def _step_budget(budget: int = STEP_BUDGET):
    previous, steps = sys.gettrace(), itertools.count()

    def count(frame, event, arg):
        if next(steps) > budget:
            raise CadenceError("That rule gives no review date in the next five years.")
        return count if frame.f_code.co_name == "_iter" else None  # lines only in rrule's own loop

    sys.settrace(count)
    try:
        yield
    finally:
        sys.settrace(previous)


def effective(cadence: str | None, inherent_level: str, defaults: dict[str, str]) -> str:
    """The cadence in force: the risk's own, else the methodology's default for its level."""
    return cadence or defaults[inherent_level]
