"""Decisions visible: a close with open items shows the override (who, why, what was open) in the
population, the packet, the timeline summary and the dashboard; a linked risk shows on the packet."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from vigil_ir import clock
from vigil_ir.exports.population import incident_population
from vigil_ir.exports.timeline import render_timeline
from vigil_ir.incidents import queries, service
from vigil_ir.people import Profile, record_profile

T0 = datetime(2025, 3, 10, 9, 0, tzinfo=timezone.utc)
OPEN = ["required step \"Notify customers\" (generic v1) open", "deadline \"Regulator notice\" not met"]


def _closed_with_override(db) -> str:
    with clock.frozen(T0 - timedelta(days=1)), db.session() as s:
        record_profile(s, user_id="U0LEAD", profile=Profile(real_name="Dana Kim"))
    with clock.frozen(T0), db.session() as s:
        key = service.declare(s, actor="U0LEAD", title="Checkout down", severity="sev2", type="availability").key
    with clock.frozen(T0 + timedelta(minutes=5)), db.session() as s:
        incident = queries.by_key(s, key)
        service.assign_role(s, incident=incident, actor="U0LEAD", role="lead", user="U0LEAD")
        service.resolve(s, incident=incident, actor="U0LEAD")
    with clock.frozen(T0 + timedelta(hours=2)), db.session() as s:
        service.close(s, incident=queries.by_key(s, key), actor="U0LEAD", admins=frozenset(),
                      customer_impact="20 min errors", root_cause="Bad deploy", lessons_learned="Canary",
                      open_items=OPEN, override_reason="Legal sends the customer notice")
    return key


def test_a_close_override_shows_in_the_population_packet_and_summary(db):
    key = _closed_with_override(db)
    with db.session() as s:
        (row,) = incident_population(s, T0 - timedelta(days=1), T0 + timedelta(days=1))
        markdown = render_timeline(s, queries.by_key(s, key), "md")
        html = render_timeline(s, queries.by_key(s, key), "html")
    assert row["closed_with_open_items"] == "; ".join(OPEN)
    assert row["close_override_reason"] == "Legal sends the customer notice"
    fact = ("| Closed with items open | " + "; ".join(OPEN) +
            ". Override by Dana Kim (U0LEAD) at 2025-03-10 11:00:00 UTC: Legal sends the customer notice |")
    assert fact in markdown
    assert "Closed with items open" in html and "Legal sends the customer notice" in html
    assert "Closed with items still open (" in markdown and 'override reason: "Legal sends the customer notice"' in markdown


def test_a_linked_risk_shows_on_the_incident_packet_and_the_incident_on_the_risk_history(db):
    import json

    from vigil_ir.eventlog import events_for_stream
    from vigil_ir.exports.describe import describe
    from vigil_ir.risks import service as risks
    from tests.risk_fixtures import make_risk

    key = _closed_with_override(db)
    risk = make_risk(db, owner="U0LEAD")
    with db.session() as s:
        risks.link_incident(s, risk=s.get(type(risk), risk.id), actor="U0LEAD", incident_key=key)
    with db.session() as s:
        markdown = render_timeline(s, queries.by_key(s, key), "md")
        document = json.loads(render_timeline(s, queries.by_key(s, key), "json"))
        history = [describe(e) for e in events_for_stream(s, risk.stream)]
    assert f"| Linked risks | {risk.key} Laptop theft exposes customer data (owner Dana Kim (U0LEAD)" in markdown
    assert document["linked_risks"] == [{"key": risk.key, "title": "Laptop theft exposes customer data",
                                         "owner": "U0LEAD", "status": "in_treatment", "owner_name": "Dana Kim"}]
    assert any(line.startswith(f"linked incident {key}") for line in history)


def test_a_deadline_ended_by_a_decision_shows_that_outcome_not_missed(vigil):
    from sqlmodel import select

    from vigil_ir.playbooks import runner
    from vigil_ir.playbooks.models import PlaybookDeadline

    vigil.fake.set_user("U0LEAD", real_name="Dana Kim")
    incident = vigil.declare("Primary DB unreachable", severity="sev2")
    channel = incident.channel_id
    vigil.command("playbook db-failover", channel=channel, user="U0LEAD")
    decision = "deadline customer-notice not-reportable No customer data was affected"
    assert "Only the incident lead" in vigil.command(decision, channel=channel, user="U0LEAD").text
    assert "Usage" in vigil.command("deadline customer-notice maybe", channel=channel, user="U0DECLARER").text
    vigil.command("lead <@U0LEAD|dana>", channel=channel, user="U0DECLARER")
    assert "Recorded" in vigil.command(decision, channel=channel, user="U0LEAD").text
    again = vigil.command(decision, channel=channel, user="U0LEAD").text
    assert "already decided" in again
    vigil.sweep()
    vigil.deliver()
    with vigil.db.session() as s:
        deadline = s.exec(select(PlaybookDeadline).where(PlaybookDeadline.deadline_id == "customer-notice")).one()
        start = deadline.starts_at
    swept = vigil.sweep(start + timedelta(hours=6))  # past the 4 h: a decided clock is not missed
    assert swept["playbook.deadlines"] == 0
    with vigil.db.session() as s:
        incident = queries.by_key(s, "INC-1")
        deadline = s.exec(select(PlaybookDeadline).where(PlaybookDeadline.deadline_id == "customer-notice")).one()
        assert (deadline.status, deadline.decision, deadline.decided_by) == ("decided", "not reportable", "U0LEAD")
        assert not [b for b in runner.close_blockers(s, incident) if "Tell affected customers" in b]
        markdown = render_timeline(s, incident, "md")
    assert ("| Tell affected customers | " in markdown
            and "not reportable (decided: No customer data was affected) by Dana Kim (U0LEAD)" in markdown)
    assert "(met by step notify-customers)" in markdown
    assert 'ended deadline "Tell affected customers" by a decision: not reportable' in markdown
