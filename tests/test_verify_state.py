"""`vigil verify` folds every incident stream and compares it with the `incident` table: an edit of
a state row (title, severity, lead…) is reported like a broken chain, naming record, field and both
values, and exits 1."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import update
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.incidents.models import Incident


def verify(db):
    return CliRunner().invoke(main, ["verify"], obj={"database": db})


@pytest.fixture
def handled(vigil):
    """An incident with a lead, a severity change, a status change and a close, through signed requests."""
    incident = vigil.declare("Checkout API returns 500s", severity="sev3")
    for command in ("lead <@U0LEAD>", "severity sev2", "status identified", "note rolled back"):
        assert vigil.command(command, channel=incident.channel_id).status_code == 200
    vigil.deliver()
    return incident


def test_an_untouched_database_agrees_with_its_events(vigil, handled):
    result = verify(vigil.db)
    assert result.exit_code == 0, result.output
    assert "agrees with its events" in result.output


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("title", "Nothing to see here", "'Checkout API returns 500s'"),
    ("severity", "sev4", "'sev2'"),
    ("lead", "U0INTRUDER", "'U0LEAD'"),
    ("status", "closed", "'identified'"),
    ("security", True, "False"),
])
def test_an_edited_state_row_is_reported_with_record_field_and_values(vigil, handled, field, value, expected):
    with vigil.db.session() as s:
        s.execute(update(Incident).where(Incident.id == handled.id).values({field: value}))
    result = verify(vigil.db)
    assert result.exit_code == 1
    assert f"BROKEN: {handled.key}: the state row's {field} differs from its events (events say {expected}" in result.output
    assert f"the row has {value!r}" in result.output


def test_a_row_whose_stream_is_gone_is_reported(vigil, handled):
    from sqlalchemy import delete

    from vigil_ir.eventlog.models import Event, StreamHead

    with vigil.db.session() as s:
        s.execute(delete(Event).where(Event.stream == handled.stream))
        s.execute(delete(StreamHead).where(StreamHead.stream == handled.stream))
    result = verify(vigil.db)
    assert result.exit_code == 1 and "a row without any event" in result.output
    with vigil.db.session() as s:
        assert s.exec(select(Incident)).first() is not None


@pytest.mark.parametrize("enabled", [True, False])
def test_the_checks_leave_the_garbage_collector_as_they_found_it(vigil, handled, enabled):
    """The folds run with Python's cyclic collector paused (vigil_ir.eventlog.folding.collector_paused):
    afterwards, and after a failure inside, it is on or off as before."""
    import gc

    from vigil_ir.eventlog.folding import collector_paused
    from vigil_ir.state_check import check_state

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        with vigil.db.read_session() as s:
            assert check_state(s).found == []
        assert gc.isenabled() is enabled
        assert verify(vigil.db).exit_code == 0
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a fold failed")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
