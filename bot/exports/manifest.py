"""The bundle manifest: what an auditor needs to trust the files (IPE: source, parameters, completeness).

It names the period, the generator and its version, when and by whom it ran; for every file its
SHA-256, size, row count and the selection behind it; the key ranges and any gaps in the INC-,
RISK- and ACT- sequences; and the event-log chain segments inside the bundle with the heads digest
of every stream at generation time. `manifest.json` is the one file not listed in itself (with
`manifest.sig`, its signature); the export event (`audit.bundle_exported`) records its SHA-256 instead,
and the next bundle names it as `previous_bundle`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vigil_ir import __version__, clock
from vigil_ir.exports.bundle.files import FileEntry
from vigil_ir.exports.eventlog_export import HASH_METHOD, Segments

NAME = "manifest.json"
FORMAT = "vigil-evidence-bundle/1"
# 2: each event once (packets name their event-log rows; the audit log leaves out streams given whole
# elsewhere; no Markdown packet). 1 (no `layout` key): every file carried its own copy of the events.
LAYOUT = 2
SEQUENCE_ORDER = ("INC-", "RISK-", "ACT-")
MISSING = ("no record with this number exists in the database (numbers are issued inside the creating "
           "transaction, so this means the record was removed or the counter was changed directly)")


def _span(prefix: str, first: int, last: int, reason: str) -> dict[str, Any]:
    return {"from": f"{prefix}{first}", "to": f"{prefix}{last}", "count": last - first + 1, "reason": reason}


def sequence_report(prefix: str, rule: str, included: list[int], existing: Iterable[int], *,
                    counter_last: int | None, highest: int | None) -> dict[str, Any]:
    """Key range and gaps of one sequence.

    `included`: the numbers in the bundle (sorted); `existing`: every number in the database
    between the first and last included (sorted); `highest`: the largest number in the database;
    `counter_last`: the last number the key counter issued. A gap inside the range is either a
    record outside this bundle's selection (`rule`) or a number with no record at all; numbers the
    counter issued after the highest record are reported when the bundle reaches that record.
    """
    report: dict[str, Any] = {"prefix": prefix, "rule": rule, "count": len(included),
                              "first": f"{prefix}{included[0]}" if included else None,
                              "last": f"{prefix}{included[-1]}" if included else None,
                              "highest_in_database": f"{prefix}{highest}" if highest else None,
                              "counter_last": counter_last, "gaps": []}
    inside, present = set(included), set(existing)
    gaps: list[dict[str, Any]] = report["gaps"]
    outside = f"the record exists but is outside this bundle's selection ({rule})"
    run: tuple[int, int, str] | None = None
    for number in range(included[0], included[-1] + 1) if included else ():
        if number in inside:
            reason = None
        else:
            reason = outside if number in present else MISSING
        if run and reason == run[2] and number == run[1] + 1:
            run = (run[0], number, reason)
            continue
        if run:
            gaps.append(_span(prefix, *run))
        run = (number, number, reason) if reason else None
    if run:
        gaps.append(_span(prefix, *run))
    top = highest or 0
    if counter_last and counter_last > top and (not included or included[-1] == top):
        gaps.append(_span(prefix, top + 1, counter_last, "issued by the key counter after the highest record; "
                                                           "no record exists for it"))
    return report


@dataclass
class Note:
    """Something the auditor should know about the bundle: an omitted section and why."""

    section: str
    status: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"section": self.section, "status": self.status, "detail": self.detail}


@dataclass
class Manifest:
    start: datetime
    end: datetime
    generated_at: datetime
    generated_by: str
    backend: str
    files: list[FileEntry] = field(default_factory=list)
    sequences: list[dict[str, Any]] = field(default_factory=list)
    segments: dict[str, Segments] = field(default_factory=dict)  # event-log file → its segments
    heads: dict[str, Any] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    previous_bundle: dict[str, Any] | None = None  # the last export's receipt (vigil_ir.exports.bundle.signing)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "export_type": "evidence_bundle",
            "layout": LAYOUT,
            "period": {"start": clock.iso(self.start), "end": clock.iso(self.end),
                       "end_is_exclusive": True, "time_zone": "UTC"},
            "generator": {"name": "vigil", "version": __version__},
            "generated_at": clock.iso(self.generated_at),
            "generated_by": self.generated_by,
            "source": {"system": "vigil", "database": self.backend},
            "previous_bundle": self.previous_bundle,
            "files": [entry.to_json() for entry in sorted(self.files, key=lambda e: e.path)],
            "sequences": sorted(self.sequences, key=lambda s: SEQUENCE_ORDER.index(s["prefix"])),
            "event_log": {
                "hash_method": HASH_METHOD,
                "genesis_prev_hash": "0" * 64,
                "heads": self.heads,
                "segments": {name: [segment.to_json() for segment in collected.items]
                             for name, collected in sorted(self.segments.items())},
            },
            "notes": [note.to_json() for note in self.notes],
        }

    def render(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
