"""The CLI side of a management sign-off (`vigil risks sign-off`, `vigil incidents sign-off`): the
same options, the same binding to a person, the same record (vigil_ir.risks.signoff)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

import click

from vigil_ir.exports.period_cli import check_period
from vigil_ir.exports.cli import _write_session
from vigil_ir.people.cli_actor import host_login
from vigil_ir.risks import signoff


def sign_off_options(what: str, report_command: str) -> Callable:
    """--by, --role, --comment and --report for signing off `what`."""
    def decorate(command: Callable) -> Callable:
        for option in reversed((
            click.option("--by", "by", required=True, help="Who signs off: their Slack user id (U…) or e-mail, as "
                                                           "known to Vigil's people directory."),
            click.option("--role", default="", help="Their role, e.g. 'CFO, for the management team'."),
            click.option("--comment", default="", help=f"What they say about {what}."),
            click.option("--report", "report_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help=f"The file they read (`{report_command} -o FILE`): kept with the sign-off, and its "
                              "SHA-256 recorded; the period's evidence bundle carries it."),
        )):
            command = option(command)
        return command
    return decorate


def record_sign_off(ctx: click.Context, *, start: datetime, end: datetime, by: str, role: str, comment: str,
                    report_file: Path | None, subject: str, what: str) -> None:
    """Record the sign-off (nothing is written when it is refused) and say what was recorded."""
    check_period(start, end)
    content = report_file.read_bytes() if report_file else None
    with _write_session(ctx) as session:
        try:
            done = signoff.sign_off(session, start=start, end=end, by=by, role=role, comment=comment,
                                    report=content, report_name=report_file.name if report_file else None,
                                    actor=host_login(), via="cli", subject=subject)
        except signoff.SignOffRefused as problem:
            session.rollback()
            raise click.ClickException(f"Nothing was recorded: {problem}") from None
    kept = f"; report {done.report_file} kept (sha256 {done.report_sha256})" if done.report_file else ""
    click.echo(f"Recorded the sign-off of {what} for {done.period_start} to {done.period_end} (end exclusive) by "
               f"{done.label} at {done.signed_at}{kept}", err=True)
