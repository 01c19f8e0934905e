"""Scoring methodology and review cadences: bands, labels, quarter boundaries, leap years, time zones."""

from datetime import date, datetime, timedelta, timezone

import pytest

from vigil_ir import clock
from vigil_ir.risks import cadence
from vigil_ir.risks.scoring import CURRENT, METHODOLOGIES, methodology


@pytest.mark.parametrize("likelihood,impact,score,level", [
    (1, 1, 1, "low"), (2, 2, 4, "low"), (1, 5, 5, "medium"), (3, 3, 9, "medium"), (2, 5, 10, "high"),
    (4, 4, 16, "high"), (3, 5, 15, "high"), (5, 4, 20, "critical"), (5, 5, 25, "critical"),
])
def test_score_is_product_and_levels_follow_the_bands(likelihood, impact, score, level):
    assert CURRENT.rate(likelihood, impact) == (score, level)


def test_every_score_has_exactly_one_band_and_the_matrix_is_5x5():
    for score in range(1, 26):
        assert sum(band.low <= score <= band.high for band in CURRENT.bands) == 1
    grid = CURRENT.matrix()
    assert len(grid) == 5 and all(len(row) == 5 for row in grid)
    assert grid[0][0] == "low" and grid[4][4] == "critical"


@pytest.mark.parametrize("bad", [0, 6, -1, True, "3", 2.5])
def test_ratings_outside_1_to_5_are_refused(bad):
    with pytest.raises(ValueError, match="1 to 5"):
        CURRENT.score(bad, 3)


def test_scales_have_labels_and_definitions_and_the_version_is_frozen():
    described = methodology("2025.1").describe()
    assert [s["label"] for s in described["likelihood_scale"]] == ["Rare", "Unlikely", "Possible", "Likely",
                                                                  "Almost certain"]
    scales = described["impact_scale"] + described["likelihood_scale"]
    assert all(s["definition"] and len(s["definition"]) <= 75 for s in scales)  # shown as a Slack option description
    assert described["review_cadence_by_level"]["critical"] == "quarterly"
    assert METHODOLOGIES["2025.1"] is CURRENT
    with pytest.raises(ValueError):
        methodology("1999.1")


@pytest.mark.parametrize("after,expected", [
    (date(2025, 1, 1), date(2025, 4, 1)),     # on a boundary: strictly after
    (date(2025, 3, 31), date(2025, 4, 1)),
    (date(2025, 4, 1), date(2025, 7, 1)),
    (date(2025, 12, 31), date(2026, 1, 1)),   # year end
])
def test_quarterly_is_the_first_day_of_each_quarter(after, expected):
    assert cadence.next_after("quarterly", date(2024, 6, 15), after) == expected


def test_named_cadences():
    anchor = date(2025, 5, 20)
    assert cadence.next_after("monthly", anchor, date(2025, 5, 20)) == date(2025, 6, 1)
    assert cadence.next_after("semiannual", anchor, date(2025, 5, 20)) == date(2025, 7, 1)
    assert cadence.next_after("annual", anchor, date(2025, 5, 20)) == date(2026, 1, 1)
    assert cadence.normalise(" Yearly ") == "annual" and cadence.normalise("") is None


def test_leap_years():
    # A rule for 29 February only fires in leap years.
    rule = cadence.validate("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", date(2025, 1, 1))
    assert cadence.next_after(rule, date(2025, 1, 1), date(2025, 1, 1)) == date(2028, 2, 29)
    # A plain yearly rule anchored on 29 February skips the years without one (RFC 5545).
    assert cadence.next_after("FREQ=YEARLY", date(2024, 2, 29), date(2024, 2, 29)) == date(2028, 2, 29)
    # Monthly on the 31st skips short months; the quarter start after a leap day is still 1 April.
    assert cadence.next_after("FREQ=MONTHLY;BYMONTHDAY=31", date(2024, 1, 31), date(2024, 1, 31)) == date(2024, 3, 31)
    assert cadence.next_after("quarterly", date(2024, 2, 29), date(2024, 2, 29)) == date(2024, 4, 1)


def test_custom_rules_count_from_the_anchor():
    assert cadence.next_after("FREQ=MONTHLY;INTERVAL=2", date(2025, 1, 15), date(2025, 1, 15)) == date(2025, 3, 15)
    assert cadence.validate("freq=weekly;byday=mo", date(2025, 1, 1)) == "FREQ=WEEKLY;BYDAY=MO"


@pytest.mark.parametrize("bad,message", [
    ("FREQ=DAILY", "more often than weekly"), ("FREQ=HOURLY", "more often than weekly"),
    ("fortnightly-ish", "Not a cadence name"), ("FREQ=MONTHLY;COUNT=1", "no review date"),
    ("FREQ=YEARLY;UNTIL=20200101", "no review date"),
])
def test_bad_cadences_are_refused_with_a_reason(bad, message):
    with pytest.raises(cadence.CadenceError, match=message):
        cadence.validate(bad, date(2025, 1, 1))


def test_dates_are_utc_calendar_dates(db):
    """A risk added late on 31 March in New York is already 1 April in UTC: the next quarter is July."""
    from vigil_ir.risks import service

    new_york = timezone(timedelta(hours=-4))
    with clock.frozen(datetime(2025, 3, 31, 22, 30, tzinfo=new_york)), db.session() as s:
        risk = service.create(s, actor="U0OWNER", raw={
            "title": "T", "statement": "S", "category": "security", "risk_type": "internal", "owner": "U0OWNER",
            "inherent_likelihood": "5", "inherent_impact": "5"})
        assert risk.created_at == datetime(2025, 4, 1, 2, 30, tzinfo=timezone.utc)
        assert risk.next_review_due == date(2025, 7, 1)
