"""The bundle's incident-response program review (CC7.4) in Markdown and HTML, rendered after the
incident pass: bundle.program built the review beside it, the pass handed over its population rows."""

from __future__ import annotations

from vigil_ir.exports import program_review
from vigil_ir.exports.bundle.context import Context


def write(ctx: Context) -> None:
    review = ctx.program_review
    review.incidents = ctx.review_rows
    for fmt in program_review.FORMATS:
        ctx.sink.add(f"incident_review/report.{fmt}", program_review.render_built(review, fmt), section="program",
                     description="The incident-response program review of the period: volumes, time to acknowledge, "
                                 "mitigate and resolve with the trend, update cadence, reviews, actions, clocks, "
                                 "recurring causes, sign-off" + (" (with charts)" if fmt == "html" else ""),
                     query=f"incidents with {ctx.period_text('declared_at')} and the same-length period before; "
                           "rebuilt from their events (vigil_ir.exports.program_review)")
