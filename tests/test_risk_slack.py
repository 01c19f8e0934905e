"""`/risk` and the review flow end to end: signed Slack requests → real app → database + fake Slack."""

from datetime import datetime, time, timedelta, timezone

import pytest
from sqlmodel import select

from vigil_ir import clock

from vigil_ir.risks.models import Risk, RiskApproval, RiskReview
from tests.risk_fixtures import ADMIN, APPROVER, OTHER, OWNER, harness, make_risk, open_review, reload
from tests.slack_requests import block_action, event_callback, input_value

SELECT, TEXT = "static_select", "plain_text_input"


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for)
    yield h
    h.client.close()


def risk_command(app, text, user=OWNER, **kwargs):
    response = app.command(text, command="/risk", user=user, **kwargs)
    assert response.status_code == 200, response.text
    if not response.content:
        return {}
    if response.headers["content-type"].startswith("application/json"):
        return response.json()
    return {"text": response.text}  # bolt answers a bare text ack as text/plain


def add_values(**overrides):
    values = {"title": input_value(TEXT, "Payment provider outage"),
              "statement": input_value(TEXT, "Because we rely on one provider, an outage stops checkout."),
              "category": input_value(SELECT, "vendor"), "risk_type": input_value(SELECT, "vendor"),
              "owner": {"type": "users_select", "selected_user": OWNER},
              "inherent_likelihood": input_value(SELECT, "3"), "inherent_impact": input_value(SELECT, "5"),
              "treatment": input_value(SELECT, "untreated")}
    values.update(overrides)
    return values


def dms_to(fake_slack, user):
    return [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == user]


def test_help_and_unknown_subcommands(app):
    assert "/risk review RISK-<n>" in risk_command(app, "help")["text"]
    assert "/risk add" in risk_command(app, "")["text"]
    assert "Unknown subcommand `frobnicate`" in risk_command(app, "frobnicate")["text"]
    assert risk_command(app, "show banana")["text"] == "Usage: `/risk show RISK-<n>`"
    assert "no RISK-7" in risk_command(app, "show RISK-7")["text"]


def test_add_modal_validates_inline_then_records_once(app, fake_slack):
    assert risk_command(app, "add", user="U0CREATOR") == {}
    view = app.last_view("risk_add")
    assert [b["block_id"] for b in view["blocks"]][:3] == ["title", "statement", "description"]
    bad = app.submit(view, add_values(title=input_value(TEXT, ""), owner={"type": "users_select"},
                                      residual_likelihood=input_value(SELECT, "5"),
                                      residual_impact=input_value(SELECT, "5"),
                                      treatment=input_value(SELECT, "mitigate"),
                                      cadence=input_value(TEXT, "every blue moon"),
                                      incidents=input_value(TEXT, "INC-404")), user="U0CREATOR")
    assert bad.json()["response_action"] == "errors"
    assert set(bad.json()["errors"]) == {"title", "owner", "residual_likelihood", "treatment_plan", "cadence",
                                         "incidents"}
    with app.db.session() as s:
        assert s.exec(select(Risk)).first() is None
    good = add_values(tsc_refs=input_value(TEXT, "CC9.2"),
                      treatment_due={"type": "datepicker", "selected_date": "2099-01-31"})
    for _ in range(2):  # the same modal submitted twice
        assert app.submit(view, good, user="U0CREATOR", view_id="VADD1").status_code == 200
    with app.db.session() as s:
        (risk,) = s.exec(select(Risk)).all()
    assert (risk.key, risk.owner, risk.created_by, risk.tsc_refs) == ("RISK-1", OWNER, "U0CREATOR", ["CC9.2"])
    assert str(risk.treatment_due) == "2099-01-31"
    app.deliver()
    assert "Added *RISK-1*" in dms_to(fake_slack, "U0CREATOR")[0]["text"]
    assert "made you its owner" in dms_to(fake_slack, OWNER)[0]["text"]


def test_list_show_and_link(app):
    incident = app.declare(deliver=False)
    mine = make_risk(app.db)
    make_risk(app.db, title="Someone else's", owner=OTHER)
    assert "(2)" in risk_command(app, "list", user=APPROVER)["text"]  # the register is for approvers and viewers
    listed = risk_command(app, "list mine")["text"]
    assert mine.key in listed and "Someone else" not in listed
    assert "none" in risk_command(app, "list overdue", user=ADMIN)["text"]
    assert risk_command(app, "list sideways")["text"].startswith("Usage")
    answer = risk_command(app, f"link {mine.key} {incident.key}")
    assert f"Linked {incident.key} to {mine.key}" in answer["text"]
    assert "already linked" in risk_command(app, f"link {mine.key} {incident.key}")["text"]
    assert risk_command(app, f"link {mine.key}")["text"].startswith("Usage")
    shown = risk_command(app, f"show {mine.key.lower()}")
    text = "\n".join(b["text"]["text"] for b in shown["blocks"])
    assert "Inherent 4×4 = 16" in text and "high" in text and "Residual 3×3 = 9" in text
    assert f"*Linked incidents* {incident.key}" in text and "incident linked" in text and "Next review due" in text


def test_only_the_owner_or_an_approver_can_review(app):
    risk = make_risk(app.db)
    assert "Only the owner" in risk_command(app, f"review {risk.key}", user=OTHER)["text"]
    assert risk_command(app, f"review {risk.key}", user=APPROVER) == {}


def test_review_flow_from_reminder_to_approval(app, fake_slack):
    risk = make_risk(app.db)
    review = open_review(app.db, risk)
    app.sweep(datetime.combine(review.due_on - timedelta(days=14), time(9), timezone.utc))
    app.deliver()
    (reminder,) = dms_to(fake_slack, OWNER)
    button = reminder["blocks"][1]["elements"][0]
    click = block_action(button["action_id"], button["value"], channel="D0OWNER", message_ts="1.1", user=OWNER)
    assert app.post(click).status_code == 200
    view = app.last_view("risk_review")
    initial = {b["block_id"]: b["element"].get("initial_option", {}).get("value") for b in view["blocks"]
               if b["type"] == "input"}
    assert initial["residual_likelihood"] == "3" and initial["treatment"] == "mitigate"
    assert "Since the last review" in view["blocks"][1]["elements"][0]["text"]
    missing = app.submit(view, {"outcome": input_value(SELECT, "rescored"), "rationale": input_value(TEXT, "")},
                         user=OWNER)
    assert set(missing.json()["errors"]) == {"rationale", "residual_likelihood"}
    values = {"outcome": input_value(SELECT, "rescored"),
              "rationale": input_value(TEXT, "MDM now enforces encryption on every laptop."),
              "residual_likelihood": input_value(SELECT, "1")}
    for _ in range(2):
        assert app.submit(view, values, user=OWNER, view_id="VREVIEW1").status_code == 200
    with app.db.session() as s:
        done = s.get(RiskReview, review.id)
        approval = s.exec(select(RiskApproval)).one()
    assert (done.status, done.outcome, done.approval_state, done.on_time) == ("completed", "rescored", "pending", True)
    assert reload(app.db, risk).residual_likelihood == 3  # waits for approval
    app.deliver()
    asks = {user: dms_to(fake_slack, user) for user in (ADMIN, APPROVER)}
    assert all(len(dm) == 1 and "needs your approval" in dm[0]["text"] for dm in asks.values())
    buttons = asks[APPROVER][0]["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["risk_approve", "risk_reject"]
    self_click = block_action("risk_approve", str(approval.id), channel="D0OWNER", message_ts="2.2", user=OWNER,
                              response_url=fake_slack.response_url("self"))
    app.post(self_click)
    for _ in range(2):  # a double click decides once
        app.post(block_action("risk_approve", str(approval.id), channel="D0APPR", message_ts="3.3", user=APPROVER,
                              response_url=fake_slack.response_url("ok")))
    app.deliver()
    assert "someone else must approve" in fake_slack.responses("self")[0]["text"]
    assert [r["text"] for r in fake_slack.responses("ok")] == [
        f":white_check_mark: You approved the review of {risk.key}; it now applies."]
    assert reload(app.db, risk).residual_likelihood == 1
    assert any("approved your review" in dm["text"] for dm in dms_to(fake_slack, OWNER))
    late = block_action("risk_approve", str(approval.id), channel="D0ADMIN", message_ts="4.4", user=ADMIN,
                        response_url=fake_slack.response_url("late"))
    app.post(late)
    app.deliver()
    assert "already approved by U0APPROVER" in fake_slack.responses("late")[0]["text"]


def test_reject_with_a_comment(app, fake_slack):
    risk = make_risk(app.db)
    assert risk_command(app, f"review {risk.key}") == {}
    view = app.last_view("risk_review")
    app.submit(view, {"outcome": input_value(SELECT, "closure_requested"),
                      "rationale": input_value(TEXT, "The old VPN has been switched off."),
                      "closure_reason": input_value(SELECT, "system_retired")}, user=OWNER)
    with app.db.session() as s:
        approval = s.exec(select(RiskApproval)).one()
    app.post(block_action("risk_reject", str(approval.id), channel="D0ADMIN", message_ts="5.5", user=ADMIN))
    reject_view = app.last_view("risk_reject")
    assert app.submit(reject_view, {"comment": input_value(TEXT, "")}, user=ADMIN).json()["errors"] == {
        "comment": "Say why you reject it: the reviewer sees your comment."}
    answer = app.submit(reject_view, {"comment": input_value(TEXT, "Billing still uses it")}, user=ADMIN)
    assert answer.status_code == 200
    app.deliver()
    with app.db.session() as s:
        assert s.get(RiskApproval, approval.id).state == "rejected"
    assert reload(app.db, risk).status == "in_treatment"
    assert any("rejected your review" in dm["text"] and "Billing still uses it" in dm["text"]
               for dm in dms_to(fake_slack, OWNER))


def test_app_home_shows_reviews_due_and_owned_risks(app, fake_slack):
    risk = make_risk(app.db)
    response = app.post(event_callback({"type": "app_home_opened", "user": OWNER, "tab": "home"}),
                        content_type="application/json")
    assert response.status_code == 200
    app.deliver()
    view = fake_slack.calls_to("views.publish")[-1].params["view"]
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == ["Your open incidents", "Reviews due", "Your risks"]
    assert any(risk.key in b.get("text", {}).get("text", "") for b in view["blocks"])


def test_user_text_is_escaped_in_slack(app, fake_slack):
    make_risk(app.db, title="<!channel> & <@U0EVERYONE>")
    listed = risk_command(app, "list", user=ADMIN)["text"]
    assert "&lt;!channel&gt; &amp; &lt;@U0EVERYONE&gt;" in listed and "<!channel>" not in listed


def test_review_now_on_a_completed_review_says_so(app, fake_slack):
    from tests.test_risk_reviews import complete

    risk = make_risk(app.db)
    review = open_review(app.db, risk)
    complete(app.db, risk, review=review, outcome="no_change")
    app.post(block_action("risk_review_open", str(review.id), channel="D0OWNER", message_ts="1.1", user=OWNER,
                          response_url=fake_slack.response_url("done")))
    app.deliver()
    assert f"{review.ref} of {risk.key} is already completed" in fake_slack.responses("done")[0]["text"]
    assert not fake_slack.calls_to("views.open")


def test_review_with_nothing_due_soon_is_ad_hoc(app):
    with clock.frozen(datetime(2025, 5, 20, tzinfo=timezone.utc)):  # the annual review is months away
        ad_hoc_review(app)


def ad_hoc_review(app):
    risk = make_risk(app.db, cadence="annual")
    assert risk_command(app, f"review {risk.key}") == {}
    view = app.last_view("risk_review")
    assert view["private_metadata"] == f"{risk.id}:" and "an ad-hoc review" in view["blocks"][1]["elements"][0]["text"]
    app.submit(view, {"outcome": input_value(SELECT, "escalated"),
                      "rationale": input_value(TEXT, "A new exploit makes this urgent.")}, user=OWNER)
    app.deliver()
    with app.db.session() as s:
        manual = s.exec(select(RiskReview).where(RiskReview.trigger == "manual")).one()
    assert manual.outcome == "escalated" and manual.status == "completed"
    assert open_review(app.db, risk).trigger == "scheduled"  # the schedule is untouched
    posts = [c.params["text"] for c in app.fake.calls_to("chat.postMessage") if c.params["channel"] == "C0RISKS"]
    assert any("escalated *RISK-1*" in text and "A new exploit" in text for text in posts)


def test_slack_failing_to_open_the_form_records_nothing(app, fake_slack):
    fake_slack.fail_next("views.open", status=500, error="internal_error", times=2)
    answer = risk_command(app, "add")
    assert "Slack did not open the form" in answer["text"] or "could not be reached" in answer["text"]
    with app.db.session() as s:
        assert s.exec(select(Risk)).first() is None
