"""User text never reaches Slack, HTML or a spreadsheet in a form that acts.

Slack: a full incident and risk lifecycle with hostile text in every field a person fills in (forms,
commands, a pinned message), then every Web API call Vigil made to the fake Slack, every
`response_url` reply and every command answer is scanned: no mrkdwn text may contain a raw
`<!channel>`, `<!here>`, `<@U…>`, `<#C…>`, link or `<script>` that came from a user (Slack decodes
only `&`, `<`, `>`, so escaping those three is what keeps `<!channel>` from pinging everyone).
HTML: the timeline export. CSV: every export neutralises cells starting with = + - @, tab or CR.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from click.testing import CliRunner
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.eventlog import Event
from vigil_ir.playbooks.models import PlaybookStep
from vigil_ir.risks.models import RiskApproval
from vigil_ir.slack import blocks as incident_blocks
from vigil_ir.slack import risk_blocks
from tests import slack_requests as sr
from tests.risk_fixtures import ADMIN, APPROVER, OWNER, harness, make_risk

HOSTILE = ("<!channel> <!here|here> <!everyone> <@U0EVIL> <#C0EVIL|x> <!subteam^S0EVIL> & "
           "<script>alert(1)</script> <https://evil.example|click>")
# What must never appear in mrkdwn that Vigil sends (all of it comes only from HOSTILE).
ACTIVE = re.compile(r"<!(channel|here|everyone|subteam)|<@U0EVIL|<#C0EVIL|<script|<https://evil")
LEAD, TEXT, SELECT = "U0LEAD", "plain_text_input", "static_select"


def mrkdwn_texts(value, *, top: bool = True):
    """Every string Slack would render as mrkdwn in a message, modal or home tab payload."""
    if isinstance(value, dict):
        if value.get("type") == "mrkdwn" and isinstance(value.get("text"), str):
            yield value["text"]
        if top and isinstance(value.get("text"), str) and value.get("type") is None:
            yield value["text"]  # chat.postMessage text / ephemeral reply text (mrkdwn by default)
        for key, inner in value.items():
            if key != "text" or not isinstance(inner, str):
                yield from mrkdwn_texts(inner, top=False)
    elif isinstance(value, list):
        for inner in value:
            yield from mrkdwn_texts(inner, top=False)


class Recorder:
    """Every answer the app gives to a command or a form, for the scan."""

    def __init__(self, app):
        self.app, self.answers = app, []

    def command(self, text, **kwargs):
        response = self.app.command(text, **kwargs)
        assert response.status_code == 200, response.text
        self.answers.append(response.json() if response.headers.get("content-type", "").startswith(
            "application/json") else {"text": response.text})
        return response

    def submit(self, view, values, **kwargs):
        response = self.app.submit(view, values, **kwargs)
        assert response.status_code == 200 and not response.content, response.text
        return response


def plain(value):
    return sr.input_value(TEXT, value)


@pytest.fixture
def app(db, fake_slack, settings_for):
    h = harness(db, fake_slack, settings_for, VIGIL_ADMINS=ADMIN)
    yield h
    h.client.close()


def lifecycle(app, fake_slack) -> Recorder:
    r = Recorder(app)
    r.command(f"declare {HOSTILE}", user="U0DECLARER")
    declare_view = app.last_view("incident_declare")
    r.submit(declare_view, {"title": plain(f"DB {HOSTILE}"[:150]), "severity": sr.input_value(SELECT, "sev1"),
                            "type": sr.input_value(SELECT, "availability"), "description": plain(HOSTILE)},
             user="U0DECLARER")
    app.deliver()
    from vigil_ir.incidents.models import Incident

    with app.db.session() as s:
        incident = s.exec(select(Incident)).one()
    channel = incident.channel_id
    r.command(f"lead <@{LEAD}>", channel=channel, user="U0DECLARER")
    r.command(f"role comms <@U0COMMS|{HOSTILE}>", channel=channel, user=LEAD)
    note = r.command(f"note {HOSTILE}", channel=channel, user=LEAD).text
    note_id = re.search(r"note #(\d+)", note).group(1)
    r.command(f"correct {note_id} fixed {HOSTILE}", channel=channel, user=LEAD)
    r.command(f"action <@{OWNER}> 3d {HOSTILE}", channel=channel, user=LEAD)
    r.command("update", channel=channel, user=LEAD)
    r.submit(app.last_view("incident_update"), {"status": sr.input_value(SELECT, "identified"),
                                                "summary": plain(HOSTILE)}, user=LEAD)
    r.command("playbook db-failover", channel=channel, user=LEAD)
    app.deliver()
    with app.db.session() as s:
        steps = {st.step_id: st for st in s.exec(select(PlaybookStep))}
    r.submit(incident_blocks.done_modal(steps["promote"]), {"value": plain(HOSTILE)}, user=LEAD)
    r.submit(incident_blocks.skip_modal(steps["notify-customers"]), {"value": plain(HOSTILE)}, user=LEAD)
    # A message with hostile text is pinned, then made into a follow-up action with the shortcut.
    fake_slack.add_message(channel, "1700000000.000100", HOSTILE, user="U0AUTHOR")
    app.event({"type": "reaction_added", "user": LEAD, "reaction": "pushpin",
               "item": {"type": "message", "channel": channel, "ts": "1700000000.000100"}})
    app.post(sr.message_shortcut("create_action", channel=channel, user=LEAD,
                                 message={"ts": "1700000000.000100", "text": HOSTILE, "user": "U0AUTHOR"}))
    r.submit(app.last_view("action_item_create"), {
        "description": plain(HOSTILE), "owner": {"type": "users_select", "selected_user": OWNER},
        "due_on": {"type": "datepicker", "selected_date": "2099-01-01"}}, user=LEAD)
    app.deliver()
    r.command("timeline", channel=channel, user=LEAD)
    r.command("actions", channel=channel, user=LEAD)
    r.command("resolve", channel=channel, user=LEAD)
    r.command("close", channel=channel, user=LEAD)
    close_view = app.last_view("incident_close")
    values = {"customer_impact": plain(HOSTILE), "root_cause": plain(HOSTILE), "lessons_learned": plain(HOSTILE),
              "follow_ups": plain(f"{HOSTILE}\n2099-01-01 {HOSTILE}")}
    if any(b.get("block_id") == "override_reason" for b in close_view["blocks"]):
        values["override_reason"] = plain(HOSTILE)
    r.submit(close_view, values, user=LEAD)
    r.command("pir", channel=channel, user=LEAD)
    pir = {name: plain(HOSTILE) for name in ("summary", "root_cause", "contributing_factors", "went_well",
                                             "went_poorly", "detection_gap", "plan_change_ref")}
    pir.update(held_at={"type": "datetimepicker", "selected_date_time": 1_700_000_000},
               attendees={"type": "multi_users_select", "selected_users": [LEAD]},
               plan_change={"type": "radio_buttons", "selected_option": {"value": "yes"}})
    r.submit(app.last_view("incident_pir"), pir, user=LEAD)
    # The risk register: add, list, show, review, reject.
    r.command("add", command="/risk", user=OWNER)
    r.submit(app.last_view("risk_add"), {
        "title": plain(HOSTILE[:120]), "statement": plain(HOSTILE), "description": plain(HOSTILE),
        "category": sr.input_value(SELECT, "security"), "risk_type": sr.input_value(SELECT, "internal"),
        "owner": {"type": "users_select", "selected_user": OWNER}, "inherent_likelihood": sr.input_value(SELECT, "3"),
        "inherent_impact": sr.input_value(SELECT, "3"), "treatment": sr.input_value(SELECT, "mitigate"),
        "treatment_plan": plain(HOSTILE)}, user=OWNER)
    r.command("list all", command="/risk", user=OWNER)
    r.command("show RISK-1", command="/risk", user=OWNER)
    r.command(f"link RISK-1 {incident.key}", command="/risk", user=OWNER)
    r.command("review RISK-1", command="/risk", user=OWNER)
    r.submit(app.last_view("risk_review"), {
        "outcome": sr.input_value(SELECT, "closure_requested"), "rationale": plain(HOSTILE),
        "closure_reason": sr.input_value(SELECT, "system_retired")}, user=OWNER)
    app.deliver()
    with app.db.session() as s:
        approval = s.exec(select(RiskApproval)).one()
        from vigil_ir.risks.models import Risk

        risk = s.get(Risk, approval.risk_id)
    r.submit(risk_blocks.reject_modal(approval, risk), {"comment": plain(HOSTILE)}, user=APPROVER)
    r.command("show RISK-1", command="/risk", user=OWNER)
    r.command(f"action RISK-1 <@{OWNER}> 2w {HOSTILE}", command="/risk", user=OWNER)
    for user in (OWNER, LEAD):
        app.event({"type": "app_home_opened", "user": user, "tab": "home"})
    app.deliver(rounds=30)
    return r


def test_no_user_text_reaches_slack_unescaped_across_a_full_lifecycle(app, fake_slack):
    recorder = lifecycle(app, fake_slack)
    scanned = []
    for call in fake_slack.calls:
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.publish",
                           "views.update", "views.push"):
            scanned += [(call.method, text) for text in mrkdwn_texts(call.params)]
    scanned += [("response_url", text) for body in fake_slack.responses() for text in mrkdwn_texts(body)]
    scanned += [("command answer", text) for answer in recorder.answers for text in mrkdwn_texts(answer)]
    leaks = [(where, text[:300]) for where, text in scanned if ACTIVE.search(text)]
    assert not leaks, leaks
    echoed = [text for _, text in scanned if "&lt;!channel&gt;" in text]
    assert len(echoed) >= 20, "the hostile text was echoed (escaped) in many messages"
    assert any(f"<@{LEAD}>" in text for _, text in scanned), "Vigil's own mentions still work"
    with app.db.session() as s:
        kinds = {e.kind for e in s.exec(select(Event))}
    assert {"incident.closed", "pir.completed", "risk.approval_rejected", "incident.message_added"} <= kinds


def test_the_pir_document_and_html_timeline_do_not_carry_raw_html(app, fake_slack):
    lifecycle(app, fake_slack)
    document = next(iter(fake_slack.uploads.values())).decode()
    assert "alert(1)" in document and "<script" not in document and "<https://evil" not in document
    result = CliRunner().invoke(main, ["export", "timeline", "INC-1", "--format", "html"], obj={"database": app.db})
    assert result.exit_code == 0, result.output
    assert "<script>alert" not in result.output and "&lt;script&gt;alert(1)&lt;/script&gt;" in result.output
    assert "<https://evil" not in result.output


# ---- CSV: formula injection ------------------------------------------------------------------------
FORMULAS = ["=HYPERLINK(\"https://evil.example\",\"x\")", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1",
            "＝1+1"]


def test_every_csv_export_neutralises_formulas(app, fake_slack, tmp_path):
    from vigil_ir.exports.csvsafe import FORMULA_PREFIXES

    r = Recorder(app)
    incident = app.declare(FORMULAS[0], user="U0DECLARER")
    channel = incident.channel_id
    for formula in FORMULAS:
        r.command(f"note {formula}", channel=channel, user="U0DECLARER")
        r.command(f"action <@{OWNER}> 3d {formula}", channel=channel, user="U0DECLARER")
    r.command("resolve", channel=channel, user="U0DECLARER")
    for index, formula in enumerate(FORMULAS):
        make_risk(app.db, title=f"{formula} risk {index}"[:120] if formula[0] in "\t\r" else formula + f" {index}",
                  statement=formula + " happens and stops checkout for everyone",
                  treatment_plan=formula)
    runs = {"timeline": ["export", "timeline", "INC-1", "--format", "csv"],
            "incidents": ["export", "incidents", "--from", "2000-01-01", "--to", "2099-12-31"],
            "actions": ["export", "actions", "--from", "2000-01-01", "--to", "2099-12-31"],
            "pirs": ["export", "pirs", "--from", "2000-01-01", "--to", "2099-12-31"],
            "register": ["export", "risks"],
            "reviews": ["export", "reviews", "--from", "2000-01-01", "--to", "2099-12-31"],
            "risks export": ["risks", "export"],
            "sample": ["sample", "actions", "--from", "2000-01-01", "--to", "2099-12-31", "--seed", "1"]}
    neutralised = 0
    for name, args in runs.items():
        result = CliRunner().invoke(main, args, obj={"database": app.db})
        assert result.exit_code == 0, (name, result.output)
        text = result.stdout if hasattr(result, "stdout") else result.output
        rows = list(csv.reader(io.StringIO(text.split("\nSeed:")[0])))
        for row in rows[1:]:
            for cell in row:
                assert not cell.startswith(FORMULA_PREFIXES), (name, cell)
                neutralised += cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES)
    assert neutralised >= 20
