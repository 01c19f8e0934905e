"""Progress for long exports: a Rich bar on a terminal (stderr), nothing at all otherwise.

Scripts and CI pipe stderr to files; a bar there is noise, so the choice is made from the stream
itself (`isatty`), not from a flag the caller could forget.
"""

from __future__ import annotations

import sys
from typing import IO, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None) -> None: ...
    def advance(self, steps: int = 1) -> None: ...
    def close(self) -> None: ...


def lane_of(progress: Progress) -> Progress:
    """Progress for work running beside the caller's (another process's stages): its own line on a
    bar; for any other Progress, the same object."""
    lane = getattr(progress, "lane", None)
    return lane() if lane is not None else progress


class Quiet:
    """Used when stderr is not a terminal: says nothing."""

    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Bar:
    """One Rich progress line per stage (incident packets, event log, ...)."""

    def __init__(self, stream: IO[str]):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(file=stream), transient=False)
        self._progress.start()
        self._task = None

    def _finish_current(self) -> None:
        if self._task is not None:
            task = next(task for task in self._progress.tasks if task.id == self._task)
            if task.total is not None:
                self._progress.update(self._task, completed=task.total)

    def start(self, description: str, total: int | None) -> None:
        self._finish_current()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, steps)

    def close(self) -> None:
        self._finish_current()
        self._progress.stop()

    def lane(self) -> Progress:
        """Stages running beside this bar's own (Rich's Progress takes updates from any thread)."""
        return _Lane(self._progress)


class _Lane(Bar):
    """A bar's second line of stages: the same Rich display, its own current task."""

    def __init__(self, shared):
        self._progress, self._task = shared, None

    def close(self) -> None:
        self._finish_current()


def for_stream(stream: IO[str] | None = None) -> Progress:
    """A bar when `stream` (default stderr) is a terminal, else `Quiet`."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return Bar(stream) if isatty is not None and isatty() else Quiet()
