"""A pass of the sweeps with nothing due is cheap: a sweep whose post for this slot (today's chain
heads, this week's risk digest) is queued checks that marker and reads nothing else."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import event

from tests.conftest import VigilHarness
from tests.risk_fixtures import make_risk
from vigil_ir import clock
from vigil_ir.reminders.scheduler import _run, registered
from vigil_ir.runtime import build_runtime

NOW = datetime(2025, 7, 8, 8, 0, tzinfo=timezone.utc)
T0 = datetime(2025, 5, 20, 9, 0, tzinfo=timezone.utc)  # risks made then are overdue at NOW


def statements_of(db, name: str, settings) -> list[str]:
    seen = []

    def record(_conn, _cursor, statement, *_):
        if not statement.startswith("BEGIN"):
            seen.append(" ".join(statement.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with clock.frozen(NOW):
            _run(db, name, registered()[name], NOW, settings)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_once_the_slot_is_queued_heads_and_digest_read_only_their_marker(db, fake_slack, settings_for):
    settings = settings_for(DATABASE_URL=db.url, VIGIL_AUDIT_CHANNEL="C0AUDIT", VIGIL_RISK_CHANNEL="C0RISKS")
    harness = VigilHarness(build_runtime(settings, db), fake_slack)
    try:
        with clock.frozen(T0):
            for n in range(3):
                make_risk(db, title=f"Risk {n}")
        with clock.frozen(NOW):
            first = harness.sweep(NOW)
        assert first["audit.publish_heads"] == 1 and first["risks.weekly_digest"] == 1
        for name in ("audit.publish_heads", "risks.weekly_digest"):
            statements = statements_of(db, name, settings)
            assert len(statements) == 1 and statements[0].startswith("SELECT outbox_item.id FROM outbox_item"), \
                (name, statements)
    finally:
        harness.client.close()
