"""Signing a bundle and chaining it to the one before: `manifest.sig` and the manifest's `previous_bundle`.

The signature (vigil_ir.exports.signature) covers the exact bytes of `manifest.json`, which hashes
every other file, so one signature vouches for the whole zip. `previous_bundle` names the last
bundle exported before this one (its manifest SHA-256 and signing key, from its
`audit.bundle_exported` receipt), so the bundles an installation hands out form a chain an auditor
can follow backwards; two exports running at once name the same predecessor.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from vigil_ir import clock
from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.files import ZipSink
from vigil_ir.exports.signature import NAME
from vigil_ir.signing.service import Signer

EXPORTED = "audit.bundle_exported"
STREAM = "audit"


def previous_bundle(session: Session) -> dict[str, Any] | None:
    """The last export's receipt, as the manifest's `previous_bundle`; None for the first bundle."""
    event = session.exec(select(Event).where(Event.stream == STREAM, Event.kind == EXPORTED)
                         .order_by(Event.stream_seq.desc()).limit(1)).first()
    if event is None:
        return None
    data = event.data or {}
    return {"manifest_sha256": data.get("manifest_sha256"), "key_fingerprint": data.get("key_fingerprint"),
            "file": data.get("file"), "period_start": data.get("period_start"), "period_end": data.get("period_end"),
            "generated_at": data.get("generated_at"), "generated_by": event.actor,
            "receipt": {"stream": event.stream, "seq": event.stream_seq, "recorded_at": clock.iso(event.recorded_at),
                        "hash": event.hash}}


def add_signature(sink: ZipSink, manifest: bytes, signer: Signer) -> None:
    sink.add(NAME, signer.sign(manifest).render(), section="signature", description="", query="", listed=False)
