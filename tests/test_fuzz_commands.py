"""Property-based tests of slash-command text: `/incident` and `/risk`, every subcommand, random arguments.

Invariants: a 200 without a traceback; an answer for every command (text, or a modal that was
opened); a refusal (usage, unknown subcommand, warning, not allowed) writes nothing; and whatever a
command queued for Slack can be delivered (no outbox item left failing).

SQLite only (see tests/fuzzing.py).
"""

from __future__ import annotations


import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from vigil_ir.outbox.models import OutboxItem
from tests.fuzzing import SLACK_SYNTAX, assert_no_traceback, changed, fuzz, hostile_text, row_counts
from tests.fuzzing import sqlite_database_url  # noqa: F401  (fixture `database_url`: SQLite only)
from tests.risk_fixtures import APPROVER, OWNER, harness, make_risk

LEAD = "U0LEAD"
INCIDENT_VERBS = ["", "declare", "new", "help", "actions", "status", "severity", "lead", "role", "note", "correct",
                  "update", "resolve", "close", "timeline", "playbook", "pir", "action", "STATUS", "Note", "security",
                  "deadline", "invite", "remove", "page", "ticket", "list", "sign-off"]
RISK_VERBS = ["", "add", "help", "list", "show", "review", "link", "action", "LIST", "sign-off"]
REFUSALS = ("Usage: `", "Unknown subcommand", ":warning:", ":no_entry:", "works inside an incident channel",
            "There is no ", "Only the owner", "is closed", "Resolve INC-", "status updates are for open")

word = st.one_of(
    st.sampled_from(["investigating", "identified", "monitoring", "resolved", "closed", "sev1", "sev5", "comms",
                     "scribe", "lead", "mine", "open", "overdue", "all", "INC-1", "INC-2", "inc-1", "INC-999999999999",
                     "RISK-1", "RISK-0", "RISK-99", "#1", "#999", "1", "-1", "3d", "2w", "tomorrow", "2020-01-01",
                     "2099-12-31", "9999-12-31", "0000-00-00", "generic", "db-failover", "../etc", f"<@{LEAD}>",
                     f"<@{OWNER}|owner>", "<@W0ENTERPRISE>", "<@U0EVIL|<!channel>>", "<#C0X|x>", "@someone",
                     "99999999999999999999", "#99999999999999999999", "²", "٣", "ACT-99999999999999999999"]),
    st.sampled_from(SLACK_SYNTAX), st.text(max_size=12))
arguments = st.one_of(st.lists(word, max_size=6).map(" ".join), hostile_text)


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for)
    h.incident = h.declare("Fuzzed incident", user=LEAD)
    h.command(f"lead <@{LEAD}>", channel=h.incident.channel_id, user=LEAD)
    make_risk(db)
    h.deliver()
    yield h
    h.client.close()


def run(app, command: str, text: str, *, channel: str, user: str):
    views_before = len(app.fake.calls_to("views.open"))
    before = row_counts(app.db)
    response = app.command(text, command=command, channel=channel, user=user)
    after = row_counts(app.db)
    assert response.status_code == 200, (response.status_code, text)
    assert_no_traceback(response.text)
    opened = len(app.fake.calls_to("views.open")) > views_before
    assert response.text.strip() or opened, f"no answer to {command} {text!r}"
    if any(marker in response.text for marker in REFUSALS):
        assert not changed(before, after), (text, response.text[:200], changed(before, after))
    if opened:
        assert not changed(before, after), "opening a form writes nothing"
    return response


def assert_outbox_delivers(app):
    app.deliver(rounds=30)
    with app.db.session() as s:
        stuck = list(s.exec(select(OutboxItem).where(OutboxItem.status == "pending",
                                                     OutboxItem.last_error.is_not(None))))
    assert not stuck, [(item.kind, item.last_error) for item in stuck]


@fuzz(120)
@given(verb=st.sampled_from(INCIDENT_VERBS), args=arguments, inside=st.booleans(),
       user=st.sampled_from([LEAD, "U0DECLARER", "U0ADMIN", "U0RANDOM"]))
def test_incident_command_text(app, verb, args, inside, user):
    channel = app.incident.channel_id if inside else "C0GENERAL"
    run(app, "/incident", f"{verb} {args}", channel=channel, user=user)


@fuzz(100)
@given(verb=st.sampled_from(RISK_VERBS), args=arguments, user=st.sampled_from([OWNER, APPROVER, "U0RANDOM"]))
def test_risk_command_text(app, verb, args, user):
    run(app, "/risk", f"{verb} {args}", channel="C0GENERAL", user=user)


def test_whatever_the_commands_queued_is_delivered(app):
    """A fixed run over every subcommand with awkward text, then the outbox: nothing left failing."""
    channel = app.incident.channel_id
    for text in ["note <!channel> & <@U0EVIL> \x1b[31m \u202e ﬁ 🔥", "note " + "x" * 12_000,
                 "correct #1 <script>alert(1)</script>", f"role comms <@{OWNER}>", "severity sev1",
                 "status monitoring", f"action <@{OWNER}> 3d <!here> rotate", "timeline", "playbook generic",
                 "resolve", "actions", "actions INC-1"]:
        run(app, "/incident", text, channel=channel, user=LEAD)
    for text in ["list all", "show RISK-1", "link RISK-1 INC-1", f"action RISK-1 <@{OWNER}> 2w <!channel> fix"]:
        run(app, "/risk", text, channel="C0GENERAL", user=OWNER)
    assert_outbox_delivers(app)
