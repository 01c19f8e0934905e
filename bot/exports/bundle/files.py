"""Writing a bundle's files: zip entries streamed one at a time, each hashed as it is written.

Memory stays flat however long the period: a table is written row by row to two temporary files
(CSV and JSON at once, so the rows are read from the database once) and then copied into the zip
in 1 MiB chunks; a report is written straight into its zip entry. The SHA-256, size and row count
of every file are taken from the bytes as they are written, for the manifest.

JSON tables are an array with one object per line: valid JSON for any tool, and readable line by
line, which is how `vigil verify --bundle` re-checks millions of events without loading them.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from vigil_ir import clock
from vigil_ir.exports import csvsafe

CHUNK = 1 << 20
ZIP64_FROM = 1 << 31  # entries this large need ZIP64 headers


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
    """A binary sink that hashes and counts what passes through it."""

    def __init__(self, target: IO[bytes]):
        self.target, self.digest, self.size = target, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
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


class ZipSink:
    """The bundle being written. Entries carry the generation time so the zip is reproducible."""

    def __init__(self, path: Path, generated_at: datetime):
        self.zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self.stamp = clock.to_utc(generated_at).timetuple()[:6]
        self.files: list[FileEntry] = []

    def _info(self, path: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=self.stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16  # rw-r--r-- when extracted
        return info

    @contextlib.contextmanager
    def entry(self, path: str, *, size_hint: int = 0) -> Iterator[HashingWriter]:
        with self.zip.open(self._info(path), "w", force_zip64=size_hint >= ZIP64_FROM) as raw:
            writer = HashingWriter(raw)
            yield writer

    def add(self, path: str, data: bytes | str, *, section: str, description: str, query: str,
            rows: int | None = None, listed: bool = True) -> FileEntry:
        data = data.encode("utf-8") if isinstance(data, str) else data
        with self.entry(path, size_hint=len(data)) as writer:
            writer.write(data)
        entry = FileEntry(path, writer.digest.hexdigest(), writer.size, rows, section, description, query)
        if listed:
            self.files.append(entry)
        return entry

    def add_spooled(self, entry: FileEntry, source: IO[bytes]) -> None:
        """Copy a finished temporary file in; its hash and size were taken while it was written."""
        source.seek(0)
        with self.entry(entry.path, size_hint=entry.bytes) as writer:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
        if writer.digest.hexdigest() != entry.sha256:  # the temporary file changed under us
            raise OSError(f"temporary file for {entry.path} changed while the bundle was written")
        self.files.append(entry)

    def close(self) -> None:
        self.zip.close()


class Table:
    """One export written as `<name>.csv` (UTF-8 BOM, formula-safe) and `<name>.json`, same columns."""

    def __init__(self, name: str, columns: Sequence[str], *, section: str, description: str, query: str,
                 workdir: Path | None = None):
        self.name, self.columns, self.rows = name, tuple(columns), 0
        self.section, self.description, self.query = section, description, query
        self._csv_file = tempfile.TemporaryFile(dir=workdir)
        self._json_file = tempfile.TemporaryFile(dir=workdir)
        self._csv, self._json = HashingWriter(self._csv_file), HashingWriter(self._json_file)
        self._line = io.StringIO()
        self._writer = csv.writer(self._line, lineterminator="\r\n")  # RFC 4180 line ends
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
        prefix = "[\n" if self.rows == 0 else ",\n"
        self._json.write((prefix + json_line(dict(zip(self.columns, values)))).encode("utf-8"))
        self.rows += 1

    def finish(self, sink: ZipSink) -> None:
        self._json.write(b"\n]\n" if self.rows else b"[]\n")
        for suffix, writer, file in (("csv", self._csv, self._csv_file), ("json", self._json, self._json_file)):
            entry = FileEntry(f"{self.name}.{suffix}", writer.digest.hexdigest(), writer.size, self.rows,
                              self.section, self.description, self.query)
            sink.add_spooled(entry, file)
            file.close()

    def discard(self) -> None:
        self._csv_file.close()
        self._json_file.close()
