"""Incident lifecycle rules, without Slack."""

from datetime import timedelta

import pytest

from vigil_ir import clock
from vigil_ir.eventlog import events_for_stream
from vigil_ir.incidents import queries, service
from vigil_ir.incidents.service import IncidentError


def declare(s, **kw):
    values = {"actor": "U1", "title": "API down", "severity": "sev2", "type": "availability"}
    values.update(kw)
    return service.declare(s, **values)


def test_keys_are_monotonic_and_never_reused(db):
    with db.session() as s:
        keys = [declare(s).key for _ in range(3)]
    assert keys == ["INC-1", "INC-2", "INC-3"]
    with pytest.raises(RuntimeError):
        with db.session() as s:
            declare(s)
            raise RuntimeError("rolled back")
    with db.session() as s:
        assert declare(s).key == "INC-4"  # the rolled-back declaration never issued its number
        assert queries.by_key(s, "inc-2").title == "API down"
        assert queries.by_key(s, "nonsense") is None


def test_declaration_validation(db):
    future = clock.now() + timedelta(hours=1)
    errors = service.validate_declaration(title="x" * 151, severity="sev0", type="weather", detected_at=future)
    assert set(errors) == {"title", "severity", "type", "detected_at"}
    with db.session() as s, pytest.raises(IncidentError):
        declare(s, title="")


def test_security_type_implies_security_flag(db):
    with db.session() as s:
        assert declare(s, type="security").security is True


def test_event_data_records_from_and_to(db):
    with db.session() as s:
        incident = declare(s)
        service.set_status(s, incident=incident, actor="U2", status="identified")
        service.set_severity(s, incident=incident, actor="U2", severity="sev1")
        service.assign_role(s, incident=incident, actor="U2", role="lead", user="U3")
        service.assign_role(s, incident=incident, actor="U2", role="lead", user="U4")
        events = events_for_stream(s, incident.stream)
    assert events[1].data == {"from": "investigating", "to": "identified"}
    assert events[2].data == {"from": "sev2", "to": "sev1"}
    assert events[4].data == {"role": "lead", "from": "U3", "to": "U4"}


def test_no_op_changes_are_refused(db):
    with db.session() as s:
        incident = declare(s)
        for call in (lambda: service.set_status(s, incident=incident, actor="U", status="investigating"),
                     lambda: service.set_severity(s, incident=incident, actor="U", severity="sev2"),
                     lambda: service.set_status(s, incident=incident, actor="U", status="closed"),
                     lambda: service.assign_role(s, incident=incident, actor="U", role="boss", user="U9")):
            with pytest.raises(IncidentError):
                call()


def test_closed_incident_cannot_change(db):
    with db.session() as s:
        incident = declare(s)
        service.assign_role(s, incident=incident, actor="U1", role="lead", user="U1")
        service.resolve(s, incident=incident, actor="U1")
        service.close(s, incident=incident, actor="U1", admins=frozenset(), customer_impact="none",
                      root_cause="bug", lessons_learned="", follow_ups=["  ", "fix it"])
        assert incident.follow_ups == ["fix it"]
        with pytest.raises(IncidentError, match="closed"):
            service.add_note(s, incident=incident, actor="U1", text="late")


def test_correcting_a_note_from_another_incident_is_refused(db):
    with db.session() as s:
        first, second = declare(s), declare(s)
        note = service.add_note(s, incident=first, actor="U1", text="hello")
        with pytest.raises(IncidentError, match="no note"):
            service.correct_note(s, incident=second, actor="U1", note_event_id=note.id, text="x")


def test_update_due_time_must_be_in_the_future(db):
    with db.session() as s:
        incident = declare(s)
        with pytest.raises(IncidentError, match="future"):
            service.post_update(s, incident=incident, actor="U1", status="identified", summary="s",
                                next_update_due=clock.now() - timedelta(minutes=1))
        assert incident.status == "investigating"


def test_milestones_and_minutes(db):
    start = clock.now().replace(microsecond=0)
    with clock.frozen(start):
        with db.session() as s:
            incident = declare(s, detected_at=start - timedelta(minutes=10))
    steps = [(5, lambda s, i: service.add_note(s, incident=i, actor="U1", text="declarer's own note")),
             (7, lambda s, i: service.add_note(s, incident=i, actor="U2", text="responder here")),
             (30, lambda s, i: service.set_status(s, incident=i, actor="U2", status="monitoring")),
             (50, lambda s, i: service.set_status(s, incident=i, actor="U2", status="resolved"))]
    for minutes, step in steps:
        with clock.frozen(start + timedelta(minutes=minutes)):
            with db.session() as s:
                step(s, queries.by_key(s, "INC-1"))
    with db.session() as s:
        m = queries.incident_milestones(s, queries.by_key(s, "INC-1"))
    assert (m.minutes_to_acknowledge, m.minutes_to_mitigate, m.minutes_to_resolve) == (7.0, 40.0, 60.0)


def test_reopening_clears_resolved_milestone(db):
    with db.session() as s:
        incident = declare(s)
        service.resolve(s, incident=incident, actor="U2")
        service.set_status(s, incident=incident, actor="U2", status="investigating")
        m = queries.incident_milestones(s, incident)
    assert m.resolved is None and m.mitigated is not None


def test_concurrent_declarations_get_distinct_keys(db):
    import threading

    keys, errors = [], []

    def worker():
        try:
            for _ in range(5):
                with db.session() as s:
                    keys.append(declare(s).key)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(keys, key=lambda k: int(k[4:])) == [f"INC-{n}" for n in range(1, 21)]


def test_a_change_read_before_another_commits_still_records_what_it_replaced(db):
    """Two people change one incident at once: the second waits for the first, and its event's
    `from` is the first one's `to`, not the value it read before (a row lock on PostgreSQL)."""
    import threading

    from vigil_ir.db import Database

    with db.session() as s:
        key = declare(s).key
    read, errors = threading.Event(), []
    other = Database(db.url)  # a second process's view: its own engine and connections

    def second_responder():
        try:
            with other.session() as s:
                incident = queries.by_key(s, key)  # reads "investigating" while the first is uncommitted
                read.set()
                service.set_status(s, incident=incident, actor="U2", status="monitoring")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            read.set()

    with db.session() as s:
        service.set_status(s, incident=queries.by_key(s, key), actor="U1", status="identified")
        s.flush()
        thread = threading.Thread(target=second_responder)
        thread.start()
        if not db.is_sqlite:  # on SQLite the second transaction cannot begin until this one ends
            read.wait(timeout=10)
    thread.join(timeout=30)
    other.dispose()
    assert not errors and not thread.is_alive()
    with db.session() as s:
        changes = [(e.data["from"], e.data["to"]) for e in events_for_stream(s, f"incident:{key[4:]}")
                   if e.kind == "incident.status_changed"]
    assert changes == [("investigating", "identified"), ("identified", "monitoring")]


def test_a_read_session_neither_waits_for_a_writer_nor_sees_its_uncommitted_change(db):
    """The dashboard and the redelivery check read through read_session: on SQLite a writer holds
    the write lock for its whole transaction, and a plain session would wait for it (busy_timeout)."""
    with db.session() as s:
        key = declare(s).key
    with db.session() as writer:
        service.set_status(writer, incident=queries.by_key(writer, key), actor="U1", status="identified")
        writer.flush()  # the write lock is held from here to the commit
        with db.read_session() as reader:
            seen = queries.by_key(reader, key)
        assert seen.status == "investigating"  # still usable after the read session ended
    with db.read_session() as reader:
        assert queries.by_key(reader, key).status == "identified"
