"""`vigil verify` hashes events from their stored text (vigil_ir.eventlog.stored): the same bytes as the
canonical form for every value the log can hold, a fallback for text that is not canonical, and no
way for a row edited into another split of the same bytes to pass."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from vigil_ir import clock
from vigil_ir.eventlog import append
from vigil_ir.eventlog.canonical import canonical_json, hashed_view
from vigil_ir.eventlog.models import Event
from vigil_ir.eventlog.stored import stored_events
from vigil_ir.eventlog.verify import verify_database

# Any text a person can type into Slack or a form: every plane, quotes, backslashes, control
# characters; never a lone surrogate (the Slack boundary replaces those before anything is recorded).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | TEXT
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12)
# Streams, kinds and actors are ids: PostgreSQL's text columns cannot hold NUL (JSON text escapes it).
NAME = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30)


def _expected_payload(row) -> bytes:
    fields = row._mapping
    return (fields["prev_hash"] + canonical_json(hashed_view(fields))).encode("utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.dictionaries(TEXT, JSON_VALUES, max_size=5), actor=NAME, kind=NAME, stream=NAME)
def test_stored_text_gives_the_canonical_bytes_of_any_event(db, data, actor, kind, stream):
    with db.session() as s:
        first = append(s, stream=stream, kind=kind, actor=actor, data=data)
        append(s, stream=stream, kind="k", actor="U1", data={"corrects": True}, corrects=first.id)
    with db.read_session() as s:
        table = Event.__table__
        typed = {row.id: _expected_payload(row) for row in s.execute(select(table))}
        for event in stored_events(s):
            assert event.payload(event.data_text) == typed[event.id]
            assert event.data == json.loads(canonical_json(event.data))
        assert verify_database(s).ok
    with db.engine.begin() as c:
        c.execute(text("DELETE FROM event"))
        c.execute(text("DELETE FROM stream_head"))


def _store_as(db, seq: int, stored: str) -> None:
    with db.engine.begin() as c:
        c.execute(text("UPDATE event SET data = :d WHERE stream = 'incident:5' AND stream_seq = :seq"),
                  {"d": stored, "seq": seq})


def test_data_stored_in_another_json_form_is_hashed_the_slow_way_and_passes(db):
    """A database written before JSON columns were stored canonical: spaces, insertion order, \\u escapes."""
    values = [{"text": "é \"quoted\"", "b": [1, 2.5, None], "a": {"z": True, "y": "ü"}}, {"n": 1}]
    with db.session() as s:
        for value in values:
            append(s, stream="incident:5", kind="incident.note_added", actor="U1", data=value)
    _store_as(db, 1, json.dumps(values[0]))  # the old default serialiser: not canonical, the same value
    with db.read_session() as s:
        first = next(e for e in stored_events(s) if e.stream_seq == 1)
        assert first.data_text != canonical_json(values[0]) and first.data == values[0]
        result = verify_database(s)
    assert result.ok and result.events == 2


def test_a_changed_value_in_another_json_form_is_still_a_hash_mismatch(db):
    with db.session() as s:
        for n in range(2):
            append(s, stream="incident:5", kind="incident.note_added", actor="U1", data={"text": f"note {n}"})
    _store_as(db, 1, json.dumps({"text": "note 9"}, indent=1))
    with db.read_session() as s:
        result = verify_database(s)
    assert (result.broken.stream, result.broken.seq, result.broken.problem) == ("incident:5", 1, "hash mismatch")


def test_a_row_edited_into_another_split_of_the_same_bytes_fails(db):
    """Moving text between fields so the assembled bytes stay the same: the JSON escaping of every
    other field makes that impossible, so it is a mismatch, never a pass."""
    if db.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL's json type refuses to store the data text this edit needs")
    with db.session() as s:
        append(s, stream="incident:5", kind="incident.note_added", actor="U1", data={"text": "x"})
    # The stored actor swallows the start of the data and the data shrinks to match: same bytes if
    # the actor were not escaped.
    with db.engine.begin() as c:
        c.execute(text("""UPDATE event SET actor = :actor, data = :data WHERE stream = 'incident:5'"""),
                  {"actor": 'U1","corrects":null,"data":{"text"', "data": '"x"}'})
    with db.read_session() as s:
        result = verify_database(s)
    assert result.broken is not None and result.broken.problem == "hash mismatch"


def test_time_stored_in_another_form_falls_back_to_the_typed_read(db):
    with clock.frozen(datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)):
        with db.session() as s:
            append(s, stream="incident:5", kind="incident.note_added", actor="U1", data={"text": "x"})
    if db.engine.dialect.name == "sqlite":  # no fraction: SQLAlchemy reads the same time, the text differs
        with db.engine.begin() as c:
            c.execute(text("UPDATE event SET occurred_at = '2026-03-01 09:30:00'"))
    with db.read_session() as s:
        (event,) = stored_events(s)
        assert event.occurred_at == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
        assert verify_database(s).ok
    with db.engine.begin() as c:
        c.execute(text("UPDATE event SET occurred_at = occurred_at - interval '1 second'"
                       if db.engine.dialect.name == "postgresql" else
                       "UPDATE event SET occurred_at = '2026-03-01 09:29:59'"))
    with db.read_session() as s:
        assert verify_database(s).broken.problem == "hash mismatch"


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_pages_of_any_size_walk_every_event_in_order(db, batch):
    with db.session() as s:
        for n in range(12):
            append(s, stream=f"risk:{n % 3}", kind="k", actor="U1", data={"n": n})
    with db.read_session() as s:
        seen = [(e.stream, e.stream_seq) for e in stored_events(s, batch=batch)]
        assert seen == sorted(seen) and len(seen) == 12
        assert verify_database(s, batch=batch).ok
