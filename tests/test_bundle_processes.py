"""The bundle export on two processes: the incident pass runs beside the parent, on the parent's
snapshot; the bundle is the one a single process writes; a child that dies or raises, or a state check
that finds differences, fails the export cleanly (no partial bundle, the earlier file intact, nothing
recorded, no process left)."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import threading
import zipfile

from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.db import Database
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.export import export_bundle
from vigil_ir.exports.bundle.incidents import PAGE, parts_of
from vigil_ir.exports.bundle.parallel import ExportProcessFailed
from vigil_ir.exports.bundle.state_guard import StateDiffers
from vigil_ir.exports.bundle.verification import verify_bundle
from vigil_ir.exports.progress import Bar, Quiet
from vigil_ir.incidents import queries, service
from vigil_ir.incidents.models import Incident
from vigil_ir.tables import metadata
from tests.test_bundle import END, EXPORTED_AT, START, at, declare, manifest_of, read, seed, table

LONG_NOTE = "The queue backs up again; " * 115  # under the 3,000-character limit


def export(db, target, **kwargs):
    with clock.frozen(EXPORTED_AT):
        return export_bundle(db, start=START, end=END, output=target, actor="cli:auditor", **kwargs)


def recorded_exports(db) -> list[Event]:
    with db.session() as s:
        return list(s.exec(select(Event).where(Event.kind == "audit.bundle_exported")))


def kill_incident_processes(sent: int) -> None:
    for process in multiprocessing.active_children():
        if process.name.startswith("vigil-bundle-incidents-"):
            os.kill(process.pid, sent)


class OnStage(Quiet):
    """Progress that runs `then` when a stage named `stage` starts (the child's stages are reported by
    the parent's receiving thread, while the child waits for it to take its next file)."""

    def __init__(self, stage: str, then):
        self.stage, self.then, self.seen = stage, then, []

    def start(self, description: str, total: int | None) -> None:
        self.seen.append(description)
        if description == self.stage:
            self.then()


def long_incident(db) -> None:
    """An incident whose packet is larger than a socket's buffer: the incident process cannot finish
    while the parent is not reading, so a signal sent from a progress callback finds it at work."""
    declare(db, START.date(), title="Queue backlog")
    with at(START.date(), 5), db.session() as s:
        incident = queries.by_key(s, "INC-1")
        for _ in range(400):
            service.add_note(s, incident=incident, actor="U0LEAD", text=LONG_NOTE)


@pytest.mark.parametrize("sent, message", [
    (signal.SIGKILL, "the incidents process ended unexpectedly (exit code -9)"),
    (signal.SIGINT, "the incidents process failed: KeyboardInterrupt"),
], ids=["dies", "raises"])
def test_an_incident_process_that_dies_or_raises_fails_the_export_and_changes_nothing(db, tmp_path, sent, message):
    long_incident(db)
    target = tmp_path / "q1.zip"
    target.write_bytes(b"the earlier bundle")
    # One incident, one run: the process that takes it starts the stage, and cannot finish its packet
    # while the callback holds up the parent's reading; the other has no run (done, or about to be).
    progress = OnStage("Incidents", lambda: kill_incident_processes(sent))
    with pytest.raises(ExportProcessFailed) as failed:
        export(db, target, progress=progress)
    assert str(failed.value) == message
    assert progress.seen.count("Incidents") == 1  # one stage, however many processes
    assert target.read_bytes() == b"the earlier bundle"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["q1.zip"]  # no partial file left
    assert recorded_exports(db) == []
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("vigil-bundle-")]
    export(db, target)  # and the next export works
    assert zipfile.is_zipfile(target) and len(recorded_exports(db)) == 1


def test_differences_found_by_the_state_check_stop_the_export_and_its_incident_process(db, tmp_path):
    long_incident(db)
    with db.session() as s:  # edited with SQL: the row no longer says what its events say
        s.execute(update(Incident).where(Incident.number == 1).values(title="Nothing happened"))
    target = tmp_path / "q1.zip"
    target.write_bytes(b"the earlier bundle")
    with pytest.raises(StateDiffers) as refused:
        export(db, target, check_state=True)
    assert refused.value.count == 1
    assert refused.value.shown == ["INC-1: the state row's title differs from its events (events say 'Queue backlog', "
                                   "the row has 'Nothing happened')"]
    assert target.read_bytes() == b"the earlier bundle" and sorted(p.name for p in tmp_path.iterdir()) == ["q1.zip"]
    assert recorded_exports(db) == []
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("vigil-bundle-")]


def test_every_process_reads_the_same_moment_while_writers_carry_on(db, tmp_path):
    """Notes are appended to an open incident as fast as the database takes them, for the whole
    export. The incident process writes its event log and packet, the parent the chain heads: they
    agree, because every process reads the one snapshot (on SQLite, writers are held off for the
    moment the readers take to begin)."""
    seed(db)
    busy = declare(db, START.date(), title="Busy incident")  # open, declared in the period
    stop, written = threading.Event(), []

    def keep_writing():
        while not stop.is_set():
            with db.session() as s:
                written.append(service.add_note(s, incident=queries.by_key(s, busy.key), actor="U0LEAD",
                                                text="still writing").id)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        while len(written) < 3:  # under way before the export starts
            pass
        before = len(written)
        export(db, tmp_path / "q1.zip")
        after = len(written)
    finally:
        stop.set()
        writer.join()
    assert after > before  # notes were written while the export ran
    bundle = tmp_path / "q1.zip"
    logged = [row for row in table(bundle, "incident_events")[0] if row["stream"] == busy.stream]
    (head,) = [row for row in table(bundle, "chain_heads")[0] if row["stream"] == busy.stream]
    integrity = json.loads(read(bundle, f"incidents/{busy.key}/{busy.key}.json"))["integrity"]
    assert (logged[-1]["seq"], logged[-1]["hash"]) == (head["seq"], head["hash"])
    assert (integrity["head_seq"], integrity["head_hash"], integrity["verified"]) == (head["seq"], head["hash"], True)
    assert verify_bundle(bundle).ok


def test_the_bundle_is_the_one_a_single_process_writes(db, tmp_path, database_url):
    """An in-memory SQLite database cannot be opened by another process, so its bundle is written by
    one; the same records in a file give the same manifest, byte for byte, written by two."""
    if not database_url.startswith("sqlite"):
        pytest.skip("compares with SQLite's in-memory database")
    memory = Database("sqlite://")
    metadata.create_all(memory.engine)
    try:
        seed(memory)
        one = export(memory, tmp_path / "one.zip", check_state=True)
    finally:
        memory.dispose()
    seed(db)
    two = export(db, tmp_path / "two.zip", check_state=True)
    assert one.manifest_sha256 == two.manifest_sha256
    assert read(tmp_path / "one.zip", "manifest.json") == read(tmp_path / "two.zip", "manifest.json")
    assert manifest_of(tmp_path / "two.zip")["event_log"]["segments"]["incident_events.json"]
    assert len(table(tmp_path / "two.zip", "incidents")[0]) == 3


def many_incidents(db, count: int) -> None:
    seed(db)
    for number in range(count):
        declare(db, START.date() + timedelta(days=number % 80), title=f"Disk pressure {number}",
                severity=("sev2", "sev3", "sev4")[number % 3])


def test_runs_taken_by_both_processes_join_into_the_bundle_one_process_writes(db, tmp_path, database_url):
    """Enough incidents for several runs (incidents.parts_of): whichever process takes which, the
    tables joined from the runs' shares, the packets and the manifest are those of one process."""
    if not database_url.startswith("sqlite"):
        pytest.skip("compares with SQLite's in-memory database")
    count = 3 * PAGE + 7
    assert len(parts_of(list(range(count + 3)), workers=2)) >= 3
    memory = Database("sqlite://")
    metadata.create_all(memory.engine)
    try:
        many_incidents(memory, count)
        export(memory, tmp_path / "one.zip", check_state=True)
    finally:
        memory.dispose()
    many_incidents(db, count)
    export(db, tmp_path / "two.zip", check_state=True)
    assert read(tmp_path / "one.zip", "manifest.json") == read(tmp_path / "two.zip", "manifest.json")
    rows = table(tmp_path / "two.zip", "incidents")[0]
    numbers = [int(row["key"].removeprefix("INC-")) for row in rows]
    assert len(numbers) > count and numbers == sorted(set(numbers))  # every run once, in key order
    assert verify_bundle(tmp_path / "two.zip").ok


def test_runs_cover_the_incidents_once_in_order_and_shrink_towards_the_end():
    numbers = list(range(1, 2001))
    runs = parts_of(numbers, workers=2)
    assert [number for run in runs for number in run] == numbers
    sizes = [len(run) for run in runs]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 10 * PAGE and sizes[-1] == PAGE
    assert all(size % PAGE == 0 for size in sizes)
    assert parts_of([], workers=2) == [[]] and parts_of([7], workers=2) == [[7]]


def test_the_incident_stage_has_its_own_line_on_the_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    bar = Bar(terminal)
    beside = bar.lane()
    beside.start("Incidents", 4)
    bar.start("Risk register", None)
    beside.advance(4)
    bar.start("Audit trail", 2)
    bar.advance(2)
    beside.close()
    bar.close()
    shown = terminal.getvalue()
    assert "Incidents" in shown and "4/4" in shown and "2/2" in shown
