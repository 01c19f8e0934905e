"""`vigil signing-key show|rotate`: the key that signs evidence bundles (docs/operations.md)."""

from __future__ import annotations

import click

from vigil_ir import clock
from vigil_ir.exports.period_cli import database_for
from vigil_ir.people.cli_actor import actor_for, by_option


def _published(session, settings, key) -> str:
    from vigil_ir.signing.service import pending_publication

    if key.published:
        last = key.published[-1]
        return f"published {clock.iso(last.at)} in {last.channel}: {last.permalink}"
    item = pending_publication(session, key.fingerprint)
    if item is not None:
        return (f"not yet published: queued for {item.payload.get('channel')} ({item.status}"
                f"{', ' + item.last_error if item.last_error else ''}); the worker posts it")
    if not settings.audit_channel:
        return "not published: VIGIL_AUDIT_CHANNEL is not set (the next export queues it once it is)"
    return "not yet published: the next export queues it"


@click.group("signing-key")
def signing_key() -> None:
    """The Ed25519 key that signs evidence bundles: show it (created on first use) or rotate it."""


@signing_key.command("show")
@by_option("asking (recorded only when the key is created now)")
@click.pass_context
def show(ctx: click.Context, by: str | None) -> None:
    """The current key (its fingerprint, public key, file and where it was published) and every earlier one."""
    from vigil_ir.config import load_settings
    from vigil_ir.signing.service import SigningKeyError, key_path, recorded_keys, signer

    settings = load_settings()
    with database_for(ctx) as database:
        with database.read_session() as session:
            who, _ = actor_for(session, by)
        try:
            current = signer(database, settings, actor=who)
        except SigningKeyError as exc:
            raise click.ClickException(str(exc)) from None
        with database.read_session() as session:
            keys = recorded_keys(session)
            lines = [(key, _published(session, settings, key)) for key in reversed(keys)]
    (key, published), earlier = lines[0], lines[1:]
    click.echo(f"Signing key {current.fingerprint} (Ed25519), {key.describe()}")
    click.echo(f"  key file: {key_path(settings)}")
    click.echo(f"  public key: {key.public_key}")
    click.echo(f"  {published}")
    if earlier:
        click.echo("Earlier keys (bundles they signed still verify):")
        for key, published in earlier:
            click.echo(f"  {key.fingerprint}: {key.describe()}; {published}")


@signing_key.command("rotate")
@click.option("--reason", default=None, help="Why, for the record (e.g. 'yearly rotation', 'laptop lost').")
@by_option("rotating the key")
@click.pass_context
def rotate(ctx: click.Context, reason: str | None, by: str | None) -> None:
    """Start a new signing key. The old public key stays recorded, so bundles it signed still verify;
    the old private key is overwritten. Back up the new key file afterwards."""
    from vigil_ir.config import load_settings
    from vigil_ir.signing import service

    settings = load_settings()
    with database_for(ctx) as database:
        with database.read_session() as session:
            who, _ = actor_for(session, by)
        try:
            done = service.rotate(database, settings, actor=who, reason=reason)
        except service.SigningKeyError as exc:
            raise click.ClickException(str(exc)) from None
    replaced = f" replaces {done.previous.fingerprint}" if done.previous else " is the first key"
    where = (f"queued for {settings.audit_channel} (the worker posts it)" if settings.audit_channel
             else "not published: VIGIL_AUDIT_CHANNEL is not set")
    click.echo(f"Rotated: {done.signer.fingerprint}{replaced}; recorded as {done.event.kind} (audit seq "
               f"{done.event.stream_seq}); its fingerprint is {where}. Back up {service.key_path(settings)} now.")
