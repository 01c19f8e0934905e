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
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bot import clock
from bot.config import load_settings
from bot.db import Database
from bot.exports import csvsafe
from bot.exports.population import FORMATS as POPULATION_FORMATS
from bot.exports.population import incident_population, render_population
from bot.exports.timeline import FORMATS as TIMELINE_FORMATS
from bot.exports.timeline import load_timeline
from bot.incidents.queries import by_key, parse_key

_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OUTPUT = click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True, path_type=Path),
                       help="Write to FILE instead of stdout (CSV files get a UTF-8 byte-order mark).")


@contextlib.contextmanager
def _session(ctx: click.Context) -> Iterator[Session]:
    database = ctx.obj.get("database") if isinstance(ctx.obj, dict) else None
    owned = database is None
    if owned:
        database = Database(load_settings().database_url)
    try:
        with database.session() as session:
            yield session
    except SQLAlchemyError as exc:
        where = make_url(database.url).render_as_string(hide_password=True)
        raise click.ClickException(f"Could not read the database at {where} ({type(exc).__name__}); "
                                   f"has `vigil migrate` been run?") from exc
    finally:
        if owned:
            database.dispose()


def _emit(text: str, output: Path | None, *, fmt: str, what: str) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(csvsafe.for_file(text) if fmt == "csv" else text, encoding="utf-8", newline="")
    except OSError as exc:
        raise click.ClickException(f"Cannot write {output}: {exc.strerror or exc}") from exc
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


@click.group("export")
def export() -> None:
    """Export audit evidence: incident timelines and the incident population."""


@export.command("timeline")
@click.argument("key", metavar="INC-<n>")
@click.option("--format", "fmt", type=click.Choice(TIMELINE_FORMATS, case_sensitive=False), default="json",
              show_default=True, help="json (with hashes and an integrity block), csv, md or html.")
@_OUTPUT
@click.pass_context
def timeline_command(ctx: click.Context, key: str, fmt: str, output: Path | None) -> None:
    """One incident's full timeline, with milestones and its hash-chain head."""
    if parse_key(key) is None:
        raise click.BadParameter(f"{key!r} is not an incident key; expected INC-<n>, e.g. INC-12.",
                                 param_hint="INC-<n>")
    with _session(ctx) as session:
        incident = by_key(session, key)
        if incident is None:
            raise click.ClickException(f"No incident {key.strip().upper()} in this database.")
        timeline = load_timeline(session, incident)
        text = timeline.render(fmt)
    _emit(text, output, fmt=fmt, what=f"{incident.key} timeline ({len(timeline.events)} events)")


@export.command("incidents")
@click.option("--from", "start", required=True, callback=_bound, metavar="DATE",
              help="First day of the period (UTC), YYYY-MM-DD or an ISO 8601 date-time.")
@click.option("--to", "end", required=True, callback=_bound, metavar="DATE",
              help="Last day of the period (UTC), inclusive when a plain YYYY-MM-DD; "
                   "an ISO date-time is an exclusive end.")
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
    if start >= end:
        raise click.UsageError(f"--from ({clock.iso(start)}) must be before the end of --to "
                               f"({clock.iso(end)}, exclusive).")
    with _session(ctx) as session:
        rows = incident_population(session, start, end)
    _emit(render_population(rows, fmt), output, fmt=fmt, what=f"{len(rows)} incidents")
