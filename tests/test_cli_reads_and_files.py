"""CLI exports read without SQLite's write lock, and write `-o FILE` safely (temporary file, rename)."""

import os
import resource
import signal
import threading

import pytest
from click.testing import CliRunner
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlmodel import select

from vigil_ir.cli import main
from vigil_ir.db import Database
from vigil_ir.eventlog import Event
from vigil_ir.incidents import service
from vigil_ir.incidents.models import Incident

PATIENCE = 120  # seconds with no progress at all before the test gives up (it never waits this long when passing)


def cli(db, *args):
    return CliRunner().invoke(main, list(args), obj={"database": db})


def seed_incident(db, notes=1):
    with db.session() as s:
        incident = service.declare(s, actor="U1", title="API down", severity="sev3", type="availability",
                                   description="Checkout fails")
        for n in range(notes):
            service.add_note(s, incident=incident, actor="U1", text=f"note {n} " + "x" * 200)
    return incident


class PausedRead:
    """Holds the thread that runs the export at its first SELECT until released: an export mid-read."""

    def __init__(self):
        self.reading, self.release, self.thread = threading.Event(), threading.Event(), None

    def __enter__(self):
        sa_event.listen(Engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc):
        self.release.set()
        sa_event.remove(Engine, "before_cursor_execute", self._hook)

    def _hook(self, conn, cursor, statement, *args):
        if threading.current_thread() is self.thread and statement.lstrip().upper().startswith("SELECT") \
                and not self.reading.is_set():
            self.reading.set()
            self.release.wait(PATIENCE)


READERS = [("export", "timeline", "INC-1", "--format", "json"),
           ("export", "incidents", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("export", "risks"),
           ("export", "reviews", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("sample", "incidents", "--from", "2000-01-01", "--to", "2999-12-31", "--seed", "1"),
           ("risks", "report", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("risks", "export"),
           ("verify",)]


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_slack_commands_commit_while_an_export_is_mid_read(vigil, args):
    if not vigil.db.is_sqlite:
        pytest.skip("the write lock held by a reader is SQLite's problem")
    incident = vigil.declare()
    exporter_db = Database(vigil.db.url)  # the CLI's own handle, as in a separate `vigil export` process
    outcome = {}
    with PausedRead() as paused:
        paused.thread = threading.Thread(target=lambda: outcome.setdefault("result", cli(exporter_db, *args)))
        paused.thread.start()
        assert paused.reading.wait(PATIENCE), "the export never started reading"
        replies = []
        slack = threading.Thread(target=lambda: replies.extend(
            vigil.command(f"note while exporting {n}", channel=incident.channel_id, user="U0DECLARER")
            for n in range(3)))
        slack.start()
        slack.join(PATIENCE)
        committed_while_open = not slack.is_alive() and paused.thread.is_alive()
        paused.release.set()
        slack.join(PATIENCE)
        paused.thread.join(PATIENCE)
    exporter_db.dispose()
    assert committed_while_open, "Slack commands waited for the export to finish"
    assert all(r.status_code == 200 and "note #" in r.text for r in replies), [r.text for r in replies]
    assert outcome["result"].exit_code == 0, outcome["result"].output
    with vigil.db.session() as s:
        notes = s.exec(select(Event).where(Event.kind == "incident.note_added")).all()
    assert len(notes) == 3


def test_a_failed_write_leaves_the_earlier_file_intact(db, tmp_path):
    seed_incident(db, notes=40)
    target = tmp_path / "inc.json"
    target.write_text("the earlier export\n")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, limit[1]))  # a disk that fills after 2 KiB
    try:
        result = cli(db, "export", "timeline", "INC-1", "-o", str(target))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)
    assert result.exit_code == 1 and f"Cannot write {target}" in result.output, result.output
    assert "Traceback" not in result.output
    assert target.read_text() == "the earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inc.json"]  # no temporary file left behind
    result = cli(db, "export", "timeline", "INC-1", "-o", str(target))
    assert result.exit_code == 0 and target.read_text().startswith("{")


def test_a_failed_sample_write_records_no_draw(db, tmp_path):
    seed_incident(db, notes=0)
    target = tmp_path / "sub" / "s.csv"
    result = cli(db, "sample", "incidents", "--from", "2000-01-01", "--to", "2999-12-31", "-o", str(target))
    assert result.exit_code != 0 and "does not exist" in result.output
    with db.session() as s:
        assert not s.exec(select(Event).where(Event.kind == "audit.sample_drawn")).all()


EXPORTS = [("export", "timeline", "INC-1"), ("export", "incidents", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("export", "pirs", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("export", "actions", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("export", "risks"), ("export", "reviews", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("export", "acceptances", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("export", "bundle", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("sample", "incidents", "--from", "2000-01-01", "--to", "2999-12-31"),
           ("risks", "report", "--from", "2000-01-01", "--to", "2999-12-31"), ("risks", "export"),
           ("risks", "heatmap")]


@pytest.mark.parametrize("args", EXPORTS, ids=lambda a: " ".join(a[:2]))
def test_symlinks_devices_and_pipes_are_refused_as_targets(db, tmp_path, args):
    seed_incident(db, notes=0)
    real = tmp_path / "real.svg"
    real.write_text("keep me")
    link = tmp_path / "link.svg"
    link.symlink_to(real)
    pipe = tmp_path / "pipe.svg"
    os.mkfifo(pipe)
    for target, says in ((link, "symbolic link"), (pipe, "not a regular file"), ("/dev/null", "not a regular file")):
        result = cli(db, *args, "-o", str(target))
        assert result.exit_code != 0 and says in result.output, (target, result.output)
        assert "Traceback" not in result.output
    assert link.is_symlink() and real.read_text() == "keep me" and os.path.exists("/dev/null")
    with db.session() as s:
        assert not s.exec(select(Event).where(Event.stream == "audit")).all()
