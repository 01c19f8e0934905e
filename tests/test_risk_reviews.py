"""Creating risks, reviews with outcomes, approvals (never by the reviewer), acceptance expiry."""

import itertools
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.exports import risks as risk_exports
from vigil_ir.eventlog import events_for_stream
from vigil_ir.risks import approvals, reviews, service
from vigil_ir.risks.models import RiskAcceptance, RiskApproval, RiskReview
from vigil_ir.risks.service import RiskError
from tests.risk_fixtures import ADMIN, APPROVER, OTHER, OWNER, make_risk, open_review, raw, reload

APPROVERS = frozenset({ADMIN, APPROVER})
T0 = datetime(2025, 5, 20, 9, 0, tzinfo=timezone.utc)
_refs = itertools.count(1)


def complete(db, risk, actor=OWNER, review="open", **given):
    given.setdefault("rationale", "Encryption rolled out to every laptop.")
    with db.session() as s:
        target = open_review(db, risk) if review == "open" else review
        target = s.get(RiskReview, target.id) if target else None
        return reviews.complete(s, risk=s.get(type(risk), risk.id), review=target, actor=actor, given=given,
                                approvers=APPROVERS, manual_ref=f"test:{next(_refs)}")


def test_create_scores_schedules_and_records_the_full_state(db):
    with clock.frozen(T0):
        risk = make_risk(db)
    assert risk.key == "RISK-1" and risk.status == "in_treatment" and risk.tsc_refs == ["CC6.1", "CC6.7"]
    assert service.levels(risk) == ("high", "medium")
    assert risk.next_review_due == date(2025, 7, 1)  # high → quarterly
    review = open_review(db, risk)
    assert (review.trigger, review.due_on, review.reviewer) == ("scheduled", date(2025, 7, 1), OWNER)
    with db.session() as s:
        created, opened = events_for_stream(s, risk.stream)
    assert created.kind == "risk.created" and created.data["state"]["inherent_likelihood"] == 4
    assert opened.kind == "risk.review_opened" and opened.data["due_on"] == "2025-07-01"


@pytest.mark.parametrize("level_scores,cadence_due", [(("1", "2"), date(2026, 1, 1)), (("2", "3"), date(2025, 7, 1))])
def test_default_cadence_follows_the_inherent_level(db, level_scores, cadence_due):
    with clock.frozen(T0):
        risk = make_risk(db, inherent_likelihood=level_scores[0], inherent_impact=level_scores[1],
                         residual_likelihood="", residual_impact="")
    assert risk.next_review_due == cadence_due  # low → annual; medium → semiannual


def test_keys_are_never_reused(db):
    first, second = make_risk(db), make_risk(db, title="Other")
    assert (first.number, second.number) == (1, 2)


@pytest.mark.parametrize("change,field", [
    ({"title": ""}, "title"), ({"title": "x" * 121}, "title"), ({"statement": " "}, "statement"),
    ({"category": "weather"}, "category"), ({"risk_type": "alien"}, "risk_type"), ({"owner": "bob"}, "owner"),
    ({"inherent_likelihood": "6"}, "inherent_likelihood"), ({"inherent_impact": "Huge"}, "inherent_impact"),
    ({"residual_likelihood": "5", "residual_impact": "5"}, "residual_likelihood"),
    ({"treatment": "accept"}, "treatment"), ({"treatment": "mitigate", "treatment_plan": ""}, "treatment_plan"),
    ({"treatment_due": "2020-01-01"}, "treatment_due"), ({"treatment_due": "next week"}, "treatment_due"),
    ({"cadence": "FREQ=DAILY"}, "cadence"), ({"tsc_refs": "CC6.1 XYZ"}, "tsc_refs"),
    ({"incidents": "INC-99"}, "incidents"), ({"incidents": "bug-3"}, "incidents"),
])
def test_bad_fields_are_named_and_nothing_is_written(db, change, field):
    with db.session() as s:
        with pytest.raises(RiskError) as raised:
            service.create(s, actor=OWNER, raw=raw(**change))
        assert field in raised.value.errors
    with db.session() as s:
        assert events_for_stream(s, "risk:1") == []


def test_labels_are_accepted_for_ratings(db):
    risk = make_risk(db, inherent_likelihood="Likely", inherent_impact="severe")
    assert (risk.inherent_likelihood, risk.inherent_impact) == (4, 5)


def test_no_change_review_records_before_after_and_moves_the_schedule(db):
    with clock.frozen(T0):
        risk = make_risk(db)
    with clock.frozen(datetime(2025, 7, 4, tzinfo=timezone.utc)):  # three days late
        done = complete(db, risk, outcome="no_change")
    review = done.review
    assert (review.status, review.on_time, review.days_late, review.approval_state) == ("completed", False, 3, None)
    assert review.before == review.after and review.changed_fields == []
    fresh = reload(db, risk)
    assert fresh.next_review_due == date(2025, 10, 1) and fresh.last_reviewed_by == OWNER
    assert open_review(db, risk).due_on == date(2025, 10, 1)


def test_early_review_does_not_cover_the_same_cycle_twice(db):
    with clock.frozen(T0):
        risk = make_risk(db)
    with clock.frozen(datetime(2025, 6, 25, tzinfo=timezone.utc)):
        done = complete(db, risk, outcome="no_change")
    assert done.review.on_time and reload(db, risk).next_review_due == date(2025, 10, 1)


@pytest.mark.parametrize("given,field", [
    ({"outcome": None}, "outcome"), ({"outcome": "no_change", "rationale": "ok"}, "rationale"),
    ({"outcome": "no_change", "residual_likelihood": "2"}, "outcome"),
    ({"outcome": "rescored"}, "residual_likelihood"),
    ({"outcome": "rescored", "residual_likelihood": "5", "residual_impact": "4"}, "residual_likelihood"),
    ({"outcome": "treatment_changed"}, "treatment"),
    ({"outcome": "treatment_changed", "treatment": "accept"}, "treatment"),
    ({"outcome": "treatment_changed", "treatment": "transfer", "treatment_plan": ""}, "treatment_plan"),
    ({"outcome": "acceptance_requested", "acceptance_expires": "2020-01-01"}, "acceptance_expires"),
    ({"outcome": "acceptance_requested", "acceptance_expires": "2099-01-01"}, "acceptance_expires"),
    ({"outcome": "closure_requested"}, "closure_reason"),
])
def test_review_validation_names_the_field_and_writes_nothing(db, given, field):
    risk = make_risk(db)
    with pytest.raises(RiskError) as raised:
        complete(db, risk, **given)
    assert field in raised.value.errors
    assert open_review(db, risk).status == "open" and reload(db, risk).version == 1


def test_rescore_up_applies_at_once(db):
    risk = make_risk(db)
    done = complete(db, risk, outcome="rescored", residual_likelihood="4")
    assert done.approval is None and reload(db, risk).residual_likelihood == 4
    assert done.review.changed_fields == ["residual_likelihood"]


def test_lowering_the_residual_level_waits_for_a_second_person(db):
    risk = make_risk(db)
    done = complete(db, risk, outcome="rescored", residual_likelihood="1")
    assert done.approval.reasons == ["residual_level_lowered"] and done.approval.approvers == [ADMIN, APPROVER]
    assert reload(db, risk).residual_likelihood == 3  # not yet
    with db.session() as s, pytest.raises(RiskError, match="waiting for approval"):
        reviews.complete(s, risk=s.get(type(risk), risk.id), review=None, actor=OWNER, approvers=APPROVERS,
                         given={"outcome": "no_change", "rationale": "another try meanwhile"}, manual_ref="x")
    with db.session() as s:
        approval = s.get(RiskApproval, done.approval.id)
        with pytest.raises(RiskError, match="someone else"):
            approvals.approve(s, approval=approval, actor=OWNER, approvers=APPROVERS | {OWNER})
        with pytest.raises(RiskError, match="Only a Vigil admin"):
            approvals.approve(s, approval=approval, actor=OTHER, approvers=APPROVERS)
        approvals.approve(s, approval=approval, actor=APPROVER, approvers=APPROVERS)
    fresh = reload(db, risk)
    assert fresh.residual_likelihood == 1 and service.levels(fresh)[1] == "low"
    with db.session() as s:
        approval = s.get(RiskApproval, done.approval.id)
        assert (approval.state, approval.decided_by) == ("approved", APPROVER)
        assert s.get(RiskReview, done.review.id).approval_state == "approved"
        with pytest.raises(RiskError, match="already approved"):
            approvals.reject(s, approval=approval, actor=ADMIN, approvers=APPROVERS, comment="too late")


def test_admin_reviewing_someone_elses_risk_needs_another_approver(db):
    risk = make_risk(db)
    done = complete(db, risk, actor=ADMIN, outcome="no_change")
    assert done.approval.reasons == ["reviewer_not_owner"] and done.approval.approvers == [APPROVER]
    with db.session() as s, pytest.raises(RiskError, match="no one else can give it"):
        reviews.complete(s, risk=make_risk(db, title="Second"), review=None, actor=ADMIN, manual_ref="y",
                         given={"outcome": "no_change", "rationale": "checked it myself"}, approvers=frozenset({ADMIN}))


def test_rejection_leaves_the_risk_unchanged_and_keeps_the_comment(db):
    risk = make_risk(db)
    done = complete(db, risk, outcome="closure_requested", closure_reason="system_retired")
    with db.session() as s:
        approval = s.get(RiskApproval, done.approval.id)
        with pytest.raises(RiskError, match="Say why"):
            approvals.reject(s, approval=approval, actor=ADMIN, approvers=APPROVERS, comment=" ")
        approvals.reject(s, approval=approval, actor=ADMIN, approvers=APPROVERS, comment="Still in use by billing")
    assert reload(db, risk).status == "in_treatment"
    with db.session() as s:
        kinds = [e.kind for e in events_for_stream(s, risk.stream)]
    assert kinds[-2:] == ["risk.approval_requested", "risk.approval_rejected"]


def test_approved_closure_closes_and_cancels_open_reviews(db):
    risk = make_risk(db)
    done = complete(db, risk, outcome="closure_requested", closure_reason="duplicate")
    with db.session() as s:
        approvals.approve(s, approval=s.get(RiskApproval, done.approval.id), actor=ADMIN, approvers=APPROVERS)
    fresh = reload(db, risk)
    assert (fresh.status, fresh.closure_reason, fresh.next_review_due) == ("closed", "duplicate", None)
    assert open_review(db, risk) is None


def test_acceptance_defaults_to_the_next_review_and_expiry_sends_the_risk_back_to_review(db):
    with clock.frozen(T0):
        risk = make_risk(db)
        done = complete(db, risk, outcome="acceptance_requested", rationale="Cost of control exceeds the loss.")
        # Completing the review due 1 July: the next review (and default expiry) is 1 October.
        assert done.approval.proposal["acceptance_expires"] == "2025-10-01"
        with db.session() as s:
            approvals.approve(s, approval=s.get(RiskApproval, done.approval.id), actor=ADMIN, approvers=APPROVERS)
    fresh = reload(db, risk)
    assert (fresh.treatment, fresh.status, fresh.acceptance_expires) == ("accept", "accepted", date(2025, 10, 1))
    with db.session() as s:
        assert approvals.expire_acceptances(s, on=date(2025, 9, 30)) == []
    with db.session() as s:
        (opened,) = approvals.expire_acceptances(s, on=date(2025, 10, 1))
        assert (opened.trigger, opened.due_on) == ("acceptance_expiry", date(2025, 10, 1))
    with db.session() as s:
        assert approvals.expire_acceptances(s, on=date(2025, 10, 2)) == []  # once
        acceptance = s.exec(select(RiskAcceptance)).one()
        assert (acceptance.state, acceptance.approved_by, acceptance.justification) == (
            "expired", ADMIN, "Cost of control exceeds the loss.")
    fresh = reload(db, risk)
    assert (fresh.treatment, fresh.status, fresh.acceptance_expires) == ("untreated", "open", None)


def test_acceptance_cannot_exceed_twelve_months(db):
    with clock.frozen(T0):
        risk = make_risk(db, cadence="FREQ=YEARLY;INTERVAL=2")
        done = complete(db, risk, review=None, outcome="acceptance_requested", rationale="Accept for now please")
    assert done.approval.proposal["acceptance_expires"] == (T0.date() + timedelta(days=365)).isoformat()


def test_a_review_is_completed_once(db):
    risk = make_risk(db)
    review = open_review(db, risk)
    complete(db, risk, review=review, outcome="no_change")
    with pytest.raises(RiskError, match="already completed"):
        complete(db, risk, review=review, outcome="no_change")


def test_higher_level_brings_the_next_review_forward(db):
    with clock.frozen(T0):
        risk = make_risk(db, inherent_likelihood="1", inherent_impact="2", residual_likelihood="",
                         residual_impact="", treatment="untreated", treatment_plan="")
        assert risk.next_review_due == date(2026, 1, 1)
        complete(db, risk, review=None, outcome="rescored", inherent_likelihood="5", inherent_impact="5")
    fresh = reload(db, risk)
    assert fresh.next_review_due == date(2025, 7, 1)
    with db.session() as s:
        scheduled = list(s.exec(select(RiskReview).where(RiskReview.trigger == "scheduled").order_by(RiskReview.id)))
    assert [(r.due_on, r.status) for r in scheduled] == [(date(2026, 1, 1), "cancelled"), (date(2025, 7, 1), "open")]


def test_link_incident(vigil):
    incident = vigil.declare(deliver=False)
    risk = make_risk(vigil.db)
    with vigil.db.session() as s:
        service.link_incident(s, risk=s.get(type(risk), risk.id), actor=OWNER, incident_key=incident.key)
    assert reload(vigil.db, risk).linked_incidents == [incident.key]
    with vigil.db.session() as s, pytest.raises(RiskError, match="already linked"):
        service.link_incident(s, risk=s.get(type(risk), risk.id), actor=OWNER, incident_key=incident.key)
    with vigil.db.session() as s, pytest.raises(RiskError, match="no incident INC-9"):
        service.link_incident(s, risk=s.get(type(risk), risk.id), actor=OWNER, incident_key="INC-9")


def test_review_log_rows_show_scores_before_and_after_the_approval_and_the_status_at_the_period_end(db):
    with clock.frozen(T0):
        lowered, closed, untouched = make_risk(db), make_risk(db, title="Second"), make_risk(db, title="Third")
        done = complete(db, lowered, outcome="rescored", residual_likelihood="1")
        with db.session() as s:
            approvals.approve(s, approval=s.get(RiskApproval, done.approval.id), actor=APPROVER, approvers=APPROVERS)
        done = complete(db, closed, outcome="closure_requested", closure_reason="system_retired")
        with db.session() as s:
            approvals.reject(s, approval=s.get(RiskApproval, done.approval.id), actor=ADMIN, approvers=APPROVERS,
                             comment="Still in use by billing")
    start, end = datetime(2025, 5, 1, tzinfo=timezone.utc), datetime(2025, 7, 2, tzinfo=timezone.utc)
    with db.session() as s:
        rows = {row["risk_ref"]: row for row in risk_exports.review_rows(s, start, end)}
    columns = ("review_ref", "in_log_because", "status", "status_at_generation", "completed_at", "completed_by",
               "changed_fields", "residual_likelihood_before", "residual_likelihood_after", "residual_level_before",
               "residual_level_after", "inherent_level_after", "treatment_after", "status_after",
               "approval_required", "approval_reasons", "approver", "approver_name", "approval_decision",
               "approval_decided_at", "approval_comment")
    assert {ref: tuple(row[name] for name in columns) for ref, row in rows.items()} == {
        lowered.key: (f"RRV-{done.review.id - 1}", "completed in the period; due in the period", "completed",
                      "completed", "2025-05-20T09:00:00.000000Z", OWNER, "residual_likelihood", 3, 1, "medium",
                      "low", "high", "mitigate", "in_treatment", True, "residual_level_lowered", APPROVER,
                      "name unknown", "approved", "2025-05-20T09:00:00.000000Z", None),
        closed.key: (f"RRV-{done.review.id}", "completed in the period; due in the period", "completed",
                     "completed", "2025-05-20T09:00:00.000000Z", OWNER, "closure_reason;status", 3, 3, "medium",
                     "medium", "high", "mitigate", "closed", True, "closure_requested", ADMIN, "name unknown", "rejected",
                     "2025-05-20T09:00:00.000000Z", "Still in use by billing"),
        untouched.key: (rows[untouched.key]["review_ref"], "due in the period", "overdue", "open", None, None, "",
                        None, None, None, None, None, None, None, False, None, None, None, None, None, None)}
