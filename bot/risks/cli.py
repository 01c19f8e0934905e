"""`vigil risks …`: import a spreadsheet register, export the register, draw the heat map, write
the periodic assessment report and record its management sign-off."""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import date, datetime
from pathlib import Path

import click
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.config import load_settings
from vigil_ir.exports import csvsafe
from vigil_ir.exports.period_cli import check_period, period_options
from vigil_ir.exports.cli import _OUTPUT, _as_of, _emit, _session, _write_session
from vigil_ir.exports.output import checked_output, write_file
from vigil_ir.exports.risks import register_rows
from vigil_ir.exports.signoff_cli import record_sign_off, sign_off_options
from vigil_ir.people.cli_actor import actor_for, by_option
from vigil_ir.risks import heatmap, importer, report, signoff
from vigil_ir.risks.importer import ImportFailed
from vigil_ir.risks.models import Risk

EXPORT_COLUMNS = ("key", *importer.REQUIRED, *importer.OPTIONAL, "status")


@click.group("risks")
def risks() -> None:
    """The risk register: import from a spreadsheet, export, heat map, periodic report and sign-off."""


def _one_line(text: str) -> str:
    """Cell values quoted in a problem, with line breaks and terminal control characters made visible."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _fail(problems: list[str]) -> None:
    for problem in problems:
        click.echo(_one_line(problem), err=True)
    click.echo(f"Nothing was imported ({len(problems)} problem(s)).", err=True)
    sys.exit(1)


@risks.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@by_option("importing", "--actor")
@click.pass_context
def import_command(ctx: click.Context, file: Path, by: str | None) -> None:
    """Add every risk in FILE (CSV, header row first), or none if any row is bad.

    Columns: title, statement, category, type, owner (Slack user id or e-mail), likelihood, impact
    (required); description, residual_likelihood, residual_impact, treatment, treatment_plan,
    treatment_due, review_cadence, next_review_due, tsc_refs, incidents (optional). See docs/risks.md.
    """
    try:
        rows = importer.parse(file.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text; save the sheet as “CSV UTF-8”.") from None
    except ImportFailed as failed:
        _fail(failed.problems)
    directory = _resolve_emails(rows)
    try:
        with _write_session(ctx) as session:
            created = importer.import_rows(session, rows, actor=actor_for(session, by)[0], directory=directory)
            keys = [risk.key for risk in created]
    except ImportFailed as failed:
        _fail(failed.problems)
    click.echo(f"Imported {len(keys)} risk(s): {', '.join(keys)}")


def _resolve_emails(rows: list[importer.Row]) -> dict[str, str | None]:
    addresses = importer.emails(rows)
    if not addresses:
        return {}
    settings = load_settings()
    if not settings.slack_bot_token:
        _fail([f"row {row.number}, column owner: an e-mail address needs SLACK_BOT_TOKEN to be looked up in "
               "Slack; set it or give the Slack user id (U…)" for row in rows
               if row.values.get("owner", "").lower() in addresses])
    from vigil_ir.slack.app import make_client

    client = make_client(settings)
    return importer.slack_directory(client, addresses, on_error=lambda address, error: click.echo(
        f"Slack could not look up {address}: {error}", err=True))


@risks.command("export")
@click.option("--format", "fmt", type=click.Choice(("csv", "json"), case_sensitive=False), default="csv",
              show_default=True, help="csv (the import columns, plus key and status) or json.")
@_OUTPUT
@click.pass_context
def export_command(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """The current register in the import format (for the audit register use `vigil export risks`)."""
    with _session(ctx) as session:
        rows = [export_row(risk) for risk in session.exec(select(Risk).order_by(Risk.number))]
    text = csvsafe.to_csv(EXPORT_COLUMNS, rows) if fmt == "csv" else \
        json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    _emit(text, output, fmt=fmt, what=f"{len(rows)} risks")


def export_row(risk: Risk) -> dict:
    return {"key": risk.key, "title": risk.title, "statement": risk.statement, "category": risk.category,
            "type": risk.risk_type, "owner": risk.owner, "likelihood": risk.inherent_likelihood,
            "impact": risk.inherent_impact, "description": risk.description,
            "residual_likelihood": risk.residual_likelihood, "residual_impact": risk.residual_impact,
            "treatment": risk.treatment, "treatment_plan": risk.treatment_plan,
            "treatment_due": risk.treatment_due.isoformat() if risk.treatment_due else None,
            "review_cadence": risk.cadence,
            "next_review_due": risk.next_review_due.isoformat() if risk.next_review_due else None,
            "tsc_refs": ";".join(risk.tsc_refs), "incidents": ";".join(risk.linked_incidents), "status": risk.status}


@risks.command("heatmap")
@click.option("--as-of", "as_of", callback=_as_of, metavar="DATE",
              help="Plot the register as it stood at the end of DATE (UTC), rebuilt from the events.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              callback=checked_output, help="FILE.svg or FILE.png.")
@click.pass_context
def heatmap_command(ctx: click.Context, as_of: date | None, output: Path) -> None:
    """5×5 heat maps of inherent and residual risk positions, with counts."""
    suffix = output.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise click.BadParameter("the file name must end in .svg or .png", param_hint="-o/--output")
    with _session(ctx) as session:
        rows = register_rows(session, as_of)
    heat = heatmap.build(rows, (as_of or clock.now().date()).isoformat())
    if suffix == ".svg":
        data = heatmap.svg(heat).encode("utf-8")
    else:
        from vigil_ir.risks.png import png

        data = png(heat)
    write_file(output, data)
    click.echo(f"Wrote the heat map of {heat.total} open risks to {output}", err=True)


@risks.command("report")
@period_options
@click.option("--format", "fmt", type=click.Choice(report.FORMATS, case_sensitive=False), default="md",
              show_default=True, help="md (Markdown) or html (with the heat maps drawn, prints as a report).")
@_OUTPUT
@click.pass_context
def report_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """The periodic risk assessment report (E10) for the period: methodology, participants, heat maps,
    new, closed and rescored risks, fraud and vendor risks, risks above appetite, overdue reviews and
    actions, and the management sign-offs recorded for it."""
    check_period(start, end)
    with _session(ctx) as session:
        text = report.render_report(session, start, end, fmt.lower())
    if output is not None:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        _emit(text, output, fmt=fmt, what=f"the risk assessment report (sha256 {digest})")
    else:
        _emit(text, output, fmt=fmt, what="the risk assessment report")


@risks.command("sign-off")
@period_options
@sign_off_options("the assessment", "vigil risks report")
@click.pass_context
def sign_off_command(ctx: click.Context, start: datetime, end: datetime, by: str, role: str, comment: str,
                     report_file: Path | None) -> None:
    """Record management's sign-off of the periodic risk assessment for the period (an event in the
    hash-chained log; the next report and the period's evidence bundle show it). The signer must be
    in the people directory; in Slack, `/risk sign-off` does the same and attaches the report."""
    record_sign_off(ctx, start=start, end=end, by=by, role=role, comment=comment, report_file=report_file,
                    subject=signoff.RISK_ASSESSMENT, what="the risk assessment")
