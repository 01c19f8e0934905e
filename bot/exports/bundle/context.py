"""What every section writer of the bundle shares: the snapshot session, the zip, the manifest, the period.

It sits below the writers (they import it; it imports none of them), so the package has no import cycle.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.exports.bundle.events import Names
from vigil_ir.exports.bundle.files import Table, ZipSink
from vigil_ir.exports.manifest import Manifest
from vigil_ir.exports.progress import Progress
from vigil_ir.people import Directory


@dataclass
class Context:
    """What every section writer needs: the snapshot session, the zip, the manifest, the period."""

    session: Session
    sink: ZipSink
    manifest: Manifest
    workdir: Path
    progress: Progress
    people: Directory  # loaded once: every name in the bundle comes from it, as at the act's time
    settings: Settings  # the roles people.csv lists when no configuration was recorded
    config_versions: list = field(default_factory=list)  # recorded configurations in force (bundle.policy)
    criteria_references: dict = field(default_factory=dict)  # file → Counter of criteria its records name
    # stream → the event-log file holding its every event (incidents, carried over, exercises): the
    # audit log leaves these streams out rather than repeat them.
    streams_in_full: dict = field(default_factory=dict)
    # For the program review (bundle.program), from the sections that fold the same events anyway:
    # the period's population rows, program_review.POPULATION_COLUMNS only (the incident pass), and
    # the update-cadence rows counted by outcome (bundle.cadence).
    review_rows: list = field(default_factory=list)
    cadence_outcomes: Counter | None = None
    program_review: Any = None  # built beside the incident pass (bundle.program), rendered after it (program_report)

    @property
    def start(self) -> datetime:
        return self.manifest.start

    @property
    def end(self) -> datetime:
        return self.manifest.end

    @property
    def generated_at(self) -> datetime:
        return self.manifest.generated_at

    @property
    def today(self) -> date:
        return clock.to_utc(self.generated_at).date()

    @property
    def iso_start(self) -> str:
        return clock.iso(self.start)

    @property
    def iso_end(self) -> str:
        return clock.iso(self.end)

    @functools.cached_property
    def names(self) -> Names:
        """The people directory's names, remembered per person where time cannot change them (events)."""
        return Names(self.people)

    def period_text(self, column: str) -> str:
        return f"{column} >= {self.iso_start} and {column} < {self.iso_end}"

    def table(self, name: str, columns: Sequence[str], *, section: str, description: str, query: str,
              share: int | None = None) -> Table:
        return Table(name, columns, section=section, description=description, query=query, workdir=self.workdir,
                     share=share)
