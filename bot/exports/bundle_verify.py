"""`vigil verify --bundle FILE`: check an evidence bundle offline, with nothing but the zip.

1. Files: every file's SHA-256 and size against the manifest; files in the zip but not in the
   manifest, listed but missing, or present twice.
2. Rows: each table's row count against the manifest.
3. Chains: every event row in the bundle's event-log files is hashed again with
   `vigil_ir.eventlog.canonical.event_hash`; within each stream segment the seqs must follow on and each
   prev_hash must be the previous hash; the segment's first prev_hash, last seq and head hash must
   be the manifest's; a segment that reaches a stream's head must end on the head in chain_heads;
   and the heads digest recomputed from chain_heads must be the manifest's.
4. Packets: each incident packet's integrity block must name the head of its stream segment.

Every problem is collected (not only the first) and named: file, stream and seq.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vigil_ir.exports import bundle_signature
from vigil_ir.exports.bundle_chain import ChainCheck, json_rows
from vigil_ir.exports.manifest import FORMAT, NAME
from vigil_ir.exports.signature import NAME as SIGNATURE

CHUNK = 1 << 20
PACKET = re.compile(r"^incidents/(INC-\d+)/\1\.json$")  # a packet's JSON timeline
SHOWN = 100  # problems printed; the count says how many more


class BundleError(Exception):
    """The file cannot be checked at all (not a zip, no manifest...)."""


@dataclass
class BundleCheck:
    path: Path
    manifest: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    files: int = 0
    events: int = 0
    segments: int = 0
    heads: dict[str, tuple[int, str]] | None = None  # from chain_heads, once read
    packet_heads: dict[str, str] = field(default_factory=dict)  # stream → E2 segment head
    signed: bundle_signature.Signed | None = None  # manifest.sig against manifest.json

    @property
    def ok(self) -> bool:
        return not self.problems


class _Hashing(io.RawIOBase):
    """Reads a zip member while hashing and counting every byte read."""

    def __init__(self, source: IO[bytes]):
        self.source, self.digest, self.size = source, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(len(buffer))
        self.digest.update(data)
        self.size += len(data)
        buffer[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        buffer = bytearray(CHUNK)
        while self.readinto(buffer):
            pass


def _read_member(check: BundleCheck, archive: zipfile.ZipFile, entry: dict[str, Any], segments: dict) -> None:
    path = entry["path"]
    with archive.open(path) as member:
        raw = _Hashing(member)
        text = io.TextIOWrapper(io.BufferedReader(raw, CHUNK), encoding="utf-8-sig", newline="")
        rows = None
        try:
            if path in segments:
                chain = ChainCheck(path, segments[path], check.problems)
                rows = 0
                for row in json_rows(text, check.problems.append, path):
                    chain.row(row)
                    rows += 1
                chain.finish()
                check.events, check.segments = check.events + chain.events, check.segments + chain.segments
            elif path == check.manifest["event_log"]["heads"].get("file"):
                rows = _heads(check, json_rows(text, check.problems.append, path))
            elif path.endswith(".json") and entry.get("rows") is not None:
                rows = sum(1 for _ in json_rows(text, check.problems.append, path))
            elif path.endswith(".csv") and entry.get("rows") is not None:
                rows = sum(1 for _ in csv.reader(text)) - 1
            elif PACKET.match(path):
                _packet(check, path, json.load(text))
        except (UnicodeDecodeError, csv.Error, ValueError) as exc:
            check.problems.append(f"{path}: cannot be read ({type(exc).__name__}: {exc})")
        raw.drain()
    if raw.digest.hexdigest() != entry["sha256"]:
        check.problems.append(f"{path}: SHA-256 differs from the manifest "
                              f"(manifest {entry['sha256']}, file {raw.digest.hexdigest()})")
    if raw.size != entry["bytes"]:
        check.problems.append(f"{path}: {raw.size} bytes; the manifest says {entry['bytes']}")
    if rows is not None and rows != entry.get("rows"):
        check.problems.append(f"{path}: {rows} rows; the manifest says {entry.get('rows')}")


def _heads(check: BundleCheck, rows) -> int:
    digest, count = hashlib.sha256(), 0
    check.heads = {}
    for row in rows:
        digest.update(f"{row['stream']} {row['hash']}\n".encode("utf-8"))
        check.heads[row["stream"]] = (row["seq"], row["hash"])
        count += 1
    expected = check.manifest["event_log"]["heads"].get("digest")
    if "sha256:" + digest.hexdigest() != expected:
        check.problems.append(f"chain heads: digest of chain_heads rows is sha256:{digest.hexdigest()}; "
                              f"the manifest says {expected}")
    return count


def _packet(check: BundleCheck, path: str, document: dict[str, Any]) -> None:
    integrity = document.get("integrity") if isinstance(document, dict) else None
    stream = (integrity or {}).get("stream")
    expected = check.packet_heads.get(stream)
    if expected is None:
        check.problems.append(f"{path}: its integrity block names no stream of the incident event log")
    elif integrity.get("head_hash") != expected:
        check.problems.append(f"{path}: integrity head {integrity.get('head_hash')} differs from the event log's "
                              f"head {expected} for {stream}")


def _segments_against_heads(check: BundleCheck) -> None:
    if check.heads is None:  # chain_heads missing: already reported
        return
    for path, segments in sorted(check.manifest["event_log"]["segments"].items()):
        for segment in segments:
            head = check.heads.get(segment["stream"])
            if head is None:
                check.problems.append(f"{path}: stream {segment['stream']} has no row in chain_heads")
            elif segment["last_seq"] > head[0] or (segment["last_seq"] == head[0] and segment["head_hash"] != head[1]):
                check.problems.append(f"{path}: stream {segment['stream']} segment ends at seq {segment['last_seq']} "
                                      f"{segment['head_hash']}, which does not agree with the stream head "
                                      f"(seq {head[0]} {head[1]})")


def load_manifest(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    if NAME not in archive.namelist():
        raise BundleError(f"{path} has no {NAME}: it is not a Vigil evidence bundle")
    try:
        manifest = json.loads(archive.read(NAME).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: {NAME} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: {NAME} is not a {FORMAT} manifest")
    if not _well_formed(manifest):
        raise BundleError(f"{path}: {NAME} lacks a well-formed files list or event_log section")
    return manifest


def _well_formed(manifest: dict[str, Any]) -> bool:
    files, log = manifest.get("files"), manifest.get("event_log")
    if not isinstance(files, list) or not isinstance(log, dict):
        return False
    entries_ok = all(isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("sha256"), str)
                     and isinstance(e.get("bytes"), int) for e in files)
    return entries_ok and isinstance(log.get("segments"), dict) and isinstance(log.get("heads"), dict)


def verify_bundle(path: Path) -> BundleCheck:
    """Check the bundle at `path`; raises BundleError when it cannot be read as a bundle at all."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BundleError(f"{path} is a folder, not a zip file") from None
    except zipfile.BadZipFile:
        raise BundleError(f"{path} is not a zip file") from None
    with archive:
        check = BundleCheck(path=path, manifest=load_manifest(archive, path))
        check.signed = bundle_signature.check(archive, check.problems)
        names = [name for name in archive.namelist() if not name.endswith("/")]
        listed = {entry["path"]: entry for entry in check.manifest["files"]}
        for name, count in sorted(Counter(names).items()):
            if count > 1:
                check.problems.append(f"{name}: appears {count} times in the zip")
        for name in sorted(set(names) - set(listed) - {NAME, SIGNATURE}):
            check.problems.append(f"{name}: in the bundle but not listed in the manifest")
        for name in sorted(set(listed) - set(names)):
            check.problems.append(f"{name}: listed in the manifest but missing from the bundle")
        segments = check.manifest["event_log"]["segments"]
        check.packet_heads = {s["stream"]: s["head_hash"] for s in segments.get("incident_events.json", [])}
        heads_file = check.manifest["event_log"]["heads"].get("file")
        # chain_heads first: segments are compared with the heads it lists.
        order = sorted(set(listed) & set(names), key=lambda name: (name != heads_file, name))
        for name in order:
            _read_member(check, archive, listed[name], segments)
            check.files += 1
        _segments_against_heads(check)
    return check


def report(path: Path, out, err, installation: bundle_signature.Installation | None = None) -> int:
    """Print the outcome (`out`/`err` take one line each) and return the exit code: 0 OK, 1 otherwise.

    `installation`: whose signing keys to accept (the database's recorded keys, --key); none: unconfirmed."""
    try:
        check = verify_bundle(path)
    except BundleError as exc:
        err(f"BROKEN: {exc}")
        return 1
    except (OSError, zipfile.BadZipFile) as exc:  # e.g. a truncated zip, a corrupt member
        err(f"BROKEN: {path}: cannot be read ({exc})")
        return 1
    period = check.manifest.get("period", {})
    key_lines = (installation or bundle_signature.Installation(where="no database consulted")).confirm(
        check.signed, check.manifest, check.problems)
    if check.ok:
        out(f"OK: {path}: {check.files} files match the manifest; {check.segments} chain segments "
            f"({check.events} events) re-verified; period {period.get('start')} to {period.get('end')}; "
            f"heads digest {check.manifest['event_log']['heads'].get('digest')}")
        out(f"Manifest SHA-256: {check.signed.manifest_sha256}")
        for line in key_lines:
            out(line)
        return 0
    for problem in check.problems[:SHOWN]:
        err(f"BROKEN: {problem}")
    if len(check.problems) > SHOWN:
        err(f"... and {len(check.problems) - SHOWN} more")
    err(f"{path}: {len(check.problems)} problem(s); the bundle does not match its manifest.")
    return 1
