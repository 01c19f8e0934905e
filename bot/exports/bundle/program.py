"""The bundle's program evidence beside the incident pass: every part of the incident-response program
review of the period (CC7.4) but the population's rows, and management's sign-offs of it with the
files they signed.

The population's rows come from the incident pass, which folds every incident's events anyway
(Context.review_rows), so none is read again for the review: bundle.program_report renders the
review once the pass is done.
"""

from __future__ import annotations

from sqlmodel import select

from vigil_ir.exports import program_review
from vigil_ir.exports.bundle import signoffs
from vigil_ir.exports.bundle.context import Context
from vigil_ir.incidents.models import Incident, key_of
from vigil_ir.risks import signoff


def write(ctx: Context) -> None:
    """After the cadence section (its counts are the review's); keeps the review for program_report."""
    ctx.progress.start("Program review", None)
    numbers = ctx.session.exec(select(Incident.number).where(Incident.declared_at >= ctx.start,
                                                             Incident.declared_at < ctx.end,
                                                             Incident.exercise.is_(False)))
    ctx.program_review = program_review.build_around(
        ctx.session, ctx.start, ctx.end, {key_of(number) for number in numbers}, settings=ctx.settings,
        people=ctx.people, generated_at=ctx.generated_at, cadence=ctx.cadence_outcomes)
    signoffs.write(ctx, signoff.INCIDENT_REVIEW)
