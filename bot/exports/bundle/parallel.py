"""A bundle export on two cores: the incident pass in processes of their own, beside the rest.

The export is pure Python apart from compression, so a second thread would not help (the GIL); other
processes do:

* the incident pass (E1/E2/E3/E5: every incident's events, packets and population rows), the
  largest single section, runs in SHARES children: the period's incidents are cut into runs in key
  order (vigil_ir.exports.bundle.incidents.parts_of), and each child takes the next run not yet
  taken until none is left, so they finish together whichever gets more of the cores; for each run
  a child writes its packets and its share of the three incident tables, which this process joins
  in run order as they arrive (vigil_ir.exports.bundle.joined);
* this process (the parent) runs the state check (vigil_ir.exports.bundle.state_guard) and every other
  section, and writes the zip: a thread per child receives its finished files and hands them to the
  same ZipSink, whose own thread deflates them as they come.

Three busy processes on two cores: whichever side has more to do for the period, both cores stay
busy until the end, where one incident process beside the parent left a core idle once the faster
side was done. All read the same snapshot (vigil_ir.exports.snapshot): the bundle is still one
moment of the database, and the check covers exactly the state the bundle is built from.

The children are started with multiprocessing's forkserver: forked from a small server process that
imported the export code once (the first export of a process pays those imports, later ones in the
same process do not), never from the parent itself, whose threads (the zip's, a web server's) a fork
would copy mid-flight. They get the database URL and settings as arguments, not from the environment.

A child that raises, or dies, fails the export: its message (or exit status) is raised here as
ExportProcessFailed, and the caller's cleanup leaves no partial bundle and records nothing. When the
parent fails instead, `stop()` ends the children.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from dataclasses import replace
from multiprocessing import forkserver
from multiprocessing.reduction import recv_handle
from typing import TYPE_CHECKING, Any

from vigil_ir.exports.progress import Progress, lane_of

if TYPE_CHECKING:  # this module stays light to import: prepare() runs before the export code is imported
    from vigil_ir.exports.bundle.child import Facts, Job
    from vigil_ir.exports.bundle.files import ZipSink
    from vigil_ir.exports.bundle.joined import Joins

CONTEXT = "forkserver"
# Incident processes: the incident pass is about half of a bundle's work, so two of them and the
# parent keep both of the two cores the bundle is budgeted for busy until the end, whichever side
# has more to do for the period.
SHARES = 2
PRELOAD = ["vigil_ir.exports.bundle.child"]


class ExportProcessFailed(RuntimeError):
    """The export's other process failed or ended early; nothing was written."""


def _context():
    context = multiprocessing.get_context(CONTEXT)
    context.set_forkserver_preload(PRELOAD)
    return context


def prepare() -> None:
    """Start the forkserver now, so that it imports the export code while this process imports its
    own (`vigil` calls it as soon as the command line says `export bundle`: vigil_ir.cli.STARTED_EARLY);
    the children then start at once. Idempotent."""
    _context()
    forkserver.ensure_running()


class ChildProcess:
    """One task of vigil_ir.exports.bundle.child in a process of its own, and the thread receiving its
    messages (files go to `sink`, progress to `progress`)."""

    def __init__(self, task: str, job: Job, sink: ZipSink | None = None, progress: Progress | None = None,
                 taken: Any = None, joins: Joins | None = None):
        self.task, self.job, self.sink, self.progress, self.taken, self.joins = task, job, sink, progress, taken, joins
        self._events = {kind: threading.Event() for kind in ("ready", "joined", "done")}
        self._received: set[str] = set()
        self._result: Any = None
        self._failure: str | None = None
        self._process = None
        self._connection = None
        self._receiver: threading.Thread | None = None

    def start(self) -> None:
        from vigil_ir.exports.bundle import child

        parent_end, child_end = multiprocessing.Pipe(duplex=True)
        process = _context().Process(target=child.main, args=(child_end, self.task, self.job, self.taken),
                                     name=f"vigil-bundle-{self.task}-{self.job.worker + 1}", daemon=True)
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # the child holds its own copy: EOF here once it exits
        self._process, self._connection = process, parent_end
        self._receiver = threading.Thread(target=self._receive, name=f"bundle-{self.task}-receiver", daemon=True)
        self._receiver.start()

    def stop(self) -> None:
        """End the process if it still runs; wait for it and the receiving thread. Idempotent."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
            self._process.join()
        if self._receiver is not None:
            self._receiver.join()  # the child's end is closed: the receiver has seen EOF or finished
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send_snapshot(self, token: str | None) -> None:
        self._connection.send(("snapshot", token))

    def wait(self, kind: str) -> None:
        """Until the child said `kind` ("ready", "joined"); raises if it failed or ended first."""
        self._events[kind].wait()  # set by its message, or by the receiver ending
        self.raise_if_failed()
        if kind not in self._received:
            raise ExportProcessFailed(f"the {self.task} process ended before it was {kind}")

    def raise_if_failed(self) -> None:
        if self._failure is not None:
            raise ExportProcessFailed(self._failure)

    def result(self) -> Any:
        """Wait for the task to finish and return its result (its files are then all in the sink)."""
        self.wait("done")
        self._receiver.join()
        self._process.join()
        return self._result

    # ---- the receiving thread ----------------------------------------------------------------
    def _receive(self) -> None:
        try:
            while self._handle(self._connection.recv()):
                pass
        except (EOFError, OSError):
            self._process.join()
            self._fail(f"the {self.task} process ended unexpectedly (exit code {self._process.exitcode})")
        except BaseException as exc:  # noqa: BLE001 - e.g. the zip failed: the main thread raises it
            self._fail(f"receiving the {self.task} process's files failed: {type(exc).__name__}: {exc}")
        finally:
            for event in self._events.values():  # wake whoever waits: they check what arrived
                event.set()

    def _handle(self, message: tuple[Any, ...]) -> bool:
        """Act on one message; False once the child has said its last."""
        kind = message[0]
        if kind == "file":
            _, entry, data, listed = message
            self.sink.add_entry(entry, data, listed=listed)
        elif kind == "share":
            fd = recv_handle(self._connection)
            self.joins.add(message[2], message[1], os.fdopen(fd, "rb"))
        elif kind == "progress":
            if message[1] == "start":
                self.progress.start(message[2], message[3])
            else:
                self.progress.advance(message[2])
        elif kind in ("ready", "joined"):
            self._received.add(kind)
            self._events[kind].set()
        elif kind == "done":
            self._result = message[1]
            self._received.add(kind)
            return False
        elif kind == "failed":
            logging.getLogger(__name__).error("the bundle's %s process failed:\n%s", self.task, message[2])
            self._fail(f"the {self.task} process failed: {message[1]}")
            return False
        else:
            raise ValueError(f"unexpected message from the {self.task} process: {kind!r}")
        return True

    def _fail(self, text: str) -> None:
        if self._failure is None:
            self._failure = text


class _SharedStage:
    """One progress line the incident processes advance together: started by the first to say so."""

    def __init__(self, lane: Progress):
        self.lane, self._started, self._lock = lane, set(), threading.Lock()

    def start(self, description: str, total: int | None) -> None:
        with self._lock:
            if description not in self._started:
                self._started.add(description)
                self.lane.start(description, total)

    def advance(self, steps: int = 1) -> None:
        self.lane.advance(steps)

    def close(self) -> None:
        self.lane.close()


class Helpers:
    """The incident pass beside the parent, in SHARES processes taking runs of the period's incidents:
    start them, share the snapshot with them (vigil_ir.exports.snapshot.Joiners), `check()` between
    sections, `facts()` at the end; `stop()` always (in a `finally`)."""

    def __init__(self, job: Job, sink: ZipSink, progress: Progress, *, shares: int = SHARES):
        from vigil_ir.exports.bundle.joined import Joins

        self.sink, self.joins = sink, Joins(sink)  # the runs' shares of the incident tables, joined as they come
        self._stage = _SharedStage(lane_of(progress))
        taken = _context().Value("i", 0)  # the next run no process has taken (child._take)
        self.incidents = [ChildProcess("incidents", replace(job, worker=worker, workers=shares), sink, self._stage,
                                       taken, self.joins)
                          for worker in range(shares)]

    def start(self) -> None:
        for child in self.incidents:
            child.start()

    def ready(self) -> None:
        for child in self.incidents:
            child.wait("ready")

    def join(self, token: str | None) -> None:
        for child in self.incidents:
            child.send_snapshot(token)
        if token is None:  # SQLite: writers are held off until every child has made its first read
            for child in self.incidents:
                child.wait("joined")

    def check(self) -> None:
        """Raise now if a child failed (no use going on)."""
        for child in self.incidents:
            child.raise_if_failed()

    def facts(self) -> Facts:
        """Wait for the incident pass, finish joining the shares of its tables and return its facts; its
        files are then all handed to the sink."""
        from vigil_ir.exports.bundle.child import Facts

        passes = [child.result() for child in self.incidents]
        runs = {done.runs for done in passes}
        done = {run: facts for each in passes for run, facts in each.done.items()}
        if len(runs) != 1 or sorted(done) != list(range(*runs)) or not self.joins.complete(*runs):
            raise ExportProcessFailed("the incident processes did not write every run of the period's incidents once")
        self.joins.finish(*runs)
        return Facts.of_shares([done[run] for run in sorted(done)])

    def stop(self) -> None:
        try:
            for child in self.incidents:
                child.stop()
        finally:
            self.joins.stop()
            self._stage.close()
