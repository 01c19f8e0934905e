"""The evidence bundle for an audit period: one zip, every file hashed in `manifest.json`.

The bundle is written to a temporary file beside the output, from one read-only snapshot of the
database (vigil_ir.exports.snapshot), one zip entry at a time. The incident pass runs in a process
of its own on the same snapshot while this one checks the state rows (when asked), writes the other
sections and the zip (vigil_ir.exports.bundle.parallel; all in this process for an in-memory SQLite
database, which no other process can open); the file is moved into place once complete (vigil_ir.exports.output), and then
the export is recorded as an `audit.bundle_exported` event. A failure leaves no partial bundle
behind and any earlier file intact. What each file holds is in docs/audit-evidence.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil_ir import clock
from vigil_ir.config import Settings, load_settings
from vigil_ir.db import Database
from vigil_ir.eventlog import append
from vigil_ir.exports.bundle import (actions, audit_log, cadence, carried_over, chain_heads, criteria_index,
                                     exercises, incidents, notifications, people, policy, program, program_report,
                                     risks, security, signing, signoffs, state_guard)
from vigil_ir.exports.bundle.child import Job
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.files import ZipSink
from vigil_ir.exports.bundle.parallel import Helpers
from vigil_ir.exports.bundle.verification import STANDALONE_NAME, standalone_source
from vigil_ir.exports.manifest import NAME, Manifest, Note
from vigil_ir.exports.progress import Progress, Quiet
from vigil_ir.exports.output import replacing
from vigil_ir.exports.snapshot import read_snapshot, shareable
from vigil_ir.people import Directory
from vigil_ir.signing.service import Signer, signer as signing_key

AUDIT_STREAM = "audit"


@dataclass
class BundleResult:
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    key_fingerprint: str
    files: int
    bytes: int


def _readme(manifest: Manifest) -> str:
    lines = [f"# Vigil evidence bundle: {clock.iso(manifest.start)} to {clock.iso(manifest.end)} (end exclusive)", "",
             f"Generated {clock.iso(manifest.generated_at)} by {manifest.generated_by}. `manifest.json` lists every "
             "file with its SHA-256, size, row count and the selection behind it.", "",
             "Check the bundle offline, without the database: `vigil verify --bundle <this zip>`, or without Vigil: "
             "`python verify.py <this zip>` (Python standard library only; the same checks).", "",
             "`manifest.sig` is the installation's Ed25519 signature of `manifest.json`. Compare its key fingerprint "
             "with the one the installation posted to its audit channel (`vigil verify --bundle <this zip> --key "
             "SHA256:…` does it for you).", "",
             "| File | Evidence | Rows | What it is |", "|---|---|---|---|"]
    packets = [entry for entry in manifest.files if entry.path.startswith("incidents/")]
    for entry in sorted(manifest.files, key=lambda e: e.path):
        if not entry.path.startswith("incidents/"):
            rows = "" if entry.rows is None else str(entry.rows)
            lines.append(f"| {entry.path} | {entry.section} | {rows} | {entry.description} |")
    if packets:
        folders = len({entry.path.split("/")[1] for entry in packets})
        lines.append(f"| incidents/INC-<n>/ | E3 | {folders} folders | One evidence packet per incident: INC-<n>.html "
                     "to read (summary, roles, checklists, post-incident review, actions, timeline, integrity block) "
                     "and INC-<n>.json to process (the same, its events named as rows of the event log), and the "
                     "review document once the review is completed |")
    for note in manifest.notes:
        lines += ["", f"Note ({note.section}, {note.status}): {note.detail}"]
    lines += ["", "How to read and verify these files: docs/audit-evidence.md in the Vigil repository.", ""]
    return "\n".join(lines)


def _backend(database: Database) -> str:
    return "sqlite" if database.is_sqlite else "postgresql"


# The sections after the incident pass, in the order they are written: a section listed after
# another may use what it left in the context (the audit log leaves out the streams the incident
# and exercise event logs hold whole; the program review takes the cadence section's counts and the
# incident pass's population rows; the people list names everyone the others showed; the criteria
# index lists the files written before it).
SECTIONS_BESIDE_INCIDENTS = (carried_over, security, cadence, actions, exercises, risks, audit_log, notifications,
                             policy, signoffs, program, chain_heads)
SECTIONS_AFTER = (program_report, people, criteria_index)
# Sections after the incident pass that do beside it what needs none of its facts (`prepare`), so
# that less waits for it: the people list scans the period's events for the ids they name.
PREPARED_BESIDE = (people,)


def _write(database: Database, path: Path, manifest: Manifest, progress: Progress, settings: Settings,
           signer: Signer, check_state: bool) -> bytes:
    sink = ZipSink(path, manifest.generated_at)
    manifest.files = sink.files  # the manifest lists what the sink has written
    helpers = None
    if shareable(database):  # the incident pass beside this process (parallel.py)
        helpers = Helpers(Job(url=database.url, start=manifest.start, end=manifest.end,
                              generated_at=manifest.generated_at, generated_by=manifest.generated_by,
                              backend=manifest.backend, workdir=path.parent, settings=settings), sink, progress)
    try:
        if helpers is not None:
            helpers.start()
        with read_snapshot(database, joiners=helpers) as session:
            if check_state:  # on the bundle's own snapshot, while the incident process works
                state_guard.refuse_differences(session, manifest.end)
            manifest.previous_bundle = signing.previous_bundle(session)
            ctx = Context(session=session, sink=sink, manifest=manifest, workdir=path.parent, progress=progress,
                          people=Directory.load(session), settings=settings)
            notes_before = len(manifest.notes)
            if helpers is None:
                incidents.write(ctx)
            else:
                expected = incidents.streams_in_full(ctx)
                ctx.streams_in_full.update(expected)
            for section in SECTIONS_BESIDE_INCIDENTS:
                section.write(ctx)
                if helpers is not None:
                    helpers.check()  # a failed child or a failed state check: no use going on
            for section in PREPARED_BESIDE:
                section.prepare(ctx)
            if helpers is not None:
                facts = helpers.facts()
                facts.merge_into(ctx, expected_streams=expected, notes_at=notes_before)
                incidents.state_sequence(ctx, facts.numbers)
            for section in SECTIONS_AFTER:
                section.write(ctx)
            sink.add(STANDALONE_NAME, standalone_source(), section="guide",
                     description="The bundle checker, Python standard library only: `python verify.py <this zip>` "
                                 "runs every check `vigil verify --bundle` runs",
                     query="vigil_ir.exports.bundle.checker of the generating version, byte for byte")
            sink.add("README.md", _readme(manifest), section="guide",
                     description="What the files are and how to verify them", query="generated from this manifest")
            sink.wait_written()  # a table joined from the incident processes' shares is hashed as it is written
            rendered = manifest.render()
            sink.add(NAME, rendered, section="manifest", description="", query="", listed=False)
            signing.add_signature(sink, rendered, signer)
    finally:
        try:
            if helpers is not None:
                helpers.stop()  # before the sink closes: a receiving thread may still hand files over
        finally:
            sink.close()
            progress.close()
    return rendered


def export_bundle(database: Database, *, start: datetime, end: datetime, output: Path, actor: str,
                  progress: Progress | None = None, settings: Settings | None = None,
                  check_state: bool = False) -> BundleResult:
    """Write the bundle for [start, end) to `output` and record the export as an event.

    Raises ValueError for an empty period, OSError when the output cannot be written,
    SigningKeyError when the signing key cannot be used (checked first: nothing is written then),
    state_guard.StateDiffers when `check_state` is set and the state rows of the records begun
    before `end` disagree with their events (checked on the bundle's own snapshot, while the
    incident process works) and parallel.ExportProcessFailed when the incident process fails. Whatever
    fails, no partial bundle is left, an earlier file at `output` stays as it was, and nothing is
    recorded. The other processes are started with multiprocessing (forkserver): a script calling
    this needs the `if __name__ == "__main__":` guard multiprocessing asks of every main module.
    """
    start, end, output = clock.to_utc(start), clock.to_utc(end), Path(output)
    if start >= end:
        raise ValueError(f"the period start ({clock.iso(start)}) must be before its end ({clock.iso(end)})")
    settings = settings or load_settings()
    signer = signing_key(database, settings, actor=actor)
    manifest = Manifest(start=start, end=end, generated_at=clock.now(), generated_by=actor,
                        backend=_backend(database))
    if end > manifest.generated_at:
        manifest.notes.append(Note("period", "open", f"The period ends ({clock.iso(end)}) after the bundle was "
                                   "generated: records of the period may still change; export again after it ends."))
    # The file is in place (renamed over any earlier one only once complete) before the export is
    # recorded, so the event never names a bundle that is not there.
    with replacing(output) as temporary:
        rendered = _write(database, temporary, manifest, progress or Quiet(), settings, signer, check_state)
        total = temporary.stat().st_size
    digest = hashlib.sha256(rendered).hexdigest()
    document = manifest.to_json()
    with database.session() as session:
        append(session, stream=AUDIT_STREAM, kind="audit.bundle_exported", actor=actor, data={
            "period_start": clock.iso(start), "period_end": clock.iso(end), "file": output.name,
            "manifest_sha256": digest, "files": len(manifest.files), "bytes": total,
            "generated_at": document["generated_at"], "heads_digest": manifest.heads.get("digest"),
            "key_fingerprint": signer.fingerprint,
            "previous_manifest_sha256": (manifest.previous_bundle or {}).get("manifest_sha256")})
    return BundleResult(path=output, manifest=document, manifest_sha256=digest, key_fingerprint=signer.fingerprint,
                        files=len(manifest.files), bytes=total)

