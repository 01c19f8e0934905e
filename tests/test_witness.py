"""Daily publication of the chain heads to the audit channel."""

from datetime import timedelta

from vigil_ir import clock


def test_heads_are_published_once_a_day(db, fake_slack, settings_for):
    from vigil_ir.runtime import build_runtime
    from tests.conftest import VigilHarness

    runtime = build_runtime(settings_for(DATABASE_URL=db.url, VIGIL_AUDIT_CHANNEL="C0AUDIT"), db)
    vigil = VigilHarness(runtime, fake_slack)
    vigil.declare()
    now = clock.now()
    assert vigil.sweep(now)["audit.publish_heads"] == 1
    assert vigil.sweep(now + timedelta(minutes=5))["audit.publish_heads"] == 0
    from click.testing import CliRunner

    from vigil_ir.cli import main

    # The heads as published (delivering adds events: the declarer's first sighting in the people directory).
    digest = CliRunner().invoke(main, ["verify"], obj={"database": db}).output.split("heads digest ")[1].strip()
    vigil.deliver()
    (post,) = [c for c in fake_slack.calls_to("chat.postMessage") if c.params["channel"] == "C0AUDIT"]
    assert digest in post.params["text"] and "2 streams" in post.params["text"]  # the incident, and `audit` (the policy in force)
    assert vigil.sweep(now + timedelta(days=1))["audit.publish_heads"] == 1


def test_no_audit_channel_no_publication(vigil):
    assert vigil.sweep()["audit.publish_heads"] == 0
