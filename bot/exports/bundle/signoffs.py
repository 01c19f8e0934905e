"""Management sign-offs of exactly this period, whenever they were recorded, with the files signed.

`risk_signoffs` (the risk assessment) and `incident_review_signoffs` (the program review) list each
sign-off; `risk_assessment/signed/` and `incident_review/signed/` hold each report file signed, so its
recorded SHA-256 can be checked against the file.
"""

from __future__ import annotations

import hashlib

from vigil_ir.eventlog import Event
from vigil_ir.exports.bundle.context import Context
from vigil_ir.people import is_user_id
from vigil_ir.risks import signoff

COLUMNS = ("signed_at", "by_id", "by_name", "by_email", "by_title", "role", "comment", "via",
           "report_file", "report_sha256", "file_sha256_matches", "event_stream", "event_seq", "event_hash")

# subject → (table, folder of the signed files, section, what was signed)
SIGNED = {signoff.RISK_ASSESSMENT: ("risk_signoffs", "risk_assessment/signed", "E10", "the risk assessment"),
          signoff.INCIDENT_REVIEW: ("incident_review_signoffs", "incident_review/signed", "program",
                                    "the incident-response program review")}


def write(ctx: Context, subject: str = signoff.RISK_ASSESSMENT) -> None:
    name, folder, section, what = SIGNED[subject]
    table = ctx.table(name, COLUMNS, section=section,
                      description=f"Management sign-offs of {what} for exactly this period, including "
                                  "those recorded after it ended, with the report file each signed",
                      query=f"events of stream audit, kind {signoff.KINDS[subject]}, whose period_start and period_end "
                            f"are {ctx.iso_start} and {ctx.iso_end}; report files from signed_report")
    for done in signoff.sign_offs(ctx.session, ctx.start, ctx.end, subject=subject):
        ctx.people.name_at(done.by)  # the signer is in people.csv even when the sign-off came after the period
        path, matches = None, None
        stored = signoff.stored_report(ctx.session, done.report_id) if done.report_id else None
        if stored is not None:
            path = f"{folder}/{stored.id}-{stored.filename}"
            content = bytes(stored.content)
            matches = hashlib.sha256(content).hexdigest() == done.report_sha256
            ctx.sink.add(path, content, section=section,
                         description=f"The report file {done.label} signed off on {done.signed_at} "
                                     f"(SHA-256 recorded in the sign-off: {done.report_sha256})",
                         query=f"signed_report id {stored.id}")
        event = ctx.session.get(Event, done.event_id)
        table.write({"signed_at": done.signed_at, "by_id": done.by if is_user_id(done.by) else None,
                     "by_name": done.by_name if is_user_id(done.by) else done.by, "by_email": done.by_email,
                     "by_title": done.by_title, "role": done.role or None, "comment": done.comment or None,
                     "via": done.via, "report_file": path, "report_sha256": done.report_sha256,
                     "file_sha256_matches": matches, "event_stream": event.stream, "event_seq": event.stream_seq,
                     "event_hash": event.hash})
    table.finish(ctx.sink)

