"""The shared CLI bits of the audit commands: the period options, its check, and the database to read.

`vigil_ir.exports.cli` defines the `export` group and uses these; `period_bound` imports its date
parser when a command runs, not at import time, so the two modules can be imported in either order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from vigil_ir import clock
from vigil_ir.db import Database


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
