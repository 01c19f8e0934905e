"""Risk treatment actions share the follow-up action machinery."""

from sqlmodel import select

from vigil_ir.eventlog import events_for_stream
from vigil_ir.followup.models import ActionItem
from tests.risk_fixtures import make_risk


def test_risk_action_creates_a_tracked_action_and_a_risk_event(vigil, fake_slack):
    risk = make_risk(vigil.db)
    reply = vigil.command(f"action {risk.key} <@U0FIXER|fixer> 2w Rotate the laptop disk keys", command="/risk",
                          user="U0OWNER").text
    assert "Created treatment action *ACT-1*" in reply
    with vigil.db.session() as s:
        action = s.exec(select(ActionItem)).one()
        risk_events = [e.kind for e in events_for_stream(s, risk.stream)]
    assert action.risk_id == risk.id and action.owner == "U0FIXER" and action.incident_id is None
    assert risk_events[-1] == "risk.treatment_action_added"
    vigil.deliver()
    assert any(c.params["channel"] == "U0FIXER" for c in fake_slack.calls_to("chat.postMessage"))
    listed = vigil.command("actions open", user="U0FIXER").text
    assert "ACT-1" in listed and risk.key in listed


def test_risk_action_bad_input_gets_usage_and_writes_nothing(vigil):
    risk = make_risk(vigil.db)
    for text in (f"action {risk.key} nobody 2w x", f"action {risk.key} <@U0X> someday x", "action RISK-99 <@U0X> 2w x",
                 "action"):
        reply = vigil.command(text, command="/risk").text
        assert "Usage" in reply or "There is no RISK-99" in reply, (text, reply)
    with vigil.db.session() as s:
        assert s.exec(select(ActionItem)).all() == []
