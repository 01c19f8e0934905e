"""`vigil auditor-token create|list|revoke`: read-only dashboard access for an outside auditor."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

import click

from vigil_ir import clock
from vigil_ir.auth import tokens
from vigil_ir.exports.cli import _session, _write_session
from vigil_ir.keys import MAX_NUMBER
from vigil_ir.people.cli_actor import actor_for, by_option
from vigil_ir.playbooks.durations import MAX_DURATION, parse_duration

_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _expiry(ctx: click.Context, param: click.Parameter, value: str) -> datetime:
    """`30d`, `12h`, … from now, or a date: the token works until the end of that day (UTC)."""
    try:
        if _PLAIN_DATE.match(value):
            day = date.fromisoformat(value)
            if day > clock.now().date() + MAX_DURATION:  # the same cap as a duration
                raise ValueError(f"{value} is more than {MAX_DURATION.days} days ahead")
            return datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
        return clock.now() + parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; or give a date, YYYY-MM-DD") from None


@click.group("auditor-token")
def auditor_token() -> None:
    """Read-only dashboard tokens for auditors: create (shown once), list, revoke."""


@auditor_token.command("create")
@click.option("--name", required=True, help='Who the token is for, e.g. "Acme Audit LLP".')
@click.option("--expires", "expires_at", default="30d", show_default=True, callback=_expiry, metavar="DURATION|DATE",
              help="How long it works (e.g. 30d, 12h) or the last day it works (YYYY-MM-DD, UTC).")
@by_option("creating it", "--actor")
@click.pass_context
def create_command(ctx: click.Context, name: str, expires_at: datetime, by: str | None) -> None:
    """Create a token and print it once: only its SHA-256 is kept, so it cannot be shown again."""
    try:
        with _write_session(ctx) as session:
            new = tokens.create(session, name=name, expires_at=expires_at, actor=actor_for(session, by)[0])
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created auditor token {new.token.id} for {new.token.name}, valid until "
               f"{clock.iso(new.token.expires_at)}. Give this to the auditor now; it is not shown again:", err=True)
    click.echo(new.secret)


@auditor_token.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """Every token, with its state (active, expired, revoked) and when it was last used."""
    now = clock.now()
    with _session(ctx) as session:
        rows = tokens.all_tokens(session)
    if not rows:
        click.echo("No auditor tokens. Create one with `vigil auditor-token create --name NAME`.", err=True)
        return
    click.echo("id\tstate\tname\tcreated_at\tcreated_by\texpires_at\trevoked_at\tlast_used_at")
    for t in rows:
        click.echo("\t".join(str(v) if v is not None else "-" for v in (
            t.id, t.state(now), t.name, clock.iso(t.created_at), t.created_by, clock.iso(t.expires_at),
            clock.iso(t.revoked_at), clock.iso(t.last_used_at))))


@auditor_token.command("revoke")
@click.argument("token_id", type=click.IntRange(1, MAX_NUMBER), metavar="ID")
@by_option("revoking it", "--actor")
@click.pass_context
def revoke_command(ctx: click.Context, token_id: int, by: str | None) -> None:
    """Revoke token ID now; a dashboard session using it ends at its next request."""
    try:
        with _write_session(ctx) as session:
            token = tokens.revoke(session, token_id=token_id, actor=actor_for(session, by)[0])
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Revoked auditor token {token.id} ({token.name}).", err=True)
