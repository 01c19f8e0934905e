"""The bundle's zip writer: what it writes reads back intact with any zip reader, deflated by ISA-L."""

from __future__ import annotations

import hashlib
import random
import tempfile
import zipfile
from datetime import datetime, timezone

from isal import isal_zlib

from vigil_ir.exports.bundle.files import CHUNK, ISAL_LEVEL, FileEntry, ZipSink, join_shares


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


def test_a_table_joined_from_shares_is_deflated_piece_by_piece_and_reads_back_whole(tmp_path):
    """The shares of a table (and the bits the join adds) are deflated in runs on threads of their own,
    each a run of the one stream: the member reads back as the joined bytes, its CRC-32 checks, its hash is
    the joined bytes' hash, and the stored stream is the runs one after another."""
    # Two shares large enough for a run each (files.RUN_BYTES); the bits the join adds go with them.
    first, second = _text(CHUNK) * 17 + b"77", (_text(CHUNK // 3)[::-1]) * 50
    path = tmp_path / "bundle.zip"
    sink = ZipSink(path, datetime(2026, 1, 2, 3, 4, 6, tzinfo=timezone.utc))
    json_entry = join_shares(sink, [_share(first, 5, "t.json"), _share(b"", 0, "t.json"), _share(second, 2, "t.json")])
    csv_entry = join_shares(sink, [_share(first, 5, "t.csv"), _share(second, 2, "t.csv")])
    sink.wait_written()
    sink.close()

    joined_json = b"[\n" + first + b",\n" + second + b"\n]\n"  # the empty share adds nothing, not even a comma
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert archive.read("t.json") == joined_json and archive.read("t.csv") == first + second
        runs = []
        for index, piece in enumerate((first, second)):
            compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS)
            runs.append(b"".join(compressor.compress(piece[at:at + CHUNK]) for at in range(0, len(piece), CHUNK))
                        + compressor.flush(isal_zlib.Z_FINISH if index else isal_zlib.Z_FULL_FLUSH))
        assert _stored(path, archive.getinfo("t.csv")) == b"".join(runs)
    assert (json_entry.sha256, json_entry.bytes, json_entry.rows) == (hashlib.sha256(joined_json).hexdigest(),
                                                                      len(joined_json), 7)
    assert csv_entry.sha256 == hashlib.sha256(first + second).hexdigest()
