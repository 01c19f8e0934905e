"""The bundle's zip writer: what it writes reads back intact with any zip reader, deflated by ISA-L."""

from __future__ import annotations

import hashlib
import random
import tempfile
import zipfile
from datetime import datetime, timezone

from isal import isal_zlib

from vigil_ir.exports.bundle.files import CHUNK, ISAL_LEVEL, FileEntry, ZipSink


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
            with open(path, "rb") as raw:  # the member's stored bytes are ISA-L's stream, not zlib's
                raw.seek(info.header_offset + 26)
                name_length, extra_length = int.from_bytes(raw.read(2), "little"), int.from_bytes(raw.read(2), "little")
                raw.seek(info.header_offset + 30 + name_length + extra_length)
                assert raw.read(info.compress_size) == _isal_deflate(data)
    assert [entry.path for entry in sink.files] == ["small.txt", "large.csv"]
