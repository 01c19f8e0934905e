"""Period edges: what belongs to a period when things happen on either side of its boundaries.

Known truth (Q3 2025 = 2025-07-01 .. 2025-09-30): two risks whose first reviews are due 2025-07-01.
RISK-1's owner reviews early, on 2025-06-25, after two reminders in June; RISK-2's review is
reminded in June and July, escalated, and only done on 2025-10-03, after the quarter.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from vigil_ir import clock
from vigil_ir.exports.risks import review_rows
from vigil_ir.risks import report, reviews
from vigil_ir.risks.models import Risk
from tests.risk_fixtures import OWNER, harness, make_risk, open_review

T0 = datetime(2025, 5, 20, 9, 0, tzinfo=timezone.utc)  # risks made then are first due 2025-07-01
Q3 = (datetime(2025, 7, 1, tzinfo=timezone.utc), datetime(2025, 10, 1, tzinfo=timezone.utc))
Q2 = (datetime(2025, 4, 1, tzinfo=timezone.utc), datetime(2025, 7, 1, tzinfo=timezone.utc))


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=8, tzinfo=timezone.utc)


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for)
    yield h
    h.client.close()


def _sweep(app, day: str) -> None:
    with clock.frozen(at(day)):  # the reminders are recorded on the day they are sent
        app.sweep(at(day))


def _complete(db, risk: Risk, day: str) -> None:
    review = open_review(db, risk)
    with clock.frozen(at(day)), db.session() as s:
        reviews.complete(s, risk=s.get(Risk, risk.id), review=s.get(type(review), review.id), actor=OWNER,
                         approvers=frozenset(),
                         given={"outcome": "no_change", "rationale": "Controls checked."})


def test_the_review_log_holds_reviews_due_in_the_period_with_their_reminders_and_status_at_its_end(app):
    with clock.frozen(T0):
        early, late = make_risk(app.db, title="Laptop theft"), make_risk(app.db, title="Vendor outage")
    for day in ("2025-06-17", "2025-06-24"):
        _sweep(app, day)
    _complete(app.db, early, "2025-06-25")
    for day in ("2025-06-30", "2025-07-01", "2025-07-04", "2025-07-08"):
        _sweep(app, day)
    _complete(app.db, late, "2025-10-03")
    with app.db.session() as s:
        q3 = {row["risk_ref"]: row for row in review_rows(s, *Q3)}
        q2 = {row["risk_ref"]: row for row in review_rows(s, *Q2)}
        built = report.build(s, *Q3)
        text = report.render_built(built, "md")

    # Completed early, before the quarter it was due in: in that quarter's log, with the June reminders.
    first = q3["RISK-1"]
    assert (first["in_log_because"], first["status"], first["due_at"]) == ("due in the period", "completed",
                                                                           "2025-07-01")
    assert first["reminders_sent"] == 2
    assert first["reminders"] == "due_in_14 2025-06-17T08:00:00.000000Z; due_in_7 2025-06-24T08:00:00.000000Z"
    assert q2["RISK-1"]["in_log_because"] == "completed in the period"  # and in the quarter it was done in
    # Done after the quarter: overdue as at the quarter's end, completed as at generation; reminders
    # counted up to the end, from before the quarter began.
    second = q3["RISK-2"]
    assert (second["status"], second["status_at_generation"]) == ("overdue", "completed")
    assert second["reminders"].split("; ")[0] == "due_in_14 2025-06-17T08:00:00.000000Z"
    assert second["reminders_sent"] == len(second["reminders"].split("; ")) == 6
    # The report's summary line counts the same rows the log lists.
    assert built.review_counts == {"completed": 0, "on time": 0, "late": 0, "completed early": 1,
                                   "due but not completed": 1}
    assert ("0 reviews completed in the period (0 on time, 0 late); 1 due in the period and completed before it "
            "began; 1 due in the period and not completed by its end") in text
