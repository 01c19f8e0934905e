"""`vigil auditor-token create|list|revoke`: read-only dashboard access for an outside auditor, and
`vigil dashboard sessions list|revoke`: who is signed in, and ending their sessions."""

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
    if _PLAIN_DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise click.BadParameter(f"{value} is not a date ({exc})") from None
        if day > clock.now().date() + MAX_DURATION:  # the same cap as a duration
            raise click.BadParameter(f"{value} is more than {MAX_DURATION.days} days ahead")
        return datetime.combine(day + timedelta(days=1), datetime.min.time(), timezone.utc)
    try:
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


@click.group("dashboard")
def dashboard_group() -> None:
    """The web dashboard: its signed-in sessions."""


@dashboard_group.group("sessions")
def sessions_group() -> None:
    """Who is signed in to the dashboard: list, revoke."""


@sessions_group.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Also sessions that were signed out, revoked or expired.")
@click.pass_context
def sessions_list_command(ctx: click.Context, include_ended: bool) -> None:
    """Active sessions (newest first): id, state, who, from which address, when they end."""
    from vigil_ir.auth import sessions
    from vigil_ir.people.directory import Directory

    now = clock.now()
    with _session(ctx) as session:
        rows = sessions.listing(session, include_ended=include_ended, limit=10_000)
        people = Directory.load(session)
    if not rows:
        click.echo("No dashboard sessions." if include_ended else "Nobody is signed in to the dashboard.", err=True)
        return
    click.echo("id\tstate\twho\tname\taddress\tsigned_in_at\texpires_at\tended_at\tended_by")
    for row in rows:
        who = row.actor
        name = (people.label(row.subject) if row.kind == "slack" else f"{row.name} (auditor token {row.subject})")
        click.echo("\t".join(str(v) if v is not None else "-" for v in (
            row.id, row.state(now), who, name, row.address, clock.iso(row.created_at), clock.iso(row.expires_at),
            clock.iso(row.ended_at), row.ended_by)))


@sessions_group.command("revoke")
@click.argument("session_id", type=click.IntRange(1, MAX_NUMBER), metavar="ID", required=False)
@click.option("--all-for", "who", default=None, metavar="USER|auditor:ID",
              help="End every active session of a Slack user (U… or their e-mail) or an auditor token (auditor:3).")
@by_option("revoking it", "--actor")
@click.pass_context
def sessions_revoke_command(ctx: click.Context, session_id: int | None, who: str | None, by: str | None) -> None:
    """End session ID (or every session of --all-for) now: that browser is signed out at its next request."""
    from vigil_ir.auth import sessions

    if (session_id is None) == (who is None):
        raise click.UsageError("give a session ID or --all-for USER|auditor:ID (one of them)")
    try:
        with _write_session(ctx) as session:
            actor = actor_for(session, by)[0]
            if session_id is not None:
                ended = [sessions.revoke(session, session_id=session_id, actor=actor)]
            else:
                if "@" in who:  # an e-mail: the Slack user the people directory knows by it
                    from vigil_ir.people.service import not_a_person, resolve

                    person = resolve(session, who)
                    if person is None:
                        raise click.BadParameter(not_a_person(who.strip()), param_hint="--all-for")
                    who = person.user_id
                ended = sessions.revoke_all_for(session, who=who, actor=actor)
            ended = [(row.id, row.actor) for row in ended]
    except (LookupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if not ended:
        click.echo(f"{who} had no active dashboard session; nothing was revoked.", err=True)
        return
    for number, whose in ended:
        click.echo(f"Revoked dashboard session {number} ({whose}).", err=True)
