"""Re-verifying event-log chain segments from a bundle's JSON rows (used by vigil_ir.exports.bundle_verify).

Rows come one at a time in (stream, seq) order, as the bundle writes them, so a file of any size
is checked in constant memory. Each row's hash is recomputed with
`vigil_ir.eventlog.canonical.event_hash`; within a stream the seqs must follow on and each prev_hash
must be the previous row's hash; each stream's first prev_hash, last seq, head hash and event count
must be the manifest's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from vigil_ir.eventlog.canonical import GENESIS_HASH, event_hash
from vigil_ir.exports.eventlog_export import hashed_fields


def json_rows(text: IO[str], problem: Callable[[str], Any], path: str) -> Iterator[dict[str, Any]]:
    """The objects of a bundle JSON table (an array with one object per line)."""
    for number, line in enumerate(text, 1):
        line = line.strip()
        if line in ("[", "]", "[]", ""):
            continue
        try:
            yield json.loads(line[:-1] if line.endswith(",") else line)
        except ValueError:
            problem(f"{path}: line {number} is not a JSON object")


class ChainCheck:
    """Checks one file's event rows, in order, against the manifest's segments for that file."""

    def __init__(self, path: str, segments: list[dict[str, Any]], problems: list[str]):
        self.path, self.problems = path, problems
        self.events = self.segments = 0
        self.expected = {segment["stream"]: segment for segment in segments}
        self.seen: set[str] = set()
        self.current: dict[str, Any] | None = None  # the segment being read: stream, seq, hash, events

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.path}: {text}")

    def row(self, row: dict[str, Any]) -> None:
        stream, seq = row.get("stream"), row.get("seq")
        where = f"stream {stream} seq {seq}"
        try:
            recomputed = event_hash(hashed_fields(row))
        except (KeyError, TypeError, ValueError) as exc:
            self.problem(f"{where}: row cannot be hashed ({type(exc).__name__}: {exc})")
            return
        current = self.current
        if current is None or current["stream"] != stream:
            self._close()
            if stream in self.seen:
                self.problem(f"stream {stream}: its rows are not together (seen again at seq {seq})")
            self.seen.add(stream)
            segment = self.expected.get(stream)
            if segment is None:
                self.problem(f"{where}: stream {stream} is not among the manifest's chain segments")
            else:
                if seq != segment["first_seq"]:
                    self.problem(f"stream {stream}: starts at seq {seq}; the manifest says {segment['first_seq']}")
                if row.get("prev_hash") != segment["prev_hash"]:
                    self.problem(f"{where}: prev_hash differs from the manifest's segment "
                                 f"(expected {segment['prev_hash']}, found {row.get('prev_hash')})")
                if segment["first_seq"] == 1 and segment["prev_hash"] != GENESIS_HASH:
                    self.problem(f"stream {stream}: a segment from seq 1 must start from 64 zeros")
        else:
            if seq != current["seq"] + 1:
                self.problem(f"{where}: sequence gap (expected seq {current['seq'] + 1})")
            if row.get("prev_hash") != current["hash"]:
                self.problem(f"{where}: prev_hash does not link (expected {current['hash']}, "
                             f"found {row.get('prev_hash')})")
        if recomputed != row.get("hash"):
            self.problem(f"{where}: hash mismatch (expected {recomputed}, found {row.get('hash')})")
        events = 1 if current is None or current["stream"] != stream else current["events"] + 1
        self.current = {"stream": stream, "seq": seq, "hash": row.get("hash"), "events": events}
        self.events += 1

    def _close(self) -> None:
        current = self.current
        if current is None:
            return
        segment = self.expected.get(current["stream"])
        if segment is not None:
            if (current["seq"], current["hash"]) != (segment["last_seq"], segment["head_hash"]):
                self.problem(f"stream {current['stream']}: ends at seq {current['seq']} hash {current['hash']}; "
                             f"the manifest says seq {segment['last_seq']} hash {segment['head_hash']}")
            if current["events"] != segment["events"]:
                self.problem(f"stream {current['stream']}: {current['events']} events; the manifest says "
                             f"{segment['events']}")
        self.segments += 1
        self.current = None

    def finish(self) -> None:
        self._close()
        for stream in sorted(set(self.expected) - self.seen):
            self.problem(f"stream {stream}: in the manifest's chain segments but no rows in the file")
