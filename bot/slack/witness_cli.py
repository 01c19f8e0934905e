"""`vigil witness publish` and the witness checks of `vigil verify` (--witness, --against/--at).

Both need the database and, except `--against`, Slack (SLACK_BOT_TOKEN and VIGIL_AUDIT_CHANNEL).
"""

from __future__ import annotations

from datetime import datetime

import click

from vigil_ir import clock
from vigil_ir.config import Settings
from vigil_ir.db import Database
from vigil_ir.eventlog.witness import Witness, contradiction, heads_as_at
from vigil_ir.reminders.witnesses import queue_witness


def _slack_ready(settings: Settings) -> None:
    missing = [name for name, value in (("SLACK_BOT_TOKEN", settings.slack_bot_token),
                                        ("VIGIL_AUDIT_CHANNEL", settings.audit_channel)) if not value]
    if missing:
        raise click.ClickException(f"Witnesses live in Slack: set {', '.join(missing)} (see README.md).")


def check_published(database: Database, settings: Settings) -> int:
    """Every witness in the audit channel against the log; returns the exit code."""
    from vigil_ir.slack.app import make_client
    from vigil_ir.slack.witnesses import permalink, read_all

    _slack_ready(settings)
    client = make_client(settings)
    posted = read_all(client, settings.audit_channel)
    if not posted:
        click.echo(f"BROKEN: no witness found in {settings.audit_channel}: nothing outside the database vouches "
                   "for the log (the worker publishes one every VIGIL_WITNESS_INTERVAL; `vigil witness publish` "
                   "now).", err=True)
        return 1
    broken = 0
    with database.read_session() as session:
        for post in posted:
            why = contradiction(session, post.witness)
            if why:
                broken += 1
                link = permalink(client, settings.audit_channel, post.ts) or f"ts {post.ts}"
                click.echo(f"BROKEN: the witness posted {clock.iso(_posted_at(post.ts))} ({link}): {why}.", err=True)
    if broken:
        return 1
    latest = posted[-1].witness
    click.echo(f"OK: {len(posted)} witnesses in {settings.audit_channel} match the log (latest: "
               f"{latest.events} events up to {clock.iso(latest.cutoff)}, {latest.digest}).")
    return 0


def check_against(database: Database, digest: str, at: datetime) -> int:
    with database.read_session() as session:
        found = heads_as_at(session, at)
        why = contradiction(session, Witness(clock.to_utc(at), found.streams, found.events, digest))
    if why:
        click.echo(f"BROKEN: {why}.", err=True)
        return 1
    click.echo(f"OK: the {found.events} events recorded up to {clock.iso(at)} give {digest}.")
    return 0


def _posted_at(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), tz=clock.now().tzinfo)


@click.group("witness")
def witness_group() -> None:
    """Publish the chain heads' digest to VIGIL_AUDIT_CHANNEL (the worker also does it periodically)."""


@witness_group.command("publish")
@click.pass_context
def publish(ctx: click.Context) -> None:
    """Post a witness of the log now (covering events recorded until 5 minutes ago) and record it."""
    from vigil_ir.config import load_settings
    from vigil_ir.runtime import make_worker

    settings = load_settings()
    _slack_ready(settings)
    database = ctx.obj.get("database") if ctx.obj else None
    database = database or Database(settings.database_url)
    now = clock.now()
    with database.session() as session:
        item = queue_witness(session, settings, now, key=f"audit-witness:manual:{clock.iso(now)}")
    if item is None:
        raise click.ClickException("Nothing to witness yet: no event was recorded more than 5 minutes ago.")
    make_worker(settings, database, "cli").drain()
    with database.read_session() as session:
        from vigil_ir.outbox.models import OutboxItem

        done = session.get(OutboxItem, item.id)
    if done.status != "done":
        raise click.ClickException(f"The witness is queued but Slack has not taken it yet ({done.last_error}); "
                                   "the worker will post it.")
    click.echo(f"Published: {done.payload['events']} events up to {done.payload['cutoff']}, {done.payload['digest']} "
               f"({(done.result or {}).get('permalink') or done.result})")
