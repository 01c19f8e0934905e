"""The risk part of a bundle, built only from vigil_ir.risks' and vigil_ir.exports.risks' public functions.

E7 the register as it stood at the end of the period (rebuilt from the events), E8 the review log
for the period, E9 acceptances in force during it, E10 the periodic assessment (heat maps of
inherent vs residual positions at period end, and the written report), E13 the scoring methodology.
Event and review rows are fetched in pages, so a year of a large register streams through.
"""

from __future__ import annotations

from datetime import timedelta

from vigil_ir.exports import risks as risk_exports
from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.criteria_index import note_references
from vigil_ir.exports.bundle.files import json_line
from vigil_ir.exports.bundle.sequences import sequence
from vigil_ir.risks import heatmap, register_asof, report
from vigil_ir.risks.models import Risk
from vigil_ir.risks.scoring import CURRENT, methodology


def write(ctx: Context) -> None:
    as_of = (ctx.end - timedelta(microseconds=1)).date()
    ctx.progress.start("Risk register", None)
    states = register_asof.states_as_of(ctx.session, ctx.end)
    # Names through ctx.names (the directory's answers, a person with one recorded state looked up
    # once): the register and the review log name three people in every row.
    rows = [register_asof.row(states[number], as_of, ctx.names) for number in sorted(states)]
    register = ctx.table(f"risk_register_{as_of.isoformat()}", register_asof.COLUMNS, section="E7",
                         description=f"Risk register as it stood at the end of the period ({ctx.iso_end}), rebuilt "
                                     "from each risk's events; review_state as of that day",
                         query=f"events of streams risk:<n> with recorded_at < {ctx.iso_end}, folded per risk "
                               "(vigil_ir.risks.register_asof); ordered by number")
    for row in rows:
        register.write(row)
    register.finish(ctx.sink)
    note_references(ctx, f"{register.name}.csv", ((row["tsc_refs"] or "").split(";") for row in rows))
    ctx.manifest.sequences.append(sequence(ctx.session, "RISK-", Risk, "risk", "created before the period end",
                                           sorted(states)))
    # The review log is written (to its spooled files) before the assessment, whose report counts the
    # same rows as they go by: they are built once. The log is added to the zip after the assessment.
    ctx.progress.start("Risk reviews", None)
    reviews = risk_exports.iter_review_rows(ctx.session, ctx.start, ctx.end, ctx.names)
    log = ctx.table("risk_reviews", risk_exports.REVIEW_COLUMNS, section="E8",
                    description="Risk review log: reviews completed in the period and every review due in it (also "
                                "those completed early), status and reminders as at the period end, with before/after "
                                "scores and approvals",
                    query=f"risk_review rows with {ctx.period_text('completed_at')}, or due_on in the period; joined "
                          f"to risk and risk_approval; reminders: risk.reminder_sent events recorded before "
                          f"{ctx.iso_end}; ordered by due_on, id")
    summary = report.ReviewSummary.empty()
    for row in reviews:
        log.write(row)
        summary.add(row)
    _assessment(ctx, rows, as_of.isoformat(), summary)
    log.finish(ctx.sink)
    _acceptances(ctx)


def _assessment(ctx: Context, rows: list[dict], as_of: str, reviews: report.ReviewSummary) -> None:
    """E10 heat maps and report, E13 methodology."""
    heat = heatmap.build(rows, as_of)
    ctx.sink.add(f"risk_assessment/heatmap_{as_of}.svg", heatmap.svg(heat), section="E10",
                 description=f"Heat maps of inherent and residual risk positions of the {heat.total} open risks "
                             f"at the end of the period",
                 query=f"the risk register as of {as_of} (risk_register_{as_of}.csv), closed risks left out")
    versions = sorted({row["methodology_version"] for row in rows} | {CURRENT.version})
    ctx.sink.add("risk_methodology.json", json_line([methodology(v).describe() for v in versions]) + "\n",
                 section="E13", description="Scoring methodology of every version used in the register: scales, "
                                            "matrix, level bands, default review cadence",
                 query="vigil_ir.risks.scoring methodologies " + ", ".join(versions), rows=len(versions))
    built = report.build(ctx.session, ctx.start, ctx.end, end_rows=rows, people=ctx.people, reviews=reviews)
    for fmt in report.FORMATS:
        ctx.sink.add(f"risk_assessment/report.{fmt}", report.render_built(built, fmt),
                     section="E10", description="Periodic risk assessment report for the period: methodology, "
                                                "participants, changes, fraud and vendor risks, risks above appetite, "
                                                "overdue reviews and actions, management sign-off",
                     query=f"vigil_ir.risks.report for {ctx.iso_start} to {ctx.iso_end}")


def _acceptances(ctx: Context) -> None:
    table = ctx.table("risk_acceptances", risk_exports.ACCEPTANCE_COLUMNS, section="E9",
                      description="Risk acceptances in force during the period: who accepted which risk, why, "
                                  "approved by whom, until when, and whether the risk changed since",
                      query=f"risk_acceptance rows with approved_at < {ctx.iso_end} and (ended_at null or >= "
                            f"{ctx.iso_start}); joined to risk, risk_review, risk_approval; ordered by approved_at, id")
    for row in risk_exports.acceptance_rows(ctx.session, ctx.start, ctx.end, ctx.people):
        table.write(row)
    table.finish(ctx.sink)
