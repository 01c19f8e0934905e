"""Writing a bundle's files: zip entries hashed as they are written, compressed on the second core.

Memory stays flat however long the period: a table is written row by row to two temporary files
(CSV and JSON at once, so the rows are read from the database once) and then copied into the zip
in 1 MiB chunks; a report is handed over as it is. The SHA-256, size and row count of every file are
taken from the bytes as they are produced, for the manifest.

Compression runs in a thread of its own: zlib and file writes release the GIL, so deflating one file
overlaps with the Python work that produces the next. The tables joined from the incident processes'
shares arrive last, all at once: each of their pieces is deflated on a thread of its own and the runs
are put together into one entry (DeflatedRun), so both cores share that work. The incident pass runs in a second process
(vigil_ir.exports.bundle.parallel) and hands its finished files to the same sink from a receiving
thread, so entries from both processes are written as they come: the zip's entry order follows
timing, while `manifest.json` lists the files sorted by path (the same for the same data).

Deflate is ISA-L's (the `isal` package) at level 1: on the bundle's text it is about five times as
fast as zlib's level 1 and its output is smaller (62 against 70 MiB for a year's event log); the
stream format is the same raw deflate any unzip reads.

JSON tables are an array with one object per line: valid JSON for any tool, and readable line by
line, which is how `vigil verify --bundle` re-checks millions of events without loading them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import queue
import tempfile
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from isal import isal_zlib

from vigil_ir import clock
from vigil_ir.exports import csvsafe

CHUNK = 1 << 20
ZIP64_FROM = 1 << 31  # entries this large need ZIP64 headers
COMPRESSION_LEVEL = 1  # zlib's level, for the headers (and the deflate should zipfile not take ISA-L's)
ISAL_LEVEL = 1  # ISA-L has levels 0-3; at 1 it is both faster and smaller than zlib's 1
QUEUED = 64  # files waiting for the compressing thread; the producer waits when it is this far ahead
# A file joined from shares is deflated in up to RUNS runs on threads of their own (DeflatedRun), each
# at least RUN_BYTES: enough to keep two cores busy without a thread and a file per share.
RUNS, RUN_BYTES = 2, 16 << 20


@dataclass
class FileEntry:
    """One file of the bundle as the manifest lists it."""

    path: str
    sha256: str
    bytes: int
    rows: int | None
    section: str
    description: str
    query: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class HashingWriter:
    """A binary sink that hashes (unless told not to) and counts what passes through it."""

    def __init__(self, target: IO[bytes], *, hashing: bool = True):
        self.target, self.digest, self.size = target, hashlib.sha256() if hashing else None, 0

    def write(self, data: bytes) -> int:
        if self.digest is not None:
            self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def json_line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=json_default)


def entry_for(path: str, data: bytes, *, section: str, description: str, query: str,
              rows: int | None = None) -> FileEntry:
    return FileEntry(path, hashlib.sha256(data).hexdigest(), len(data), rows, section, description, query)


class Sink(Protocol):
    """Where section writers put finished files (a ZipSink, or in the second process its forwarder)."""

    files: list[FileEntry]

    def add(self, path: str, data: bytes | str, *, section: str, description: str, query: str,
            rows: int | None = None, listed: bool = True) -> FileEntry: ...

    def add_spooled(self, entry: FileEntry, source: IO[bytes]) -> None: ...

    def add_share(self, entry: FileEntry, source: IO[bytes], *, share: int) -> None: ...


class ZipSink:
    """The bundle being written. Entries carry the generation time so the zip is reproducible.

    `add` and `add_spooled` hash the bytes here and hand them to one compressing thread, which
    owns the zip file; the entries are written in the order they were handed over. `add_entry` takes
    a file hashed elsewhere (another process); `add_joined` a file put together from pieces (a table
    written in shares by several processes), which the compressing thread hashes as it writes it:
    `wait_written` before reading its hash. Several threads may hand files over at once."""

    def __init__(self, path: Path, generated_at: datetime):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True,
                                   compresslevel=COMPRESSION_LEVEL)
        self.workdir = path.parent
        self.stamp = clock.to_utc(generated_at).timetuple()[:6]
        self.files: list[FileEntry] = []
        self._jobs: queue.Queue = queue.Queue(QUEUED)
        self._failed: BaseException | None = None
        self._hashing: list[threading.Thread] = []  # one per joined file (add_joined)
        self._thread = threading.Thread(target=self._compress, name="bundle-zip", daemon=True)
        self._thread.start()

    def _info(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info._compresslevel = COMPRESSION_LEVEL  # ZipInfo has no public way to say it
        info.external_attr = 0o644 << 16  # rw-r--r-- when extracted
        return info

    def _compress(self) -> None:
        while (job := self._jobs.get()) is not None:
            path, size, pieces, runs = job
            try:
                if self._failed is None:
                    with self.zip.open(self._info(path), "w", force_zip64=size >= ZIP64_FROM) as target:
                        if not (runs and _write_deflated(target, runs)):
                            _deflate_with_isal(target)
                            for chunk in _chunks(pieces):
                                target.write(chunk)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producing thread
                self._failed = exc
            finally:
                for run in runs:
                    run.discard()
                _close(pieces)
                self._jobs.task_done()

    def _hand_over(self, path: str, size: int, pieces: list, runs: list[DeflatedRun] = ()) -> None:
        if self._failed is not None:
            raise self._failed
        self._jobs.put((path, size, pieces, list(runs)))

    def add(self, path: str, data: bytes | str, *, section: str, description: str, query: str,
            rows: int | None = None, listed: bool = True) -> FileEntry:
        data = data.encode("utf-8") if isinstance(data, str) else data
        entry = entry_for(path, data, section=section, description=description, query=query, rows=rows)
        self.add_entry(entry, data, listed=listed)
        return entry

    def add_entry(self, entry: FileEntry, source: bytes | IO[bytes], *, listed: bool = True) -> None:
        """A file whose hash, size and row count `entry` already holds: bytes, or a binary file (which
        the sink closes once copied in)."""
        self._add(entry, [source], listed=listed)

    def add_joined(self, entry: FileEntry, pieces: list[bytes | IO[bytes]]) -> None:
        """A file made of `pieces` in order (bytes, or binary files the sink closes once copied in);
        `entry` holds its size and rows, and gets its SHA-256 by `wait_written`. These come last, all
        at once, once the incident processes are done (the largest files of the bundle), so each piece
        is deflated on a thread of its own (DeflatedRun) and a thread of its own hashes the whole
        (through duplicates of the pieces' descriptors): both cores share the work, where the zip's
        thread alone would otherwise add it to the export's last second."""
        hashing = threading.Thread(target=self._hash, args=(entry, _readers(pieces)), name="bundle-hash", daemon=True)
        hashing.start()
        self._hashing.append(hashing)
        groups = _runs_of(_readers(pieces))
        runs = [DeflatedRun(group, last=index == len(groups) - 1, workdir=self.workdir)
                for index, group in enumerate(groups)]
        self._add(entry, pieces, runs=runs)

    def _hash(self, entry: FileEntry, readers: list) -> None:
        digest = hashlib.sha256()
        try:
            for reader in readers:
                for chunk in _read_all(reader):
                    digest.update(chunk)
            entry.sha256 = digest.hexdigest()
        except BaseException as exc:  # noqa: BLE001 - raised by wait_written
            self._failed = self._failed or exc
        finally:
            for reader in readers:
                if isinstance(reader, int):
                    os.close(reader)

    def _add(self, entry: FileEntry, pieces: list, *, listed: bool = True, runs: list[DeflatedRun] = ()) -> None:
        try:
            self._hand_over(entry.path, entry.bytes, pieces, runs)
        except BaseException:
            for run in runs:
                run.discard()
            _close(pieces)
            raise
        if listed:
            self.files.append(entry)

    def add_spooled(self, entry: FileEntry, source: IO[bytes]) -> None:
        """Copy a finished temporary file in (the sink closes it); its hash and size were taken while it
        was written."""
        self.add_entry(entry, source)

    def add_share(self, entry: FileEntry, source: IO[bytes], *, share: int) -> None:
        raise TypeError("a table written whole in this process has no shares")

    def wait_written(self) -> None:
        """Until every file handed over so far is in the zip (raises what the writing raised)."""
        self._jobs.join()
        for hashing in self._hashing:
            hashing.join()
        if self._failed is not None:
            raise self._failed

    def close(self) -> None:
        """Wait for every entry to be written, then finish the zip (raises what the writing raised)."""
        self._jobs.put(None)
        self._thread.join()
        for hashing in self._hashing:
            hashing.join()
        self.zip.close()
        if self._failed is not None:
            raise self._failed


def _chunks(pieces: list[bytes | IO[bytes]]) -> Iterator[bytes]:
    for piece in pieces:
        if isinstance(piece, (bytes, bytearray)):
            yield piece
        else:
            piece.seek(0)
            while chunk := piece.read(CHUNK):
                yield chunk


def _readers(pieces: list[bytes | IO[bytes]]) -> list[bytes | int]:
    """Each piece as bytes, or a duplicate of its file's descriptor (read with os.pread, closed by its reader)."""
    return [bytes(piece) if isinstance(piece, (bytes, bytearray)) else os.dup(piece.fileno()) for piece in pieces]


def _close(pieces: list[bytes | IO[bytes]]) -> None:
    for piece in pieces:
        if not isinstance(piece, (bytes, bytearray)):
            piece.close()


class DeflatedRun:
    """Consecutive pieces of a joined file deflated on a thread of its own into a temporary file, with
    their CRC-32 and size: a run of raw deflate ending on a byte boundary with the compressor's state
    reset (a full flush), so the runs of a file, in order, make one deflate stream; the last run ends
    the stream. `readers`: bytes, or descriptors read with os.pread and closed when done."""

    def __init__(self, readers: list[bytes | int], *, last: bool, workdir: Path):
        self.crc = self.size = 0
        self.failed: BaseException | None = None
        self.output = tempfile.TemporaryFile(dir=workdir)
        self._thread = threading.Thread(target=self._deflate, args=(readers, last), name="bundle-deflate",
                                        daemon=True)
        self._thread.start()

    def _deflate(self, readers: list[bytes | int], last: bool) -> None:
        try:
            compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
            for reader in readers:
                for chunk in _read_all(reader):
                    self.crc = isal_zlib.crc32(chunk, self.crc)
                    self.size += len(chunk)
                    self.output.write(compressor.compress(chunk))
            self.output.write(compressor.flush(isal_zlib.Z_FINISH if last else isal_zlib.Z_FULL_FLUSH))
        except BaseException as exc:  # noqa: BLE001 - raised by the zip's thread (wait)
            self.failed = exc
        finally:
            for reader in readers:
                if isinstance(reader, int):
                    os.close(reader)

    def wait(self) -> None:
        self._thread.join()
        if self.failed is not None:
            raise self.failed

    def discard(self) -> None:
        self._thread.join()
        self.output.close()


class _Deflated:
    """A zip entry's compressor for data already deflated: passes it through."""

    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _write_deflated(entry: IO[bytes], runs: list[DeflatedRun]) -> bool:
    """Write a zip entry just opened for writing from its deflated runs, in order, with the CRC-32 and
    size of the data they hold. zipfile has no public way to take deflated data, so its writer's
    compressor is replaced by a pass-through and its CRC and size are set before it closes; should a
    Python version keep them differently, nothing is written and False says to deflate as usual."""
    if not all(hasattr(entry, name) for name in ("_compressor", "_crc", "_file_size")) or entry._file_size:
        return False
    entry._compressor = _Deflated()
    crc = size = 0
    for run in runs:
        run.wait()
        crc, size = isal_zlib.crc32_combine(crc, run.crc, run.size), size + run.size
        run.output.seek(0)
        while chunk := run.output.read(CHUNK):
            entry.write(chunk)
    entry._crc, entry._file_size = crc, size
    return True


def _runs_of(readers: list[bytes | int]) -> list[list[bytes | int]]:
    """The pieces (bytes or descriptors) cut, in order, into at most RUNS runs of about equal size,
    each at least RUN_BYTES where the file is large enough."""
    sizes = [len(reader) if isinstance(reader, bytes) else os.fstat(reader).st_size for reader in readers]
    count = max(1, min(RUNS, sum(sizes) // RUN_BYTES))
    runs: list[list[bytes | int]] = [[]]
    done, target = 0, sum(sizes) / count
    for reader, size in zip(readers, sizes):
        if runs[-1] and done >= target * len(runs) and len(runs) < count:
            runs.append([])
        runs[-1].append(reader)
        done += size
    return runs


def _read_all(reader: bytes | int) -> Iterator[bytes]:
    if isinstance(reader, bytes):
        yield reader
        return
    offset = 0
    while chunk := os.pread(reader, CHUNK, offset):  # pread: other threads read the same file
        yield chunk
        offset += len(chunk)


def _deflate_with_isal(entry: IO[bytes]) -> None:
    """Give a zip entry just opened for writing ISA-L's deflate instead of zlib's. zipfile has no
    public way to choose the implementation, so its writer's compressor is swapped before the first
    byte (the raw deflate stream is the same format); should a Python version store it differently,
    the entry keeps zlib's."""
    if getattr(entry, "_compressor", None) is not None:
        entry._compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)


class Table:
    """One export written as `<name>.csv` (UTF-8 BOM, formula-safe) and `<name>.json`, same columns.

    A table written by several processes is written in shares (`share`: 0 for the first, 1, ...), each
    a run of whole rows: only the first share begins with the CSV header, and no share has the JSON
    array's brackets. `join_shares` makes the files from them, in share order."""

    def __init__(self, name: str, columns: Sequence[str], *, section: str, description: str, query: str,
                 workdir: Path | None = None, share: int | None = None):
        self.name, self.columns, self.rows, self.share = name, tuple(columns), 0, share
        self.section, self.description, self.query = section, description, query
        self._csv_file = tempfile.TemporaryFile(dir=workdir)
        self._json_file = tempfile.TemporaryFile(dir=workdir)
        whole = share is None  # a share is hashed only as part of the joined file
        self._csv, self._json = HashingWriter(self._csv_file, hashing=whole), HashingWriter(self._json_file, hashing=whole)
        self._json_start = "[\n" if whole else ""
        self._line = io.StringIO()
        self._writer = csv.writer(self._line, lineterminator="\r\n")  # RFC 4180 line ends
        if share in (None, 0):
            self._csv_row([*self.columns], first=True)

    def _csv_row(self, cells: list[str], first: bool = False) -> None:
        self._line.seek(0)
        self._line.truncate()
        self._writer.writerow(cells)
        text = self._line.getvalue()
        self._csv.write(((csvsafe.BOM if first else "") + text).encode("utf-8"))

    def write(self, row: Mapping[str, Any]) -> None:
        """One row; every column must be present (a missing key is a bug: KeyError)."""
        values = [row[name] for name in self.columns]
        self._csv_row([csvsafe.cell(value) for value in values])
        prefix = self._json_start if self.rows == 0 else ",\n"
        self._json.write((prefix + json_line(dict(zip(self.columns, values)))).encode("utf-8"))
        self.rows += 1

    def write_serialised(self, lines: Sequence[str], csv_lines: Sequence[str]) -> None:
        """Rows already serialised: each a JSON object on one line (keys = the columns, in order) and
        its CSV line (as csv.writer writes the cells csvsafe.cell makes, with its "\r\n"). One write per
        batch, not per row."""
        if not lines:
            return
        prefix = self._json_start if self.rows == 0 else ",\n"
        self._json.write((prefix + ",\n".join(lines)).encode("utf-8"))
        self._csv.write("".join(csv_lines).encode("utf-8"))
        self.rows += len(lines)

    def finish(self, sink: Sink) -> None:
        """Hand the two files to `sink`: whole, or as this process's share of each."""
        if self.share is None:
            self._json.write(b"\n]\n" if self.rows else b"[]\n")
        for suffix, writer, file in (("csv", self._csv, self._csv_file), ("json", self._json, self._json_file)):
            entry = FileEntry(f"{self.name}.{suffix}", writer.digest.hexdigest() if writer.digest else "", writer.size,
                              self.rows, self.section, self.description, self.query)
            if self.share is None:
                sink.add_spooled(entry, file)
            else:
                sink.add_share(entry, file, share=self.share)

    def discard(self) -> None:
        self._csv_file.close()
        self._json_file.close()


def join_shares(sink: ZipSink, shares: list[tuple[FileEntry, IO[bytes]]]) -> FileEntry:
    """One table file (`.csv` or `.json`) from its shares in order (Table with `share`), each an entry
    with its size and rows and the open file; the zip's thread hashes the whole as it writes it."""
    first = shares[0][0]
    pieces: list[bytes | IO[bytes]] = []
    if first.path.endswith(".json"):  # the array's brackets, and a comma between two shares' rows
        for entry, file in shares:
            if entry.rows:
                pieces += [b",\n" if pieces else b"[\n", file]
            else:
                file.close()
        pieces.append(b"\n]\n" if pieces else b"[]\n")
    else:  # the first share's rows begin with the header
        pieces = [file for _, file in shares]
    sizes = {id(file): entry.bytes for entry, file in shares}
    size = sum(len(piece) if isinstance(piece, bytes) else sizes[id(piece)] for piece in pieces)
    joined = FileEntry(first.path, "", size, sum(entry.rows or 0 for entry, _ in shares), first.section,
                       first.description, first.query)
    sink.add_joined(joined, pieces)
    return joined
