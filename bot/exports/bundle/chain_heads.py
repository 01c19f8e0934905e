"""`chain_heads`: the head of every stream at generation time.

The SHA-256 over its sorted `"<stream> <hash>\\n"` lines is the same heads digest `vigil verify`
prints and the worker publishes to the audit channel, so the bundle can be tied to them.
"""

from __future__ import annotations

import hashlib

from vigil_ir.exports import eventlog_export
from vigil_ir.exports.bundle.context import Context


def write(ctx: Context) -> None:
    table = ctx.table("chain_heads", eventlog_export.HEAD_COLUMNS, section="integrity",
                      description="Head (last seq and hash) of every event stream at generation time; the manifest's "
                                  "heads digest is computed from these rows",
                      query="stream_head rows, ordered by stream (byte order)")
    digest, streams, events = hashlib.sha256(), 0, 0
    for head in eventlog_export.stream_heads(ctx.session):
        table.write(eventlog_export.head_row(head))
        digest.update(f"{head.stream} {head.hash}\n".encode("utf-8"))
        streams, events = streams + 1, events + head.seq
    table.finish(ctx.sink)
    ctx.manifest.heads = {"file": "chain_heads.json", "streams": streams, "events": events,
                          "digest": "sha256:" + digest.hexdigest(),
                          "digest_method": "sha256 over the lines '<stream> <head hash>\\n' sorted by stream, "
                                           "as printed by `vigil verify`"}
