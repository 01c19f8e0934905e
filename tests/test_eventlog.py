import threading

from sqlalchemy import text

from vigil_ir.eventlog import append, events_for_stream
from vigil_ir.eventlog.canonical import GENESIS_HASH, canonical_json, event_hash
from vigil_ir.eventlog.verify import verify_database


def test_chain_links_and_verifies(db):
    with db.session() as s:
        first = append(s, stream="incident:1", kind="a", actor="U1", data={"x": 1})
        second = append(s, stream="incident:1", kind="b", actor="U1", data={"y": "é"})
        append(s, stream="risk:1", kind="c", actor="U2")
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert (first.stream_seq, second.stream_seq) == (1, 2)
    with db.session() as s:
        result = verify_database(s)
    assert result.ok and result.streams == 2 and result.events == 3


def test_canonical_json_is_compact_sorted_utf8():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_tampered_event_is_named(db):
    with db.session() as s:
        for n in range(3):
            append(s, stream="incident:7", kind="incident.note_added", actor="U1", data={"text": f"n{n}"})
    with db.engine.begin() as c:
        c.execute(text("UPDATE event SET data = :d WHERE stream_seq = 2"), {"d": '{"text": "edited"}'})
    with db.session() as s:
        result = verify_database(s)
    assert not result.ok
    assert (result.broken.stream, result.broken.seq, result.broken.problem) == ("incident:7", 2, "hash mismatch")


def test_deleted_event_is_a_sequence_gap(db):
    with db.session() as s:
        for n in range(3):
            append(s, stream="incident:8", kind="k", actor="U1", data={"n": n})
    with db.engine.begin() as c:
        c.execute(text("DELETE FROM event WHERE stream_seq = 2"))
    with db.session() as s:
        result = verify_database(s)
    assert result.broken.problem == "sequence gap" and result.broken.seq == 3


def test_truncated_tail_is_caught_by_the_stream_head(db):
    with db.session() as s:
        for n in range(2):
            append(s, stream="incident:9", kind="k", actor="U1", data={"n": n})
    with db.engine.begin() as c:
        c.execute(text("DELETE FROM event WHERE stream_seq = 2"))
    with db.session() as s:
        result = verify_database(s)
    assert result.broken.problem == "stream head does not match the last event"


def test_hash_matches_recomputation_after_round_trip(db):
    with db.session() as s:
        append(s, stream="s", kind="k", actor="U1", data={"nested": {"b": [1, 2], "a": None}})
    with db.session() as s:
        (event,) = events_for_stream(s, "s")
        assert event_hash(event.model_dump()) == event.hash


def test_concurrent_writers_to_one_stream_get_gapless_sequence(db):
    errors = []

    def writer(n):
        try:
            for i in range(10):
                with db.session() as s:
                    append(s, stream="incident:42", kind="k", actor=f"U{n}", data={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.session() as s:
        events = events_for_stream(s, "incident:42")
        assert [e.stream_seq for e in events] == list(range(1, 41))
        assert verify_database(s).ok
