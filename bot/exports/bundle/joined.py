"""Tables written by several processes, put together as their shares arrive.

The incident processes (vigil_ir.exports.bundle.parallel) write the incident tables in runs: each run
gives a share of each table (files.Table with `share`), handed over as an open file when the run is
done, in whatever order the processes finish them. A JoinedTable takes each share as soon as every
share before it has been taken: on a thread of its own it hashes the share, deflates it into the one
stream of the table's zip entry and closes it, so its bytes leave the page cache at once. When the
last run is done, only its share is left to take; the zip then copies the deflated stream in
(files.ZipSink.add_deflated). The joined file is the shares in order: the first carries the CSV
header; a JSON table gets the array's brackets and a comma between two shares' rows here.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from typing import IO

from isal import isal_zlib

from vigil_ir.exports.bundle.files import CHUNK, ISAL_LEVEL, FileEntry, ZipSink


class JoinedTable:
    """One table file (`.csv` or `.json`) joined from its shares, taken in share order as they arrive."""

    def __init__(self, sink: ZipSink, first: FileEntry):
        self.sink, self.first = sink, first
        self.arrived: set[int] = set()  # every share handed over so far
        self._json = first.path.endswith(".json")
        self._waiting: dict[int, tuple[FileEntry, IO[bytes]]] = {}
        self._shares: int | None = None  # how many there are, once every run is done
        self._stopped = False
        self._failed: BaseException | None = None
        self._condition = threading.Condition()
        self._digest, self._crc, self._size, self._rows = hashlib.sha256(), 0, 0, 0
        self._compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
        self._deflated = tempfile.TemporaryFile(dir=sink.workdir)
        self._thread = threading.Thread(target=self._join, name="bundle-join", daemon=True)
        self._thread.start()

    def add(self, share: int, entry: FileEntry, file: IO[bytes]) -> None:
        """Share number `share` (0 for the first): its entry (size, rows) and its file, now this object's."""
        with self._condition:
            if self._stopped or share in self.arrived:
                file.close()
                raise ValueError(f"share {share} of {entry.path} handed over twice, or after the export stopped")
            self.arrived.add(share)
            self._waiting[share] = (entry, file)
            self._condition.notify()

    def finish(self, shares: int) -> FileEntry:
        """Once all `shares` have arrived: the joined file, handed to the zip; its entry as the manifest lists it."""
        with self._condition:
            self._shares = shares
            self._condition.notify()
        self._thread.join()
        if self._failed is not None:
            raise self._failed
        first = self.first
        entry = FileEntry(first.path, self._digest.hexdigest(), self._size, self._rows, first.section,
                          first.description, first.query)
        self.sink.add_deflated(entry, self._deflated, crc=self._crc)
        return entry

    def stop(self) -> None:
        """End the joining (the export failed): the thread ends, every file is closed. Idempotent."""
        with self._condition:
            self._stopped = True
            self._condition.notify()
        self._thread.join()
        for _, file in self._waiting.values():
            file.close()
        self._waiting.clear()
        if self._shares is None or self._failed is not None:
            self._deflated.close()  # else the zip has it

    # ---- the joining thread ----------------------------------------------------------------------
    def _join(self) -> None:
        try:
            share = 0
            while (taken := self._next(share)) is not None:
                self._take(*taken)
                share += 1
            if self._shares is None:  # stopped
                return
            if self._json:
                self._write(b"\n]\n" if self._rows else b"[]\n")
            self._deflated.write(self._compressor.flush(isal_zlib.Z_FINISH))
        except BaseException as exc:  # noqa: BLE001 - raised by finish()
            self._failed = exc

    def _next(self, share: int) -> tuple[FileEntry, IO[bytes]] | None:
        """Share `share` once it has arrived; None when there is none (all taken, or stopped)."""
        with self._condition:
            self._condition.wait_for(lambda: self._stopped or share in self._waiting
                                     or (self._shares is not None and share >= self._shares))
            if self._stopped or share not in self._waiting:
                return None
            return self._waiting.pop(share)

    def _take(self, entry: FileEntry, file: IO[bytes]) -> None:
        with file:
            if self._json:
                if not entry.rows:
                    return
                self._write(b",\n" if self._rows else b"[\n")
            file.seek(0)
            while chunk := file.read(CHUNK):
                self._write(chunk)
        self._rows += entry.rows or 0

    def _write(self, data: bytes) -> None:
        self._digest.update(data)
        self._crc = isal_zlib.crc32(data, self._crc)
        self._size += len(data)
        self._deflated.write(self._compressor.compress(data))


class Joins:
    """The tables being joined, by path: shares from any process's receiving thread go to `add`."""

    def __init__(self, sink: ZipSink):
        self.sink = sink
        self._tables: dict[str, JoinedTable] = {}
        self._lock = threading.Lock()

    def add(self, share: int, entry: FileEntry, file: IO[bytes]) -> None:
        with self._lock:
            table = self._tables.get(entry.path)
            if table is None:
                table = self._tables[entry.path] = JoinedTable(self.sink, entry)
        table.add(share, entry, file)

    def complete(self, shares: int) -> bool:
        """Whether every table has all `shares` (0 to shares - 1)."""
        return all(table.arrived == set(range(shares)) for table in self._tables.values())

    def finish(self, shares: int) -> list[FileEntry]:
        """Join the rest and hand every table to the zip (all `shares` have arrived: `complete`)."""
        return [table.finish(shares) for table in self._tables.values()]

    def stop(self) -> None:
        for table in self._tables.values():
            table.stop()
