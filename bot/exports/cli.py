"""`vigil export …`: timelines and the incident population, to stdout or a file.

The parent `vigil` command may hand over its Database as `ctx.obj["database"]`; otherwise one is
opened from settings (DATABASE_URL) for the command and disposed afterwards.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
from sqlmodel import Session

from vigil_ir import clock
from vigil_ir.exports import csvsafe
from vigil_ir.exports.period_cli import check_period, database_for, period_options
from vigil_ir.exports.output import checked_output, write_file
from vigil_ir.exports.population import FORMATS as POPULATION_FORMATS
from vigil_ir.exports.population import incident_population, render_population
from vigil_ir.exports.risks import FORMATS as RISK_FORMATS
from vigil_ir.exports.risks import ACCEPTANCE_COLUMNS, REGISTER_COLUMNS, REVIEW_COLUMNS, acceptance_rows, register_rows
from vigil_ir.exports.risks import review_rows
from vigil_ir.exports.risks import render as render_risk_rows
from vigil_ir.exports.timeline import FORMATS as TIMELINE_FORMATS
from vigil_ir.exports.timeline import load_timeline
from vigil_ir.incidents.queries import by_key, parse_any_key

_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=checked_output,
                       help="Write to FILE instead of stdout (CSV files get a UTF-8 byte-order mark); written to a "
                            "temporary file and renamed into place once complete.")


@contextlib.contextmanager
def _session(ctx: click.Context) -> Iterator[Session]:
    """A read-only session: on SQLite it never takes the write lock, so an export of any size never
    holds up Slack's acks. database_for explains database errors and disposes a Database it made."""
    with database_for(ctx) as database, database.read_session() as session:
        yield session


@contextlib.contextmanager
def _write_session(ctx: click.Context) -> Iterator[Session]:
    """A session that commits: for the commands that change records (kept short)."""
    with database_for(ctx) as database, database.session() as session:
        yield session


def _emit(text: str, output: Path | None, *, fmt: str, what: str) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    write_file(output, (csvsafe.for_file(text) if fmt == "csv" else text).encode("utf-8"))
    click.echo(f"Wrote {what} to {output}", err=True)


def _bound(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A UTC instant; a plain date in --to means the end of that day (start of the next)."""
    if value is None:
        return None
    try:
        if _PLAIN_DATE.match(value):
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time(), timezone.utc)
            return parsed + timedelta(days=1) if param.name == "end" else parsed
        return clock.to_utc(datetime.fromisoformat(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time.") from None
    except OverflowError:  # 9999-12-31 as --to (the day after), or an offset past year 1 or 9999 in UTC
        raise click.BadParameter(f"{value!r} is outside the dates Vigil can count (years 1 to 9999, UTC).") from None


@click.group("export")
def export() -> None:
    """Export audit evidence: incident timelines and population, reviews and actions, the exercise
    register, the risk register, review log and acceptances, and the evidence bundle."""


@export.command("timeline")
@click.argument("key", metavar="INC-<n>|EX-<n>")
@click.option("--format", "fmt", type=click.Choice(TIMELINE_FORMATS, case_sensitive=False), default="json",
              show_default=True, help="json (with hashes and an integrity block), csv, md or html.")
@_OUTPUT
@click.pass_context
def timeline_command(ctx: click.Context, key: str, fmt: str, output: Path | None) -> None:
    """One incident's (or exercise's) full timeline, with milestones and its hash-chain head."""
    if parse_any_key(key) is None:
        raise click.BadParameter(f"{key!r} is not an incident key; expected INC-<n>, e.g. INC-12 (or an exercise's "
                                 "EX-<n>).", param_hint="INC-<n>")
    with _session(ctx) as session:
        incident = by_key(session, key)
        if incident is None:
            raise click.ClickException(f"No incident {key.strip().upper()} in this database.")
        timeline = load_timeline(session, incident)
        text = timeline.render(fmt)
    _emit(text, output, fmt=fmt, what=f"{incident.key} timeline ({len(timeline.events)} events)")


@export.command("incidents")
@period_options
@click.option("--format", "fmt", type=click.Choice(POPULATION_FORMATS, case_sensitive=False), default="csv",
              show_default=True, help="csv or json (a list of objects with the same columns).")
@_OUTPUT
@click.pass_context
def incidents_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """The incident population: every incident declared in the period, one row each.

    Periods are in UTC, from the start of --from up to the end of --to: `--from 2025-01-01
    --to 2025-03-31` covers the whole first quarter, 31 March included. A date-time --to is an
    exclusive end.
    """
    check_period(start, end)
    with _session(ctx) as session:
        rows = incident_population(session, start, end)
    _emit(render_population(rows, fmt), output, fmt=fmt, what=f"{len(rows)} incidents")


@export.command("pirs")
@period_options
@click.option("--format", "fmt", type=click.Choice(("csv", "json"), case_sensitive=False), default="csv",
              show_default=True, help="csv or json (same columns).")
@_OUTPUT
@click.pass_context
def pirs_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """Post-incident reviews (E5): one row per incident declared in the period, reviewed or not."""
    from vigil_ir.followup.pir_export import pir_rows, render_pirs

    check_period(start, end)
    with _session(ctx) as session:
        rows = pir_rows(session, start, end)
    _emit(render_pirs(rows, fmt), output, fmt=fmt, what=f"{len(rows)} post-incident reviews")


@export.command("actions")
@period_options
@click.option("--format", "fmt", type=click.Choice(("csv", "json"), case_sensitive=False), default="csv",
              show_default=True, help="csv or json (same columns).")
@_OUTPUT
@click.pass_context
def actions_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """Follow-up actions (E5 action items): every action created, due or completed in the period."""
    from vigil_ir.followup.action_export import action_rows, render

    check_period(start, end)
    with _session(ctx) as session:
        rows = action_rows(session, start, end)
    _emit(render(rows, fmt.lower()), output, fmt=fmt.lower(), what=f"{len(rows)} follow-up actions")


@export.command("exercises")
@period_options
@click.option("--format", "fmt", type=click.Choice(("csv", "json"), case_sensitive=False), default="csv",
              show_default=True, help="csv or json (same columns).")
@_OUTPUT
@click.pass_context
def exercises_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """The exercise register (CC7.5): every exercise (tabletop or game day) declared in the period, with
    its scenario, participants, playbooks and steps, findings and the follow-up actions it raised.
    Exercises are never part of the incident population."""
    from vigil_ir.exports.exercise_register import exercise_rows, render

    check_period(start, end)
    with _session(ctx) as session:
        rows = exercise_rows(session, start, end)
    _emit(render(rows, fmt.lower()), output, fmt=fmt.lower(), what=f"{len(rows)} exercises")


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD).") from None
    if day > clock.now().date():  # the register "as it stood" then; also keeps 9999-12-31 from overflowing
        raise click.BadParameter(f"{day.isoformat()} is in the future.")
    return day


@export.command("risks")
@click.option("--as-of", "as_of", callback=_as_of, metavar="DATE",
              help="Rebuild the register as it stood at the end of DATE (UTC) from the event log alone.")
@click.option("--format", "fmt", type=click.Choice(RISK_FORMATS, case_sensitive=False), default="csv",
              show_default=True, help="csv or json (same columns).")
@_OUTPUT
@click.pass_context
def risks_command(ctx: click.Context, as_of: date | None, fmt: str, output: Path | None) -> None:
    """The risk register (E7): the live register, or with --as-of the register at the end of that date."""
    if as_of is not None and as_of > clock.now().date():
        raise click.BadParameter(f"{as_of.isoformat()} is in the future.", param_hint="--as-of")
    with _session(ctx) as session:
        rows = register_rows(session, as_of)
    _emit(render_risk_rows(rows, REGISTER_COLUMNS, fmt), output, fmt=fmt, what=f"{len(rows)} risks")


@export.command("reviews")
@period_options
@click.option("--format", "fmt", type=click.Choice(RISK_FORMATS, case_sensitive=False), default="csv",
              show_default=True, help="csv or json (same columns).")
@_OUTPUT
@click.pass_context
def reviews_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """The risk review log (E8): reviews completed in the period, and those due in it but not completed."""
    check_period(start, end)
    with _session(ctx) as session:
        rows = review_rows(session, start, end)
    _emit(render_risk_rows(rows, REVIEW_COLUMNS, fmt), output, fmt=fmt, what=f"{len(rows)} reviews")


@export.command("acceptances")
@period_options
@click.option("--format", "fmt", type=click.Choice(RISK_FORMATS, case_sensitive=False), default="csv",
              show_default=True, help="csv or json (same columns).")
@_OUTPUT
@click.pass_context
def acceptances_command(ctx: click.Context, start: datetime, end: datetime, fmt: str, output: Path | None) -> None:
    """The risk acceptance register (E9): acceptances in force at any time in the period, with who
    approved them, until when, and whether the risk changed since."""
    check_period(start, end)
    with _session(ctx) as session:
        rows = acceptance_rows(session, start, end)
    _emit(render_risk_rows(rows, ACCEPTANCE_COLUMNS, fmt), output, fmt=fmt, what=f"{len(rows)} acceptances")


def _add_bundle() -> None:
    from vigil_ir.exports.bundle.cli import bundle  # `vigil export bundle`

    export.add_command(bundle)


_add_bundle()
