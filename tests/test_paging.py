"""Pages out: `/incident page` → the outbox → fake PagerDuty Events API v2 / Opsgenie Alert API on
loopback; the providers' webhooks (signed as documented) bring acknowledgements and resolutions back
onto the incident's timeline; resolving the incident resolves its pages. Both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports.population import incident_population
from vigil_ir.incidents import service as incidents
from vigil_ir.incidents.models import Incident
from vigil_ir.paging.models import Page
from vigil_ir.people.models import Person
from tests import slack_requests as sr
from tests.conftest import VigilHarness
from tests.fakes import alert_senders as senders
from tests.fakes.paging_api import OPSGENIE_KEY, fake_paging  # noqa: F401  (fixture)


def harness(db, fake_slack, settings_for, fake_paging, **extra):
    from vigil_ir.runtime import build_runtime

    settings = settings_for(DATABASE_URL=db.url, **senders.settings_overrides(),
                            VIGIL_PAGERDUTY_SERVICES="checkout=R0UTINGKEY0000000000000000000000",
                            VIGIL_OPSGENIE_RESPONDERS="ops=team:Ops Team+schedule:Ops Primary",
                            VIGIL_OPSGENIE_API_KEY=OPSGENIE_KEY, VIGIL_PAGERDUTY_EVENTS_URL=fake_paging.url,
                            VIGIL_OPSGENIE_API_URL=fake_paging.url, **extra)
    return VigilHarness(build_runtime(settings, db), fake_slack)


@pytest.fixture
def paging(db, fake_slack, settings_for, fake_paging):
    vigil = harness(db, fake_slack, settings_for, fake_paging)
    vigil.paging = fake_paging
    yield vigil
    vigil.client.close()


def page(vigil, incident, target_id: str, *, user="U0DECLARER", message="Checkout is down, please join"):
    answer = vigil.command("page", user=user, channel=incident.channel_id)
    assert answer.status_code == 200, answer.text
    view = vigil.last_view("incident_page")
    submitted = vigil.submit(view, {"target": sr.input_value("static_select", target_id),
                                    "message": sr.input_value("plain_text_input", message)}, user=user)
    assert submitted.status_code == 200 and submitted.text in ("", "{}"), submitted.text
    with vigil.db.session() as session:
        return session.exec(select(Page).order_by(Page.id.desc())).first()


def webhook(vigil, source: str, payload: dict):
    body = senders.encode(payload)
    answer = vigil.client.post(f"/integrations/alerts/{source}", content=body, headers=senders.headers_for(source, body))
    assert answer.status_code == 200, answer.text
    vigil.deliver()
    return answer.json()


def stream(vigil, incident) -> list[Event]:
    with vigil.db.session() as session:
        return list(session.exec(select(Event).where(Event.stream == incident.stream).order_by(Event.stream_seq)))


def kinds(vigil, incident, prefix="page."):
    return [e.kind for e in stream(vigil, incident) if e.kind.startswith(prefix)]


def test_page_pagerduty_from_slack_and_see_the_acknowledgement_on_the_timeline_and_in_the_exports(paging):
    incident = paging.declare("Checkout returns 500s", severity="sev2")
    paging.command("page", channel=incident.channel_id)
    options = [o["value"] for o in paging.last_view("incident_page")["blocks"][0]["element"]["options"]]
    assert options == ["pagerduty:checkout", "opsgenie:ops"]
    sent = page(paging, incident, "pagerduty:checkout")
    assert (sent.status, sent.dedup_key) == ("requested", "vigil-inc-1-page-1")
    paging.deliver()
    [trigger] = paging.paging.to("/v2/enqueue")
    assert trigger.body["routing_key"] == "R0UTINGKEY0000000000000000000000"
    assert (trigger.body["event_action"], trigger.body["dedup_key"]) == ("trigger", "vigil-inc-1-page-1")
    assert trigger.body["payload"]["severity"] == "error" and trigger.body["payload"]["source"] == "vigil"
    assert trigger.body["payload"]["summary"] == "INC-1: Checkout is down, please join"
    assert kinds(paging, incident) == ["page.requested", "page.triggered"]
    # PagerDuty's webhook says the responder acknowledged (the incident's incident_key is our dedup_key).
    later = clock.iso(clock.now() + timedelta(minutes=3))
    ack = senders.pagerduty("incident.acknowledged", incident_key=sent.dedup_key, status="acknowledged",
                            occurred_at=later, agent="Dana Oncall")
    assert webhook(paging, "pagerduty", ack)["pages"] == 1
    assert webhook(paging, "pagerduty", ack)["duplicates"] == 1  # redelivered: recorded once
    [acked] = [e for e in stream(paging, incident) if e.kind == "page.acknowledged"]
    assert (acked.actor, acked.data["responder"], clock.iso(acked.occurred_at)) == ("system:pagerduty", "Dana Oncall", later)
    assert any("acknowledged: the page to *checkout*" in c.params.get("text", "")
               for c in paging.fake.ok_calls("chat.postMessage") if c.params["channel"] == incident.channel_id)
    with paging.db.session() as session:
        [row] = incident_population(session, clock.now() - timedelta(days=1), clock.now() + timedelta(days=1))
        stored = session.get(Page, sent.id)
    assert (stored.status, clock.iso(stored.acknowledged_at)) == ("acknowledged", later)
    assert (row["pages"], row["page_acknowledged_at"], row["acknowledged_at"]) == (1, later, later)
    assert row["paged_at"] == clock.iso(sent.requested_at)
    assert row["minutes_to_page_acknowledge"] == row["minutes_to_acknowledge"] == pytest.approx(3, abs=0.2)


def test_provider_5xx_and_429_are_retried_and_the_page_is_sent_once(paging):
    incident = paging.declare("Checkout returns 500s")
    paging.paging.fail_next(503)
    paging.paging.fail_next(429, retry_after=30)
    sent = page(paging, incident, "pagerduty:checkout")
    now = clock.now()
    for minutes in (0, 1, 2, 3):
        with clock.frozen(now + timedelta(minutes=minutes)):
            paging.deliver()
    requests = paging.paging.to("/v2/enqueue")
    assert len(requests) == 3 and {r.body["dedup_key"] for r in requests} == {sent.dedup_key}
    assert len(paging.paging.answered("/v2/enqueue")) == 1
    assert kinds(paging, incident) == ["page.requested", "page.triggered"]
    with clock.frozen(now + timedelta(minutes=10)):
        assert paging.deliver() == 0  # nothing left to send: no second page
    assert len(paging.paging.to("/v2/enqueue")) == 3


def test_opsgenie_responders_acknowledgement_by_email_and_resolution_with_the_incident(paging):
    incident = paging.declare("Database failover")
    with paging.db.session() as session:
        session.add(Person(user_id="U0DANA", name="dana", real_name="Dana Oncall", email="Dana@Example.com",
                           first_seen=clock.now()))
    sent = page(paging, incident, "opsgenie:ops")
    paging.deliver()
    [create] = paging.paging.to("/v2/alerts")
    assert create.headers["authorization"] == f"GenieKey {OPSGENIE_KEY}"
    assert create.body["alias"] == sent.dedup_key and create.body["priority"] == "P2"
    assert create.body["responders"] == [{"type": "team", "name": "Ops Team"}, {"type": "schedule", "name": "Ops Primary"}]
    webhook(paging, "opsgenie", senders.opsgenie("Acknowledge", alias=sent.dedup_key, username="dana@example.com"))
    [acked] = [e for e in stream(paging, incident) if e.kind == "page.acknowledged"]
    assert acked.data["responder_user"] == "U0DANA"
    assert any("(<@U0DANA>)" in c.params.get("text", "") for c in paging.fake.ok_calls("chat.postMessage"))
    # Resolving the incident resolves the page at Opsgenie, once, however often the sweep runs.
    assert paging.command("resolve", channel=incident.channel_id).status_code == 200
    paging.sweep()
    paging.sweep()
    paging.deliver()
    [close] = paging.paging.to("/close")
    assert close.path == f"/v2/alerts/{sent.dedup_key}/close" and close.query == {"identifierType": ["alias"]}
    assert kinds(paging, incident).count("page.resolve_requested") == 1
    webhook(paging, "opsgenie", senders.opsgenie("Close", alias=sent.dedup_key, updated_at=1796364900000000000))
    assert kinds(paging, incident)[-1] == "page.resolved"
    with paging.db.session() as session:
        assert session.get(Page, sent.id).status == "resolved"


def test_resolving_pages_with_the_incident_can_be_turned_off(db, fake_slack, settings_for, fake_paging):
    vigil = harness(db, fake_slack, settings_for, fake_paging, VIGIL_RESOLVE_PAGES_WITH_INCIDENT="false")
    try:
        incident = vigil.declare("Database failover")
        page(vigil, incident, "pagerduty:checkout")
        vigil.deliver()
        vigil.command("resolve", channel=incident.channel_id)
        vigil.sweep()
        vigil.deliver()
        assert [r.body["event_action"] for r in fake_paging.to("/v2/enqueue")] == ["trigger"]
    finally:
        vigil.client.close()


def test_paging_a_closed_incident_is_refused_and_the_policy_decides_who_may_page(db, fake_slack, settings_for,
                                                                                 fake_paging):
    vigil = harness(db, fake_slack, settings_for, fake_paging, VIGIL_PERMISSIONS="page=lead,admins")
    try:
        incident = vigil.declare("Database failover")
        refused = vigil.command("page", user="U0DECLARER", channel=incident.channel_id)
        assert "Only the incident lead (none yet) or an admin" in refused.text
        assert vigil.fake.calls_to("views.open")[-1].params["view"]["callback_id"] != "incident_page"
        with vigil.db.session() as session:
            stored = session.get(Incident, incident.id)
            incidents.resolve(session, incident=stored, actor="U0ADMIN")
            incidents.close(session, incident=stored, actor="U0ADMIN", admins=frozenset({"U0ADMIN"}),
                            customer_impact="none", root_cause="disk", lessons_learned="")
        closed = vigil.command("page", user="U0ADMIN", channel=incident.channel_id)
        assert "closed; paging for it is refused" in closed.text
        with vigil.db.session() as session:
            assert session.exec(select(Page)).all() == []
    finally:
        vigil.client.close()


def test_an_escalation_is_recorded_and_the_timeline_says_acknowledgement_counts_from_the_page(paging):
    incident = paging.declare("Checkout returns 500s")
    sent = page(paging, incident, "pagerduty:checkout")
    paging.deliver()
    escalated = senders.pagerduty("incident.escalated", incident_key=sent.dedup_key, agent=None)
    assert webhook(paging, "pagerduty", escalated)["pages"] == 1
    ack = senders.pagerduty("incident.acknowledged", incident_key=sent.dedup_key, agent="Dana Oncall",
                            occurred_at=clock.iso(clock.now() + timedelta(minutes=4)))
    webhook(paging, "pagerduty", ack)
    assert kinds(paging, incident) == ["page.requested", "page.triggered", "page.escalated", "page.acknowledged"]
    assert any(":arrow_double_up: escalated: the page to *checkout*" in c.params.get("text", "")
               for c in paging.fake.ok_calls("chat.postMessage"))
    timeline = paging.command("timeline", channel=incident.channel_id).text
    assert "time to acknowledge (from the first page): 4" in timeline
    assert "paged *checkout* (pagerduty)" in timeline and "acknowledged by Dana Oncall" in timeline


def test_a_webhook_about_a_page_vigil_never_sent_is_kept_as_unmatched(paging):
    stray = senders.pagerduty("incident.acknowledged", incident_key="vigil-inc-99-page-9", status="acknowledged")
    assert webhook(paging, "pagerduty", stray)["unmatched"] == 1
    with paging.db.session() as session:
        [event] = session.exec(select(Event).where(Event.stream == "integration:pagerduty")).all()
    assert (event.kind, event.data["key"]) == ("integration.unmatched", "vigil-inc-99-page-9")


def test_the_bundle_carries_alerts_and_pages_and_its_checker_recomputes_the_page_columns(paging, tmp_path):
    import json
    import zipfile

    from tests.test_bundle_verify import verify_cli
    from vigil_ir.exports.bundle.export import export_bundle

    webhook(paging, "alertmanager", senders.alertmanager([senders.am_alert("probe-1")]))
    incident = paging.declare("Checkout returns 500s")
    ts = [c for c in paging.fake.ok_calls("chat.postMessage") if c.params["channel"] == "C0TRIAGE"][-1].response["ts"]
    group_id = next(e["value"] for c in paging.fake.ok_calls("chat.postMessage") if c.params["channel"] == "C0TRIAGE"
                    for b in c.params["blocks"] if b["type"] == "actions" for e in b["elements"])
    paging.post(sr.block_action("alert_attach", group_id, channel="C0TRIAGE", message_ts=ts))
    view = paging.last_view("alert_attach")
    paging.submit(view, {"incident": sr.input_value("static_select", str(incident.id))}, user="U0CLICKER")
    sent = page(paging, incident, "pagerduty:checkout")
    paging.deliver()
    webhook(paging, "pagerduty", senders.pagerduty("incident.acknowledged", incident_key=sent.dedup_key,
                                                   occurred_at=clock.iso(clock.now() + timedelta(minutes=2))))
    start = clock.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    end = start + timedelta(days=3)
    with clock.frozen(end + timedelta(hours=1)):
        export_bundle(paging.db, start=start, end=end, output=tmp_path / "evidence.zip", actor="cli:auditor")
    with zipfile.ZipFile(tmp_path / "evidence.zip") as archive:
        [row] = json.loads(archive.read("incidents.json"))
        events = archive.read("incident_events.json").decode()
    assert (row["alerts"], row["pages"], row["first_alert_at"]) == (1, 1, "2026-12-04T06:00:00.123456Z")
    assert row["minutes_to_page_acknowledge"] == row["minutes_to_acknowledge"] == pytest.approx(2, abs=0.2)
    assert "page.acknowledged" in events and "incident.alert_fired" in events and "incident.detected_at_changed" in events
    result = verify_cli(tmp_path / "evidence.zip")
    assert result.exit_code == 0, result.output


def test_the_recorded_configuration_names_sources_and_page_targets_but_no_credential(paging):
    from vigil_ir.config_evidence import document

    recorded = document(paging.runtime.settings)["alerts_and_pages"]
    assert recorded["sources_enabled"] == ["alertmanager", "generic", "grafana", "opsgenie", "pagerduty"]
    assert recorded["page_targets"] == {"opsgenie:ops": {"provider": "opsgenie",
                                                         "responders": ["team:Ops Team", "schedule:Ops Primary"]},
                                        "pagerduty:checkout": {"provider": "pagerduty", "responders": []}}
    assert "R0UTINGKEY" not in str(recorded) and OPSGENIE_KEY not in str(recorded)
    assert senders.PAGERDUTY_SECRET not in str(recorded)
