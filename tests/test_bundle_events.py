"""The bundle serialises each event once, from its stored text (vigil_ir.exports.bundle.events): its
JSON line and CSV cells must be exactly what the general writers make of the same event
(eventlog_export.event_row, csvsafe.cell), whatever the text holds, and a stored row whose hash does
not hold is reported, not written as if it did."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import text

from vigil_ir.eventlog import events_for_stream
from vigil_ir.exports import csvsafe, eventlog_export
from vigil_ir.exports.bundle.events import BundleEvent, Names, chain_problem, prepared, whole_streams
from vigil_ir.incidents import service
from vigil_ir.people import Directory
from tests.test_bundle import declare, step

AWKWARD = ("=cmd|' /C calc'!A0", "second line\r\nthird <b>&amp;</b>", "\u202eexe.pdf \u2066x\u2069",
           "'quoted' \"double\" \\ back", "＠full-width", "-1", "\t tab", "emoji 🚀 and U0LEAD named", "",
           "plain words", "commas, \"quotes\", and more")


def _events(db, stream: str) -> tuple[list[BundleEvent], list]:
    with db.read_session() as session:
        people = Directory.load(session)
        fast = list(prepared(whole_streams(session, [stream]), Names(people)))
        slow = [eventlog_export.event_row(event, people) for event in events_for_stream(session, stream)]
    return fast, slow


def test_each_event_serialised_once_is_what_the_general_writers_write(db):
    declare(db, date(2025, 1, 10), title="=SUM(A1) \u202eflip")
    for minutes, note in enumerate(AWKWARD, 1):
        step(db, date(2025, 1, 10), minutes, "INC-1", lambda s, i, note=note: service.add_note(
            s, incident=i, actor="U0LEAD", text=note or "(empty)"))
    fast, slow = _events(db, "incident:1")
    assert len(fast) == len(slow) == len(AWKWARD) + 1
    for event, row in zip(fast, slow):
        line = event.json_line()
        assert json.loads(line) == row and list(json.loads(line)) == list(eventlog_export.COLUMNS)
        assert event.csv_cells() == [csvsafe.cell(row[name]) for name in eventlog_export.COLUMNS], row["summary"]
        assert event.csv_line() == csvsafe.to_csv(eventlog_export.COLUMNS, [row]).split("\r\n", 1)[1]
        assert event.hash_ok
    assert chain_problem(fast) is None


def test_a_stored_row_whose_hash_does_not_hold_is_named(db):
    declare(db, date(2025, 1, 10), title="Disk filling up")
    step(db, date(2025, 1, 10), 1, "INC-1", lambda s, i: service.add_note(s, incident=i, actor="U0LEAD", text="ok"))
    with db.session() as session:
        session.execute(text("UPDATE event SET actor = 'U0MALLORY' WHERE stream = 'incident:1' AND stream_seq = 2"))
    fast, _ = _events(db, "incident:1")
    assert [event.hash_ok for event in fast] == [True, False]
    assert chain_problem(fast).startswith("stream incident:1 seq 2: hash mismatch")
