"""A bundle export on two cores: the incident pass and the state check in processes of their own.

The export is pure Python apart from compression, so a second thread would not help (the GIL); more
processes do. Three, each with one job:

* this one (the parent) writes every section but the incidents, and the zip: a thread here receives
  the incident process's finished files and hands them to the same ZipSink, whose own thread
  deflates them as they come;
* the incident pass (E1/E2/E3/E5: every incident's events, packets and population rows), the largest
  single section, about half of the export's work;
* the state check (vigil_ir.exports.bundle.state_guard), which must pass before the bundle is kept;
  the parent stops as soon as it reports a difference.

The two children share the machine's second core between them (the budget is two cores), so the
parent's share and theirs come out about even. All three read the same snapshot
(vigil_ir.exports.snapshot): the bundle is still one moment of the database, and the check covers
exactly the state the bundle is built from.

The children are started with multiprocessing's forkserver: forked from a small server process that
imported the export code once (the first export of a process pays those imports, later ones in the
same process do not), never from the parent itself, whose threads (the zip's, a web server's) a fork
would copy mid-flight. A child gets the database URL and settings as arguments, not from the
environment.

A child that raises, or dies, fails the export: its message (or exit status) is raised here as
ExportProcessFailed, and the caller's cleanup leaves no partial bundle and records nothing. When the
parent fails instead, `stop()` ends the children.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from multiprocessing import forkserver
from multiprocessing.reduction import recv_handle
from typing import TYPE_CHECKING, Any

from vigil_ir.exports.progress import Progress, lane_of

if TYPE_CHECKING:  # this module stays light to import: prepare() runs before the export code is imported
    from vigil_ir.exports.bundle.child import Facts, Job
    from vigil_ir.exports.bundle.files import ZipSink
    from vigil_ir.exports.bundle.state_guard import StateDiffers

CONTEXT = "forkserver"
PRELOAD = ["vigil_ir.exports.bundle.child"]


class ExportProcessFailed(RuntimeError):
    """A process of the export failed or ended early; nothing was written."""


def _context():
    context = multiprocessing.get_context(CONTEXT)
    context.set_forkserver_preload(PRELOAD)
    return context


def prepare() -> None:
    """Start the forkserver now, so that it imports the export code while this process imports its
    own (`vigil export bundle` calls it first); the children then start at once."""
    _context()
    forkserver.ensure_running()


class ChildProcess:
    """One task of vigil_ir.exports.bundle.child in a process of its own, and the thread receiving its
    messages (files go to `sink`, progress to `progress`)."""

    def __init__(self, task: str, job: Job, sink: ZipSink | None = None, progress: Progress | None = None):
        self.task, self.job, self.sink, self.progress = task, job, sink, progress
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
        process = _context().Process(target=child.main, args=(child_end, self.task, self.job),
                                     name=f"vigil-bundle-{self.task}", daemon=True)
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

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def finished(self) -> bool:
        return self._events["done"].is_set()

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
        elif kind == "spooled":
            fd = recv_handle(self._connection)
            self.sink.add_entry(message[1], os.fdopen(fd, "rb"))
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


class Helpers:
    """The incident pass and (`check_state`) the state check beside the parent: start them, share the snapshot with
    them (vigil_ir.exports.snapshot.Joiners), `check()` between sections, `facts()` at the end;
    `stop()` always (in a `finally`)."""

    def __init__(self, job: Job, sink: ZipSink, progress: Progress, *, check_state: bool):
        self._lane = lane_of(progress)
        self.incidents = ChildProcess("incidents", job, sink, self._lane)
        self.state_check = ChildProcess("state_check", job) if check_state else None
        self.all = tuple(process for process in (self.incidents, self.state_check) if process is not None)

    def start(self) -> None:
        for process in self.all:
            process.start()

    def ready(self) -> None:
        for process in self.all:
            process.wait("ready")

    def join(self, token: str | None) -> None:
        for process in self.all:
            process.send_snapshot(token)
        if token is None:  # SQLite: writers are held off until every child has made its first read
            for process in self.all:
                process.wait("joined")

    def check(self) -> None:
        """Raise now if a child failed or the state check found differences (no use going on)."""
        for process in self.all:
            process.raise_if_failed()
        if self.state_check is not None and self.state_check.finished:
            self._refuse_if_differs()

    def facts(self) -> Facts:
        """Wait for both; raises StateDiffers when the check found differences."""
        self.check()
        facts = self.incidents.result()
        self._refuse_if_differs()
        return facts

    def _refuse_if_differs(self) -> None:
        if self.state_check is None:
            return
        verdict: StateDiffers | None = self.state_check.result()
        if verdict is not None:
            raise verdict

    def stop(self) -> None:
        try:
            for process in self.all:
                process.stop()
        finally:
            self._lane.close()
