"""Writing a bundle's files: zip entries hashed as they are written, compressed on the second core.

Memory stays flat however long the period: a table is written row by row to two temporary files
(CSV and JSON at once, so the rows are read from the database once) and then copied into the zip
in 1 MiB chunks; a report is handed over as it is. The SHA-256, size and row count of every file are
taken from the bytes as they are produced, for the manifest.

Compression runs in a thread of its own: zlib and file writes release the GIL, so deflating one file
overlaps with the Python work that produces the next. The tables the incident processes write in
shares are hashed and deflated as the shares arrive (vigil_ir.exports.bundle.joined) and copied in
already deflated. The incident pass runs in a second process
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
    a file hashed elsewhere (another process); `add_deflated` one already hashed and deflated
    (vigil_ir.exports.bundle.joined). Several threads may hand files over at once."""

    def __init__(self, path: Path, generated_at: datetime):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True,
                                   compresslevel=COMPRESSION_LEVEL)
        self.workdir = path.parent
        self.stamp = clock.to_utc(generated_at).timetuple()[:6]
        self.files: list[FileEntry] = []
        self._jobs: queue.Queue = queue.Queue(QUEUED)
        self._failed: BaseException | None = None
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
            path, size, source, crc = job
            try:
                if self._failed is None:
                    with self.zip.open(self._info(path), "w", force_zip64=size >= ZIP64_FROM) as target:
                        if crc is None:
                            _deflate_with_isal(target)
                            for chunk in _chunks(source):
                                target.write(chunk)
                        else:
                            _write_deflated(target, source, crc=crc, size=size)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the producing thread
                self._failed = exc
            finally:
                _close(source)
                self._jobs.task_done()

    def add(self, path: str, data: bytes | str, *, section: str, description: str, query: str,
            rows: int | None = None, listed: bool = True) -> FileEntry:
        data = data.encode("utf-8") if isinstance(data, str) else data
        entry = entry_for(path, data, section=section, description=description, query=query, rows=rows)
        self.add_entry(entry, data, listed=listed)
        return entry

    def add_entry(self, entry: FileEntry, source: bytes | IO[bytes], *, listed: bool = True) -> None:
        """A file whose hash, size and row count `entry` already holds: bytes, or a binary file (which
        the sink closes once copied in)."""
        self._add(entry, source, listed=listed)

    def add_deflated(self, entry: FileEntry, deflated: IO[bytes], *, crc: int) -> None:
        """A file whose hash, size and rows `entry` holds, given as one raw deflate stream in the binary
        file `deflated` (closed once copied in), with the CRC-32 of the bytes it holds."""
        self._add(entry, deflated, crc=crc)

    def _add(self, entry: FileEntry, source: bytes | IO[bytes], *, listed: bool = True,
             crc: int | None = None) -> None:
        try:
            if self._failed is not None:
                raise self._failed
            self._jobs.put((entry.path, entry.bytes, source, crc))
        except BaseException:
            _close(source)
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
        if self._failed is not None:
            raise self._failed

    def close(self) -> None:
        """Wait for every entry to be written, then finish the zip (raises what the writing raised)."""
        self._jobs.put(None)
        self._thread.join()
        self.zip.close()
        if self._failed is not None:
            raise self._failed


def _chunks(source: bytes | IO[bytes]) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray)):
        yield source
        return
    source.seek(0)
    while chunk := source.read(CHUNK):
        yield chunk


def _close(source: bytes | IO[bytes]) -> None:
    if not isinstance(source, (bytes, bytearray)):
        source.close()


class _Deflated:
    """A zip entry's compressor for data already deflated: passes it through."""

    def compress(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _write_deflated(entry: IO[bytes], deflated: IO[bytes], *, crc: int, size: int) -> None:
    """Write a zip entry just opened for writing from a raw deflate stream holding `size` bytes whose
    CRC-32 is `crc`. zipfile has no public way to take deflated data, so its writer's compressor is
    replaced by a pass-through and its CRC and size are set before it closes; should a Python version
    keep them differently, the stream is inflated and deflated again (the same entry, slower)."""
    deflated.seek(0)
    if not all(hasattr(entry, name) for name in ("_compressor", "_crc", "_file_size")) or entry._file_size:
        _deflate_with_isal(entry)
        inflater = isal_zlib.decompressobj(-isal_zlib.MAX_WBITS)
        while chunk := deflated.read(CHUNK):
            entry.write(inflater.decompress(chunk))
        entry.write(inflater.flush())
        return
    entry._compressor = _Deflated()
    while chunk := deflated.read(CHUNK):
        entry.write(chunk)
    entry._crc, entry._file_size = crc, size


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
    array's brackets. vigil_ir.exports.bundle.joined makes the files from them, in share order."""

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
