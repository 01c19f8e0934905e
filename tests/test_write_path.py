"""The write path of a command: the same bytes as before it was rewritten in SQLAlchemy Core, and a
fixed number of statements per request, so a regression shows."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event as sa_event
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.eventlog import Event, append
from vigil_ir.eventlog.verify import verify_database
from vigil_ir.incidents import service

# Written by the ORM write path (before statements were built once in Core), from `write_scenario`.
# Regenerate only for a deliberate change of the canonical form: an old chain must verify as before.
FIXTURE = Path(__file__).parent / "eventlog_fixtures" / "hashes_written_by_orm_path.jsonl"
AT = datetime(2026, 11, 21, 8, 30, 15, 123456, tzinfo=timezone.utc)


def write_scenario(db) -> None:
    """Events of several shapes, at fixed times: the incident lifecycle and raw appends with awkward data."""
    with clock.frozen(AT), db.session() as s:
        incident = service.declare(s, actor="U0DECL", title="Checkout 500s — «EU» 🚒", severity="sev2",
                                   type="availability", description="Zürich edge \u202e reversed",
                                   detected_at=AT - timedelta(minutes=7, microseconds=1))
        service.attach_channel(s, incident=incident, channel_id="C0HASH", channel_name="inc-1-checkout")
    for minutes, change in enumerate([
            lambda s, i: service.add_note(s, incident=i, actor="U0SRE", text="cache hit rate 12% <!channel> & co"),
            lambda s, i: service.set_status(s, incident=i, actor="U0SRE", status="identified"),
            lambda s, i: service.set_severity(s, incident=i, actor="U0LEAD", severity="sev1"),
            lambda s, i: service.assign_role(s, incident=i, actor="U0LEAD", role="lead", user="U0LEAD"),
            lambda s, i: service.correct_note(s, incident=i, actor="U0SRE", note_event_id=_first_note(s),
                                              text="cache hit rate 21%"),
            lambda s, i: service.post_update(s, incident=i, actor="U0LEAD", status="monitoring",
                                             summary="Fix deployed; watching.",
                                             next_update_due=AT + timedelta(hours=2)),
            lambda s, i: service.resolve(s, incident=i, actor="U0LEAD")], start=1):
        with clock.frozen(AT + timedelta(minutes=minutes)), db.session() as s:
            change(s, _incident(s))
    with clock.frozen(AT + timedelta(hours=1)), db.session() as s:
        first = append(s, stream="test:tricky", kind="test.unicode", actor="U0ÄÖ",
                       data={"text": "Zürich 🚒 «quotes» \"\\ \u202e bidi", "n": 3, "f": 0.5, "none": None,
                             "nested": {"b": [1, "two", {"z": True, "a": False}]}, "empty": {}})
        append(s, stream="test:tricky", kind="test.corrects", actor="cli:someone", data={},
               occurred_at=datetime(2026, 11, 21, 10, 0, tzinfo=timezone(timedelta(hours=2))), corrects=first.id)
        append(s, stream="test:tricky", kind="test.naive_occurred", actor="system:worker", data=None,
               occurred_at=datetime(2026, 11, 1, 0, 0, 0, 1))


def _incident(s):
    from vigil_ir.incidents.models import Incident

    return s.exec(select(Incident).where(Incident.channel_id == "C0HASH")).one()


def _first_note(s) -> int:
    return s.exec(select(Event.id).where(Event.kind == "incident.note_added")).first()


def written(db) -> list[list]:
    with db.session() as s:
        rows = s.exec(select(Event.stream, Event.stream_seq, Event.kind, Event.hash).order_by(Event.id)).all()
    return [list(row) for row in rows]


def test_events_hash_byte_for_byte_as_the_orm_path_wrote_them(db):
    write_scenario(db)
    before = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
    assert written(db) == before
    with db.session() as s:
        result = verify_database(s)
    assert result.ok and result.events == len(before)


def _shape(statement: str) -> str:
    """`SELECT incident`, `INSERT event`, … : the verb and the first table a statement names."""
    words = statement.split()
    verb = words[0].upper()
    if verb == "WITH":  # data-modifying CTEs, the main statement last: `INSERT event (WITH UPDATE stream_head)`
        writes = [f"{verb} {table}" for verb, table in re.findall(r"\b(INSERT|UPDATE|DELETE)(?: INTO| FROM)? (\w+)",
                                                                  statement)]
        return f"{writes[-1]} (WITH {', '.join(writes[:-1])})"
    if verb == "SELECT":
        return f"SELECT {words[words.index('FROM') + 1]}" + (" FOR UPDATE" if "FOR UPDATE" in statement else "")
    position = {"INSERT": 2, "UPDATE": 1, "DELETE": 2}.get(verb, len(words))
    return " ".join([verb, *words[position:position + 1]])


def test_a_note_costs_a_fixed_set_of_statements(vigil, db):
    """One lookup, the stream head, the event and the head's move, the outbox row (5 + COMMIT on SQLite,
    4 + COMMIT on PostgreSQL, no connection ping), and nothing else: a new statement on this path
    (an ORM reload, a lazy load, a per-request query) shows here."""
    incident = vigil.declare()
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_):
        seen.append(_shape(statement))

    sa_event.listen(db.engine, "before_cursor_execute", record)
    try:
        for n in range(3):
            seen.clear()
            response = vigil.command(f"note step {n} done", user="U0SRE", channel=incident.channel_id)
            assert response.status_code == 200 and "Noted" in response.text
            statements = [s for s in seen if s not in ("BEGIN", "BEGIN IMMEDIATE")]
            if db.engine.dialect.name == "postgresql":  # the lookup locks; the event moves the head
                expected = ["SELECT incident FOR UPDATE", "SELECT stream_head FOR UPDATE",
                            "INSERT event (WITH UPDATE stream_head)", "INSERT outbox_item"]
            else:  # writers already take turns (BEGIN IMMEDIATE)
                expected = ["SELECT incident", "SELECT stream_head", "INSERT event", "UPDATE stream_head",
                            "INSERT outbox_item"]
            assert statements == expected, statements
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", record)


def test_append_many_chains_and_hashes_as_appends_one_after_another_would(db):
    from vigil_ir.eventlog.service import append_many

    entries = [{"stream": "risk:1", "kind": "risk.reminder_sent", "actor": "system:worker", "data": {"n": 1}},
               {"stream": "risk:2", "kind": "risk.reminder_sent", "actor": "system:worker", "data": {"n": 2}},
               {"stream": "risk:1", "kind": "risk.reminder_sent", "actor": "system:worker", "data": {"n": 3},
                "occurred_at": AT - timedelta(days=1)}]
    with clock.frozen(AT), db.session() as s:
        append(s, stream="risk:2", kind="risk.created", actor="U1", data={"title": "Ünïcode"})
        many = append_many(s, entries)
    with clock.frozen(AT), db.session() as s:  # the same, one append at a time, on other streams
        append(s, stream="risk:12", kind="risk.created", actor="U1", data={"title": "Ünïcode"})
        one_by_one = [append(s, **{**entry, "stream": entry["stream"].replace(":", ":1")}) for entry in entries]
    with db.session() as s:
        stored = {e.id: e for e in s.exec(select(Event))}
        result = verify_database(s)
    assert [(stored[i].stream, stored[i].stream_seq) for i in many] == [("risk:1", 1), ("risk:2", 2), ("risk:1", 2)]
    renamed = [{**stored[i].model_dump(exclude={"id", "hash", "prev_hash"}), "stream": stored[i].stream.replace(":", ":1")}
               for i in many]
    assert renamed == [stored[e.id].model_dump(exclude={"id", "hash", "prev_hash"}) for e in one_by_one]
    assert result.ok and result.events == 8


def test_a_batch_of_posts_reads_its_incidents_once_and_posts_each_note(vigil, db):
    """The sender hands the claimed batch to the deliverer, which reads the incidents it is about in one
    query; a read per item (as before) shows here as one `SELECT incident` per post."""
    first, second = vigil.declare("Checkout down"), vigil.declare("Search slow")
    for n in range(4):
        for incident in (first, second):
            assert "Noted" in vigil.command(f"note {incident.key} {n}", user="U0SRE", channel=incident.channel_id).text
    posted_before = len(vigil.fake.calls_to("chat.postMessage"))
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_):
        seen.append(_shape(statement))

    engines = {db.engine, vigil.runtime.database._reading_engine()}  # SQLite reads on an engine of their own
    for engine in engines:
        sa_event.listen(engine, "before_cursor_execute", record)
    try:
        assert vigil.deliver() == 8
    finally:
        for engine in engines:
            sa_event.remove(engine, "before_cursor_execute", record)
    assert seen.count("SELECT incident") == 1, seen
    posts = vigil.fake.calls_to("chat.postMessage")[posted_before:]
    assert sorted((call.params["channel"], call.params["text"].rsplit(": ", 1)[1]) for call in posts) == sorted(
        (incident.channel_id, f"{incident.key} {n}") for n in range(4) for incident in (first, second))
