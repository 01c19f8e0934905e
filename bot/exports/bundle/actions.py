"""Follow-up actions in a bundle (E5 `action_items`), through vigil_ir.followup.action_export.

The selection and columns are exactly those of `vigil export actions` (created, due or completed
in the period; status as at generation), so the bundle and the stand-alone export agree. (Each
incident packet also lists all of its incident's actions, whenever they were created.)
"""

from __future__ import annotations

from datetime import timedelta

from vigil_ir.exports.bundle.context import Context
from vigil_ir.exports.bundle.sequences import sequence
from vigil_ir.followup import action_export
from vigil_ir.followup.models import ActionItem


RULE = "created, due or completed in the period"


def write(ctx: Context) -> None:
    first_day, last_day = ctx.start.date(), (ctx.end - timedelta(microseconds=1)).date()
    table = ctx.table("action_items", action_export.COLUMNS, section="E5",
                      description="Corrective and follow-up actions with owner, due date, status, completion and "
                                  "evidence (status and overdue as at generation)",
                      query=f"action_item rows with {ctx.period_text('created_at')}, or "
                            f"{ctx.period_text('completed_at')}, or due_on from {first_day} to {last_day}; ordered by "
                            "number (vigil_ir.followup.action_export)")
    ctx.progress.start("Action items", None)
    rows = action_export.action_rows(ctx.session, ctx.start, ctx.end, ctx.people)
    for row in rows:
        table.write(row)
    table.finish(ctx.sink)
    numbers = [int(row["action_ref"].split("-")[1]) for row in rows]
    ctx.manifest.sequences.append(sequence(ctx.session, "ACT-", ActionItem, "action", RULE, numbers))
