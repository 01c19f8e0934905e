"""Every Block Kit builder, fed arbitrary text (long, unicode, bidi controls, entity-heavy), builds a
payload Slack accepts: the limits in vigil_ir.slack.limits hold and no cut splits an escape or a token.

Payloads are checked as they leave (bidi controls shown as markers, as the Slack client does), but
before `limits.enforce`: the builders themselves must stay within the limits, `enforce` is only the net.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil_ir.bidi import neutralise_all
from vigil_ir.eventlog import Event
from vigil_ir.followup.models import ActionItem
from vigil_ir.incidents.models import Incident
from vigil_ir.playbooks.models import PlaybookDeadline, PlaybookRun, PlaybookStep
from vigil_ir.risks.models import Risk, RiskApproval, RiskReview
from vigil_ir.risks.scoring import CURRENT
from vigil_ir.slack import action_blocks, blocks, checklist, limits, risk_blocks, signoff

NOW = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
PIECES = list("&<>*_~`|\n a") + ["\u202e", "\u2066", "é", "👍", "<!channel>", "&amp;", "<@U123>", "\U0001F468\u200d\U0001F469"]
hostile = st.lists(st.sampled_from(PIECES), max_size=400).map("".join)
short_hostile = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def checked(payload) -> list[str]:
    return limits.violations(neutralise_all(payload))


def incident(title: str, text: str, number: int = 1) -> Incident:
    return Incident(id=number, number=number, key=f"INC-{number}", title=title[:150], description=text,
                    current_summary=text, root_cause=text, severity="sev2", status="investigating",
                    type="technical", security=True, declared_by="U1", declared_at=NOW, detected_at=NOW,
                    lead="U2", next_update_due=NOW, channel_id="C0INC")


@EXAMPLES
@given(title=hostile, text=hostile, items=st.lists(hostile, max_size=30), number=st.integers(1, 10 ** 12))
def test_incident_messages_and_modals(title, text, items, number):
    inc = incident(title, text, number)
    for payload in (blocks.summary_blocks(inc), blocks.announcement_blocks(inc), blocks.declare_modal(title, '{"origin_channel": "C1"}'),
                    blocks.update_modal(inc), blocks.close_modal(inc, items), blocks.pir_modal(inc),
                    blocks.correct_note_modal(inc, number, text)):
        assert checked(payload) == [], payload


def _step(n: int, title: str, text: str, status: str, phase: str) -> PlaybookStep:
    return PlaybookStep(id=n, run_id=1, step_id=f"s{n}", phase_id=phase, phase_title=title[:150], position=n,
                        title=title[:200], instructions=text, role="lead", required=n % 2 == 0,
                        evidence=["none", "note", "link"][n % 3], due_at=NOW - timedelta(hours=n) if n % 2 else None,
                        status=status, assignee="U3" if n % 4 == 0 else None,
                        completed_by="U4" if status != "open" else None, completed_at=NOW if status != "open" else None,
                        evidence_text=text if status == "done" else None,
                        skip_reason=text if status == "skipped" else None)


@EXAMPLES
@given(title=short_hostile, text=hostile, count=st.integers(1, 130), deadlines=st.integers(0, 12),
       statuses=st.lists(st.sampled_from(["open", "done", "skipped"]), min_size=1, max_size=5),
       page=st.integers(-2, 5))
def test_checklist_pages_and_step_modals(title, text, count, deadlines, statuses, page):
    run = PlaybookRun(id=1, incident_id=1, playbook_id="p-1", version=title[:32], title=title[:150] or "t",
                      sha256="0" * 64, content="", attached_by="U1", attached_at=NOW)
    steps = [_step(n, title or "t", text, statuses[n % len(statuses)], f"p{n // 17}") for n in range(1, count + 1)]
    clocks = [PlaybookDeadline(run_id=1, deadline_id=f"d{n}", label=(title or "d")[:200], duration="4h",
                               starts_from="step:s1", met_by="step:s2", business_days=False,
                               status=["pending", "met", "decided", "missed"][n % 4],
                               due_at=NOW if n % 3 else None, resolved_at=NOW, decision="not-required",
                               decision_reason=text[:1000])
              for n in range(deadlines)]
    assert checked(checklist.checklist_blocks(run, steps, clocks, now=NOW, page=page)) == []
    for step in steps[:3]:
        for modal in (blocks.done_modal(step), blocks.skip_modal(step), blocks.assign_modal(step)):
            assert checked(modal) == [], modal


def _risk(title: str, text: str, number: int) -> Risk:
    return Risk(id=number, number=number, title=title[:120], statement=text, description=text, category="security",
                risk_type="security", owner="U5", methodology=CURRENT.version, inherent_likelihood=4, inherent_impact=5,
                residual_likelihood=2, residual_impact=3, treatment="mitigate", treatment_plan=text,
                treatment_due=date(2026, 4, 1), status="open", cadence=title[:200] or None,
                next_review_due=date(2026, 4, 1), acceptance_expires=date(2026, 9, 1), closure_reason="retired",
                tsc_refs=["CC3.1", "CC9.2"], linked_incidents=["INC-1"], created_at=NOW, created_by="U1",
                updated_at=NOW)


@EXAMPLES
@given(title=hostile, text=hostile, number=st.integers(1, 10 ** 12))
def test_risk_modals_and_show(title, text, number):
    risk = _risk(title, text, number)
    review = RiskReview(id=number, risk_id=number, trigger="scheduled", trigger_ref="x", due_on=date(2026, 3, 1),
                        reviewer="U5", completed_at=NOW, completed_by="U5", outcome="no_change", rationale=text)
    approval = RiskApproval(id=number, review_id=number, risk_id=number, requested_by="U5", requested_at=NOW,
                            comment=text)
    history = [Event(id=n, stream=risk.stream, stream_seq=n, kind=kind, actor="U1", occurred_at=NOW, recorded_at=NOW,
                     data={"rationale": text, "comment": text, "incident": title, "kind": title, "recipient": "U5",
                           "changes": {"title": {"from": title, "to": text}}}, prev_hash="0" * 64, hash="0" * 64)
               for n, kind in enumerate(["risk.reviewed", "risk.updated", "risk.approval_rejected",
                                         "risk.incident_linked", "risk.reminder_sent"] * 4, 1)]
    since = [risk_blocks.describe_event(event) for event in history]
    for payload in (risk_blocks.add_modal("{}"), risk_blocks.review_modal(risk, review, since, str(number)),
                    risk_blocks.reject_modal(approval, risk), risk_blocks.show_blocks(risk, review, history)):
        assert checked(payload) == [], payload


@EXAMPLES
@given(text=hostile, number=st.integers(1, 10 ** 12), status=st.sampled_from(["open", "in_progress", "done"]))
def test_follow_up_action_modals_and_buttons(text, number, status):
    action = ActionItem(id=number, number=number, incident_id=1, description=text, owner="U6", due_on=date(2026, 3, 9),
                        status=status, status_reason=text, ticket_url="https://t.example/" + "x" * 200, evidence=text,
                        created_by="U1", created_at=NOW)
    parent = f"INC-{number}"
    for payload in (action_blocks.update_modal(action, parent, number),
                    action_blocks.create_modal(text, "U6", {"incident_id": number, "text": text[:100]}, parent),
                    [action_blocks.buttons(action)], [{"type": "section", "text": {"type": "mrkdwn", "text":
                                                        limits.fit(action_blocks.line(action, parent, date(2026, 3, 2)))}}]):
        assert checked(payload) == [], payload


def test_sign_off_modal_and_the_playbook_suggestions():
    assert checked(signoff.modal(date(2026, 3, 2))) == []

    class File:
        def __init__(self, n):
            self.playbook = type("P", (), {"title": "T" * 150, "id": f"p-{n}", "version": "1" * 32,
                                           "description": "R&D <ops> " * 300})()

    assert checked(blocks.suggestion_blocks([File(n) for n in range(40)])) == []


def test_enforce_cuts_what_a_builder_let_through_and_says_so(caplog):
    too_much = [{"type": "header", "text": {"type": "plain_text", "text": "H" * 400}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2990 + "&amp;" * 10},
                 "accessory": {"type": "overflow", "action_id": "o", "options": [
                     {"text": {"type": "plain_text", "text": "o" * 80}, "value": str(n)} for n in range(7)]}}] * 30
    assert checked(too_much)
    with caplog.at_level(logging.WARNING, logger="vigil_ir.slack.limits"):
        fixed = limits.enforce(too_much)
    assert checked(fixed) == [] and len(fixed) == limits.MESSAGE_BLOCKS
    assert "cut a Slack payload" in caplog.text
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "A very long modal title indeed"},
             "blocks": [{"type": "input", "label": {"type": "plain_text", "text": "L"},
                         "element": {"type": "plain_text_input", "action_id": "v", "max_length": 10,
                                     "initial_value": "x" * 50}}]}
    fixed = limits.enforce(modal)
    assert checked(fixed) == [] and len(fixed["title"]["text"]) == limits.MODAL_TITLE
    assert modal["title"]["text"] == "A very long modal title indeed"  # a copy: the caller's payload is unchanged


def test_every_web_api_call_and_inline_modal_is_held_to_the_limits(vigil, fake_slack):
    from vigil_ir.outbox.service import enqueue

    with vigil.db.session() as s:
        enqueue(s, kind="slack.post", subject="test", payload={
            "channel": "C0SOMEWHERE", "text": "t" * 50_000,
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "\u202e" * 150}}] * 60})
    vigil.deliver()
    (call,) = fake_slack.calls_to("chat.postMessage")
    assert limits.violations(call.params["blocks"]) == [] and len(call.params["blocks"]) == limits.MESSAGE_BLOCKS
    assert len(call.params["text"]) <= limits.MESSAGE_TEXT
    # A declare form prefilled from the command: 150 bidi controls are 1,200 characters once shown.
    assert vigil.command("declare " + "\u202e" * 150).status_code == 200
    view = vigil.last_view("incident_declare")
    assert limits.violations(view) == []


def test_a_full_app_home_with_hostile_titles_stays_within_the_limits(db):
    """The App Home at its fullest: 20 incidents and 15 risks of the viewer, titles at their longest
    and made of what expands most when shown (bidi controls, `&`)."""
    from vigil_ir.incidents import service as incidents
    from vigil_ir.slack.home import home_view
    from tests.risk_fixtures import OWNER, make_risk

    with db.session() as s:
        for n in range(25):
            incidents.declare(s, actor=OWNER, title=("\u202e&<" * 50)[:150], severity="sev2", type="availability")
    for n in range(20):
        make_risk(db, title=("&\u202e" * 60)[:120])
    from vigil_ir.permissions import Permissions, policy_from_settings
    from vigil_ir.config import Settings

    with db.session() as s:
        view = home_view(s, OWNER, Permissions(policy_from_settings(Settings(_env_file=None, DATABASE_URL=db.url))))
    assert checked(view) == []
    assert sum("*INC-" in str(b) for b in view["blocks"]) == 20
