"""`vigil export bundle`: refuse when state and events disagree, write the bundle, say what was written.

`vigil_ir.exports.cli` adds `bundle` to the `export` group when it is asked for (lazily).
"""

from __future__ import annotations

import gc
from datetime import datetime
from pathlib import Path

import click

from vigil_ir.db import Database
from vigil_ir.exports.output import checked_output
from vigil_ir.exports.period_cli import check_period, database_for, period_options
from vigil_ir.people.cli_actor import actor_for, by_option


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
    from vigil_ir.exports.bundle.export import export_bundle
    from vigil_ir.exports.progress import for_stream
    from vigil_ir.signing.service import SigningKeyError

    check_period(start, end)
    with database_for(ctx) as database:
        with database.read_session() as session:
            who, label = actor_for(session, by)
        # What is loaded by now (modules, mappings, the database) lives as long as the process: keep it
        # out of the garbage collector's full passes, which otherwise walk it again and again; and let
        # the young generation grow to 10,000 objects (from 700) before a pass, since the export makes
        # millions of short-lived ones. Together ~5% of the export's CPU.
        gc.freeze()
        gc.set_threshold(10_000, 20, 20)
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
