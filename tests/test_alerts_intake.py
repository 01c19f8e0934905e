"""Alerts in: POST /integrations/alerts/<source> with the bodies and signatures the tools document,
through the real app, against both databases."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from vigil_ir.alerts.models import Alert, AlertGroup
from vigil_ir.eventlog import Event
from vigil_ir.idempotency import ProcessedKey
from tests.conftest import VigilHarness
from tests.fakes import alert_senders as senders


@pytest.fixture
def alerting(db, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime

    runtime = build_runtime(settings_for(DATABASE_URL=db.url, **senders.settings_overrides()), db)
    harness = VigilHarness(runtime, fake_slack)
    yield harness
    harness.client.close()


def send(vigil, source: str, payload: dict, *, headers: dict | None = None):
    body = senders.encode(payload)
    return vigil.client.post(f"/integrations/alerts/{source}", content=body,
                             headers=headers if headers is not None else senders.headers_for(source, body))


def events(vigil, prefix: str = "") -> list[Event]:
    with vigil.db.session() as session:
        return list(session.exec(select(Event).where(Event.stream.startswith(prefix)).order_by(Event.id)))


def count(vigil, model) -> int:
    with vigil.db.session() as session:
        return session.exec(select(func.count()).select_from(model)).one()


def triage_posts(fake):
    return [call for call in fake.ok_calls("chat.postMessage") if call.params.get("channel") == "C0TRIAGE"]


def test_an_alertmanager_alert_is_recorded_at_its_own_time_and_posted_for_triage(alerting):
    payload = senders.alertmanager([senders.am_alert("1a30ba71cca2921f")])
    answer = send(alerting, "alertmanager", payload)
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed"] == 1
    kinds = [(e.kind, e.occurred_at.isoformat()) for e in events(alerting, "alert_group:")]
    assert kinds == [("alert_group.opened", "2026-12-04T06:00:00.123456+00:00"),
                     ("alert.fired", "2026-12-04T06:00:00.123456+00:00")]
    assert events(alerting, "alert_group:")[1].actor == "system:alertmanager"
    with alerting.db.session() as session:
        alert = session.exec(select(Alert)).one()
        group = session.get(AlertGroup, alert.group_id)
    assert (alert.status, alert.severity, alert.title) == ("firing", "sev1", "BlackBox Probe Failure: https://server.example.org")
    assert (group.state, group.severity) == ("open", "sev1")
    alerting.deliver()
    [post] = triage_posts(alerting.fake)
    assert "BlackBox Probe Failure" in post.params["text"] and "sev1" in post.params["text"]


def test_a_retried_delivery_changes_nothing(alerting):
    payload = senders.alertmanager([senders.am_alert("fp-1"), senders.am_alert("fp-2", instance="b")])
    assert send(alerting, "alertmanager", payload).json()["changed"] == 2
    before = len(events(alerting))
    again = send(alerting, "alertmanager", payload)
    assert again.status_code == 200 and again.json()["changed"] == 0 and again.json()["duplicates"] == 2
    assert len(events(alerting)) == before and count(alerting, Alert) == 2 and count(alerting, AlertGroup) == 1


def test_a_flapping_alert_fires_resolves_and_fires_again_once_each(alerting):
    first = senders.am_alert("flap", starts_at="2026-12-04T06:00:00Z")
    resolved = senders.am_alert("flap", status="resolved", starts_at="2026-12-04T06:00:00Z",
                                ends_at="2026-12-04T06:03:00Z")
    again = senders.am_alert("flap", starts_at="2026-12-04T06:07:00Z")
    for alert in (first, resolved, again, resolved, first, again):  # late and repeated deliveries too
        assert send(alerting, "alertmanager", senders.alertmanager([alert])).status_code == 200
    assert [(e.kind, e.occurred_at.strftime("%H:%M")) for e in events(alerting, "alert_group:")][1:] == [
        ("alert.fired", "06:00"), ("alert.resolved", "06:03"), ("alert.refired", "06:07")]
    with alerting.db.session() as session:
        alert = session.exec(select(Alert)).one()
    assert (alert.status, alert.fired_count) == ("firing", 2)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic am-token"}])
def test_a_bad_token_is_refused_and_nothing_is_written(alerting, headers):
    answer = send(alerting, "alertmanager", senders.alertmanager([senders.am_alert("x")]), headers=headers)
    assert answer.status_code == 401
    assert events(alerting) == [] and count(alerting, Alert) == 0 and count(alerting, ProcessedKey) == 0


def test_a_bad_pagerduty_signature_is_refused_and_nothing_is_written(alerting):
    body = senders.encode(senders.pagerduty("incident.triggered"))
    forged = senders.pagerduty_signature(body, "not-the-secret")
    tampered = senders.pagerduty_signature(body + b" ")
    for signature in (forged, tampered, "", "v0=" + forged[3:]):
        answer = alerting.client.post("/integrations/alerts/pagerduty", content=body,
                                      headers={"X-PagerDuty-Signature": signature})
        assert answer.status_code == 401
    assert events(alerting) == [] and count(alerting, ProcessedKey) == 0


def test_pagerduty_signed_during_a_secret_rotation_is_accepted(alerting):
    body = senders.encode(senders.pagerduty("incident.triggered"))
    both = senders.pagerduty_signature(body, "the-new-secret", senders.PAGERDUTY_SECRET)
    answer = alerting.client.post("/integrations/alerts/pagerduty", content=body,
                                  headers={"X-PagerDuty-Signature": both})
    assert answer.status_code == 200 and answer.json()["changed"] == 1


def test_pagerduty_incidents_are_alerts_and_an_unknown_acknowledgement_is_kept_as_unmatched(alerting):
    assert send(alerting, "pagerduty", senders.pagerduty("incident.triggered")).json()["changed"] == 1
    ack = senders.pagerduty("incident.acknowledged", event_id="01ACK", status="acknowledged")
    assert send(alerting, "pagerduty", ack).json() | {} == {"ok": True, "alerts": 0, "changed": 0, "duplicates": 0,
                                                             "pages": 0, "unmatched": 1}
    assert send(alerting, "pagerduty", ack).json()["duplicates"] == 1  # PagerDuty's redelivery: no error loop
    resolved = senders.pagerduty("incident.resolved", status="resolved", occurred_at="2026-12-04T06:30:00Z")
    assert send(alerting, "pagerduty", resolved).json()["changed"] == 1
    [unmatched] = events(alerting, "integration:")
    assert (unmatched.kind, unmatched.data["action"], unmatched.data["responder"]) == (
        "integration.unmatched", "acknowledged", "Tenex Engineer")
    with alerting.db.session() as session:
        alert = session.exec(select(Alert)).one()
    assert (alert.source, alert.fingerprint, alert.status, alert.severity) == ("pagerduty", "PGR0VU2", "resolved", "sev1")


def test_grafana_opsgenie_and_the_generic_shape(alerting):
    assert send(alerting, "grafana", senders.grafana()).json()["changed"] == 1
    assert send(alerting, "opsgenie", senders.opsgenie("Create")).json()["changed"] == 1
    assert send(alerting, "opsgenie", senders.opsgenie("Acknowledge")).json()["unmatched"] == 1
    generic = {"fingerprint": "disk-full-db1", "title": "Disk full on db1", "severity": "warning",
               "starts_at": "2026-12-04T05:59:00Z", "labels": {"host": "db1"}}
    assert send(alerting, "generic", generic).json()["changed"] == 1
    assert send(alerting, "generic", {**generic, "status": "resolved", "ends_at": "2026-12-04T06:10:00Z"}).json()["changed"] == 1
    with alerting.db.session() as session:
        found = {(a.source, a.fingerprint): (a.status, a.severity, a.starts_at.isoformat())
                 for a in session.exec(select(Alert))}
    assert found == {("grafana", "c6eadffa33fcdf37"): ("firing", "sev3", "2026-12-04T07:51:03.157076+00:00"),
                     ("opsgenie", "aliastest"): ("firing", "sev2", "2026-12-04T06:00:00+00:00"),
                     ("generic", "disk-full-db1"): ("resolved", "sev3", "2026-12-04T05:59:00+00:00")}


def test_size_limit_unknown_sources_and_malformed_bodies(alerting):
    big = senders.alertmanager([senders.am_alert(f"fp-{n}", instance="x" * 2000) for n in range(600)])
    assert send(alerting, "alertmanager", big).status_code == 413
    assert send(alerting, "nagios", {"x": 1}, headers={}).status_code == 404
    bad = send(alerting, "alertmanager", {"alerts": [{"status": "firing"}]})
    assert bad.status_code == 400 and "fingerprint" in bad.json()["message"]
    body = b"not json"
    assert alerting.client.post("/integrations/alerts/generic", content=body,
                                headers=senders.headers_for("generic", body)).status_code == 400
    assert events(alerting) == [] and count(alerting, ProcessedKey) == 0


def test_a_source_without_a_credential_is_not_open(vigil):
    answer = send(vigil, "alertmanager", senders.alertmanager([senders.am_alert("x")]))
    assert answer.status_code == 404 and "VIGIL_ALERTMANAGER_TOKEN" in answer.json()["message"]


def test_an_alert_storm_is_one_triage_message_updated(alerting):
    # 1,000 alerts of one Alertmanager group in 20 deliveries, the outbox sender running in between.
    for batch in range(20):
        alerts = [senders.am_alert(f"storm-{batch}-{n}", instance=f"host-{batch}-{n}") for n in range(50)]
        assert send(alerting, "alertmanager", senders.alertmanager(alerts)).json()["changed"] == 50
        if batch % 5 == 4:
            alerting.deliver()
    alerting.deliver()
    assert count(alerting, Alert) == 1000 and count(alerting, AlertGroup) == 1
    assert len(triage_posts(alerting.fake)) == 1
    updates = alerting.fake.ok_calls("chat.update")
    assert 1 <= len(updates) <= 4
    assert "1000 of 1000 firing" in updates[-1].params["text"]
