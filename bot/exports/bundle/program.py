"""The bundle's program evidence: the incident-response program review of the period (CC7.4) in
Markdown and HTML, and management's sign-offs of it with the files they signed."""

from __future__ import annotations

from vigil_ir.exports import program_review
from vigil_ir.exports.bundle import signoffs
from vigil_ir.exports.bundle.context import Context
from vigil_ir.risks import signoff


def write(ctx: Context) -> None:
    ctx.progress.start("Program review", None)
    review = program_review.build(ctx.session, ctx.start, ctx.end, settings=ctx.settings, people=ctx.people,
                                  generated_at=ctx.generated_at)
    for fmt in program_review.FORMATS:
        ctx.sink.add(f"incident_review/report.{fmt}", program_review.render_built(review, fmt), section="program",
                     description="The incident-response program review of the period: volumes, time to acknowledge, "
                                 "mitigate and resolve with the trend, update cadence, reviews, actions, clocks, "
                                 "recurring causes, sign-off" + (" (with charts)" if fmt == "html" else ""),
                     query=f"incidents with {ctx.period_text('declared_at')} and the same-length period before; "
                           "rebuilt from their events (vigil_ir.exports.program_review)")
    signoffs.write(ctx, signoff.INCIDENT_REVIEW)
