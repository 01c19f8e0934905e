"""Witnesses: the heads digest published to the audit channel (periodically and on demand, never
over an empty log) and checked by `vigil verify --witness` / `--against`. An operator who rewrites
the log and recomputes every chain and head passes plain `vigil verify`, but not the witness."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import delete
from sqlmodel import select

from tests.conftest import VigilHarness
from vigil_ir import clock
from vigil_ir.cli import main
from vigil_ir.eventlog.canonical import GENESIS_HASH, event_hash
from vigil_ir.eventlog.models import Event, StreamHead
from vigil_ir.incidents.models import Incident
from vigil_ir.runtime import build_runtime

AUDIT = "C0AUDIT"


@pytest.fixture
def audited(db, fake_slack, settings_for):
    harness = VigilHarness(build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_AUDIT_CHANNEL=AUDIT), db), fake_slack)
    yield harness
    harness.client.close()


def cli(harness, *args):
    settings = harness.runtime.settings
    return CliRunner().invoke(main, list(args), obj={"database": harness.db}, env={
        "DATABASE_URL": harness.db.url, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": settings.slack_api_url,
        "VIGIL_AUDIT_CHANNEL": AUDIT})


def witnessed_incident(harness, note: str = "Rolled back the deploy"):
    """An incident with a note, its events delivered, then a witness published ten minutes later."""
    incident = harness.declare()
    harness.command(f"note {note}", channel=incident.channel_id)
    harness.deliver()
    with clock.frozen(clock.now() + timedelta(minutes=10)):  # the worker's next pass; what it records is later
        assert harness.sweep(clock.now())["audit.publish_heads"] == 1
        harness.deliver()
    return incident


def audit_posts(fake_slack):
    return [c for c in fake_slack.ok_calls("chat.postMessage") if c.params["channel"] == AUDIT]


def rechain(db, stream: str) -> None:
    """What an operator with write access does to hide an edit: recompute the stream's chain and head."""
    with db.session() as s:
        prev = GENESIS_HASH
        events = list(s.exec(select(Event).where(Event.stream == stream).order_by(Event.stream_seq)))
        for seq, event in enumerate(events, 1):
            event.stream_seq, event.prev_hash = seq, prev
            event.hash = prev = event_hash(event.model_dump())
            s.add(event)
        head = s.get(StreamHead, stream)
        if events:
            head.seq, head.hash = len(events), prev
            s.add(head)
        elif head is not None:
            s.delete(head)


def test_published_periodically_never_over_an_empty_log_and_recorded(audited, fake_slack):
    # Five past the next hour, whatever the wall clock says: "12 minutes later" is always the same hour.
    now = clock.now().replace(minute=5, second=0, microsecond=0) + timedelta(hours=1)
    with clock.frozen(now):
        assert audited.sweep(now)["audit.publish_heads"] == 0  # start-up over an empty log: nothing, slot kept
        incident = witnessed_incident(audited)
        (post,) = audit_posts(fake_slack)
        assert "witness v1 cutoff=" in post.params["text"] and "digest=sha256:" in post.params["text"]
        assert audited.sweep(now + timedelta(minutes=12))["audit.publish_heads"] == 0  # same hour
        assert audited.sweep(now + timedelta(hours=1, minutes=10))["audit.publish_heads"] == 1
    with audited.db.session() as s:
        (recorded, *_) = s.exec(select(Event).where(Event.kind == "audit.witness_published")).all()
    assert recorded.data["permalink"].startswith("https://fake.slack.com/archives/C0AUDIT/")
    assert recorded.data["digest"] in post.params["text"] and incident.key


def test_verify_witness_passes_on_an_untouched_log(audited):
    witnessed_incident(audited)
    result = cli(audited, "verify", "--witness")
    assert result.exit_code == 0, result.output
    assert "OK: 1 witnesses" in result.output


def test_a_rewritten_note_with_chains_recomputed_passes_verify_but_not_the_witness(audited):
    incident = witnessed_incident(audited)
    with audited.db.session() as s:
        note = s.exec(select(Event).where(Event.kind == "incident.note_added")).one()
        note.data = {**note.data, "text": "Nothing happened"}
        s.add(note)
    rechain(audited.db, incident.stream)
    assert cli(audited, "verify").exit_code == 0  # the chains alone cannot tell
    result = cli(audited, "verify", "--witness")
    assert result.exit_code == 1
    assert "BROKEN: the witness posted" in result.output and "https://fake.slack.com/archives/C0AUDIT/" in result.output
    assert "were changed, added or removed" in result.output


def test_a_deleted_tail_with_its_head_fixed_is_caught_by_the_witness(audited):
    incident = witnessed_incident(audited)
    with audited.db.session() as s:  # the note, witnessed, and everything after it in the stream
        note = s.exec(select(Event).where(Event.kind == "incident.note_added")).one()
        s.execute(delete(Event).where(Event.stream == incident.stream, Event.stream_seq >= note.stream_seq))
    rechain(audited.db, incident.stream)
    assert cli(audited, "verify").exit_code == 0
    assert cli(audited, "verify", "--witness").exit_code == 1


def test_a_whole_incident_removed_with_its_stream_is_caught_by_the_witness(audited):
    incident = witnessed_incident(audited)
    with audited.db.session() as s:  # the row, its stream and its head: nothing left to fold or chain
        s.execute(delete(Event).where(Event.stream == incident.stream))
        s.execute(delete(StreamHead).where(StreamHead.stream == incident.stream))
        s.execute(delete(Incident).where(Incident.id == incident.id))
    assert cli(audited, "verify").exit_code == 0
    result = cli(audited, "verify", "--witness")
    assert result.exit_code == 1 and "streams" in result.output


def test_against_checks_one_digest_given_by_hand(audited, fake_slack):
    witnessed_incident(audited)
    line = audit_posts(fake_slack)[0].params["text"].split("witness v1 ")[1]
    fields = dict(part.split("=", 1) for part in line.strip("`").split())
    good = cli(audited, "verify", "--against", fields["digest"], "--at", fields["cutoff"])
    assert good.exit_code == 0, good.output
    bad = cli(audited, "verify", "--against", "sha256:" + "0" * 64, "--at", fields["cutoff"])
    assert bad.exit_code == 1 and "where the witness says sha256:000" in bad.output
    assert cli(audited, "verify", "--against", fields["digest"]).exit_code == 2  # --at is required with it


def test_no_audit_channel_no_publication(vigil):
    vigil.declare()
    assert vigil.sweep(clock.now() + timedelta(minutes=10))["audit.publish_heads"] == 0
