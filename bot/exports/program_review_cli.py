"""`vigil incidents review` and `vigil incidents sign-off`: the periodic incident-response program
review (CC7.4) and management's sign-off of it, bound to a person in the directory."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import click

from vigil_ir.exports import program_review
from vigil_ir.exports.period_cli import check_period, period_options
from vigil_ir.exports.cli import _OUTPUT, _emit, _session
from vigil_ir.exports.signoff_cli import record_sign_off, sign_off_options
from vigil_ir.risks import signoff


@click.group("incidents")
def incidents_group() -> None:
    """The incident-response program as evidence: the periodic review and its sign-off."""


@incidents_group.command("review")
@period_options
@click.option("--format", "fmt", type=click.Choice(program_review.FORMATS, case_sensitive=False), default="md",
              show_default=True, help="md (Markdown) or html (with the charts drawn, prints as a report).")
@_OUTPUT
@click.pass_context
def review_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """The periodic incident-response program review for the period (CC7.4): volumes by month,
    severity and type; time to acknowledge, mitigate and resolve (median, 90th percentile, trend
    against the period before); update cadence; post-incident reviews; follow-up actions;
    regulatory clocks; recurring causes; and the sign-offs recorded for it."""
    from vigil_ir.config import load_settings

    check_period(start, end)
    with _session(ctx) as session:
        text = program_review.render_review(session, start, end, fmt.lower(), settings=load_settings())
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    _emit(text, output, fmt=fmt, what=f"the incident-response program review (sha256 {digest})")


@incidents_group.command("sign-off")
@period_options
@sign_off_options("the review", "vigil incidents review")
@click.pass_context
def sign_off_command(ctx: click.Context, start: datetime, end: datetime, by: str, role: str, comment: str,
                     report_file: Path | None) -> None:
    """Record management's sign-off of the program review for the period (an event in the
    hash-chained log; the period's evidence bundle and the next review show it)."""
    record_sign_off(ctx, start=start, end=end, by=by, role=role, comment=comment, report_file=report_file,
                    subject=signoff.INCIDENT_REVIEW, what="the incident-response program review")
