"""`vigil outbox list|retry`: what Vigil still has to tell Slack, and the dead letters."""

from __future__ import annotations

import click
from sqlmodel import select

from vigil_ir import clock
from vigil_ir.config import load_settings
from vigil_ir.db import Database
from vigil_ir.keys import MAX_NUMBER
from vigil_ir.outbox import service
from vigil_ir.outbox.models import OutboxItem


def _database(ctx: click.Context) -> Database:
    """The parent command's database (tests pass one), else the configured one."""
    given = ctx.obj.get("database") if isinstance(ctx.obj, dict) else None
    return given or Database(load_settings().database_url)


@click.group("outbox")
def outbox() -> None:
    """The Slack side effects waiting to be delivered, and those that failed for good (dead letters)."""


@outbox.command("list")
@click.option("--dead", is_flag=True, help="Only the dead letters: items that failed in a way retrying cannot fix.")
@click.pass_context
def list_command(ctx: click.Context, dead: bool) -> None:
    """One line per undelivered item: id, status, kind, subject, attempts, last error."""
    with _database(ctx).read_session() as session:
        query = select(OutboxItem).where(OutboxItem.status == "dead" if dead
                                         else OutboxItem.status.in_(("pending", "dead"))).order_by(OutboxItem.id)
        items = list(session.exec(query))
    if not items:
        click.echo("No dead letters." if dead else "Nothing waiting: every outbox item was delivered.", err=True)
        return
    click.echo("id\tstatus\tkind\tsubject\tattempts\tcreated_at\tlast_error")
    for item in items:
        click.echo(f"{item.id}\t{item.status}\t{item.kind}\t{item.subject}\t{item.attempts}\t"
                   f"{clock.iso(item.created_at)}\t{item.last_error or '-'}")


@outbox.command("retry")
@click.argument("item_id", type=click.IntRange(1, MAX_NUMBER), metavar="ID", required=False)
@click.option("--all-dead", is_flag=True, help="Retry every dead letter.")
@click.pass_context
def retry(ctx: click.Context, item_id: int | None, all_dead: bool) -> None:
    """Put a dead letter (ID) or all of them (--all-dead) back in line, once the cause is fixed."""
    if (item_id is None) == (not all_dead):
        raise click.UsageError("Give one dead letter's ID, or --all-dead.")
    with _database(ctx).session() as session:
        count = service.retry_dead(session, item_id=item_id)
    if item_id is not None and count == 0:
        raise click.ClickException(f"Outbox item {item_id} is not a dead letter (`vigil outbox list --dead`).")
    click.echo(f"{count} item(s) back in line; the worker delivers them next.", err=True)
