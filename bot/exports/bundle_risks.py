"""The risk part of a bundle, built only from bot.risks' and bot.exports.risks' public functions.

E7 the register as it stood at the end of the period (rebuilt from the events), E8 the review log
for the period, E9 acceptances, E10 the periodic assessment (heat maps of inherent vs residual
positions at period end, and the written report), E13 the scoring methodology. A part whose
function the risk modules do not offer yet is left out with a manifest note naming what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_
from sqlmodel import Session, select

from bot.exports import risks as risk_exports
from bot.exports.bundle_files import json_line
from bot.exports.manifest import Note
from bot.eventlog import Event
from bot.risks import heatmap, history, register_asof
from bot.risks.models import Risk, RiskApproval, RiskReview
from bot.risks.scoring import CURRENT, methodology

if TYPE_CHECKING:
    from bot.exports.bundle import Context

# Looked up by name so the bundle picks them up as soon as the risk modules provide them.
ACCEPTANCES = ("bot.exports.risks", "acceptance_rows", "ACCEPTANCE_COLUMNS")
REPORT = ("bot.risks.report", "render_report")
ROWS_PER_FETCH = 500


def _optional(module_name: str, *names: str):
    """The named attributes of a module, or None if the module or any of them is missing."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    found = [getattr(module, name, None) for name in names]
    return None if any(item is None for item in found) else found


def write(ctx: Context) -> None:
    from bot.exports.bundle_incidents import sequence

    as_of = (ctx.end - timedelta(microseconds=1)).date()
    ctx.progress.start("Risk register", None)
    states = _states_as_of(ctx.session, ctx.end)
    rows = [register_asof.row(states[number], as_of) for number in sorted(states)]
    register = ctx.table(f"risk_register_{as_of.isoformat()}", register_asof.COLUMNS, section="E7",
                         description=f"Risk register as it stood at the end of the period ({ctx.iso_end}), rebuilt "
                                     "from each risk's events; review_state as of that day",
                         query=f"events of streams risk:<n> with recorded_at < {ctx.iso_end}, folded per risk "
                               "(bot.risks.register_asof); ordered by number")
    for row in rows:
        register.write(row)
    register.finish(ctx.sink)
    ctx.manifest.sequences.append(sequence(ctx.session, "RISK-", Risk, "risk", "created before the period end",
                                           sorted(states)))
    _assessment(ctx, rows, as_of.isoformat())
    ctx.progress.start("Risk reviews", None)
    reviews = _review_rows(ctx.session, ctx.start, ctx.end)
    log = ctx.table("risk_reviews", risk_exports.REVIEW_COLUMNS, section="E8",
                    description="Risk review log: reviews completed in the period, and reviews due in it that were "
                                "not completed (missed or still open), with before/after scores and approvals",
                    query=f"risk_review rows with {ctx.period_text('completed_at')}, or not completed and due_on in "
                          f"the period; joined to risk and risk_approval; ordered by due_on, id")
    for row in reviews:
        log.write(row)
    log.finish(ctx.sink)
    _acceptances(ctx)


# Streamed forms of register_asof.states_as_of and risk_exports.review_rows: the same selection and
# the same per-row functions (history.fold, review_row), but rows are fetched in pages instead of
# all at once, so a year of 5,000 risks x 4 reviews does not sit in memory. The tests pin them to the
# originals; once bot.risks offers streaming versions these two go.
def _states_as_of(session: Session, end: datetime) -> dict[int, dict]:
    table = Event.__table__
    query = (select(table.c.stream, table.c.kind, table.c.data)
             .where(table.c.stream.like("risk:%"), table.c.recorded_at < end)
             .order_by(table.c.stream, table.c.stream_seq).execution_options(yield_per=ROWS_PER_FETCH))
    states: dict[int, dict] = {}
    for stream, kind, data in session.execute(query):
        number = int(stream.split(":")[1])
        if kind == "risk.created":
            states[number] = dict(data["state"])
        elif number in states and data.get("changes"):
            states[number] = history.fold(states[number], data["changes"])
    return states


def _review_rows(session: Session, start: datetime, end: datetime) -> Iterator[dict]:
    query = (select(RiskReview, Risk, RiskApproval).join(Risk, Risk.id == RiskReview.risk_id)
             .join(RiskApproval, RiskApproval.review_id == RiskReview.id, isouter=True)
             .where(or_(and_(RiskReview.completed_at >= start, RiskReview.completed_at < end),
                        and_(RiskReview.status != "completed", RiskReview.due_on >= start.date(),
                             RiskReview.due_on < end.date())))
             .order_by(RiskReview.due_on, RiskReview.id).execution_options(yield_per=ROWS_PER_FETCH))
    for review, risk, approval in session.exec(query):
        yield risk_exports.review_row(review, risk, approval)


def _assessment(ctx: Context, rows: list[dict], as_of: str) -> None:
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
                 query="bot.risks.scoring methodologies " + ", ".join(versions), rows=len(versions))
    report = _optional(*REPORT)
    if report is None:
        ctx.manifest.notes.append(Note("E10", "partial", "The written periodic risk assessment report is not "
                                       "included: this version of Vigil has no report renderer "
                                       "(bot.risks.report.render_report). The heat maps, register, review log and "
                                       "methodology in this bundle are its inputs."))
        return
    for fmt in ("md", "html"):
        ctx.sink.add(f"risk_assessment/report.{fmt}", report[0](ctx.session, ctx.start, ctx.end, fmt), section="E10",
                     description="Periodic risk assessment report for the period",
                     query=f"bot.risks.report.render_report for {ctx.iso_start} to {ctx.iso_end}")


def _acceptances(ctx: Context) -> None:
    found = _optional(*ACCEPTANCES)
    if found is None:
        ctx.manifest.notes.append(Note("E9", "omitted", "risk_acceptances.csv/json is not included: this version "
                                       "of Vigil has no acceptance register export "
                                       "(bot.exports.risks.acceptance_rows). Acceptances and their approvals are "
                                       "in the review log (outcome acceptance_requested, approver, decision) and in "
                                       "the audit log (risk.approval_granted events)."))
        return
    rows_for, columns = found
    table = ctx.table("risk_acceptances", columns, section="E9",
                      description="Risk acceptances: who accepted which risk, why, approved by whom, until when",
                      query="bot.exports.risks.acceptance_rows for the period")
    for row in rows_for(ctx.session, ctx.start, ctx.end):
        table.write(row)
    table.finish(ctx.sink)
