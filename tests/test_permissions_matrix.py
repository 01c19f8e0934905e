"""The authorization matrix: every action × every kind of person, through signed requests to the real
app, on both databases. Commanders are a Slack user group (`@incident-commanders`) that the fake
Slack answers `usergroups.list` / `usergroups.users.list` for.

An allowed request changes the record and writes exactly the events that change is made of; a
refused one writes nothing (a button's refusal is only the reply queued to the clicker) and its
answer says who may instead.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from vigil_ir.eventlog.models import Event
from vigil_ir.incidents.models import Incident
from vigil_ir.risks.models import RiskApproval
from tests import slack_requests as sr
from tests.fuzzing import changed, row_counts
from tests.risk_fixtures import make_risk

DECLARER, LEAD, PREVIOUS, COMMANDER, ADMIN = "U0DECLARER", "U0LEAD", "U0FORMER", "U0CMD", "U0ADMIN"
MEMBER, OUTSIDER, OWNER, APPROVER, NEXT = "U0MEMBER", "U0OUTSIDER", "U0OWNER", "U0APPROVER", "U0NEXT"
PEOPLE = {"declarer": DECLARER, "lead": LEAD, "previous lead": PREVIOUS, "commander": COMMANDER, "admin": ADMIN,
          "channel member": MEMBER, "non-member": OUTSIDER, "risk owner": OWNER, "approver": APPROVER}
EVERYONE = set(PEOPLE)
TEXT, SELECT = "plain_text_input", "static_select"


@pytest.fixture
def app(db, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    fake_slack.set_usergroup("S0CMD", "incident-commanders", [COMMANDER])
    settings = settings_for(DATABASE_URL=db.url, VIGIL_COMMANDERS="@incident-commanders",
                            VIGIL_RISK_APPROVERS=APPROVER, VIGIL_RISK_CHANNEL="C0RISKS",
                            VIGIL_CLOSE_APPROVAL="sev1,sev2,security")  # the default
    harness = VigilHarness(build_runtime(settings, db), fake_slack)
    yield harness
    harness.client.close()


def incident_with_history(app, *, severity="sev2", type="availability") -> Incident:
    """Declared by DECLARER; PREVIOUS led it, then handed the lead to LEAD; MEMBER wrote a note."""
    incident = app.declare("Matrix target", user=DECLARER, severity=severity, type=type)
    channel = incident.channel_id
    assert app.command(f"lead <@{PREVIOUS}>", channel=channel, user=DECLARER).status_code == 200
    assert "now" in app.command(f"lead <@{LEAD}>", channel=channel, user=PREVIOUS).text
    assert "note #" in app.command("note the database is slow", channel=channel, user=MEMBER).text
    app.deliver()
    return current(app, incident)


def current(app, incident) -> Incident:
    with app.db.session() as s:
        return s.get(Incident, incident.id)


def stream_events(app, stream: str) -> list[Event]:
    with app.db.session() as s:
        return list(s.exec(select(Event).where(Event.stream == stream).order_by(Event.stream_seq)))


def note_id(app, incident) -> int:
    return [e.id for e in stream_events(app, incident.stream) if e.kind == "incident.note_added"][0]


def check(app, stream: str, before_rows: dict, before_events: int, answer: str, allowed: bool,
          kinds: list[str], who_may: str, *, reply_queued: bool = False) -> None:
    new = [e.kind for e in stream_events(app, stream)[before_events:]]
    if allowed:
        assert new == kinds, (new, answer)
        return
    assert new == [], new
    rows = changed(before_rows, row_counts(app.db))
    assert set(rows) <= ({"outbox_item", "processed_key"} if reply_queued else set()), rows
    assert who_may in answer, answer


def command_answer(app, text, *, channel, user, command="/incident") -> str:
    response = app.command(text, channel=channel, user=user, command=command)
    assert response.status_code == 200
    return response.text


# ---- incident commands ------------------------------------------------------------------------------
# (action, command text, who may, the events an allowed request writes, the refusal's "who may")
INCIDENT_COMMANDS = [
    ("replace the lead", f"lead <@{NEXT}>", {"lead", "commander", "admin"}, ["incident.role_assigned"],
     "Only the incident lead (<@U0LEAD>), a commander (@incident-commanders) or an admin (<@U0ADMIN>) may replace"),
    ("raise the severity", "severity sev1", EVERYONE, ["incident.severity_changed"], ""),
    ("downgrade severity", "severity sev3", {"lead", "commander", "admin"}, ["incident.severity_changed"],
     "Only the incident lead (<@U0LEAD>), a commander (@incident-commanders) or an admin (<@U0ADMIN>) may "
     "downgrade severity."),
    ("resolve", "resolve", {"lead", "declarer", "commander", "admin"}, ["incident.status_changed", "pir.scheduled"],
     "Only the incident lead (<@U0LEAD>), the person who declared it (<@U0DECLARER>), a commander"),
    ("correct a note", "correct {note} the database was fine", {"channel member", "lead", "commander", "admin"},
     ["incident.note_corrected"], "Only the note's author (<@U0MEMBER>), the incident lead (<@U0LEAD>), a commander"),
]


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize("action, text, may, kinds, who_may", INCIDENT_COMMANDS, ids=[c[0] for c in INCIDENT_COMMANDS])
def test_incident_commands(app, person, action, text, may, kinds, who_may):
    incident = incident_with_history(app)
    before_rows, before_events = row_counts(app.db), len(stream_events(app, incident.stream))
    answer = command_answer(app, text.format(note=note_id(app, incident)), channel=incident.channel_id,
                            user=PEOPLE[person])
    check(app, incident.stream, before_rows, before_events, answer, person in may, kinds, who_may)
    if action == "replace the lead" and person not in may:
        assert "Request the lead" in answer and current(app, incident).lead == LEAD


def test_anyone_declares_and_takes_an_unassigned_lead(app):
    for number, user in enumerate(PEOPLE.values(), start=1):
        incident = app.declare(f"Declared by {user}", user=user, deliver=False)
        assert incident.number == number and incident.declared_by == user
    for incident_number, user in enumerate(PEOPLE.values(), start=1):
        with app.db.session() as s:
            incident = s.exec(select(Incident).where(Incident.number == incident_number)).one()
        app.post(sr.block_action("incident_take_lead", str(incident.id), channel="C0X", message_ts=f"{incident_number}.1",
                                 user=user))
        assert current(app, incident).lead == user
        assert [e.kind for e in stream_events(app, incident.stream)][-1] == "incident.role_assigned"


# ---- closing: the form, and the second person -------------------------------------------------------
def close_values():
    return {"customer_impact": sr.input_value(TEXT, "None"), "root_cause": sr.input_value(TEXT, "A bad deploy")}


def resolved(app, **kwargs) -> Incident:
    incident = incident_with_history(app, **kwargs)
    app.command("resolve", channel=incident.channel_id, user=LEAD)
    app.command("close", channel=incident.channel_id, user=LEAD)
    return current(app, incident)


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_close_a_sev3_incident(app, person):
    incident = resolved(app, severity="sev3")
    view = app.last_view("incident_close")
    before_rows, before_events = row_counts(app.db), len(stream_events(app, incident.stream))
    allowed = person in {"lead", "commander", "admin"}
    answer = command_answer(app, "close", channel=incident.channel_id, user=PEOPLE[person])
    assert (answer == "") is allowed, answer
    submitted = app.submit(view, close_values(), user=PEOPLE[person])
    errors = "" if allowed else submitted.json()["errors"]["customer_impact"]
    check(app, incident.stream, before_rows, before_events, answer + errors, allowed, ["incident.closed"],
          "Only the incident lead (<@U0LEAD>), a commander (@incident-commanders) or an admin (<@U0ADMIN>) may close")
    assert current(app, incident).status == ("closed" if allowed else "resolved")


def request_close(app, incident, user=LEAD) -> Event:
    view = app.last_view("incident_close")
    assert not app.submit(view, close_values(), user=user).content
    return [e for e in stream_events(app, incident.stream) if e.kind == "incident.close_requested"][-1]


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_closing_a_sev1_security_incident_needs_a_second_person(app, fake_slack, person):
    incident = resolved(app, severity="sev1", type="security")
    request = request_close(app, incident)
    assert current(app, incident).status == "resolved", "a request closes nothing"
    app.deliver()
    dms = {c.params["channel"] for c in fake_slack.calls_to("chat.postMessage")
           if "asks to close" in c.params["text"]}
    assert {COMMANDER, ADMIN} <= dms and LEAD not in dms, dms

    before_rows, before_events = row_counts(app.db), len(stream_events(app, incident.stream))
    allowed = person in {"commander", "admin"}
    reply = fake_slack.response_url(f"close-{person.replace(' ', '-')}")
    app.post(sr.block_action("incident_close_accept", str(request.id), channel=PEOPLE[person], message_ts="9.9",
                             user=PEOPLE[person], response_url=reply))
    app.deliver()
    answer = fake_slack.responses(f"close-{person.replace(' ', '-')}")[-1]["text"]
    who_may = ("You asked to close INC-1, so someone else must approve" if person == "lead" else
               "Only a commander (@incident-commanders) or an admin (<@U0ADMIN>), other than <@U0LEAD> may approve")
    check(app, incident.stream, before_rows, before_events, answer, allowed,
          ["incident.close_approved", "incident.closed"], who_may, reply_queued=True)
    closed = current(app, incident)
    assert closed.status == ("closed" if allowed else "resolved")
    if allowed:
        event = stream_events(app, incident.stream)[-1]
        assert event.data["requested_by"] == LEAD and event.data["approved_by"] == PEOPLE[person]
        assert event.data["root_cause"] == "A bad deploy" and closed.root_cause == "A bad deploy"


def test_a_refused_close_is_recorded_and_can_be_asked_again(app, fake_slack):
    incident = resolved(app, severity="sev2")
    request = request_close(app, incident)
    app.post(sr.block_action("incident_close_decline", str(request.id), channel=COMMANDER, message_ts="9.9",
                             user=COMMANDER))
    kinds = [e.kind for e in stream_events(app, incident.stream)]
    assert kinds[-2:] == ["incident.close_requested", "incident.close_refused"]
    assert current(app, incident).status == "resolved"
    # The stale request cannot be approved afterwards; a new one can.
    app.post(sr.block_action("incident_close_accept", str(request.id), channel=ADMIN, message_ts="9.8", user=ADMIN))
    assert current(app, incident).status == "resolved"
    app.command("close", channel=incident.channel_id, user=LEAD)
    second = request_close(app, incident)
    app.post(sr.block_action("incident_close_accept", str(second.id), channel=ADMIN, message_ts="9.7", user=ADMIN))
    assert current(app, incident).status == "closed"


def test_one_person_alone_cannot_downgrade_take_over_and_close_a_sev1_security_incident(app, fake_slack):
    """The "done when" of separation of duties: Mallory, a member of the workspace, tries it all."""
    mallory = "U0MALLORY"
    incident = incident_with_history(app, severity="sev1", type="security")
    channel = incident.channel_id
    assert "may downgrade severity" in command_answer(app, "severity sev4", channel=channel, user=mallory)
    assert "Request the lead" in command_answer(app, f"lead <@{mallory}>", channel=channel, user=mallory)
    assert "may resolve" in command_answer(app, "resolve", channel=channel, user=mallory)
    assert "may close" in command_answer(app, "close", channel=channel, user=mallory)
    state = current(app, incident)
    assert (state.severity, state.lead, state.status) == ("sev1", LEAD, "investigating")
    # Even the lead, who may downgrade, does not make the review optional or close alone.
    app.command("severity sev4", channel=channel, user=LEAD)
    app.command("resolve", channel=channel, user=LEAD)
    app.command("close", channel=channel, user=LEAD)
    request_close(app, incident)
    assert current(app, incident).status == "resolved"
    from vigil_ir.followup.models import PostIncidentReview

    with app.db.session() as s:
        review = s.exec(select(PostIncidentReview).where(PostIncidentReview.incident_id == incident.id)).one()
    assert review.required and review.due_at is not None


# ---- asking the lead for the lead --------------------------------------------------------------------
@pytest.mark.parametrize("answer_by, accept, lead_after", [
    (LEAD, True, OUTSIDER), (LEAD, False, LEAD), (COMMANDER, True, LEAD), (OUTSIDER, True, LEAD)])
def test_request_the_lead(app, fake_slack, answer_by, accept, lead_after):
    incident = incident_with_history(app)
    app.post(sr.block_action("incident_request_lead", str(incident.id), channel=incident.channel_id,
                             message_ts="7.7", user=OUTSIDER))
    (request,) = [e for e in stream_events(app, incident.stream) if e.kind == "incident.lead_requested"]
    app.deliver()
    (dm,) = [c.params for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == LEAD
             and "asks to take over" in c.params["text"]]
    assert [b["action_id"] for b in dm["blocks"][1]["elements"]] == ["incident_lead_request_accept",
                                                                      "incident_lead_request_decline"]
    before = len(stream_events(app, incident.stream))
    app.post(sr.block_action("incident_lead_request_accept" if accept else "incident_lead_request_decline",
                             str(request.id), channel=LEAD, message_ts="8.8", user=answer_by))
    new = [e.kind for e in stream_events(app, incident.stream)[before:]]
    assert current(app, incident).lead == lead_after
    if answer_by != LEAD:
        assert new == []
    else:
        assert new == (["incident.lead_request_accepted", "incident.role_assigned"] if accept
                       else ["incident.lead_request_declined"])


# ---- risks -------------------------------------------------------------------------------------------
def pending(app, *, reviewer=OWNER, outcome="closure_requested", owner=OWNER) -> RiskApproval:
    risk = make_risk(app.db, owner=owner, title=f"Risk for {reviewer} {outcome}")
    assert app.command(f"review {risk.key}", command="/risk", user=reviewer).text == ""
    values = {"outcome": sr.input_value(SELECT, outcome),
              "rationale": sr.input_value(TEXT, "Reviewed with the team this quarter.")}
    if outcome == "closure_requested":
        values["closure_reason"] = sr.input_value(SELECT, "system_retired")
    answer = app.submit(app.last_view("risk_review"), values, user=reviewer)
    assert not answer.content, answer.text
    with app.db.session() as s:
        return s.exec(select(RiskApproval).order_by(RiskApproval.id.desc())).first()


RISK_CASES = [
    ("approve a review", dict(outcome="closure_requested"), {"approver", "commander", "admin"},
     "may approve or reject a risk review"),
    ("accept a risk", dict(outcome="acceptance_requested"), {"approver", "commander", "admin"},
     "may approve accepting this risk"),
    ("accept a risk the approver reviewed", dict(outcome="acceptance_requested", reviewer=APPROVER),
     {"commander", "admin"}, "may approve accepting this risk"),
]


@pytest.mark.parametrize("person", sorted(PEOPLE))
@pytest.mark.parametrize("case, setup, may, who_may", RISK_CASES, ids=[c[0] for c in RISK_CASES])
def test_risk_approvals(app, fake_slack, person, case, setup, may, who_may):
    approval = pending(app, **setup)
    with app.db.session() as s:
        from vigil_ir.risks.models import Risk

        risk = s.get(Risk, approval.risk_id)
    before_rows, before_events = row_counts(app.db), len(stream_events(app, risk.stream))
    reply = fake_slack.response_url(f"risk-{person.replace(' ', '-')}")
    app.post(sr.block_action("risk_approve", str(approval.id), channel="D0DM", message_ts="5.5", user=PEOPLE[person],
                             response_url=reply))
    app.deliver()
    answer = fake_slack.responses(f"risk-{person.replace(' ', '-')}")[-1]["text"]
    expected_refusal = who_may
    if person == "risk owner":
        expected_refusal = "someone else must approve"  # the reviewer, or the owner of the risk accepted
    elif person == "approver" and setup.get("reviewer") == APPROVER:
        expected_refusal = "You submitted this review"
    check(app, risk.stream, before_rows, before_events, answer, person in may, ["risk.approval_granted"],
          expected_refusal, reply_queued=True)
    with app.db.session() as s:
        assert s.get(RiskApproval, approval.id).state == ("approved" if person in may else "pending")


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_viewing_the_register(app, person):
    mine = make_risk(app.db, owner=OWNER, title="Owned risk")
    other = make_risk(app.db, owner=NEXT, title="Someone else's risk")
    assert shown_as(app, mine.key, OWNER).startswith(mine.key), "an owner always sees their own risk"
    before = row_counts(app.db)  # after the first look-up of @incident-commanders, which is recorded
    allowed = person in {"approver", "commander", "admin"}
    listed = command_answer(app, "list all", channel="C0GENERAL", user=PEOPLE[person], command="/risk")
    shown_text = shown_as(app, other.key, PEOPLE[person])
    if allowed:
        assert "*Every risk* (2)" in listed and shown_text.startswith(other.key)
    else:
        for answer in (listed, shown_text):
            assert "Only a register viewer (none is set: VIGIL_REGISTER_VIEWERS), a risk approver (<@U0APPROVER>)" \
                in answer
    assert not changed(before, row_counts(app.db)), "reading writes nothing"


def shown_as(app, key: str, user: str) -> str:
    """`/risk show` answers with blocks (JSON) or, refused, with plain text."""
    response = app.command(f"show {key}", command="/risk", user=user)
    is_json = response.headers["content-type"].startswith("application/json")
    return response.json()["text"] if is_json else response.text


def test_lowering_the_inherent_score_needs_a_second_person(app):
    risk = make_risk(app.db)
    app.command(f"review {risk.key}", command="/risk", user=OWNER)
    answer = app.submit(app.last_view("risk_review"), {
        "outcome": sr.input_value(SELECT, "rescored"), "inherent_likelihood": sr.input_value(SELECT, "2"),
        "residual_likelihood": sr.input_value(SELECT, "2"),
        "rationale": sr.input_value(TEXT, "The old VPN was replaced; exposure is much lower.")}, user=OWNER)
    assert not answer.content, answer.text
    with app.db.session() as s:
        approval = s.exec(select(RiskApproval)).one()
        from vigil_ir.risks.models import Risk

        unchanged = s.get(Risk, risk.id)
    assert "inherent_score_lowered" in approval.reasons and unchanged.inherent_likelihood == 4


@pytest.mark.parametrize("user, allowed", [(MEMBER, True), (LEAD, True), (COMMANDER, True), (OUTSIDER, False)])
def test_the_correct_note_shortcut_opens_its_form_only_for_who_may(app, fake_slack, user, allowed):
    incident = incident_with_history(app)
    note = note_id(app, incident)
    opened = len(fake_slack.calls_to("views.open"))
    before = row_counts(app.db)
    message = {"ts": "1700000000.000100", "text": "note", "blocks": [{"type": "section", "block_id": f"note:{note}"}]}
    app.post(sr.message_shortcut("correct_note", channel=incident.channel_id, message=message, user=user,
                                 response_url=fake_slack.response_url("shortcut")))
    assert (len(fake_slack.calls_to("views.open")) > opened) is allowed
    if not allowed:
        assert set(changed(before, row_counts(app.db))) <= {"outbox_item"}
        app.deliver()
        assert "Only the note's author (<@U0MEMBER>)" in fake_slack.responses("shortcut")[-1]["text"]
