"""`vigil incidents review` and `vigil incidents sign-off`: the periodic incident-response program
review (CC7.4) and management's sign-off of it, bound to a person in the directory."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import click

from vigil_ir.exports import program_review
from vigil_ir.exports.bundle_cli import check_period, period_options
from vigil_ir.exports.cli import _OUTPUT, _emit, _session, _write_session
from vigil_ir.people.cli_actor import host_login
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
@click.option("--by", "by", required=True,
              help="Who signs off: their Slack user id (U…) or e-mail, as known to Vigil's people directory.")
@click.option("--role", default="", help="Their role, e.g. 'CISO, for the management team'.")
@click.option("--comment", default="", help="What they say about the review.")
@click.option("--report", "report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The review file they read (`vigil incidents review -o FILE`): kept with the sign-off, and its "
                   "SHA-256 recorded; the period's evidence bundle carries it.")
@click.pass_context
def sign_off_command(ctx: click.Context, start: datetime, end: datetime, by: str, role: str, comment: str,
                     report_file: Path | None) -> None:
    """Record management's sign-off of the program review for the period (an event in the
    hash-chained log; the period's evidence bundle and the next review show it)."""
    check_period(start, end)
    content = report_file.read_bytes() if report_file else None
    with _write_session(ctx) as session:
        try:
            done = signoff.sign_off(session, start=start, end=end, by=by, role=role, comment=comment,
                                    report=content, report_name=report_file.name if report_file else None,
                                    actor=host_login(), via="cli", subject=signoff.INCIDENT_REVIEW)
        except signoff.SignOffRefused as problem:
            session.rollback()
            raise click.ClickException(f"Nothing was recorded: {problem}") from None
    kept = f"; report {done.report_file} kept (sha256 {done.report_sha256})" if done.report_file else ""
    click.echo(f"Recorded the sign-off of the incident-response program review for {done.period_start} to "
               f"{done.period_end} (end exclusive) by {done.label} at {done.signed_at}{kept}", err=True)
