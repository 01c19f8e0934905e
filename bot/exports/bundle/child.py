"""An incident process of a bundle export: its share of the incident pass, on the parent's snapshot.

`main` runs in a child process (vigil_ir.exports.bundle.parallel starts several). It joins the
snapshot the parent shares (vigil_ir.exports.snapshot.joined_snapshot) and runs the incident section
writer (vigil_ir.exports.bundle.incidents) for runs of the period's incidents: the period's incidents
are cut into runs (incidents.parts_of), and each process takes the next run not yet taken (a counter
the processes share) until none is left, so they finish together. For each run it forwards over its
connection what it produces: each finished packet file (bytes), the run's share of each of the three
incident tables (temporary files passed as open file descriptors, so nothing is copied and nothing is
left on disk if either process dies), and the progress of the stage; at the end, the facts the
parent's later sections need of each of its runs (`Facts`). The parent joins the shares in run order
and writes every file into the one zip.

Messages to the parent, in order: ("ready",), ("joined",), then any number of ("file", entry, bytes,
listed), ("share", entry, run) + a file descriptor and ("progress", ...), and last ("done", Pass) or
("failed", text, traceback). The parent sends one: ("snapshot", token).

Imported at module level on purpose: the forkserver preloads this module, so a child starts with the
export code already imported.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle
from pathlib import Path
from typing import IO, Any

from vigil_ir.config import Settings
from vigil_ir.exports.bundle import incidents
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.files import FileEntry, entry_for
from vigil_ir.exports.eventlog_export import Segments
from vigil_ir.exports.manifest import Manifest, Note
from vigil_ir.exports.snapshot import joined_snapshot
from vigil_ir.exports.timeline import risk_links
from vigil_ir.people import Directory


@dataclass
class Job:
    """What the child needs: where to read, the manifest's fixed fields, where temporary files go."""

    url: str
    start: datetime
    end: datetime
    generated_at: datetime
    generated_by: str
    backend: str
    workdir: Path
    settings: Settings
    worker: int = 0  # which of the incident processes this is (its name)
    workers: int = 1  # how many take runs of the period's incidents (incidents.parts_of)


@dataclass
class Facts:
    """What the parent's later sections need from the incident pass, beyond its files."""

    segments: dict[str, Segments] = field(default_factory=dict)
    sequences: list[dict[str, Any]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    streams_in_full: dict[str, str] = field(default_factory=dict)
    named: set[str] = field(default_factory=set)  # user ids the pass showed: the people list includes them
    criteria_references: dict[str, Counter] = field(default_factory=dict)
    review_rows: list[dict[str, Any]] = field(default_factory=list)  # the program review's population rows
    numbers: list[int] = field(default_factory=list)  # the incidents of this run, in order

    def merge_into(self, ctx: Context, *, expected_streams: dict[str, str], notes_at: int) -> None:
        """Add these to the parent's context as if the pass had run there first, where it runs in
        one process (its notes before the other sections'); `expected_streams` is what the parent
        assumed the pass would give whole (its audit log left those out)."""
        if self.streams_in_full != expected_streams:
            raise RuntimeError("the incident processes gave whole a different set of streams than the audit log "
                               "left out; the bundle would miss or repeat events")
        ctx.manifest.segments.update(self.segments)
        ctx.manifest.sequences += self.sequences
        ctx.manifest.notes[notes_at:notes_at] = self.notes
        ctx.people.named |= self.named
        for path, counts in self.criteria_references.items():
            ctx.criteria_references.setdefault(path, Counter()).update(counts)
        ctx.review_rows += self.review_rows

    @classmethod
    def of_shares(cls, shares: list[Facts]) -> Facts:
        """The facts of the whole pass from those of its runs, in run order."""
        whole = cls()
        for facts in shares:
            for path, segments in facts.segments.items():
                whole.segments.setdefault(path, Segments()).items += segments.items
            whole.sequences += facts.sequences
            whole.notes += facts.notes
            whole.streams_in_full.update(facts.streams_in_full)
            whole.named |= facts.named
            for path, counts in facts.criteria_references.items():
                whole.criteria_references.setdefault(path, Counter()).update(counts)
            whole.numbers += facts.numbers
            whole.review_rows += facts.review_rows
        return whole


class ForwardingSink:
    """The sink the incident pass writes to in this process: each finished file goes to the parent."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.files: list[FileEntry] = []

    def add(self, path: str, data: bytes | str, *, section: str, description: str, query: str,
            rows: int | None = None, listed: bool = True) -> FileEntry:
        data = data.encode("utf-8") if isinstance(data, str) else data
        entry = entry_for(path, data, section=section, description=description, query=query, rows=rows)
        self.connection.send(("file", entry, data, listed))
        if listed:
            self.files.append(entry)
        return entry

    def add_spooled(self, entry: FileEntry, source: IO[bytes]) -> None:
        raise TypeError("a table written in this process is a share (vigil_ir.exports.bundle.files.Table)")

    def add_share(self, entry: FileEntry, source: IO[bytes], *, share: int) -> None:
        """A run's share of a table; the parent joins the shares in order (joined.py). The parent
        receives a duplicate of the descriptor: the same anonymous file, no copy."""
        with source:
            source.flush()
            self.connection.send(("share", entry, share))
            send_handle(self.connection, source.fileno(), None)


class ForwardingProgress:
    def __init__(self, connection: Connection):
        self.connection = connection

    def start(self, description: str, total: int | None) -> None:
        self.connection.send(("progress", "start", description, total))

    def advance(self, steps: int = 1) -> None:
        self.connection.send(("progress", "advance", steps))

    def close(self) -> None:
        pass


@dataclass
class Pass:
    """What one incident process did: the facts of each run it took, by run, of `runs` in all."""

    runs: int
    done: dict[int, Facts]


def _manifest(job: Job) -> Manifest:
    return Manifest(start=job.start, end=job.end, generated_at=job.generated_at, generated_by=job.generated_by,
                    backend=job.backend)


def _take(taken) -> int:
    """The next run no process has taken (`taken`: a multiprocessing.Value the processes share)."""
    with taken.get_lock():
        run = taken.value
        taken.value += 1
    return run


def incident_pass(connection: Connection, session, job: Job, taken) -> Pass:
    whole = Context(session=session, sink=ForwardingSink(connection), manifest=_manifest(job), workdir=job.workdir,
                    progress=ForwardingProgress(connection), people=Directory.load(session), settings=job.settings)
    numbers = incidents.numbers_of(whole)
    runs = incidents.parts_of(numbers, workers=job.workers)
    linked = risk_links(session)  # once for all runs
    done: dict[int, Facts] = {}
    while (run := _take(taken)) < len(runs):
        if not done:  # the parent shows one stage for all the processes
            whole.progress.start("Incidents", len(numbers))
        ctx = replace(whole, manifest=_manifest(job), criteria_references={}, streams_in_full={}, review_rows=[])
        incidents.write_part(ctx, runs[run], share=run, linked=linked)
        done[run] = Facts(segments=ctx.manifest.segments, sequences=ctx.manifest.sequences, notes=ctx.manifest.notes,
                          streams_in_full=ctx.streams_in_full, named=set(ctx.people.named),
                          criteria_references=ctx.criteria_references, numbers=runs[run], review_rows=ctx.review_rows)
    return Pass(runs=len(runs), done=done)


TASKS = {"incidents": incident_pass}
NICENESS = 10  # added to the process's nice value (os.nice)


def main(connection: Connection, task: str, job: Job, taken) -> None:
    """The child process's work; a failure is reported to the parent, then the process exits non-zero."""
    # The exporting process holds the export's sequential path (its sections, then joining the shares
    # and the zip's last files); work here can go in any order. A lower priority lets the scheduler
    # give that process a core of its own while the incident processes share the other: the year's
    # bundle 0.5-0.8 s sooner. It also keeps an export from crowding out a web server's requests.
    os.nice(NICENESS)
    gc.freeze()  # the imported code lives as long as the process: keep it out of full collections
    try:
        run = TASKS[task]
        connection.send(("ready",))
        kind, token = connection.recv()
        if kind != "snapshot":
            raise RuntimeError(f"expected the snapshot to join, got {kind!r}")
        with joined_snapshot(job.url, token) as session:
            connection.send(("joined",))
            result = run(connection, session, job, taken)
        connection.send(("done", result))
    except BaseException as failure:  # noqa: BLE001 - every failure is the parent's to report
        try:
            connection.send(("failed", f"{type(failure).__name__}: {failure}".rstrip(": "),
                             "".join(traceback.format_exception(failure))))
        except OSError:  # the parent is gone: nobody to tell
            pass
        sys.exit(1)
    finally:
        connection.close()
