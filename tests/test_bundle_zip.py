"""The bundle's zip writer: what it writes reads back intact with any zip reader, deflated by ISA-L."""

from __future__ import annotations

import hashlib
import random
import tempfile
import zipfile
from datetime import datetime, timezone

from isal import isal_zlib

from vigil_ir.exports.bundle.files import CHUNK, ISAL_LEVEL, FileEntry, ZipSink
from vigil_ir.exports.bundle.joined import Joins


def _text(size: int) -> bytes:
    """Event-log-like text: compressible, not trivially so."""
    rng = random.Random(7)
    words = [f"incident:{n},{rng.random():.6f},U0{n:05d}".encode() for n in range(500)]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b"\r\n"
    return bytes(out[:size])


def _isal_deflate(data: bytes) -> bytes:
    compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
    return b"".join(compressor.compress(data[at:at + CHUNK]) for at in range(0, len(data), CHUNK)) + compressor.flush()


def _stored(path, info) -> bytes:
    """A member's bytes as stored in the zip (compressed)."""
    with open(path, "rb") as raw:
        raw.seek(info.header_offset + 26)
        name_length, extra_length = int.from_bytes(raw.read(2), "little"), int.from_bytes(raw.read(2), "little")
        raw.seek(info.header_offset + 30 + name_length + extra_length)
        return raw.read(info.compress_size)


def test_entries_read_back_with_their_crc_and_are_isal_deflate(tmp_path):
    small, large = _text(10_000), _text(3 * CHUNK + 12_345)  # the large one is copied in several chunks
    path = tmp_path / "bundle.zip"
    sink = ZipSink(path, datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc))
    sink.add("small.txt", small, section="S", description="d", query="q")
    spooled = tempfile.TemporaryFile()
    spooled.write(large)
    sink.add_spooled(FileEntry("large.csv", hashlib.sha256(large).hexdigest(), len(large), None, "S", "d", "q"),
                     spooled)
    sink.close()

    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every member's CRC-32 checks
        assert archive.read("small.txt") == small and archive.read("large.csv") == large
        for name, data in (("small.txt", small), ("large.csv", large)):
            info = archive.getinfo(name)
            assert info.compress_type == zipfile.ZIP_DEFLATED and info.date_time == (2026, 1, 2, 3, 4, 6)  # DOS time: even seconds
            assert _stored(path, info) == _isal_deflate(data)  # ISA-L's stream, not zlib's
    assert [entry.path for entry in sink.files] == ["small.txt", "large.csv"]


def _share(data: bytes, rows: int, path: str):
    file = tempfile.TemporaryFile()
    file.write(data)
    return FileEntry(path, "", len(data), rows, "E2", "d", "q"), file


def test_a_table_joined_from_shares_arriving_in_any_order_reads_back_whole(tmp_path):
    """The runs' shares of a table arrive in any order; each is hashed and deflated into the one entry
    once those before it are, then closed. The member reads back as the shares in order (the JSON
    array's brackets and commas added, an empty share adding nothing), its CRC-32 checks, and the
    manifest's hash, size and rows are those of the joined bytes."""
    first, second, third = _text(CHUNK) * 3 + b"77", _text(CHUNK // 3)[::-1] * 2, _text(5_000)
    path = tmp_path / "bundle.zip"
    sink = ZipSink(path, datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc))
    joins = Joins(sink)
    arriving = {"t.json": [(3, third, 1), (1, b"", 0), (0, first, 5), (2, second, 2)],
                "t.csv": [(2, second, 2), (0, first, 5), (3, third, 1), (1, b"", 0)]}
    for (share, data, rows), (share_csv, data_csv, rows_csv) in zip(arriving["t.json"], arriving["t.csv"]):
        joins.add(share, *_share(data, rows, "t.json"))
        joins.add(share_csv, *_share(data_csv, rows_csv, "t.csv"))
    assert joins.complete(4) and not joins.complete(5)
    entries = {entry.path: entry for entry in joins.finish(4)}
    joins.stop()
    sink.wait_written()
    sink.close()

    joined = {"t.json": b"[\n" + first + b",\n" + second + b",\n" + third + b"\n]\n", "t.csv": first + second + third}
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        for name, data in joined.items():
            assert archive.read(name) == data
            assert archive.getinfo(name).compress_size < len(data) // 2
            assert (entries[name].sha256, entries[name].bytes, entries[name].rows) == (
                hashlib.sha256(data).hexdigest(), len(data), 8)
    assert sorted(entry.path for entry in sink.files) == ["t.csv", "t.json"]


def test_a_table_with_no_rows_joins_into_the_empty_array(tmp_path):
    sink = ZipSink(tmp_path / "bundle.zip", datetime(2026, 1, 2, tzinfo=timezone.utc))
    joins = Joins(sink)
    joins.add(0, *_share(b"", 0, "t.json"))
    (entry,) = joins.finish(1)
    sink.close()
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        assert archive.read("t.json") == b"[]\n" and entry.rows == 0


def test_stopping_a_join_closes_the_shares_it_holds(tmp_path):
    sink = ZipSink(tmp_path / "bundle.zip", datetime(2026, 1, 2, tzinfo=timezone.utc))
    joins = Joins(sink)
    entry, later = _share(b"row\r\n", 1, "t.csv")
    joins.add(1, entry, later)  # share 0 never comes: the export failed
    joins.stop()
    sink.close()
    assert later.closed
