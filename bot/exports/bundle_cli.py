"""`vigil export bundle` and the shared CLI bits of the audit commands (period options, actor, database).

`vigil_ir.exports.cli` adds `bundle` to the `export` group; its helpers are imported when a command
runs, not at import time, so the two modules can be imported in either order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from vigil_ir import clock
from vigil_ir.db import Database
from vigil_ir.exports.output import checked_output
from vigil_ir.people.cli_actor import actor_for, by_option



def period_bound(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """--from/--to as in `vigil export incidents`: a plain --to date is inclusive (end of that day)."""
    from vigil_ir.exports.cli import _bound

    return _bound(ctx, param, value)


def period_options(command):
    command = click.option("--to", "end", required=True, callback=period_bound, metavar="DATE",
                           help="Last day of the period (UTC), inclusive when a plain YYYY-MM-DD; an ISO "
                                "date-time is an exclusive end.")(command)
    return click.option("--from", "start", required=True, callback=period_bound, metavar="DATE",
                        help="First day of the period (UTC), YYYY-MM-DD or an ISO 8601 date-time.")(command)


def check_period(start: datetime, end: datetime) -> None:
    if start >= end:
        raise click.UsageError(f"--from ({clock.iso(start)}) must be before the end of --to ({clock.iso(end)}, "
                               "exclusive).")


@contextlib.contextmanager
def database_for(ctx: click.Context) -> Iterator[Database]:
    """The parent command's Database (ctx.obj["database"]) or one from settings; database errors explained."""
    from vigil_ir.config import load_settings

    database = ctx.obj.get("database") if isinstance(ctx.obj, dict) else None
    owned = database is None
    if owned:
        database = Database(load_settings().database_url)
    try:
        yield database
    except SQLAlchemyError as exc:
        where = make_url(database.url).render_as_string(hide_password=True)
        raise click.ClickException(f"Could not read the database at {where} ({type(exc).__name__}); "
                                   f"has `vigil migrate` been run?") from exc
    finally:
        if owned:
            database.dispose()


STATE_SHOWN = 20


def refuse_tampered_state(database: Database, end: datetime) -> None:
    """A bundle is built from the state tables: check the period's records against their events
    first (as `vigil verify` does) and refuse, naming each difference, if they disagree."""
    from vigil_ir.state_check import check_state

    with database.read_session() as session:
        check = check_state(session, before=end)
    if check.count:
        shown = "\n".join(f"  {mismatch.describe()}" for mismatch in check.found[:STATE_SHOWN])
        more = f"\n  ({check.count - STATE_SHOWN} more)" if check.count > STATE_SHOWN else ""
        raise click.ClickException(
            f"No bundle written: {check.count} state row difference(s) with the event log, so the tables the "
            f"bundle is built from cannot be trusted:\n{shown}{more}\nThe events are the record; see "
            "docs/operations.md, 'When vigil verify fails'.")


@click.command("bundle")
@period_options
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              callback=checked_output, help="The zip file to write (replaced, once complete, if it exists).")
@by_option("exporting")
@click.pass_context
def bundle(ctx: click.Context, start: datetime, end: datetime, output: Path, by: str | None) -> None:
    """The evidence bundle for an audit period: one zip with a hashed manifest (see docs/audit-evidence.md).

    Incident population and event log, a packet per incident, PIRs and actions, the risk register
    at period end, review log, heat maps, audit trail, notification log, chain heads. Check it with
    `vigil verify --bundle FILE`.
    """
    from vigil_ir.exports.bundle import export_bundle
    from vigil_ir.exports.progress import for_stream
    from vigil_ir.signing.service import SigningKeyError

    check_period(start, end)
    with database_for(ctx) as database:
        with database.read_session() as session:
            who, label = actor_for(session, by)
        refuse_tampered_state(database, end)
        try:
            result = export_bundle(database, start=start, end=end, output=output, actor=who, progress=for_stream())
        except SigningKeyError as exc:
            raise click.ClickException(f"Cannot sign the bundle: {exc}") from None
        except OSError as exc:
            raise click.ClickException(f"Cannot write {output}: {exc.strerror or exc}") from exc
    for note in result.manifest["notes"]:
        click.echo(f"Note ({note['section']}, {note['status']}): {note['detail']}", err=True)
    click.echo(f"Wrote {output}: {result.files} files, manifest.json and manifest.sig, {result.bytes} bytes; manifest "
               f"sha256 {result.manifest_sha256}, signed with {result.key_fingerprint} (recorded as "
               f"audit.bundle_exported by {label})", err=True)
