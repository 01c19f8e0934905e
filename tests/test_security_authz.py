"""The authorization matrix, through signed requests to the real app (and the dashboard's own client).

Who may close an incident (the lead, a commander or an admin; tests/test_permissions_matrix.py has every
action), review a risk (its owner, an approver, an admin),
approve or reject a review (an approver or admin who is not the reviewer), and read the dashboard
(signed-in auditors, listed viewers and admins; the token page is for admins). A refusal answers the
person and writes nothing, whether it comes through a command, a button, or a modal submitted
directly (a stale or forged form).

`vigil export …` has no users to check: it runs with the database's own credentials, on the host.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from vigil_ir.incidents.models import Incident
from vigil_ir.risks.models import Risk, RiskApproval
from tests import slack_requests as sr
from tests.fuzzing import changed, row_counts
from tests.risk_fixtures import ADMIN, APPROVER, OTHER, OWNER, harness, make_risk

LEAD, DECLARER, FORMER_LEAD = "U0LEAD", "U0DECLARER", "U0FORMER"
TEXT, SELECT = "plain_text_input", "static_select"


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for)
    yield h
    h.client.close()


def status_of(app, incident) -> str:
    with app.db.session() as s:
        return s.get(Incident, incident.id).status


# ---- closing an incident ---------------------------------------------------------------------------
def resolved_incident(app):
    incident = app.declare("Authz target", user=DECLARER, severity="sev3")  # no second person needed
    app.command(f"lead <@{FORMER_LEAD}>", channel=incident.channel_id, user=DECLARER)
    app.command(f"lead <@{LEAD}>", channel=incident.channel_id, user=FORMER_LEAD)
    app.command("resolve", channel=incident.channel_id, user=LEAD)
    return incident


def close_values():
    return {"customer_impact": sr.input_value(TEXT, "None"), "root_cause": sr.input_value(TEXT, "A bad deploy")}


@pytest.mark.parametrize("user, allowed", [(LEAD, True), (ADMIN, True), (DECLARER, False), (FORMER_LEAD, False),
                                           (OTHER, False)])
def test_who_may_close_an_incident(app, user, allowed):
    incident = resolved_incident(app)
    app.command("close", channel=incident.channel_id, user=ADMIN)
    view = app.last_view("incident_close")  # a real close form, as a lead or admin would get it

    before = row_counts(app.db)
    answer = app.command("close", channel=incident.channel_id, user=user)
    assert answer.status_code == 200
    if allowed:
        assert answer.text == "" and app.last_view("incident_close")
    else:
        assert "Only the incident lead" in answer.text and f"<@{LEAD}>" in answer.text
    assert not changed(before, row_counts(app.db)), "asking for the form writes nothing"

    submitted = app.submit(view, close_values(), user=user)  # the form itself, sent by this user
    assert submitted.status_code == 200
    if allowed:
        assert not submitted.content and status_of(app, incident) == "closed"
    else:
        body = submitted.json()
        assert body["response_action"] == "errors" and "Only the incident lead" in body["errors"]["customer_impact"]
        assert status_of(app, incident) == "resolved"
        assert not changed(before, row_counts(app.db))


# ---- reviewing a risk -----------------------------------------------------------------------------
@pytest.mark.parametrize("user, allowed", [(OWNER, True), (APPROVER, True), (ADMIN, True), (OTHER, False)])
def test_who_may_review_a_risk(app, user, allowed):
    risk = make_risk(app.db)
    app.command(f"review {risk.key}", command="/risk", user=OWNER)
    view = app.last_view("risk_review")
    before = row_counts(app.db)
    answer = app.command(f"review {risk.key}", command="/risk", user=user)
    assert (answer.text == "") is allowed and ("Only the owner" in answer.text) is not allowed
    values = {"outcome": sr.input_value(SELECT, "no_change"),
              "rationale": sr.input_value(TEXT, "Controls checked; nothing changed this quarter.")}
    submitted = app.submit(view, values, user=user)
    if allowed:
        assert not submitted.content
    else:
        assert "Only the owner" in submitted.json()["errors"]["outcome"]
        assert not changed(before, row_counts(app.db))


# ---- approving or rejecting a review ----------------------------------------------------------------
def pending_approval(app, reviewer: str = OWNER) -> RiskApproval:
    risk = make_risk(app.db, title=f"Approval by {reviewer}")
    assert app.command(f"review {risk.key}", command="/risk", user=reviewer).text == ""
    answer = app.submit(app.last_view("risk_review"), {
        "outcome": sr.input_value(SELECT, "closure_requested"),
        "rationale": sr.input_value(TEXT, "The old VPN has been switched off."),
        "closure_reason": sr.input_value(SELECT, "system_retired")}, user=reviewer)
    assert not answer.content, answer.text
    with app.db.session() as s:
        return s.exec(select(RiskApproval).order_by(RiskApproval.id.desc())).first()


def state_of(app, approval) -> str:
    with app.db.session() as s:
        return s.get(RiskApproval, approval.id).state


@pytest.mark.parametrize("reviewer, decider, allowed, says", [
    (OWNER, APPROVER, True, "You approved"),
    (OWNER, ADMIN, True, "You approved"),
    (OWNER, OWNER, False, "someone else must approve"),          # the reviewer approving their own review
    (OWNER, OTHER, False, "may approve or reject a risk review"),
    (APPROVER, APPROVER, False, "someone else must approve"),    # an approver who reviewed cannot approve it
    (APPROVER, ADMIN, True, "You approved"),
])
def test_who_may_approve_a_review(app, fake_slack, reviewer, decider, allowed, says):
    approval = pending_approval(app, reviewer)
    app.deliver()
    before = row_counts(app.db)
    click = sr.block_action("risk_approve", str(approval.id), channel="D0DM", message_ts="5.5", user=decider,
                            response_url=fake_slack.response_url(decider))
    assert app.post(click).status_code == 200
    if not allowed:
        assert state_of(app, approval) == "pending"
        assert set(changed(before, row_counts(app.db))) <= {"outbox_item"}  # only the reply to the clicker
    app.deliver()
    assert says in fake_slack.responses(decider)[-1]["text"]
    assert state_of(app, approval) == ("approved" if allowed else "pending")


@pytest.mark.parametrize("decider, allowed", [(APPROVER, True), (ADMIN, True), (OWNER, False), (OTHER, False)])
def test_who_may_reject_a_review_by_button_and_by_form(app, fake_slack, decider, allowed):
    from vigil_ir.slack import risk_blocks

    approval = pending_approval(app)
    with app.db.session() as s:
        risk = s.get(Risk, approval.risk_id)
    opened = len(fake_slack.calls_to("views.open"))
    app.post(sr.block_action("risk_reject", str(approval.id), channel="D0DM", message_ts="6.6", user=decider,
                             response_url=fake_slack.response_url(f"r-{decider}")))
    assert (len(fake_slack.calls_to("views.open")) > opened) is allowed
    before = row_counts(app.db)
    answer = app.submit(risk_blocks.reject_modal(approval, risk), {"comment": sr.input_value(TEXT, "Not yet.")},
                        user=decider)
    if allowed:
        assert not answer.content and state_of(app, approval) == "rejected"
    else:
        assert answer.json()["errors"]["comment"] and state_of(app, approval) == "pending"
        assert not changed(before, row_counts(app.db))
        app.deliver()
        assert fake_slack.responses(f"r-{decider}"), "the clicker is told why"


# ---- the dashboard ----------------------------------------------------------------------------------
DASHBOARD_PATHS = {"page": "/", "incident": "/incidents/INC-1", "download": "/exports/incidents.csv?from=2025-01-01&to=2025-12-31",
                   "timeline": "/incidents/INC-1/timeline.json", "tokens": "/admin/tokens"}
# The cells tests/test_dashboard*.py do not already cover (anonymous visitors, auditors on pages and
# the token page, viewers on pages and the token page, and admins on the token page are covered there).
MATRIX = [("viewer", "download", 200), ("viewer", "timeline", 200), ("viewer", "incident", 200),
          ("admin", "page", 200), ("admin", "download", 200), ("admin", "timeline", 200),
          ("auditor", "timeline", 200), ("auditor", "download", 200)]


@pytest.mark.parametrize("role", ["viewer", "admin", "auditor"])
def test_dashboard_access_matrix(db, fake_slack, role):
    from tests.dashboard_seed import make_token, seed
    from tests.test_dashboard_slack import CLIENT, sign_in
    from tests.test_dashboard import Dash

    seed(db)
    dash = Dash(db, SLACK_API_URL=fake_slack.base_url, **CLIENT)
    try:
        if role == "auditor":
            assert dash.sign_in(make_token(db)[1]).status_code == 303
        else:
            assert sign_in(dash, fake_slack, "U0VIEWER" if role == "viewer" else "U0ADMIN").status_code == 303
        for who, what, status in MATRIX:
            if who == role:
                assert dash.client.get(DASHBOARD_PATHS[what]).status_code == status, (role, what)
        assert dash.client.get("/admin/tokens").status_code == (200 if role == "admin" else 403)
    finally:
        dash.client.close()
